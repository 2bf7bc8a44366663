//! The cache port on Redis (production, shared by every Lambda container) and in-process (a
//! laptop, one process).

mod memory;
mod redis;

pub use memory::MemoryCache;
pub use redis::{RedisCache, RedisSettings};
