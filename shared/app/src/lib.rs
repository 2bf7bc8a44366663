//! BestChat's use cases behind a transport-neutral HTTP shape, and the application state they
//! run against. Lambda and the local gateway both call the handlers in [`api`].

pub mod api;
pub mod config;
pub mod error;
pub mod http;
pub mod models;
pub mod provider_configs;
pub mod secrets;
pub mod state;

pub use config::Config;
pub use error::AppError;
pub use state::AppState;
