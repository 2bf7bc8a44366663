//! Embeds every file of `migrations/` in order, so a new migration is one new file: the list the
//! runners apply is `$OUT_DIR/migrations.rs`, with a file's SQLite form where `migrations/sqlite/`
//! holds one (see `src/migrations.rs`).

use std::error::Error;
use std::fmt::Write as _;
use std::path::Path;

fn main() -> Result<(), Box<dyn Error>> {
    // Read when the script runs, not when it was compiled: a build script's binary is reused
    // across checkouts that share a target directory.
    let root = Path::new(&std::env::var("CARGO_MANIFEST_DIR")?).join("../../migrations");
    println!("cargo:rerun-if-changed={}", root.display());
    println!("cargo:rerun-if-changed={}", root.join("sqlite").display());
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&root)? {
        let name = entry?.file_name();
        if let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".sql")) {
            names.push(stem.to_owned());
        }
    }
    names.sort();
    let mut list = String::from("&[\n");
    for (i, name) in names.iter().enumerate() {
        let version = name.split('_').next().and_then(|n| n.parse::<usize>().ok());
        if version != Some(i + 1) {
            return Err(format!(
                "migrations/{name}.sql: files must be numbered 0001, 0002, … without gaps"
            )
            .into());
        }
        let source = root.join(format!("{name}.sql")).display().to_string();
        let sqlite = root.join("sqlite").join(format!("{name}.sql"));
        let sqlite = if sqlite.exists() {
            format!("Some(include_str!({:?}))", sqlite.display().to_string())
        } else {
            "None".to_owned()
        };
        writeln!(
            list,
            "    Migration {{ version: {}, name: {name:?}, source: include_str!({source:?}), sqlite_form: {sqlite} }},",
            i + 1
        )?;
    }
    list.push(']');
    let out = Path::new(&std::env::var("OUT_DIR")?).join("migrations.rs");
    std::fs::write(out, list)?;
    Ok(())
}
