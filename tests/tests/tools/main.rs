//! Tools end to end: the sandbox under attack, network tools and the guard, and the user-tool
//! lifecycle over HTTP. Modules are registered through the API and run by the `tool-executor`
//! function through the gateway's Lambda Invoke emulation, the path a deployed caller takes.

mod attacks;
mod audit;
mod compile;
mod lifecycle;
mod mcp;
mod network;
mod nul;
mod settings;
mod tool_loop;
