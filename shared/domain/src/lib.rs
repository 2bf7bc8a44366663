//! BestChat's core types: ids, validation, error codes, the wire protocol and the ports that
//! adapters implement. Nothing here performs I/O.

pub mod budget;
pub mod context;
pub mod conversation;
pub mod error;
pub mod file;
pub mod ids;
pub mod limits;
pub mod mcp;
pub mod message;
pub mod model_ref;
pub mod page;
pub mod ports;
pub mod provider;
pub mod rate;
pub mod settings;
pub mod text;
pub mod time;
pub mod tool;
pub mod usage;
pub mod wire;

pub use error::{DomainError, ErrorCode};
