// Builds a guest workspace for wasm32-wasip1 with the stock toolchain, from a build script.
// `include!`d by every build script that needs guest modules, so they are built one way.

use std::path::{Path, PathBuf};
use std::process::Command;

const WASM_TARGET: &str = "wasm32-wasip1";

/// Builds `workspace` in release and returns the directory its `.wasm` files are in.
///
/// The nested build gets a target directory of its own beside this profile's (not under
/// OUT_DIR, which differs between `check`, `build` and `test`, so the guests are built once),
/// and none of the outer build's compiler settings: those are for the host.
fn build_guest_workspace(workspace: &Path) -> PathBuf {
    println!("cargo:rerun-if-changed={}", workspace.display());
    ensure_target();
    println!("cargo:rerun-if-env-changed=BESTCHAT_WASM_TARGET_DIR");
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default());
    // OUT_DIR is <target>/[<triple>/]<profile>/build/<package>-<hash>/out.
    let profile_dir = out_dir.ancestors().nth(3).unwrap_or(&out_dir).to_path_buf();
    let target_dir = std::env::var_os("BESTCHAT_WASM_TARGET_DIR")
        .map_or_else(|| profile_dir.join("wasm-guests"), PathBuf::from);
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace)
        .args(["build", "--release", "--locked", "--target", WASM_TARGET])
        .arg("--target-dir")
        .arg(&target_dir);
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy().into_owned();
        let host_only = name.starts_with("CARGO_ENCODED_RUSTFLAGS")
            || name == "RUSTFLAGS"
            || name == "RUSTC_WRAPPER"
            || name == "RUSTC_WORKSPACE_WRAPPER"
            || name == "CARGO_TARGET_DIR"
            || name == "CARGO_BUILD_TARGET"
            || name.starts_with("CARGO_PROFILE_")
            || name.starts_with("CARGO_FEATURE_")
            || name == "CARGO_MAKEFLAGS"
            || name == "CARGO_LLVM_COV"
            || name == "LLVM_PROFILE_FILE";
        if host_only {
            command.env_remove(&name);
        }
    }
    let status = command.status();
    match status {
        Ok(status) if status.success() => {}
        Ok(_) | Err(_) => {
            println!(
                "cargo:warning=building the WebAssembly tools in {} failed; is the target installed? `rustup target add {WASM_TARGET}`",
                workspace.display()
            );
            std::process::exit(1);
        }
    }
    target_dir.join(WASM_TARGET).join("release")
}

/// The target's standard library, added with rustup when this toolchain lacks it, so the
/// README's one command works on a fresh machine (rustup installs the targets the toolchain file
/// names only when it installs the toolchain itself).
fn ensure_target() {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let installed = |root: &PathBuf| root.join("lib/rustlib").join(WASM_TARGET).is_dir();
    if sysroot.as_ref().is_some_and(installed) {
        return;
    }
    println!("cargo:warning=adding the {WASM_TARGET} target (rustup target add {WASM_TARGET})");
    // RUSTUP_TOOLCHAIN, set by the rustup proxy that runs this build, names the toolchain.
    let added = Command::new("rustup")
        .args(["target", "add", WASM_TARGET])
        .status()
        .is_ok_and(|s| s.success());
    if !added {
        println!(
            "cargo:warning=the built-in tools need the {WASM_TARGET} target and it could not be added: run `rustup target add {WASM_TARGET}` (or install it with your Rust toolchain), then build again"
        );
        std::process::exit(1);
    }
}

/// Writes `modules.rs` into OUT_DIR: `pub static MODULES: &[(&str, &[u8], &str)]`, each
/// module's name (file stem), bytes (`include_bytes!`d from a guest build directory) and
/// sha256, hashed here so no process pays for hashing megabytes at its cold start.
fn write_module_table(modules: &[(&Path, &str)]) {
    use sha2::Digest;
    let mut table = String::from("pub static MODULES: &[(&str, &[u8], &str)] = &[\n");
    for (wasm_dir, name) in modules {
        let path = wasm_dir.join(format!("{name}.wasm"));
        if !path.is_file() {
            println!("cargo:warning=the guest build made no {}", path.display());
            std::process::exit(1);
        }
        let Ok(bytes) = std::fs::read(&path) else {
            println!("cargo:warning=cannot read {}", path.display());
            std::process::exit(1);
        };
        let sha: String = sha2::Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        table.push_str(&format!(
            "    ({name:?}, include_bytes!({:?}), {sha:?}),\n",
            path.display().to_string()
        ));
    }
    table.push_str("];\n");
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default());
    if std::fs::write(out_dir.join("modules.rs"), table).is_err() {
        println!("cargo:warning=cannot write modules.rs into OUT_DIR");
        std::process::exit(1);
    }
}
