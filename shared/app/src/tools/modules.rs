//! Where the executor finds a module: built-ins linked into this binary, users' modules in the
//! blob store under their sha256.

use std::sync::Arc;

use async_trait::async_trait;
use bestchat_domain::ports::blobs::{BlobError, BlobStore};
use bestchat_domain::ports::keys::Authenticator;
use bestchat_domain::ports::realtime::Invoker;
use bestchat_domain::tool::module_key;
use bestchat_tools::executor::{CompileModule, ModuleSource, Prepared};
use bestchat_tools::sandbox::{CompiledStore, ModuleError, RemoteCompiler, sha256_hex};
use bestchat_tools::{Failure, FailureKind, ModuleRef};

use super::TOOL_COMPILER;

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

    fn builtin_named(&self, sha256: &str) -> Option<String> {
        bestchat_builtin_tools::named(sha256).map(str::to_owned)
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

/// Compiled modules in the blob store, shared by every process of the deployment. Each is
/// stored with a tag under the deployment's code key, over its name and its code's sha256, and
/// read back only when the tag verifies: code someone else wrote there, or moved from another
/// name, is never loaded as machine code.
pub struct SharedCompiled {
    blobs: Arc<dyn BlobStore>,
    key: Arc<dyn Authenticator>,
}

/// What a stored compiled module starts with: this format, then the tag's length and the tag.
const SEALED_MAGIC: &[u8] = b"BCMAC1";
/// Bound on the tag's length read back (HMAC-SHA-256 is 32 bytes).
const MAX_TAG_BYTES: usize = 64;

impl SharedCompiled {
    pub fn new(blobs: Arc<dyn BlobStore>, key: Arc<dyn Authenticator>) -> Self {
        Self { blobs, key }
    }

    /// What the tag covers: the store key (so code cannot be moved to another module's
    /// name) and the code's digest (KMS MACs at most 4 KiB of message).
    fn message(key: &str, code: &[u8]) -> Vec<u8> {
        format!("bestchat-compiled-v1\n{key}\n{}", sha256_hex(code)).into_bytes()
    }

    /// The code in a stored blob, if its tag is this deployment's for `key`.
    async fn open(&self, key: &str, blob: Vec<u8>) -> Option<Vec<u8>> {
        let rest = blob.strip_prefix(SEALED_MAGIC)?;
        let (&len, rest) = rest.split_first()?;
        let len = usize::from(len);
        if len > MAX_TAG_BYTES || rest.len() < len {
            return None;
        }
        let (tag, code) = rest.split_at(len);
        match self.key.verify(&Self::message(key, code), tag).await {
            Ok(true) => Some(code.to_vec()),
            Ok(false) => None,
            Err(e) => {
                tracing::warn!(key, error = %e, "cannot verify a shared compiled module");
                None
            }
        }
    }
}

#[async_trait]
impl CompiledStore for SharedCompiled {
    async fn get(&self, key: &str) -> Option<Vec<u8>> {
        let blob = match self.blobs.get(key, MAX_COMPILED_BYTES).await {
            Ok(found) => found?,
            Err(e) => {
                tracing::warn!(key, error = %e, "cannot read a shared compiled module");
                return None;
            }
        };
        let code = self.open(key, blob).await;
        if code.is_none() {
            tracing::warn!(
                key,
                "a shared compiled module is not vouched for; compiling again"
            );
        }
        code
    }

    async fn put(&self, key: &str, bytes: Vec<u8>) {
        let tag = match self.key.tag(&Self::message(key, &bytes)).await {
            Ok(tag) if tag.len() <= MAX_TAG_BYTES => tag,
            Ok(_) => {
                tracing::error!(key, "the code key's tag is longer than a stored tag may be");
                return;
            }
            Err(e) => {
                tracing::warn!(key, error = %e, "cannot tag a compiled module; not sharing it");
                return;
            }
        };
        let mut blob = Vec::with_capacity(SEALED_MAGIC.len() + 1 + tag.len() + bytes.len());
        blob.extend_from_slice(SEALED_MAGIC);
        blob.push(u8::try_from(tag.len()).unwrap_or(u8::MAX));
        blob.extend_from_slice(&tag);
        blob.extend_from_slice(&bytes);
        if let Err(e) = self.blobs.put(key, blob).await {
            tracing::warn!(key, error = %e, "cannot share a compiled module");
        }
    }
}

/// Compiles in the tool-compiler function, the only one that may write compiled code.
pub struct CompilerFunction {
    invoker: Arc<dyn Invoker>,
}

impl CompilerFunction {
    pub fn new(invoker: Arc<dyn Invoker>) -> Self {
        Self { invoker }
    }
}

#[async_trait]
impl RemoteCompiler for CompilerFunction {
    async fn compile(&self, sha256: &str, trusted: bool) -> Result<(), ModuleError> {
        let request = CompileModule {
            sha256: sha256.to_owned(),
            trusted,
        };
        let payload =
            serde_json::to_value(&request).map_err(|e| ModuleError::Unavailable(e.to_string()))?;
        let answer = self
            .invoker
            .invoke(TOOL_COMPILER, &payload)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "the compiler function failed");
                ModuleError::Unavailable("the compiler did not answer".into())
            })?;
        let answer: Prepared = serde_json::from_value(answer).map_err(|e| {
            tracing::error!(error = %e, "unreadable compiler answer");
            ModuleError::Unavailable("the compiler's answer was unreadable".into())
        })?;
        answer.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bestchat_platform::blobs::LocalBlobs;
    use bestchat_platform::keys::LocalMac;

    fn store(dir: &std::path::Path, key_file: &str) -> SharedCompiled {
        SharedCompiled::new(
            Arc::new(LocalBlobs::new(dir.join("blobs"))),
            Arc::new(LocalMac::new(dir.join(key_file))),
        )
    }

    #[tokio::test]
    async fn only_code_this_deployment_tagged_under_its_own_name_is_returned() {
        let dir = std::env::temp_dir().join(format!("bestchat-shared-{}", uuid::Uuid::now_v7()));
        let shared = store(&dir, "k");
        let blobs = LocalBlobs::new(dir.join("blobs"));
        let (a, b) = ("compiled/e/a.cwasm", "compiled/e/b.cwasm");
        shared.put(a, b"code of a".to_vec()).await;
        assert_eq!(shared.get(a).await.as_deref(), Some(&b"code of a"[..]));

        // Moved to another module's name: the tag covers the name.
        let sealed = blobs.get(a, 1 << 20).await.unwrap().unwrap();
        blobs.put(b, sealed.clone()).await.unwrap();
        assert_eq!(shared.get(b).await, None);

        // Changed code under a kept tag, a tag cut short, no tag at all.
        let mut changed = sealed.clone();
        *changed.last_mut().unwrap() ^= 1;
        let cut = [&sealed[..7], &sealed[7 + 32..]].concat();
        for blob in [changed, cut, b"code of a".to_vec(), Vec::new()] {
            blobs.put(a, blob).await.unwrap();
            assert_eq!(shared.get(a).await, None);
        }

        // Tagged under another key (another deployment, or a writer without this key).
        let other = store(&dir, "other-key");
        other.put(a, b"code of a".to_vec()).await;
        assert_eq!(shared.get(a).await, None);
        assert!(other.get(a).await.is_some());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
