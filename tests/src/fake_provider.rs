//! A fake LLM provider on loopback: a raw HTTP/1.1 server that replays real wire transcripts
//! and scripted faults (error statuses with `Retry-After`, a hang before the first byte, a cut
//! mid-stream), and records every request it receives.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Largest request the fake server reads.
const MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The body ends properly.
    Complete,
    /// The connection drops without ending the chunked body.
    Cut,
}

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Bytes per write; each write is one HTTP chunk.
    pub chunk_size: usize,
    /// Pause between writes.
    pub delay: Duration,
    /// Pause before the response headers; `None` never answers.
    pub wait: Option<Duration>,
    pub ending: Ending,
}

impl Reply {
    pub fn sse(body: impl Into<Vec<u8>>) -> Self {
        Self {
            status: 200,
            headers: vec![("content-type".into(), "text/event-stream".into())],
            body: body.into(),
            chunk_size: 64,
            delay: Duration::ZERO,
            wait: Some(Duration::ZERO),
            ending: Ending::Complete,
        }
    }

    pub fn json(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            chunk_size: usize::MAX,
            ..Self::sse(body)
        }
    }

    /// AWS event-stream frames (Bedrock ConverseStream).
    pub fn event_stream(body: Vec<u8>) -> Self {
        Self {
            headers: vec![(
                "content-type".into(),
                "application/vnd.amazon.eventstream".into(),
            )],
            ..Self::sse(body)
        }
    }

    pub fn hang() -> Self {
        Self {
            wait: None,
            ..Self::sse(Vec::new())
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sends only the first `bytes` of the body, then drops the connection.
    pub fn cut_after(mut self, bytes: usize) -> Self {
        self.body.truncate(bytes);
        self.ending = Ending::Cut;
        self
    }

    pub fn paced(mut self, chunk_size: usize, delay: Duration) -> Self {
        self.chunk_size = chunk_size;
        self.delay = delay;
        self
    }
}

#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

struct State {
    script: VecDeque<Reply>,
    /// Answer once the script is used up.
    fallback: Reply,
    requests: Vec<Recorded>,
}

#[derive(Clone)]
pub struct FakeProvider {
    pub base_url: String,
    state: Arc<Mutex<State>>,
}

impl FakeProvider {
    /// Serves `script` in order, then `fallback` for every further request.
    pub async fn start(script: Vec<Reply>, fallback: Reply) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake provider");
        let base_url = format!("http://{}", listener.local_addr().expect("address"));
        let state = Arc::new(Mutex::new(State {
            script: script.into(),
            fallback,
            requests: Vec::new(),
        }));
        let shared = Arc::clone(&state);
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let state = Arc::clone(&shared);
                tokio::spawn(async move {
                    let _ = serve(socket, state).await;
                });
            }
        });
        Self { base_url, state }
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().expect("state").requests.clone()
    }

    pub fn push(&self, reply: Reply) {
        self.state.lock().expect("state").script.push_back(reply);
    }
}

async fn serve(mut socket: TcpStream, state: Arc<Mutex<State>>) -> std::io::Result<()> {
    socket.set_nodelay(true)?;
    let request = read_request(&mut socket).await?;
    let reply = {
        let mut s = state.lock().expect("state");
        s.requests.push(request);
        let fallback = s.fallback.clone();
        s.script.pop_front().unwrap_or(fallback)
    };
    let Some(wait) = reply.wait else {
        // Hold the connection open without answering until the client gives up.
        let mut sink = [0u8; 1];
        let _ = socket.read(&mut sink).await;
        return Ok(());
    };
    tokio::time::sleep(wait).await;
    let mut head = format!(
        "HTTP/1.1 {} Fake\r\nconnection: close\r\ntransfer-encoding: chunked\r\n",
        reply.status
    );
    for (k, v) in &reply.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    socket.write_all(head.as_bytes()).await?;
    for (i, piece) in reply.body.chunks(reply.chunk_size.max(1)).enumerate() {
        if i > 0 && !reply.delay.is_zero() {
            tokio::time::sleep(reply.delay).await;
        }
        socket
            .write_all(format!("{:x}\r\n", piece.len()).as_bytes())
            .await?;
        socket.write_all(piece).await?;
        socket.write_all(b"\r\n").await?;
        socket.flush().await?;
    }
    match reply.ending {
        Ending::Complete => socket.write_all(b"0\r\n\r\n").await?,
        Ending::Cut => {
            // Drop mid-body: the chunked body never ends.
            socket.write_all(b"ff\r\npartial").await?;
        }
    }
    socket.shutdown().await
}

async fn read_request(socket: &mut TcpStream) -> std::io::Result<Recorded> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        let n = socket.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() > MAX_REQUEST_BYTES {
            return Err(std::io::ErrorKind::InvalidData.into());
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let first = lines.next().unwrap_or_default();
    let mut parts = first.split(' ');
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length.min(MAX_REQUEST_BYTES) {
        let n = socket.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Ok(Recorded {
        method,
        path,
        headers,
        body,
    })
}
