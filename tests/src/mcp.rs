//! A real MCP server for the tests: `tests/fixtures/mcp/server.py`, built with the official
//! Python SDK, run by the Python that `BESTCHAT_MCP_PYTHON` names (scripts/test makes one) on a
//! free loopback port, and stopped when dropped.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct McpServerProcess {
    child: Child,
    pub url: String,
}

impl McpServerProcess {
    /// `mode`: `stateless` (2026-07-28) or `legacy` (2025-06-18 sessions only).
    pub async fn start(mode: &str, token: Option<&str>) -> Self {
        let python = std::env::var("BESTCHAT_MCP_PYTHON").unwrap_or_else(|_| "python3".into());
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/mcp/server.py");
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
            listener.local_addr().expect("address").port()
        };
        let mut command = Command::new(&python);
        command.arg(&script).arg(port.to_string()).arg(mode);
        if let Some(token) = token {
            command.arg(token);
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run {python} for the MCP server ({e}): set BESTCHAT_MCP_PYTHON to a Python with `mcp` installed, as scripts/test does")
            });
        let stdout = child.stdout.take().expect("stdout");
        // Owned from here: a failure below stops (and reaps) the server as it panics.
        let server = Self {
            child,
            url: format!("http://127.0.0.1:{port}/mcp"),
        };
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("listening on") {
                    let _ = tx.send(());
                }
            }
        });
        assert!(
            rx.recv_timeout(Duration::from_secs(60)).is_ok(),
            "the MCP server did not start: is the `mcp` package installed for {python}?"
        );
        // uvicorn binds after the script says so: wait for the port.
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the MCP server never listened on {port}");
    }
}

impl Drop for McpServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
