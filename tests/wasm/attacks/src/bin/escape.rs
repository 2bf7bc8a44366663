//! Tries every way out a WASI program has: files by absolute and relative path, the directory
//! listing, the environment, the arguments, a socket. Reports what it got, so the test can see
//! it got nothing.
use serde_json::json;

fn main() {
    bestchat_tool_sdk::run(|_| {
        let file = |path: &str| match std::fs::read(path) {
            Ok(bytes) => json!({ "read": String::from_utf8_lossy(&bytes) }),
            Err(e) => json!({ "error": e.to_string() }),
        };
        let listing = match std::fs::read_dir(".") {
            Ok(entries) => json!(
                entries
                    .filter_map(Result::ok)
                    .map(|e| e.path().display().to_string())
                    .collect::<Vec<_>>()
            ),
            Err(e) => json!({ "error": e.to_string() }),
        };
        let socket = match std::net::TcpStream::connect("127.0.0.1:5432") {
            Ok(_) => json!("connected"),
            Err(e) => json!({ "error": e.to_string() }),
        };
        let written = std::fs::write("/tmp/pwned", b"x").map_err(|e| e.to_string());
        Ok(json!({
            "passwd": file("/etc/passwd"),
            "relative": file("../../etc/passwd"),
            "proc": file("/proc/self/environ"),
            "listing": listing,
            "env": std::env::vars().collect::<Vec<_>>(),
            "args": std::env::args().collect::<Vec<_>>(),
            "socket": socket,
            "write": written.err(),
        }))
    });
}
