//! The tools' settings: what a call may use, what a registration may bring, where modules and
//! compiled code live, and where calls run.

use std::path::{Path, PathBuf};

use bestchat_tools::Ceilings;
use bestchat_tools::sandbox::{CompileBudget, ModuleShape};

use serde::Deserialize;

use crate::config::environment::{ConfigError, Environment};

/// Where tool modules are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobConfig {
    /// `BLOB_BUCKET`: S3 (`BESTCHAT_S3_PATH_STYLE=1` for S3 twins on localhost).
    S3 { bucket: String, path_style: bool },
    /// The embedded default: files under `BESTCHAT_DATA_DIR/blobs`.
    Local { dir: PathBuf },
}

#[derive(Debug, Clone)]
pub struct ToolsConfig {
    pub ceilings: Ceilings,
    /// `BESTCHAT_TOOL_MAX_MODULE_BYTES`: largest module a user may register. Its base64 must fit
    /// a Lambda request (6 MB), hence the ceiling below.
    pub max_module_bytes: usize,
    /// `BESTCHAT_TOOL_MAX_PER_USER`: tools one user may register.
    pub max_per_user: usize,
    /// `BESTCHAT_TOOL_CACHE_DIR`: compiled modules kept between processes (`/tmp/…` in
    /// Lambda, where it lasts as long as the execution environment).
    pub cache_dir: PathBuf,
    /// `BESTCHAT_TOOL_CACHE_MAX_BYTES`: most compiled code kept there, least recently used
    /// evicted first (Lambda's /tmp is 512 MB unless configured).
    pub cache_max_bytes: u64,
    /// `BESTCHAT_TOOL_MAX_PREPARED`: modules kept ready to instantiate in memory.
    pub max_prepared: usize,
    /// `BESTCHAT_TOOL_FETCH_ALLOW_PRIVATE`: whether network tools may reach loopback and
    /// private addresses (off everywhere by default, a laptop too: a tool is not its user).
    pub fetch_allow_private: bool,
    /// `TOOL_EXECUTOR_FUNCTION`: the deployed tool-executor; unset: calls run in process.
    pub executor_function: Option<String>,
    /// `TOOL_COMPILER_FUNCTION`: the deployed tool-compiler, the only function that writes
    /// compiled code; set, this process only reads (and verifies) it. Unset: compiles here.
    pub compiler_function: Option<String>,
    /// The key that vouches for shared compiled code.
    pub compiled_code_key: CodeKey,
    pub blobs: BlobConfig,
    pub loop_limits: LoopLimits,
    /// What compiling one user module may cost: `BESTCHAT_TOOL_COMPILE_TIMEOUT_MS`,
    /// `BESTCHAT_TOOL_COMPILE_MAX_MEMORY_BYTES`, `BESTCHAT_TOOL_COMPILE_CONCURRENCY`, and the
    /// shape a module may have (`BESTCHAT_TOOL_MAX_FUNCTIONS`, `BESTCHAT_TOOL_MAX_FUNCTION_BYTES`,
    /// `BESTCHAT_TOOL_MAX_LOCALS`, `BESTCHAT_TOOL_MAX_NESTING`).
    pub compile: CompileBudget,
    /// `BESTCHAT_TOOL_MODULE_GRACE_MS`: how long a module no tool uses is kept before the
    /// janitor removes it (and its compiled code); longer than a registration takes, since a
    /// registration stores its module before its row exists.
    pub module_grace: std::time::Duration,
}

/// The key whose tag compiled code in the blob store must carry before it is loaded as machine
/// code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeKey {
    /// `BESTCHAT_COMPILED_CODE_KEY`: a KMS HMAC key (its ARN); the compiler's role may tag
    /// with it, the executor's may only verify.
    Kms(String),
    /// The embedded default: a key file under `BESTCHAT_DATA_DIR` (a process whose data
    /// directory differs, a Lambda environment's /tmp, then never trusts another's code).
    Local(PathBuf),
}

/// The agent loop's bounds.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct LoopLimits {
    /// `BESTCHAT_TOOL_MAX_STEPS`: model calls one answer may make (each step after the first
    /// follows a round of tool results).
    #[serde(rename = "BESTCHAT_TOOL_MAX_STEPS")]
    pub max_steps: u32,
    /// `BESTCHAT_TOOL_MAX_CALLS_PER_STEP`: tool calls one model answer may ask for; the rest
    /// are refused (and the model told so).
    #[serde(rename = "BESTCHAT_TOOL_MAX_CALLS_PER_STEP")]
    pub max_calls_per_step: usize,
    /// `BESTCHAT_TOOL_PARALLEL_CALLS`: calls of one step run at once.
    #[serde(rename = "BESTCHAT_TOOL_PARALLEL_CALLS")]
    pub parallel_calls: usize,
    /// `BESTCHAT_TOOL_APPROVAL_TTL_MS`: how long a call waits for the user before it expires.
    #[serde(
        rename = "BESTCHAT_TOOL_APPROVAL_TTL_MS",
        deserialize_with = "bestchat_domain::settings::millis"
    )]
    pub approval_ttl: std::time::Duration,
}

impl Default for LoopLimits {
    fn default() -> Self {
        Self {
            max_steps: 10,
            max_calls_per_step: 16,
            parallel_calls: 4,
            approval_ttl: std::time::Duration::from_secs(15 * 60),
        }
    }
}

/// The tools' plain values; where things live is chosen in [`ToolsConfig::from_env`].
#[derive(Deserialize)]
#[serde(default)]
struct ToolValues {
    #[serde(rename = "BESTCHAT_TOOL_MAX_MODULE_BYTES")]
    max_module_bytes: usize,
    #[serde(rename = "BESTCHAT_TOOL_MAX_PER_USER")]
    max_per_user: usize,
    #[serde(rename = "BESTCHAT_TOOL_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    #[serde(rename = "BESTCHAT_TOOL_CACHE_MAX_BYTES")]
    cache_max_bytes: u64,
    #[serde(rename = "BESTCHAT_TOOL_MAX_PREPARED")]
    max_prepared: usize,
    #[serde(rename = "BESTCHAT_TOOL_FETCH_ALLOW_PRIVATE")]
    fetch_allow_private: bool,
    #[serde(rename = "TOOL_EXECUTOR_FUNCTION")]
    executor_function: Option<String>,
    #[serde(rename = "TOOL_COMPILER_FUNCTION")]
    compiler_function: Option<String>,
    #[serde(rename = "BESTCHAT_COMPILED_CODE_KEY")]
    compiled_code_key: Option<String>,
    #[serde(rename = "BLOB_BUCKET")]
    blob_bucket: Option<String>,
    #[serde(rename = "BESTCHAT_S3_PATH_STYLE")]
    s3_path_style: bool,
    #[serde(
        rename = "BESTCHAT_TOOL_MODULE_GRACE_MS",
        deserialize_with = "bestchat_domain::settings::millis"
    )]
    module_grace: std::time::Duration,
}

impl Default for ToolValues {
    fn default() -> Self {
        Self {
            max_module_bytes: DEFAULT_MAX_MODULE_BYTES,
            max_per_user: 50,
            cache_dir: None,
            cache_max_bytes: 256 * 1024 * 1024,
            max_prepared: 64,
            fetch_allow_private: false,
            executor_function: None,
            compiler_function: None,
            compiled_code_key: None,
            blob_bucket: None,
            s3_path_style: false,
            module_grace: std::time::Duration::from_secs(60 * 60),
        }
    }
}

pub const MAX_STEPS_CEILING: u32 = 50;

/// A module's base64 plus the manifest must stay under Lambda's 6 MB request payload.
pub const MAX_MODULE_BYTES_CEILING: usize = 4 * 1024 * 1024;
pub const DEFAULT_MAX_MODULE_BYTES: usize = 3 * 1024 * 1024;
pub const BLOBS_DIR: &str = "blobs";
pub const TOOL_CACHE_DIR: &str = "tool-cache";
pub const COMPILED_CODE_KEY_FILE: &str = "compiled-code.key";

impl ToolsConfig {
    pub(crate) fn from_env(env: &Environment<'_>, data_dir: &Path) -> Result<Self, ConfigError> {
        let ceilings: Ceilings = env.section()?;
        let values: ToolValues = env.section()?;
        let pairs = [
            (
                "MEMORY_BYTES",
                ceilings.default_memory_bytes,
                ceilings.max_memory_bytes,
            ),
            ("FUEL", ceilings.default_fuel, ceilings.max_fuel),
            (
                "OUTPUT_BYTES",
                ceilings.default_output_bytes,
                ceilings.max_output_bytes,
            ),
        ];
        for (name, default, max) in pairs {
            if default == 0 || default > max {
                return Err(ConfigError(format!(
                    "BESTCHAT_TOOL_DEFAULT_{name} must be more than 0 and at most BESTCHAT_TOOL_MAX_{name}"
                )));
            }
        }
        if ceilings.default_wall.is_zero() || ceilings.default_wall > ceilings.max_wall {
            return Err(ConfigError(
                "BESTCHAT_TOOL_DEFAULT_WALL_MS must be more than 0 and at most BESTCHAT_TOOL_MAX_WALL_MS".into(),
            ));
        }
        if values.max_module_bytes > MAX_MODULE_BYTES_CEILING {
            return Err(ConfigError(format!(
                "BESTCHAT_TOOL_MAX_MODULE_BYTES may be at most {MAX_MODULE_BYTES_CEILING} (a Lambda request is at most 6 MB)"
            )));
        }
        let blobs = match values.blob_bucket {
            Some(bucket) => BlobConfig::S3 {
                bucket,
                path_style: values.s3_path_style,
            },
            None => BlobConfig::Local {
                dir: data_dir.join(BLOBS_DIR),
            },
        };
        Ok(Self {
            ceilings,
            max_module_bytes: values.max_module_bytes,
            max_per_user: values.max_per_user,
            cache_dir: values
                .cache_dir
                .unwrap_or_else(|| data_dir.join(TOOL_CACHE_DIR)),
            cache_max_bytes: values.cache_max_bytes,
            max_prepared: values.max_prepared,
            fetch_allow_private: values.fetch_allow_private,
            executor_function: values.executor_function,
            compiler_function: values.compiler_function,
            compiled_code_key: values.compiled_code_key.map_or_else(
                || CodeKey::Local(data_dir.join(COMPILED_CODE_KEY_FILE)),
                CodeKey::Kms,
            ),
            blobs,
            loop_limits: LoopLimits::from_env(env)?,
            compile: compile_budget(env)?,
            module_grace: values.module_grace,
        })
    }
}

fn compile_budget(env: &Environment<'_>) -> Result<CompileBudget, ConfigError> {
    let budget = CompileBudget {
        shape: env.section::<ModuleShape>()?,
        ..env.section()?
    };
    if budget.timeout.is_zero() || budget.concurrency == 0 || budget.max_memory_bytes == 0 {
        return Err(ConfigError(
            "BESTCHAT_TOOL_COMPILE_TIMEOUT_MS, _MAX_MEMORY_BYTES and _CONCURRENCY must be more than 0"
                .into(),
        ));
    }
    Ok(budget)
}

impl LoopLimits {
    fn from_env(env: &Environment<'_>) -> Result<Self, ConfigError> {
        let limits: Self = env.section()?;
        if limits.max_steps == 0 || limits.max_steps > MAX_STEPS_CEILING {
            return Err(ConfigError(format!(
                "BESTCHAT_TOOL_MAX_STEPS must be between 1 and {MAX_STEPS_CEILING}"
            )));
        }
        if limits.max_calls_per_step == 0 || limits.parallel_calls == 0 {
            return Err(ConfigError(
                "BESTCHAT_TOOL_MAX_CALLS_PER_STEP and BESTCHAT_TOOL_PARALLEL_CALLS must be at least 1"
                    .into(),
            ));
        }
        if limits.approval_ttl.is_zero() {
            return Err(ConfigError(
                "BESTCHAT_TOOL_APPROVAL_TTL_MS must be more than 0".into(),
            ));
        }
        Ok(limits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn tools(vars: &[(&str, &str)]) -> Result<ToolsConfig, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let lookup = |k: &str| map.get(k).cloned();
        ToolsConfig::from_env(&Environment(&lookup), Path::new("/data"))
    }

    #[test]
    fn defaults_are_local_and_private_addresses_are_off() {
        let t = tools(&[]).unwrap();
        assert_eq!(
            t.blobs,
            BlobConfig::Local {
                dir: PathBuf::from("/data/blobs")
            }
        );
        assert_eq!(t.cache_dir, PathBuf::from("/data/tool-cache"));
        assert!(!t.fetch_allow_private);
        assert_eq!(t.max_module_bytes, DEFAULT_MAX_MODULE_BYTES);
        let s3 = tools(&[("BLOB_BUCKET", "b"), ("BESTCHAT_S3_PATH_STYLE", "1")]).unwrap();
        assert_eq!(
            s3.blobs,
            BlobConfig::S3 {
                bucket: "b".into(),
                path_style: true
            }
        );
    }

    #[test]
    fn inconsistent_limits_name_their_variable() {
        let e = tools(&[
            ("BESTCHAT_TOOL_DEFAULT_FUEL", "99"),
            ("BESTCHAT_TOOL_MAX_FUEL", "10"),
        ])
        .unwrap_err();
        assert!(e.to_string().contains("BESTCHAT_TOOL_DEFAULT_FUEL"), "{e}");
        let e = tools(&[("BESTCHAT_TOOL_MAX_MODULE_BYTES", "99999999")]).unwrap_err();
        assert!(
            e.to_string().contains("BESTCHAT_TOOL_MAX_MODULE_BYTES"),
            "{e}"
        );
        let e = tools(&[("BESTCHAT_TOOL_DEFAULT_WALL_MS", "0")]).unwrap_err();
        assert!(e.to_string().contains("WALL"), "{e}");
        for (name, bad) in [
            ("BESTCHAT_TOOL_MAX_STEPS", "0"),
            ("BESTCHAT_TOOL_MAX_STEPS", "51"),
            ("BESTCHAT_TOOL_PARALLEL_CALLS", "0"),
            ("BESTCHAT_TOOL_APPROVAL_TTL_MS", "0"),
        ] {
            let e = tools(&[(name, bad)]).unwrap_err();
            assert!(e.to_string().contains(name), "{name}={bad}: {e}");
        }
    }
}
