//! Support for BestChat's tests: fresh PostgreSQL databases, temporary directories, tokens, and
//! `bestchat-local` started as a real child process on a free port.

pub mod api;
pub mod cfn;
pub mod chat;
pub mod fake_provider;
pub mod files;
pub mod gateway;
pub mod mcp;
pub mod postgres;
pub mod proxy;
pub mod scripted;
pub mod tools;
pub mod wasm;
pub mod ws;

use std::path::{Path, PathBuf};

/// A directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> Self {
        let path = std::env::temp_dir().join(format!("bestchat-{label}-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&path).expect("create temp dir");
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The Redis server tests use (`REDIS_URL`, default 127.0.0.1:6379).
pub fn redis_url() -> String {
    std::env::var("REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned())
}

/// The address of the Redis server tests use, for a proxy in front of it.
pub fn redis_addr() -> std::net::SocketAddr {
    let url = redis_url();
    let authority = url
        .split("://")
        .nth(1)
        .unwrap_or(&url)
        .split('/')
        .next()
        .unwrap_or_default()
        .rsplit('@')
        .next()
        .unwrap_or_default()
        .to_owned();
    std::net::ToSocketAddrs::to_socket_addrs(&authority)
        .ok()
        .and_then(|mut a| a.next())
        .unwrap_or_else(|| panic!("REDIS_URL {url} has no reachable host:port"))
}

/// A key prefix no other test uses.
pub fn unique_prefix() -> String {
    format!("bestchat-test:{}:", uuid::Uuid::now_v7().simple())
}

/// A provider wire transcript from tests/fixtures/providers.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/providers")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The moto server standing in for AWS (`MOTO_URL`; scripts/test starts one).
pub fn moto_url() -> String {
    std::env::var("MOTO_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| panic!("MOTO_URL is not set: run scripts/test, or start `moto_server -p 5000` and set MOTO_URL=http://127.0.0.1:5000"))
}
