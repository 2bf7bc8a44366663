//! The WebSocket connection registry: DynamoDB in production, in-process on a laptop.

mod dynamo;
mod memory;

pub use dynamo::DynamoConnections;
pub use memory::MemoryConnections;
