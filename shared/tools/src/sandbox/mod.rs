//! The sandbox: two wasmtime engines per process — the built-in tools compiled for speed, users'
//! modules by the baseline settings after a shape check, in a child process with a deadline and
//! a memory limit — each module compiled once (and cached on disk), a fresh `Store` per call
//! with its memory, CPU and wall-clock caps, its stdin and stdout in memory, and nothing else:
//! no files, no environment, no sockets, no arguments.

mod cache;
pub mod fetch;
mod guest;
pub mod isolated;
mod limiter;
mod output;
pub mod shape;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use output::CappedOutput;
use sha2::{Digest, Sha256};
use wasmtime::{Config, Engine, InstancePre, Linker, Module, OptLevel, Store, Trap};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p2::pipe::{MemoryInputPipe, MemoryOutputPipe};

use crate::executor::{Failure, FailureKind, Usage};
use crate::limits::Limits;
use cache::DiskCache;
pub use cache::{CompiledStore, RemoteCompiler, forget_compiled};
use fetch::{FetchRefusal, Fetcher};
use guest::Guest;
pub use isolated::{CompileBudget, serve_compile_child};
use limiter::Limiter;
pub use shape::ModuleShape;

/// How often the engine's epoch advances: a running call yields to the scheduler this often,
/// so its wall-clock deadline fires on time even while the guest never calls the host.
const EPOCH_TICK: Duration = Duration::from_millis(5);
/// The guest's call stack (deep recursion traps here, not in the host).
const WASM_STACK_BYTES: usize = 1024 * 1024;
/// What a tool may write to stderr; kept for the log, never sent anywhere.
const STDERR_BYTES: usize = 8 * 1024;

#[derive(Clone)]
pub struct SandboxSettings {
    /// Where compiled modules are kept between processes; `None`: in memory only.
    pub cache_dir: Option<PathBuf>,
    /// Most bytes of compiled code kept there.
    pub cache_max_bytes: u64,
    /// Modules kept ready to instantiate in memory.
    pub max_prepared: usize,
    /// Compiled modules shared by every process of the deployment; `None`: this host only.
    pub shared: Option<Arc<dyn CompiledStore>>,
    /// Where modules are compiled when this process may not write the shared store; `None`:
    /// here.
    pub compile_elsewhere: Option<Arc<dyn RemoteCompiler>>,
    /// What compiling one user module may cost.
    pub compile: CompileBudget,
}

/// Why a module cannot be a tool.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModuleError {
    #[error("the module is not valid WebAssembly: {0}")]
    Invalid(String),
    #[error("the module imports {0}, which is outside the tool interface")]
    Import(String),
    #[error("the module imports bestchat.fetch but the tool's risk is not network")]
    FetchWithoutNetwork,
    #[error("the module does not export {0}: build it as a WASI command (wasm32-wasip1 binary)")]
    Export(&'static str),
    /// Its shape, or compiling it, passes what this deployment spends on one module.
    #[error("the module is too costly to compile: {0}")]
    TooCostly(String),
    /// Compiling could not be tried (no compiler process); not the module's fault.
    #[error("the module could not be compiled just now: {0}")]
    Unavailable(String),
    /// Refused where it was compiled (the compiler function), with the reason as worded there.
    #[error("{0}")]
    Refused(String),
}

/// One engine with what goes with it: the linker of the tool interface, and the name its
/// compiled code is kept under.
struct Compiler {
    engine: Engine,
    /// Its compatibility hash: code another engine compiled is never loaded.
    key: String,
    linker: Linker<Guest>,
    disk: Option<DiskCache>,
}

impl Compiler {
    fn new(engine: Engine, settings: &SandboxSettings) -> wasmtime::Result<Self> {
        spawn_epoch_ticker(&engine);
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut linker, |guest: &mut Guest| &mut guest.wasi)?;
        guest::add_fetch_to_linker(&mut linker)?;
        Ok(Self {
            disk: settings
                .cache_dir
                .clone()
                .map(|dir| DiskCache::new(dir, &engine, settings.cache_max_bytes)),
            key: cache::engine_key(&engine),
            engine,
            linker,
        })
    }
}

pub struct Sandbox {
    /// The built-in tools: ours, compiled for speed.
    trusted: Compiler,
    /// Users' modules: compiled by the baseline settings, whose cost grows with the module.
    untrusted: Compiler,
    prepared: Mutex<HashMap<String, InstancePre<Guest>>>,
    shared: Option<Arc<dyn CompiledStore>>,
    compile_elsewhere: Option<Arc<dyn RemoteCompiler>>,
    max_prepared: usize,
    fetcher: Arc<Fetcher>,
    compile: CompileBudget,
    /// Users' modules compiled at once by this process.
    compiling: tokio::sync::Semaphore,
}

/// A module's sha256, as the blob store and the cache name it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The settings both engines share: fuel, epochs, the guest's stack.
fn engine_config(opt: OptLevel) -> Config {
    let mut config = Config::new();
    config
        .consume_fuel(true)
        .epoch_interruption(true)
        .max_wasm_stack(WASM_STACK_BYTES)
        .async_stack_size(WASM_STACK_BYTES + 1024 * 1024)
        .cranelift_opt_level(opt);
    config
}

/// The engine users' modules are compiled and run by (the compile child builds the same).
fn untrusted_engine() -> wasmtime::Result<Engine> {
    // No optimization: no e-graph pass, whose cost a hostile shape makes explode.
    Engine::new(&engine_config(OptLevel::None))
}

impl Sandbox {
    pub fn new(settings: SandboxSettings, fetcher: Fetcher) -> wasmtime::Result<Self> {
        let trusted = Compiler::new(Engine::new(&engine_config(OptLevel::Speed))?, &settings)?;
        let untrusted = Compiler::new(untrusted_engine()?, &settings)?;
        Ok(Self {
            trusted,
            untrusted,
            shared: settings.shared,
            compile_elsewhere: settings.compile_elsewhere,
            prepared: Mutex::new(HashMap::new()),
            max_prepared: settings.max_prepared.max(1),
            fetcher: Arc::new(fetcher),
            compile: settings.compile,
            compiling: tokio::sync::Semaphore::new(settings.compile.concurrency.max(1)),
        })
    }

    fn compiler(&self, trusted: bool) -> &Compiler {
        if trusted {
            &self.trusted
        } else {
            &self.untrusted
        }
    }

    /// Compiles a user's module and checks it is a tool: a WASI command importing only preview
    /// 1 and, for a network tool, `bestchat.fetch`. Registration calls this; the compiled code
    /// is cached, so the first call does not compile again.
    pub async fn check(&self, bytes: &[u8], network: bool) -> Result<String, ModuleError> {
        let sha = sha256_hex(bytes);
        let module = self.compile(false, &sha, bytes.to_vec()).await?;
        check_interface(&module, network)?;
        self.prepare(&sha, &module)?;
        Ok(sha)
    }

    /// Runs the module `sha` (whose bytes `bytes` gives, if it must be compiled) with `input`
    /// on stdin, under `limits`. The output is what the tool wrote to stdout. `trusted`: a
    /// built-in tool, compiled for speed.
    pub async fn run(
        &self,
        sha: &str,
        trusted: bool,
        bytes: impl AsyncFnOnce() -> Result<Vec<u8>, Failure>,
        input: Vec<u8>,
        limits: &Limits,
    ) -> (Result<Vec<u8>, Failure>, Usage) {
        let started = Instant::now();
        let pre = match self.ready(sha, trusted, bytes).await {
            Ok(pre) => pre,
            Err(failure) => return (Err(failure), Usage::since(started, 0, 0)),
        };
        self.call(&pre, input, limits, started).await
    }

    async fn ready(
        &self,
        sha: &str,
        trusted: bool,
        bytes: impl AsyncFnOnce() -> Result<Vec<u8>, Failure>,
    ) -> Result<InstancePre<Guest>, Failure> {
        if let Some(pre) = self.lock().get(sha) {
            return Ok(pre.clone());
        }
        let compiler = self.compiler(trusted);
        let module = match self.compiled(compiler, sha).await {
            Some(module) => module,
            None if self.compile_elsewhere.is_some() => {
                self.compile_remotely(trusted, sha)
                    .await
                    .map_err(|e| Failure::new(FailureKind::ModuleUnavailable, e.to_string()))?
            }
            None => {
                let bytes = bytes().await?;
                if sha256_hex(&bytes) != sha {
                    return Err(Failure::new(
                        FailureKind::ModuleUnavailable,
                        "the module's bytes do not match its sha256",
                    ));
                }
                self.compile_fresh(trusted, sha, bytes)
                    .await
                    .map_err(|e| Failure::new(FailureKind::ModuleUnavailable, e.to_string()))?
            }
        };
        // A module that reached here passed registration (or is built in); the linker still
        // refuses one whose imports it does not define.
        self.prepare(sha, &module)
            .map_err(|e| Failure::new(FailureKind::ModuleUnavailable, e.to_string()))
    }

    /// Code compiled before, by this process's disk or any process of the deployment.
    async fn compiled(&self, compiler: &Compiler, sha: &str) -> Option<Module> {
        if let Some(module) = compiler
            .disk
            .as_ref()
            .and_then(|d| d.load(&compiler.engine, sha))
        {
            return Some(module);
        }
        let shared = self.shared.as_ref()?;
        let bytes = shared.get(&cache::shared_key(&compiler.key, sha)).await?;
        let module = cache::load_shared(&compiler.engine, &bytes)?;
        if let Some(disk) = &compiler.disk {
            disk.store(sha, &bytes);
        }
        Some(module)
    }

    async fn compile(
        &self,
        trusted: bool,
        sha: &str,
        bytes: Vec<u8>,
    ) -> Result<Module, ModuleError> {
        match self.compiled(self.compiler(trusted), sha).await {
            Some(module) => Ok(module),
            None if self.compile_elsewhere.is_some() => self.compile_remotely(trusted, sha).await,
            None => self.compile_fresh(trusted, sha, bytes).await,
        }
    }

    /// Has the compiler function compile into the shared store, then loads what it wrote.
    async fn compile_remotely(&self, trusted: bool, sha: &str) -> Result<Module, ModuleError> {
        let Some(remote) = &self.compile_elsewhere else {
            return Err(ModuleError::Unavailable("no compiler".into()));
        };
        remote.compile(sha, trusted).await?;
        self.compiled(self.compiler(trusted), sha)
            .await
            .ok_or_else(|| ModuleError::Unavailable("the compiled code did not arrive".into()))
    }

    /// The compiler function's work: compiles `bytes` (module `sha`) into the shared store,
    /// unless code that verifies is there already.
    pub async fn compile_to_share(
        &self,
        sha: &str,
        trusted: bool,
        bytes: Vec<u8>,
    ) -> Result<(), ModuleError> {
        if sha256_hex(&bytes) != sha {
            return Err(ModuleError::Unavailable(
                "the module's bytes do not match its sha256".into(),
            ));
        }
        self.compile(trusted, sha, bytes).await.map(drop)
    }

    /// Compiles, and keeps the code on disk and in the shared store.
    async fn compile_fresh(
        &self,
        trusted: bool,
        sha: &str,
        bytes: Vec<u8>,
    ) -> Result<Module, ModuleError> {
        let compiler = self.compiler(trusted);
        let (module, code) = if trusted {
            let engine = compiler.engine.clone();
            let module = tokio::task::spawn_blocking(move || Module::new(&engine, &bytes))
                .await
                .map_err(|e| ModuleError::Invalid(e.to_string()))?
                .map_err(|e| ModuleError::Invalid(first_line(&e)))?;
            let code = module
                .serialize()
                .inspect_err(|e| tracing::warn!(error = %e, "cannot serialize a compiled module"))
                .ok();
            (module, code)
        } else {
            let code = self.compile_untrusted(bytes).await?;
            let module = cache::load_shared(&compiler.engine, &code).ok_or_else(|| {
                ModuleError::Unavailable("the compiled code does not load".into())
            })?;
            (module, Some(code))
        };
        if let Some(code) = code {
            if let Some(disk) = &compiler.disk {
                disk.store(sha, &code);
            }
            if let Some(shared) = &self.shared {
                shared
                    .put(&cache::shared_key(&compiler.key, sha), code)
                    .await;
            }
        }
        Ok(module)
    }

    /// A user's module: its shape checked, then compiled within the budget — in a child
    /// process where this program can run one, else (unit tests) in process with a deadline.
    async fn compile_untrusted(&self, bytes: Vec<u8>) -> Result<Vec<u8>, ModuleError> {
        shape::check_shape(&bytes, &self.compile.shape)?;
        let _turn = self
            .compiling
            .acquire()
            .await
            .map_err(|_| ModuleError::Unavailable("the sandbox is shutting down".into()))?;
        if let Some(program) = isolated::program() {
            return isolated::compile(program, bytes, &self.compile).await;
        }
        let engine = self.untrusted.engine.clone();
        let compiled = tokio::time::timeout(
            self.compile.timeout,
            tokio::task::spawn_blocking(move || {
                Module::new(&engine, &bytes).and_then(|m| m.serialize())
            }),
        )
        .await
        .map_err(|_| {
            ModuleError::TooCostly(format!(
                "compiling it took longer than {} ms",
                self.compile.timeout.as_millis()
            ))
        })?
        .map_err(|e| ModuleError::Unavailable(e.to_string()))?;
        compiled.map_err(|e| ModuleError::Invalid(first_line(&e)))
    }

    fn prepare(&self, sha: &str, module: &Module) -> Result<InstancePre<Guest>, ModuleError> {
        let linker = if Engine::same(module.engine(), &self.trusted.engine) {
            &self.trusted.linker
        } else {
            &self.untrusted.linker
        };
        let pre = linker
            .instantiate_pre(module)
            .map_err(|e| ModuleError::Import(first_line(&e)))?;
        let mut prepared = self.lock();
        if prepared.len() >= self.max_prepared
            && let Some(evicted) = prepared.keys().next().cloned()
        {
            prepared.remove(&evicted);
        }
        prepared.insert(sha.to_owned(), pre.clone());
        Ok(pre)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, InstancePre<Guest>>> {
        self.prepared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn call(
        &self,
        pre: &InstancePre<Guest>,
        input: Vec<u8>,
        limits: &Limits,
        started: Instant,
    ) -> (Result<Vec<u8>, Failure>, Usage) {
        let cap = usize::try_from(limits.output_bytes).unwrap_or(usize::MAX);
        let stdout = CappedOutput::new(cap);
        let stderr = MemoryOutputPipe::new(STDERR_BYTES);
        let wasi = WasiCtxBuilder::new()
            .stdin(MemoryInputPipe::new(input))
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build_p1();
        let guest = Guest::new(
            wasi,
            Limiter::new(limits.memory_bytes),
            limits.hosts.clone(),
            Arc::clone(&self.fetcher),
        );
        // The engine the module was compiled by.
        let mut store = Store::new(pre.module().engine(), guest);
        store.limiter(|guest| &mut guest.limiter);
        if store.set_fuel(limits.fuel).is_err() {
            return (
                Err(Failure::new(FailureKind::Trap, "fuel is not enabled")),
                Usage::since(started, 0, 0),
            );
        }
        store.epoch_deadline_async_yield_and_update(1);
        let outcome = tokio::time::timeout(limits.wall(), async {
            let instance = pre.instantiate_async(&mut store).await?;
            let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
            start.call_async(&mut store, ()).await
        })
        .await;
        let fuel = limits.fuel.saturating_sub(store.get_fuel().unwrap_or(0));
        let guest = store.data();
        let usage = Usage::since(started, fuel, guest.limiter.peak_memory);
        let written = stdout.contents();
        let log = stderr.contents();
        if !log.is_empty() {
            tracing::debug!(stderr = %String::from_utf8_lossy(&log), "tool wrote to stderr");
        }
        let result = match outcome {
            _ if guest.limiter.refused => Err(Failure::new(
                FailureKind::MemoryLimit,
                format!(
                    "the tool needed more than its {} bytes of memory",
                    limits.memory_bytes
                ),
            )),
            _ if written.is_none() => Err(Failure::new(
                FailureKind::OutputTooLarge,
                format!("the tool wrote more than its {cap} bytes of output"),
            )),
            Err(_) => Err(Failure::new(
                FailureKind::Timeout,
                format!("the tool ran longer than {} ms", limits.wall_ms),
            )),
            Ok(Ok(())) => Ok(written.unwrap_or_default().to_vec()),
            Ok(Err(error)) => exited_normally(&error)
                .then(|| written.unwrap_or_default().to_vec())
                .ok_or_else(|| classify(&error)),
        };
        (result, usage)
    }
}

/// `proc_exit(0)` is how some toolchains end `main`: a success.
fn exited_normally(error: &wasmtime::Error) -> bool {
    error
        .downcast_ref::<wasmtime_wasi::I32Exit>()
        .is_some_and(|exit| exit.0 == 0)
}

fn classify(error: &wasmtime::Error) -> Failure {
    if let Some(refusal) = error.downcast_ref::<FetchRefusal>() {
        let kind = match refusal {
            FetchRefusal::HostNotAllowed(_) => FailureKind::HostNotAllowed,
            FetchRefusal::BlockedAddress(_) => FailureKind::BlockedAddress,
            FetchRefusal::TooManyCalls(_) => FailureKind::Trap,
        };
        return Failure::new(kind, refusal.to_string());
    }
    if let Some(exit) = error.downcast_ref::<wasmtime_wasi::I32Exit>() {
        return Failure::new(
            FailureKind::Trap,
            format!("the tool exited with status {}", exit.0),
        );
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => {
            Failure::new(FailureKind::OutOfFuel, "the tool used all its CPU fuel")
        }
        Some(Trap::StackOverflow) => {
            Failure::new(FailureKind::Trap, "the tool overflowed its stack")
        }
        Some(trap) => Failure::new(FailureKind::Trap, format!("the tool trapped: {trap}")),
        None => Failure::new(
            FailureKind::Trap,
            format!("the tool failed: {}", first_line(error)),
        ),
    }
}

fn first_line(error: &wasmtime::Error) -> String {
    error
        .to_string()
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

fn check_interface(module: &Module, network: bool) -> Result<(), ModuleError> {
    for import in module.imports() {
        let name = format!("{}.{}", import.module(), import.name());
        let is_func = matches!(import.ty(), wasmtime::ExternType::Func(_));
        match import.module() {
            "wasi_snapshot_preview1" if is_func => {}
            guest::HOST_MODULE if is_func && guest::HOST_FUNCTIONS.contains(&import.name()) => {
                if !network {
                    return Err(ModuleError::FetchWithoutNetwork);
                }
            }
            _ => return Err(ModuleError::Import(name)),
        }
    }
    let exports: Vec<_> = module
        .exports()
        .map(|e| (e.name().to_owned(), e.ty()))
        .collect();
    let has = |name: &str, memory: bool| {
        exports.iter().any(|(n, ty)| {
            n == name
                && if memory {
                    matches!(ty, wasmtime::ExternType::Memory(_))
                } else {
                    matches!(ty, wasmtime::ExternType::Func(_))
                }
        })
    };
    if !has("_start", false) {
        return Err(ModuleError::Export("_start"));
    }
    if !has("memory", true) {
        return Err(ModuleError::Export("memory"));
    }
    Ok(())
}

/// Advances the engine's epoch for as long as the engine lives.
fn spawn_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    let spawned = std::thread::Builder::new()
        .name("wasm-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the epoch ticker; wall-clock limits rely on fuel alone");
    }
}
