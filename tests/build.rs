//! Builds the attack suite's hostile modules (tests/wasm) and the documented example tool
//! (examples/wasm-tool) to WebAssembly, the way the built-in tools are built.

include!("../shared/tools/builtin/wasm_build.rs");

const ATTACKS: &[&str] = &[
    "endless_loop",
    "memory_bomb",
    "deep_recursion",
    "escape",
    "fetch_probe",
    "flood",
    "panics",
    "not_json",
    "bad_import",
    "memory_echo",
    "nul_output",
];

fn main() {
    // Read when the script runs, not when it was compiled: a build script's binary is reused
    // across checkouts that share a target directory.
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default();
    let root = Path::new(&manifest_dir);
    let attacks = build_guest_workspace(&root.join("wasm"));
    let example = build_guest_workspace(&root.join("../examples/wasm-tool"));
    let mut modules: Vec<(&Path, &str)> = ATTACKS
        .iter()
        .map(|name| (attacks.as_path(), *name))
        .collect();
    modules.push((example.as_path(), "word_count"));
    write_module_table(&modules);
}
