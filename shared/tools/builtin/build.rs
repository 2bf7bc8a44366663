//! Builds the built-in tools (shared/tools/wasm) to WebAssembly and embeds them.

include!("wasm_build.rs");

/// Every built-in tool's module, by the name of its binary.
const BUILTINS: &[&str] = &[
    "calculator",
    "datetime",
    "json_query",
    "regex",
    "http_fetch",
    "run_javascript",
];

fn main() {
    // Read when the script runs, not when it was compiled: a build script's binary is reused
    // across checkouts that share a target directory.
    let workspace =
        Path::new(&std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default()).join("../wasm");
    let wasm_dir = build_guest_workspace(&workspace);
    let modules: Vec<(&Path, &str)> = BUILTINS
        .iter()
        .map(|name| (wasm_dir.as_path(), *name))
        .collect();
    write_module_table(&modules);
}
