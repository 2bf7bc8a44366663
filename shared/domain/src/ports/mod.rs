//! The traits adapters implement. Each is narrow, so a function depends only on what it uses.

pub mod blobs;
pub mod cache;
pub mod credentials;
pub mod keys;
pub mod realtime;
pub mod store;
