//! A user's module is compiled in a child process of the program itself, under a memory limit
//! and a deadline: however its shape makes the compiler suffer, the process that serves
//! everyone else stays up, and the compile ends. The child reads the module on stdin and writes
//! the compiled code on stdout; the parent loads that code into the same engine settings.
//!
//! A program that runs user modules calls [`serve_compile_child`] first thing in `main`: in the
//! child it compiles and exits; in the parent it records that compiles can be isolated here. A
//! program that never called it (a unit test) compiles in process, after the same shape check.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::ModuleError;
use super::shape::{ModuleShape, check_shape};

/// Set in the child's environment: compile stdin and exit.
const CHILD_ENV: &str = "BESTCHAT_COMPILE_CHILD";
/// The child's address-space limit, in bytes.
const MEMORY_ENV: &str = "BESTCHAT_COMPILE_CHILD_MEMORY_BYTES";
/// Largest compiled code read back from a child.
pub const MAX_COMPILED_BYTES: usize = 256 * 1024 * 1024;
/// Most of a child's error output read (its first line is the reason).
const MAX_CHILD_ERROR_BYTES: usize = 4 * 1024;
/// The exit code of a child that refused the module (its reason on stderr).
const REFUSED: i32 = 3;
/// The exit code of a child that ran out of its memory where it could tell (aborting on a
/// failed allocation is the other way it does).
const OUT_OF_MEMORY: i32 = 4;

/// This program, when it can compile in a child of itself.
static PROGRAM: OnceLock<PathBuf> = OnceLock::new();

/// What compiling one user module may cost (named settings, `BESTCHAT_TOOL_COMPILE_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
/// Read from the environment by the app: each field's variable is on it, its default in `Default`.
#[serde(default)]
pub struct CompileBudget {
    #[serde(
        rename = "BESTCHAT_TOOL_COMPILE_TIMEOUT_MS",
        deserialize_with = "bestchat_domain::settings::millis"
    )]
    pub timeout: Duration,
    #[serde(rename = "BESTCHAT_TOOL_COMPILE_MAX_MEMORY_BYTES")]
    pub max_memory_bytes: u64,
    /// User modules compiled at once by one process.
    #[serde(rename = "BESTCHAT_TOOL_COMPILE_CONCURRENCY")]
    pub concurrency: usize,
    #[serde(skip)]
    pub shape: ModuleShape,
}

impl Default for CompileBudget {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(20),
            max_memory_bytes: 2 * 1024 * 1024 * 1024,
            concurrency: 1,
            shape: ModuleShape::default(),
        }
    }
}

/// In a compile child: compiles the module on stdin and exits, never returning. Anywhere
/// else: remembers that this program can compile in a child, and returns.
pub fn serve_compile_child() {
    if std::env::var_os(CHILD_ENV).is_none() {
        if let Ok(program) = std::env::current_exe() {
            let _ = PROGRAM.set(program);
        }
        return;
    }
    std::process::exit(compile_child());
}

/// The program to run as a compile child, when there is one.
pub(super) fn program() -> Option<&'static Path> {
    PROGRAM.get().map(PathBuf::as_path)
}

fn compile_child() -> i32 {
    use std::io::{Read, Write};
    if let Some(limit) = std::env::var(MEMORY_ENV)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        && rlimit::setrlimit(rlimit::Resource::AS, limit, limit).is_err()
    {
        eprintln!("cannot limit the compiler's memory");
        return 1;
    }
    let mut wasm = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut wasm) {
        eprintln!("cannot read the module: {e}");
        return if e.kind() == std::io::ErrorKind::OutOfMemory {
            OUT_OF_MEMORY
        } else {
            1
        };
    }
    // The parent checked the shape; a child does not take that on trust.
    if let Err(e) = check_shape(&wasm, &ModuleShape::default()) {
        eprintln!("{e}");
        return REFUSED;
    }
    let code = super::untrusted_engine()
        .and_then(|engine| wasmtime::Module::new(&engine, &wasm))
        .and_then(|module| module.serialize());
    match code {
        Ok(code) => match std::io::stdout().write_all(&code) {
            Ok(()) => 0,
            Err(_) => 1,
        },
        Err(e) => {
            eprintln!("{}", super::first_line(&e));
            REFUSED
        }
    }
}

/// Compiles `wasm` in a child of `program` within `budget`: the compiled code, to be loaded
/// into an engine with the untrusted settings.
pub(super) async fn compile(
    program: &Path,
    wasm: Vec<u8>,
    budget: &CompileBudget,
) -> Result<Vec<u8>, ModuleError> {
    let mut child = tokio::process::Command::new(program)
        .env(CHILD_ENV, "1")
        .env(MEMORY_ENV, budget.max_memory_bytes.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // A compile past its deadline dies with its handle.
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| ModuleError::Unavailable(format!("cannot start the compiler: {e}")))?;
    let (Some(mut stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(ModuleError::Unavailable(
            "the compiler's pipes are missing".into(),
        ));
    };
    let feed = async move {
        // A child that died early closes its stdin: its exit says why.
        let _ = stdin.write_all(&wasm).await;
        drop(stdin);
    };
    let code = read_bounded(stdout, MAX_COMPILED_BYTES);
    let reason = read_bounded(stderr, MAX_CHILD_ERROR_BYTES);
    let finished = async {
        let (_, code, reason, status) = tokio::join!(feed, code, reason, child.wait());
        (code, reason, status)
    };
    let Ok((code, reason, status)) = tokio::time::timeout(budget.timeout, finished).await else {
        return Err(ModuleError::TooCostly(format!(
            "compiling it took longer than {} ms",
            budget.timeout.as_millis()
        )));
    };
    let status =
        status.map_err(|e| ModuleError::Unavailable(format!("the compiler failed: {e}")))?;
    let reason = String::from_utf8_lossy(&reason.unwrap_or_default())
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    match status.code() {
        Some(0) => code.map_err(|_| {
            ModuleError::TooCostly(format!(
                "its compiled code is larger than {MAX_COMPILED_BYTES} bytes"
            ))
        }),
        Some(REFUSED) => Err(ModuleError::Invalid(reason)),
        // Killed by a signal: running out of its memory aborts it.
        Some(OUT_OF_MEMORY) | None => Err(ModuleError::TooCostly(format!(
            "compiling it needed more than {} bytes of memory",
            budget.max_memory_bytes
        ))),
        Some(_) => Err(ModuleError::Unavailable(format!(
            "the compiler failed: {reason}"
        ))),
    }
}

/// All of `reader` up to `max` bytes; `Err` when there was more.
async fn read_bounded(
    mut reader: impl tokio::io::AsyncRead + Unpin,
    max: usize,
) -> Result<Vec<u8>, ()> {
    let mut out = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = reader.read(&mut chunk).await.map_err(|_| ())?;
        if n == 0 {
            return Ok(out);
        }
        if out.len() + n > max {
            return Err(());
        }
        out.extend_from_slice(&chunk[..n]);
    }
}
