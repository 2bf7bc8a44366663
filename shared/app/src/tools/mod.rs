//! Tools in the app: the runtime that checks and runs modules (the sandbox, the module
//! sources), the `tool-executor` function, and the user's tool registrations.

pub mod compiler;
pub mod config;
pub mod executor;
mod modules;
pub mod registration;
pub mod sweep;

use std::sync::Arc;

use std::collections::HashMap;

use bestchat_domain::ports::blobs::BlobStore;
use bestchat_domain::ports::keys::Authenticator;
use bestchat_egress::{Guard, Reach};
use bestchat_platform::blobs::{LocalBlobs, S3Blobs};
use bestchat_platform::invoke::LambdaInvoker;
use bestchat_platform::keys::{KmsMac, LocalMac};
use bestchat_tools::executor::Executor;
use bestchat_tools::sandbox::fetch::{FetchSettings, Fetcher};
use bestchat_tools::sandbox::{RemoteCompiler, Sandbox, SandboxSettings};

use crate::tools::config::{BlobConfig, CodeKey, ToolsConfig};
use modules::{CompilerFunction, Modules, SharedCompiled};

/// The logical name of the function that runs tool calls.
pub const TOOL_EXECUTOR: &str = "tool-executor";
/// The logical name of the function that alone compiles modules into the shared store.
pub const TOOL_COMPILER: &str = "tool-compiler";

pub struct ToolRuntime {
    pub executor: Executor,
    pub blobs: Arc<dyn BlobStore>,
    pub config: ToolsConfig,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot start the tool sandbox: {0}")]
pub struct ToolStartError(String);

/// The blob store the configuration names; opens no connection.
pub fn blob_store(config: &BlobConfig) -> Arc<dyn BlobStore> {
    match config {
        BlobConfig::S3 { bucket, path_style } => {
            Arc::new(S3Blobs::new(bucket.clone(), *path_style))
        }
        BlobConfig::Local { dir } => Arc::new(LocalBlobs::new(dir.clone())),
    }
}

/// The key that vouches for shared compiled code (opened on first use).
fn code_key(key: &CodeKey) -> Arc<dyn Authenticator> {
    match key {
        CodeKey::Kms(arn) => Arc::new(KmsMac::new(arn.clone())),
        CodeKey::Local(path) => Arc::new(LocalMac::new(path.clone())),
    }
}

impl ToolRuntime {
    /// Builds the engine and the clients; opens no connection.
    pub fn new(config: &ToolsConfig, blobs: Arc<dyn BlobStore>) -> Result<Self, ToolStartError> {
        let ceilings = &config.ceilings;
        let reach = if config.fetch_allow_private {
            Reach::Anywhere
        } else {
            Reach::PublicOnly
        };
        let fetcher = Fetcher::new(Guard::new(reach), FetchSettings::within(ceilings))
            .map_err(|e| ToolStartError(e.to_string()))?;
        let sandbox = Sandbox::new(
            SandboxSettings {
                cache_dir: Some(config.cache_dir.clone()),
                cache_max_bytes: config.cache_max_bytes,
                max_prepared: config.max_prepared,
                shared: Some(Arc::new(SharedCompiled::new(
                    Arc::clone(&blobs),
                    code_key(&config.compiled_code_key),
                ))),
                compile_elsewhere: config.compiler_function.as_ref().map(|deployed| {
                    let invoker = LambdaInvoker::new(
                        HashMap::from([(TOOL_COMPILER.to_owned(), deployed.clone())]),
                        None,
                    );
                    Arc::new(CompilerFunction::new(Arc::new(invoker))) as Arc<dyn RemoteCompiler>
                }),
                compile: config.compile,
            },
            fetcher,
        )
        .map_err(|e| ToolStartError(e.to_string()))?;
        let modules = Modules::new(Arc::clone(&blobs), config.max_module_bytes);
        Ok(Self {
            executor: Executor::new(sandbox, Arc::new(modules), ceilings.clone()),
            blobs,
            config: config.clone(),
        })
    }
}
