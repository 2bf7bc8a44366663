//! BestChat's tools: what a tool is (its manifest), checking a model's arguments against it,
//! the registry a turn chooses from, and the sandbox that runs a tool's WebAssembly.
//!
//! A tool is a WASI preview 1 command: its arguments arrive as JSON on stdin, its result leaves
//! as JSON on stdout. Preview 1 over a component world because every Rust toolchain builds it
//! with `rustup target add wasm32-wasip1` and `cargo build`, with nothing else to install or
//! learn, and stdin/stdout JSON is the whole interface; the one host call a network tool gets
//! (`bestchat.fetch`) is a plain core-wasm import. See `docs/tools.md`.

pub mod arguments;
pub mod builtin;
pub mod executor;
pub mod limits;
pub mod manifest;
pub mod policy;
pub mod registry;
pub mod sandbox;

pub use arguments::{ArgumentError, Arguments};
pub use executor::{
    ExecRequest, ExecResponse, ExecutorRequest, Failure, FailureKind, ModuleRef, PrepareModule,
    Prepared, Usage,
};
pub use limits::{Ceilings, Limits};
pub use manifest::{Manifest, ManifestError, Risk, ToolName};
