//! The cache port on Redis (production, shared by every Lambda container) and in-process (a
//! laptop, one process).

mod memory;
mod redis;
mod stream_buffer;

pub use memory::MemoryCache;
pub use redis::{REAUTHENTICATE_EVERY, RedisCache, RedisLogin, RedisSettings};
pub use stream_buffer::{BufferSettings, MemoryStreamBuffer, RedisStreamBuffer};
