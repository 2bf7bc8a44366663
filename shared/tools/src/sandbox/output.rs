//! The guest's stdout, kept in memory up to the call's output cap. A guest that writes past
//! the cap is stopped there (a trap), not left to run to its time limit: its output can only
//! be refused by then.

use std::sync::{Arc, Mutex, PoisonError};

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};

/// What the guest wrote, and whether it tried to write more than `cap` bytes.
#[derive(Clone)]
pub struct CappedOutput {
    cap: usize,
    written: Arc<Mutex<Written>>,
}

#[derive(Default)]
struct Written {
    bytes: BytesMut,
    over: bool,
}

impl CappedOutput {
    pub fn new(cap: usize) -> Self {
        Self {
            cap,
            written: Arc::default(),
        }
    }

    /// What was written within the cap, or `None` when the guest went past it.
    pub fn contents(&self) -> Option<Bytes> {
        let written = self.lock();
        (!written.over).then(|| written.bytes.clone().freeze())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Written> {
        self.written.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn over_the_cap(&self) -> StreamError {
        self.lock().over = true;
        StreamError::Trap(wasmtime::format_err!(
            "the tool wrote more than its {} bytes of output",
            self.cap
        ))
    }
}

#[async_trait::async_trait]
impl OutputStream for CappedOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        let mut written = self.lock();
        if bytes.len() > self.cap - written.bytes.len() {
            drop(written);
            return Err(self.over_the_cap());
        }
        written.bytes.extend_from_slice(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        let room = self.cap - self.lock().bytes.len();
        if room == 0 {
            // Full: whatever the guest writes next is past the cap.
            return Err(self.over_the_cap());
        }
        Ok(room)
    }
}

#[async_trait::async_trait]
impl Pollable for CappedOutput {
    async fn ready(&mut self) {}
}

impl AsyncWrite for CappedOutput {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let mut written = self.lock();
        if buf.len() > self.cap - written.bytes.len() {
            written.over = true;
            return std::task::Poll::Ready(Err(std::io::ErrorKind::StorageFull.into()));
        }
        written.bytes.extend_from_slice(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

impl IsTerminal for CappedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CappedOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}
