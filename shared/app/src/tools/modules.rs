//! Where the executor finds a module: built-ins linked into this binary, users' modules in the
//! blob store under their sha256.

use std::sync::Arc;

use async_trait::async_trait;
use bestchat_domain::ports::blobs::{BlobError, BlobStore};
use bestchat_domain::tool::module_key;
use bestchat_tools::executor::ModuleSource;
use bestchat_tools::sandbox::CompiledStore;
use bestchat_tools::{Failure, FailureKind, ModuleRef};

pub struct Modules {
    blobs: Arc<dyn BlobStore>,
    max_module_bytes: usize,
}

impl Modules {
    pub fn new(blobs: Arc<dyn BlobStore>, max_module_bytes: usize) -> Self {
        Self {
            blobs,
            max_module_bytes,
        }
    }
}

#[async_trait]
impl ModuleSource for Modules {
    fn builtin_sha256(&self, name: &str) -> Option<String> {
        bestchat_builtin_tools::sha256(name).map(str::to_owned)
    }

    async fn bytes(&self, module: &ModuleRef) -> Result<Vec<u8>, Failure> {
        let unavailable = |message: String| Failure::new(FailureKind::ModuleUnavailable, message);
        match module {
            ModuleRef::Builtin(name) => bestchat_builtin_tools::module(name)
                .map(<[u8]>::to_vec)
                .ok_or_else(|| unavailable(format!("there is no built-in tool {name}"))),
            ModuleRef::Sha256(sha) => {
                let max = u64::try_from(self.max_module_bytes).unwrap_or(u64::MAX);
                match self.blobs.get(&module_key(sha), max).await {
                    Ok(Some(bytes)) => Ok(bytes),
                    Ok(None) => Err(unavailable(
                        "the tool's module is not in the blob store".into(),
                    )),
                    Err(BlobError::TooLarge(_)) => Err(unavailable(
                        "the tool's module is over the size limit".into(),
                    )),
                    Err(e) => {
                        tracing::error!(sha, error = %e, "cannot read a tool module");
                        Err(unavailable("the blob store could not be read".into()))
                    }
                }
            }
        }
    }
}

/// Largest compiled module read back from the blob store (machine code is several times its
/// module's size: the interpreter's is tens of megabytes).
pub const MAX_COMPILED_BYTES: u64 = 256 * 1024 * 1024;

/// Compiled modules in the blob store, shared by every process of the deployment.
pub struct SharedCompiled {
    blobs: Arc<dyn BlobStore>,
}

impl SharedCompiled {
    pub fn new(blobs: Arc<dyn BlobStore>) -> Self {
        Self { blobs }
    }
}

#[async_trait]
impl CompiledStore for SharedCompiled {
    async fn get(&self, key: &str) -> Option<Vec<u8>> {
        match self.blobs.get(key, MAX_COMPILED_BYTES).await {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(key, error = %e, "cannot read a shared compiled module");
                None
            }
        }
    }

    async fn put(&self, key: &str, bytes: Vec<u8>) {
        if let Err(e) = self.blobs.put(key, bytes).await {
            tracing::warn!(key, error = %e, "cannot share a compiled module");
        }
    }
}
