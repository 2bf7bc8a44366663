//! A TCP proxy on loopback that can fail on command, to put a real server (Redis, PostgreSQL)
//! out of reach mid-test: `blackhole` drops every open connection and then accepts new ones
//! without ever answering (the worst case: every command waits out its timeout), `forward`
//! restores the service.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

pub struct TcpProxy {
    pub addr: SocketAddr,
    holes: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<AbortHandle>>>,
    accept: AbortHandle,
}

impl TcpProxy {
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let holes = Arc::new(AtomicBool::new(false));
        let open = Arc::new(Mutex::new(Vec::new()));
        let (h, o) = (Arc::clone(&holes), Arc::clone(&open));
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let task = if h.load(Ordering::SeqCst) {
                    tokio::spawn(swallow(client))
                } else {
                    tokio::spawn(relay(client, target))
                };
                o.lock().expect("proxy").push(task.abort_handle());
            }
        })
        .abort_handle();
        Self {
            addr,
            holes,
            open,
            accept,
        }
    }

    /// Cuts every connection; new ones are accepted and never answered.
    pub fn blackhole(&self) {
        self.holes.store(true, Ordering::SeqCst);
        for task in self.open.lock().expect("proxy").drain(..) {
            task.abort();
        }
    }

    /// Cuts the connections held in the hole; new ones reach the target again.
    pub fn forward(&self) {
        self.holes.store(false, Ordering::SeqCst);
        for task in self.open.lock().expect("proxy").drain(..) {
            task.abort();
        }
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.accept.abort();
        for task in self.open.lock().expect("proxy").drain(..) {
            task.abort();
        }
    }
}

async fn relay(mut client: TcpStream, target: SocketAddr) {
    if let Ok(mut server) = TcpStream::connect(target).await {
        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
    }
}

async fn swallow(mut client: TcpStream) {
    let mut sink = [0u8; 4096];
    while matches!(client.read(&mut sink).await, Ok(n) if n > 0) {}
}
