//! An executor over the built-in modules only, for the tests and the benchmark.
#![allow(clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use bestchat_egress::{Guard, Reach};
use bestchat_tools::executor::{Executor, ModuleSource};
use bestchat_tools::sandbox::fetch::{FetchSettings, Fetcher};
use bestchat_tools::sandbox::{CompiledStore, RemoteCompiler, Sandbox, SandboxSettings};
use bestchat_tools::{Ceilings, Failure, FailureKind, ModuleRef};

struct Builtins;

#[async_trait]
impl ModuleSource for Builtins {
    fn builtin_sha256(&self, name: &str) -> Option<String> {
        bestchat_builtin_tools::sha256(name).map(str::to_owned)
    }

    fn builtin_named(&self, sha256: &str) -> Option<String> {
        bestchat_builtin_tools::named(sha256).map(str::to_owned)
    }

    async fn bytes(&self, module: &ModuleRef) -> Result<Vec<u8>, Failure> {
        match module {
            ModuleRef::Builtin(name) => bestchat_builtin_tools::module(name)
                .map(<[u8]>::to_vec)
                .ok_or_else(|| Failure::new(FailureKind::ModuleUnavailable, "none")),
            ModuleRef::Sha256(_) => Err(Failure::new(FailureKind::ModuleUnavailable, "none")),
        }
    }
}

/// A sandbox with the default ceilings, compiled code on disk under `cache_dir` if given.
pub fn sandbox(cache_dir: Option<PathBuf>) -> Sandbox {
    sandbox_sharing(cache_dir, None, None)
}

/// A sandbox that shares compiled code through `shared`, compiled by `compile_elsewhere` if
/// given.
pub fn sandbox_sharing(
    cache_dir: Option<PathBuf>,
    shared: Option<Arc<dyn CompiledStore>>,
    compile_elsewhere: Option<Arc<dyn RemoteCompiler>>,
) -> Sandbox {
    let ceilings = Ceilings::default();
    let fetcher = Fetcher::new(
        Guard::new(Reach::PublicOnly),
        FetchSettings::within(&ceilings),
    )
    .expect("fetch client");
    let settings = SandboxSettings {
        cache_dir,
        cache_max_bytes: 1024 * 1024 * 1024,
        max_prepared: 16,
        shared,
        compile_elsewhere,
        compile: Default::default(),
    };
    Sandbox::new(settings, fetcher).expect("sandbox")
}

pub fn executor(cache_dir: Option<PathBuf>) -> Executor {
    executor_on(sandbox(cache_dir))
}

pub fn executor_on(sandbox: Sandbox) -> Executor {
    Executor::new(sandbox, Arc::new(Builtins), Ceilings::default())
}
