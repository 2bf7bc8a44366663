//! Build a BestChat tool: a WASI preview 1 command (`cargo build --target wasm32-wasip1`) that
//! reads its arguments as JSON on stdin and writes its result as JSON on stdout. The sandbox
//! gives it no files, no environment, no sockets and no clock beyond the time of day; a tool
//! whose manifest has the `network` risk and names hosts may call [`fetch`] for those hosts.
//!
//! ```ignore
//! fn main() {
//!     bestchat_tool_sdk::run(|args| {
//!         let name = args["name"].as_str().ok_or("name is required")?;
//!         Ok(serde_json::json!({ "greeting": format!("Hello, {name}!") }))
//!     });
//! }
//! ```

use std::io::{Read, Write};

use serde::Deserialize;
use serde_json::{Value, json};

/// Runs a tool: its arguments from stdin, its result to stdout. An `Err` is written as
/// `{"error": "<message>"}`, which the model reads as the tool's failure.
pub fn run(tool: impl FnOnce(Value) -> Result<Value, String>) {
    let mut input = String::new();
    let result = match std::io::stdin().read_to_string(&mut input) {
        Err(e) => Err(format!("cannot read the arguments: {e}")),
        Ok(_) => match serde_json::from_str(&input) {
            Ok(arguments) => tool(arguments),
            Err(e) => Err(format!("the arguments are not JSON: {e}")),
        },
    };
    let output = result.unwrap_or_else(|message| json!({ "error": message }));
    // A write the sandbox refuses (the output is over its limit) ends the tool; the executor
    // reports it.
    let _ = std::io::stdout().write_all(output.to_string().as_bytes());
}

/// What [`fetch`] got back.
#[derive(Debug, Clone, Deserialize)]
pub struct Response {
    pub status: u16,
    pub content_type: Option<String>,
    /// The body as text (lossy UTF-8), at most the sandbox's response limit.
    pub body: String,
    /// The body was longer than the limit and was cut.
    pub truncated: bool,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Answer {
    Ok(Response),
    Failed { error: String },
}

mod host {
    #[link(wasm_import_module = "bestchat")]
    unsafe extern "C" {
        /// GETs the URL in the JSON request `{"url": …}` at `request`; the host keeps the JSON
        /// answer and returns its length in bytes.
        pub fn fetch(request: *const u8, length: u32) -> u32;
        /// Copies the last answer into `buffer` (`length` bytes, the length `fetch` returned).
        pub fn fetch_answer(buffer: *mut u8, length: u32) -> u32;
    }
}

/// GETs `url`, which must be on a host the tool's manifest grants. A host not granted, or an
/// address the sandbox's guard refuses, ends the tool with that failure.
pub fn fetch(url: &str) -> Result<Response, String> {
    let request = json!({ "url": url }).to_string();
    let length = u32::try_from(request.len()).map_err(|_| "the URL is too long".to_owned())?;
    // SAFETY: the host only reads `length` bytes at `request`, which outlive the call.
    let answer_length = unsafe { host::fetch(request.as_ptr(), length) };
    let mut answer = vec![0u8; answer_length as usize];
    // SAFETY: the host writes at most `answer_length` bytes, the buffer's length.
    unsafe { host::fetch_answer(answer.as_mut_ptr(), answer_length) };
    match serde_json::from_slice::<Answer>(&answer) {
        Ok(Answer::Ok(response)) => Ok(response),
        Ok(Answer::Failed { error }) => Err(error),
        Err(e) => Err(format!("the host's answer is not understood: {e}")),
    }
}
