//! Builds the web client (`web/`) with npm and embeds its files, so `cargo run -p bestchat-local`
//! alone serves a working client. Without npm the gateway embeds a page that says how to get
//! one; the API works either way. The Lambda build (`BESTCHAT_REQUIRE_WEB=1`) fails instead.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Read when the script runs, not when it was compiled: a build script's binary is reused
    // across checkouts that share a target directory.
    let web = Path::new(&std::env::var("CARGO_MANIFEST_DIR")?).join("../../web");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").ok_or("cargo sets OUT_DIR")?);
    for watched in [
        "src",
        "public",
        "index.html",
        "package.json",
        "package-lock.json",
        "vite.config.ts",
    ] {
        println!("cargo:rerun-if-changed={}", web.join(watched).display());
    }
    println!("cargo:rerun-if-env-changed=BESTCHAT_SKIP_WEB_BUILD");
    println!("cargo:rerun-if-env-changed=BESTCHAT_REQUIRE_WEB");
    let dist = out.join("web");
    let built = if std::env::var_os("BESTCHAT_SKIP_WEB_BUILD").is_some() {
        Err(NotBuilt::Skipped)
    } else {
        build(&web, &dist)
    };
    let files = match built {
        Ok(()) => collect(&dist),
        // The Lambda build (infra/lambda-profile.toml sets it): a deploy without the client
        // would publish nothing.
        Err(why) if std::env::var_os("BESTCHAT_REQUIRE_WEB").is_some_and(|v| v == "1") => {
            return Err(format!(
                "the web client could not be built ({why}), and the deployed functions publish it: install Node.js 20 with npm (https://nodejs.org, or `apt-get install nodejs npm`), then run sam build again"
            )
            .into());
        }
        Err(why) => {
            println!(
                "cargo:warning=the web client was not built ({why}); the API works, and / says how to get the client: install Node.js 20 with npm (https://nodejs.org, or `apt-get install nodejs npm`), then run the same cargo command again"
            );
            Vec::new()
        }
    };
    let mut code = String::from("pub static FILES: &[(&str, &[u8])] = &[\n");
    for (route, path) in &files {
        writeln!(
            code,
            "    ({route:?}, include_bytes!({:?})),",
            path.display()
        )?;
    }
    code.push_str("];\n");
    std::fs::write(out.join("web_files.rs"), code)?;
    Ok(())
}

/// Why the client was not built.
#[derive(Debug)]
enum NotBuilt {
    Skipped,
    NoNpm(std::io::Error),
    Failed(std::process::ExitStatus),
}

impl std::fmt::Display for NotBuilt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Skipped => f.write_str("BESTCHAT_SKIP_WEB_BUILD is set"),
            Self::NoNpm(e) => write!(f, "cannot run npm: {e}"),
            Self::Failed(status) => write!(f, "npm exited with {status}"),
        }
    }
}

fn build(web: &Path, dist: &Path) -> Result<(), NotBuilt> {
    let npm = if cfg!(windows) { "npm.cmd" } else { "npm" };
    if installed_is_stale(web) {
        run(Command::new(npm)
            .current_dir(web)
            .args(["ci", "--no-audit", "--no-fund"]))?;
    }
    run(Command::new(npm)
        .current_dir(web)
        .args(["run", "build", "--", "--outDir"])
        .arg(dist)
        .arg("--emptyOutDir"))
}

/// No node_modules yet, or one installed from an older lock file.
fn installed_is_stale(web: &Path) -> bool {
    let modified = |p: PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    match (
        modified(web.join("node_modules/.package-lock.json")),
        modified(web.join("package-lock.json")),
    ) {
        (Some(installed), Some(lock)) => installed < lock,
        _ => true,
    }
}

fn run(command: &mut Command) -> Result<(), NotBuilt> {
    let output = command.output().map_err(NotBuilt::NoNpm)?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    for line in stdout.lines().chain(stderr.lines()).rev().take(20) {
        println!("cargo:warning={line}");
    }
    Err(NotBuilt::Failed(output.status))
}

/// Every file under `dist` with the URL path it is served at.
fn collect(dist: &Path) -> Vec<(String, PathBuf)> {
    let mut files = Vec::new();
    let mut pending = vec![dist.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if let Ok(relative) = path.strip_prefix(dist) {
                let route = format!("/{}", relative.to_string_lossy().replace('\\', "/"));
                files.push((route, path));
            }
        }
    }
    files.sort();
    files
}
