//! BestChat's use cases behind a transport-neutral HTTP shape, and the application state they
//! run against. Lambda and the local gateway both call the handlers in [`api`].

pub mod api;
pub mod audit;
pub mod auth;
pub mod billing;
pub mod budget;
pub mod config;
pub mod conversations;
pub mod decisions;
pub mod devices;
pub mod error;
pub mod events;
pub mod files;
pub mod http;
#[cfg(feature = "in-process")]
pub mod in_process;
pub mod janitor;
pub mod jobs;
pub mod mcp;
pub mod metrics;
pub mod models;
pub mod openapi;
pub mod provider_configs;
pub mod rate_limit;
pub mod roles;
pub mod routes;
pub mod secrets;
pub mod send;
pub mod serve;
pub mod settings;
pub mod state;
pub mod summarize;
#[cfg(test)]
pub(crate) mod testing;
pub mod tokens;
pub mod tools;
pub mod turn;
pub mod ws;

pub use config::Config;
pub use error::AppError;
pub use state::AppState;
