//! The executor's contract: what the `tool-executor` function is asked (which module, the
//! validated arguments, the limits) and what it answers (the tool's JSON, or a typed failure,
//! with what the call used either way), and the executor that answers it.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::limits::{Ceilings, Limits, millis};
use crate::sandbox::{ModuleError, Sandbox};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecRequest {
    /// The tool's name, for the log.
    pub tool: String,
    pub module: ModuleRef,
    /// Already checked against the tool's schema by the caller.
    pub arguments: Value,
    pub limits: Limits,
}

/// What the executor is asked: to run a call, or to prepare a user's module for registration
/// (compile it within the deployment's budget, check it is a tool, keep its code). Compiling
/// belongs to the executor alone, so no other function ever compiles a stranger's code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ExecutorRequest {
    Prepare { prepare: PrepareModule },
    Run(ExecRequest),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrepareModule {
    /// The module's sha256: the blob store holds it under that name.
    pub sha256: String,
    /// The tool's risk is `network` (it may import `bestchat.fetch`).
    pub network: bool,
}

/// The answer to a prepare request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Prepared {
    Ok,
    /// The module cannot be a tool, or costs too much to compile: the reason, for the user.
    Refused {
        reason: String,
    },
    /// Nothing could be tried (the module is not stored, no compiler): not the module's fault.
    Unavailable {
        reason: String,
    },
}

impl From<Result<(), ModuleError>> for Prepared {
    fn from(result: Result<(), ModuleError>) -> Self {
        match result {
            Ok(()) => Self::Ok,
            Err(ModuleError::Unavailable(reason)) => Self::Unavailable { reason },
            Err(e) => Self::Refused {
                reason: e.to_string(),
            },
        }
    }
}

impl From<Prepared> for Result<(), ModuleError> {
    fn from(answer: Prepared) -> Self {
        match answer {
            Prepared::Ok => Ok(()),
            Prepared::Refused { reason } => Err(ModuleError::Refused(reason)),
            Prepared::Unavailable { reason } => Err(ModuleError::Unavailable(reason)),
        }
    }
}

/// What the compiler function is asked: to compile module `sha256` into the shared store
/// (`trusted`: the built-in tool with that sha256, compiled for speed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompileModule {
    pub sha256: String,
    pub trusted: bool,
}

/// Which module runs: a built-in by name, or a user's by the sha256 the blob store keeps it
/// under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModuleRef {
    Builtin(String),
    Sha256(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ExecResponse {
    Ok { output: Value, usage: Usage },
    Failed { failure: Failure, usage: Usage },
}

impl ExecResponse {
    pub fn usage(&self) -> &Usage {
        match self {
            Self::Ok { usage, .. } | Self::Failed { usage, .. } => usage,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    Timeout,
    OutOfFuel,
    MemoryLimit,
    Trap,
    OutputTooLarge,
    HostNotAllowed,
    BlockedAddress,
    InvalidOutput,
    /// The module is not built in, not in the blob store, or the store could not be read.
    ModuleUnavailable,
    /// The request itself is malformed (not from a BestChat caller).
    InvalidRequest,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub kind: FailureKind,
    /// For the model and the audit trail: what was exceeded or refused, never host internals.
    pub message: String,
}

impl Failure {
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub wall_ms: u64,
    pub fuel: u64,
    pub peak_memory_bytes: u64,
}

impl Usage {
    pub(crate) fn since(started: Instant, fuel: u64, peak_memory: usize) -> Self {
        Self {
            wall_ms: millis(started.elapsed()),
            fuel,
            peak_memory_bytes: u64::try_from(peak_memory).unwrap_or(u64::MAX),
        }
    }
}

/// Where module bytes come from: the built-ins linked into the executor, and the blob store.
#[async_trait]
pub trait ModuleSource: Send + Sync {
    /// The sha256 of a built-in tool's module; `None` when there is no such tool.
    fn builtin_sha256(&self, name: &str) -> Option<String>;
    /// The built-in tool whose module has this sha256.
    fn builtin_named(&self, sha256: &str) -> Option<String>;
    async fn bytes(&self, module: &ModuleRef) -> Result<Vec<u8>, Failure>;
}

pub struct Executor {
    sandbox: Sandbox,
    modules: Arc<dyn ModuleSource>,
    ceilings: Ceilings,
}

impl Executor {
    pub fn new(sandbox: Sandbox, modules: Arc<dyn ModuleSource>, ceilings: Ceilings) -> Self {
        Self {
            sandbox,
            modules,
            ceilings,
        }
    }

    pub fn sandbox(&self) -> &Sandbox {
        &self.sandbox
    }

    /// Prepares a user's module for registration.
    pub async fn prepare(&self, request: &PrepareModule) -> Prepared {
        if !is_sha256(&request.sha256) {
            return Prepared::Refused {
                reason: "sha256 must be 64 lowercase hex digits".into(),
            };
        }
        let module = ModuleRef::Sha256(request.sha256.clone());
        let bytes = match self.modules.bytes(&module).await {
            Ok(bytes) => bytes,
            Err(failure) => {
                return Prepared::Unavailable {
                    reason: failure.message,
                };
            }
        };
        if crate::sandbox::sha256_hex(&bytes) != request.sha256 {
            return Prepared::Unavailable {
                reason: "the stored module does not match its sha256".into(),
            };
        }
        Prepared::from(self.sandbox.check(&bytes, request.network).await.map(drop))
    }

    /// The compiler function's work: compiles a module into the shared store, where the
    /// executors (which may only read and verify it) load it from.
    pub async fn compile_to_share(&self, request: &CompileModule) -> Prepared {
        if !is_sha256(&request.sha256) {
            return Prepared::Refused {
                reason: "sha256 must be 64 lowercase hex digits".into(),
            };
        }
        let module = if request.trusted {
            match self.modules.builtin_named(&request.sha256) {
                Some(name) => ModuleRef::Builtin(name),
                None => {
                    return Prepared::Unavailable {
                        reason: "no built-in tool has that sha256".into(),
                    };
                }
            }
        } else {
            ModuleRef::Sha256(request.sha256.clone())
        };
        let bytes = match self.modules.bytes(&module).await {
            Ok(bytes) => bytes,
            Err(failure) => {
                return Prepared::Unavailable {
                    reason: failure.message,
                };
            }
        };
        Prepared::from(
            self.sandbox
                .compile_to_share(&request.sha256, request.trusted, bytes)
                .await,
        )
    }

    /// Runs one call. Every outcome is an answer: a failure is the tool's, typed, never the
    /// executor's crash.
    pub async fn execute(&self, request: ExecRequest) -> ExecResponse {
        let started = Instant::now();
        let failed = |failure: Failure| ExecResponse::Failed {
            failure,
            usage: Usage::since(started, 0, 0),
        };
        let sha = match &request.module {
            ModuleRef::Builtin(name) => match self.modules.builtin_sha256(name) {
                Some(sha) => sha,
                None => {
                    return failed(Failure::new(
                        FailureKind::ModuleUnavailable,
                        format!("there is no built-in tool {name}"),
                    ));
                }
            },
            ModuleRef::Sha256(sha) if is_sha256(sha) => sha.clone(),
            ModuleRef::Sha256(_) => {
                return failed(Failure::new(
                    FailureKind::InvalidRequest,
                    "sha256 must be 64 lowercase hex digits",
                ));
            }
        };
        let limits = request.limits.clone().within(&self.ceilings);
        let input = match serde_json::to_vec(&request.arguments) {
            Ok(input) => input,
            Err(e) => return failed(Failure::new(FailureKind::InvalidRequest, e.to_string())),
        };
        let modules = Arc::clone(&self.modules);
        let module = request.module.clone();
        let trusted = matches!(module, ModuleRef::Builtin(_));
        let (result, usage) = self
            .sandbox
            .run(
                &sha,
                trusted,
                async move || modules.bytes(&module).await,
                input,
                &limits,
            )
            .await;
        let outcome = result.and_then(|output| {
            serde_json::from_slice::<Value>(&output).map_err(|_| {
                Failure::new(
                    FailureKind::InvalidOutput,
                    "the tool's output is not one JSON value",
                )
            })
        });
        tracing::info!(
            tool = request.tool,
            wall_ms = usage.wall_ms,
            fuel = usage.fuel,
            peak_memory_bytes = usage.peak_memory_bytes,
            failure = outcome.as_ref().err().map(|f| f.message.as_str()),
            "tool call"
        );
        match outcome {
            Ok(output) => ExecResponse::Ok { output, usage },
            Err(failure) => ExecResponse::Failed { failure, usage },
        }
    }
}

pub fn is_sha256(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}
