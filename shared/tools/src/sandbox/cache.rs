//! Compiled modules kept between processes: on local disk, and in a store shared by every
//! process of a deployment (the blob store), so a new Lambda environment loads machine code
//! instead of compiling (the interpreter's module takes seconds to compile). A compiled module
//! is named by the module's sha256 and the engine's compatibility hash (wasmtime's version and
//! every setting that changes the code): a different engine never loads it.

use std::hash::{Hash, Hasher};
use std::path::PathBuf;

use async_trait::async_trait;
use wasmtime::{Engine, Module};

/// Compiled modules shared by the processes of a deployment. Failures are the store's to log:
/// a miss only costs a compile.
#[async_trait]
pub trait CompiledStore: Send + Sync {
    async fn get(&self, key: &str) -> Option<Vec<u8>>;
    async fn put(&self, key: &str, bytes: Vec<u8>);
}

/// The function that alone compiles into the shared store (and alone may vouch for what it
/// writes there). A process that runs guests and has one only reads and verifies shared code:
/// a guest that escaped it still could not plant machine code for every other process.
#[async_trait]
pub trait RemoteCompiler: Send + Sync {
    /// Compiles module `sha256` into the shared store; `trusted`: a built-in, compiled for speed.
    async fn compile(&self, sha256: &str, trusted: bool) -> Result<(), super::ModuleError>;
}

/// The engine's compatibility hash, as a name part.
pub fn engine_key(engine: &Engine) -> String {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

/// Where the shared store keeps `sha256`'s code compiled by this engine.
pub fn shared_key(engine_key: &str, sha256: &str) -> String {
    format!("compiled/{engine_key}/{sha256}.cwasm")
}

/// Loads code this engine compiled, from the shared store.
pub fn load_shared(engine: &Engine, bytes: &[u8]) -> Option<Module> {
    // SAFETY: the bytes are what `Module::serialize` wrote for an engine with this
    // compatibility hash: put in the deployment's private bucket by its own functions (only
    // their roles may write `compiled/`), or handed back by this program's own compile child;
    // wasmtime checks the header and compatibility, and a blob it refuses is compiled again.
    #[allow(unsafe_code)]
    let loaded = unsafe { Module::deserialize(engine, bytes) };
    loaded
        .inspect_err(
            |e| tracing::warn!(error = %e, "shared compiled module not loadable; compiling again"),
        )
        .ok()
}

/// Removes whatever `dir` holds compiled from `sha256`, by any engine: the module is gone.
pub fn forget_compiled(dir: &std::path::Path, sha256: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let prefix = format!("{sha256}-");
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(&prefix) && name.ends_with(".cwasm") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

pub struct DiskCache {
    dir: PathBuf,
    engine_key: String,
    /// The directory is kept under this many bytes, the least recently used files going first.
    max_bytes: u64,
}

impl DiskCache {
    pub fn new(dir: PathBuf, engine: &Engine, max_bytes: u64) -> Self {
        Self {
            dir,
            engine_key: engine_key(engine),
            max_bytes,
        }
    }

    fn path(&self, sha256: &str) -> PathBuf {
        self.dir.join(format!("{sha256}-{}.cwasm", self.engine_key))
    }

    /// The compiled module, if this engine compiled it before and the file is whole.
    pub fn load(&self, engine: &Engine, sha256: &str) -> Option<Module> {
        let path = self.path(sha256);
        if !path.is_file() {
            return None;
        }
        // SAFETY: the file is machine code this engine wrote into the cache directory, which
        // is created owner-only and written by this code alone; wasmtime checks the header
        // and the engine's compatibility, and a file it refuses is compiled again.
        #[allow(unsafe_code)]
        let loaded = unsafe { Module::deserialize_file(engine, &path) };
        match loaded {
            Ok(module) => {
                // Recently used files are the last to be evicted.
                let _ = std::fs::File::options()
                    .append(true)
                    .open(&path)
                    .and_then(|f| f.set_modified(std::time::SystemTime::now()));
                Some(module)
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "compiled module not loadable; compiling again");
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    /// Stores a compiled module; a failure only costs the next process a compile.
    pub fn store(&self, sha256: &str, code: &[u8]) {
        let temp = self
            .dir
            .join(format!(".{sha256}.{}.tmp", std::process::id()));
        let path = self.path(sha256);
        let written = create_private_dir(&self.dir)
            .and_then(|()| std::fs::write(&temp, code))
            .and_then(|()| std::fs::rename(&temp, &path));
        match written {
            Ok(()) => self.evict_beyond_limit(&path),
            Err(error) => {
                let _ = std::fs::remove_file(&temp);
                tracing::warn!(dir = %self.dir.display(), %error, "cannot cache a compiled module");
            }
        }
    }

    /// Removes the least recently used compiled modules (never `keep`) until the directory is
    /// under its limit. A module loaded from a removed file stays usable: it is mapped.
    fn evict_beyond_limit(&self, keep: &std::path::Path) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut files: Vec<(std::time::SystemTime, u64, PathBuf)> = entries
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "cwasm"))
            .filter_map(|e| {
                let meta = e.metadata().ok()?;
                Some((meta.modified().ok()?, meta.len(), e.path()))
            })
            .collect();
        let mut total: u64 = files.iter().map(|f| f.1).sum();
        files.sort();
        for (_, size, path) in files {
            if total <= self.max_bytes {
                break;
            }
            if path != keep && std::fs::remove_file(&path).is_ok() {
                total = total.saturating_sub(size);
            }
        }
    }
}

#[cfg(unix)]
fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_directory_stays_under_its_limit_oldest_first() {
        let dir = std::env::temp_dir().join(format!("bestchat-cwasm-{}", std::process::id()));
        let cache = DiskCache::new(dir.clone(), &Engine::default(), 150);
        for (i, sha) in ["a", "b", "c"].iter().enumerate() {
            cache.store(sha, &[i as u8; 60]);
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(!cache.path("a").exists(), "the oldest goes first");
        assert!(cache.path("b").exists() && cache.path("c").exists());
        // One entry larger than the limit is still kept: it is the one just written.
        cache.store("d", &[9; 400]);
        assert!(cache.path("d").exists());
        assert!(!cache.path("b").exists() && !cache.path("c").exists());
        let _ = std::fs::remove_dir_all(dir);
    }
}
