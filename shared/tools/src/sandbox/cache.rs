//! Compiled modules on disk, so a new process loads machine code instead of compiling again.
//! A file's name is the module's sha256 and the engine's compatibility hash (wasmtime's
//! version and every setting that changes the code): a different engine never loads it.

use std::hash::{Hash, Hasher};
use std::path::PathBuf;

use wasmtime::{Engine, Module};

pub struct DiskCache {
    dir: PathBuf,
    engine_key: String,
}

impl DiskCache {
    pub fn new(dir: PathBuf, engine: &Engine) -> Self {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Self {
            dir,
            engine_key: format!("{:016x}", hasher.finish()),
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
            Ok(module) => Some(module),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "compiled module not loadable; compiling again");
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    /// Stores a compiled module; a failure only costs the next process a compile.
    pub fn store(&self, sha256: &str, module: &Module) {
        let written = module
            .serialize()
            .map_err(|e| e.to_string())
            .and_then(|bytes| {
                create_private_dir(&self.dir).map_err(|e| e.to_string())?;
                let temp = self
                    .dir
                    .join(format!(".{sha256}.{}.tmp", std::process::id()));
                std::fs::write(&temp, bytes)
                    .and_then(|()| std::fs::rename(&temp, self.path(sha256)))
                    .map_err(|e| {
                        let _ = std::fs::remove_file(&temp);
                        e.to_string()
                    })
            });
        if let Err(error) = written {
            tracing::warn!(dir = %self.dir.display(), %error, "cannot cache a compiled module");
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
