//! Pushing frames to WebSocket connections: API Gateway's Management API in production, the local
//! gateway's in-process hub on a laptop.

mod apigw;
mod hub;

pub use apigw::ApiGatewayPublisher;
pub use hub::{ConnectionHub, HUB_QUEUE_FRAMES, Outgoing};
