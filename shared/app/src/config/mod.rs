//! Settings read once per cold start from the environment. Every limit is a named variable with
//! a default; a malformed value stops the start with a sentence naming the variable.

use std::path::PathBuf;
use std::time::Duration;

use bestchat_cache::RedisSettings;
use bestchat_context::ContextSettings;
use bestchat_domain::model_ref::{ModelId, ModelRef, ProviderId};
use bestchat_providers::HttpSettings;
use bestchat_providers::breaker::BreakerSettings;
use bestchat_providers::failover::RetrySettings;
use bestchat_store::{PgSettings, TlsRoots};

pub use crate::tools::config::{BlobConfig, ToolsConfig};
pub use environment::ConfigError;
use environment::Environment;
use serde::Deserialize;

pub(crate) mod environment;

/// What a function reaches besides AWS APIs. A function that uses neither the database nor the
/// cache runs outside the VPC and is given neither's address; it must start without them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Uses {
    pub database: bool,
    pub cache: bool,
}

impl Uses {
    pub const EVERYTHING: Self = Self {
        database: true,
        cache: true,
    };
    pub const NOTHING: Self = Self {
        database: false,
        cache: false,
    };
}

/// Where data lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// `DATABASE_URL=postgres://…`; with `DATABASE_IAM_AUTH=1` every connection authenticates
    /// as the URL's user with a fresh IAM token (RDS Proxy or Aurora with IAM auth) instead of
    /// a password.
    Postgres { url: String, iam_auth: bool },
    /// The embedded default: a SQLite file under `BESTCHAT_DATA_DIR`.
    Sqlite { path: PathBuf },
    /// A function that never touches the store (see [`Uses`]): every call is refused.
    Absent,
}

/// Where shared, expiring state lives.
#[derive(Debug, Clone)]
pub enum CacheConfig {
    /// `REDIS_URL=redis://…` (or `rediss://` for TLS).
    Redis {
        url: String,
        settings: RedisSettings,
        /// `REDIS_IAM_USER` and `REDIS_IAM_CACHE`: authenticate with IAM tokens.
        iam: Option<RedisIam>,
    },
    /// The embedded default: in this process only.
    Memory,
}

/// An ElastiCache user that authenticates with IAM tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisIam {
    /// `REDIS_IAM_USER`: the user id (for IAM users it is also the name).
    pub user: String,
    /// `REDIS_IAM_CACHE`: the cache's (or replication group's) id.
    pub cache: String,
    /// `REDIS_IAM_SERVERLESS`: the cache is ElastiCache Serverless (default on).
    pub serverless: bool,
}

/// What wraps the data keys that encrypt provider API keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VaultConfig {
    /// `KMS_KEY_ID` (id, ARN or alias).
    Kms { key_id: String },
    /// The embedded default: a master key file under `BESTCHAT_DATA_DIR`.
    Local { path: PathBuf },
}

/// How tokens are checked where no API Gateway does it (the `$connect` authorizer, the local
/// gateway).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthKeys {
    /// `BESTCHAT_JWT_SECRET`: HS256.
    Secret(String),
    /// `BESTCHAT_JWKS_URL`: the identity provider's published keys.
    Jwks(String),
    /// Neither is set (the local gateway then makes its own secret).
    Unset,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct AuthConfig {
    #[serde(skip)]
    pub keys: AuthKeys,
    #[serde(rename = "BESTCHAT_JWT_ISSUER")]
    pub issuer: String,
    #[serde(rename = "BESTCHAT_JWT_AUDIENCE")]
    pub audience: String,
    /// Clock skew forgiven on `exp`, `nbf` and `iat`.
    #[serde(
        rename = "BESTCHAT_JWT_LEEWAY_S",
        deserialize_with = "bestchat_domain::settings::seconds"
    )]
    pub leeway: Duration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            keys: AuthKeys::Unset,
            issuer: "bestchat-local".into(),
            audience: "bestchat".into(),
            leeway: crate::auth::DEFAULT_LEEWAY,
        }
    }
}

/// The real-time path: where connections, frames and turns go.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RealtimeConfig {
    /// `CONNECTIONS_TABLE`: DynamoDB; unset: in-process.
    #[serde(rename = "CONNECTIONS_TABLE")]
    pub connections_table: Option<String>,
    /// `WS_ENDPOINT`: API Gateway's management endpoint; unset: the local gateway's hub.
    #[serde(rename = "WS_ENDPOINT")]
    pub ws_endpoint: Option<String>,
    /// `CHAT_TURN_FUNCTION`: the deployed chat-turn function; unset: run turns in process.
    #[serde(rename = "CHAT_TURN_FUNCTION")]
    pub chat_turn_function: Option<String>,
    /// `SUMMARIZE_FUNCTION`: the deployed summarize function; unset: summarize in process.
    #[serde(rename = "SUMMARIZE_FUNCTION")]
    pub summarize_function: Option<String>,
    /// A connection record expires after this if `$disconnect` never arrives.
    #[serde(skip)]
    pub connection_ttl: Duration,
    /// `BESTCHAT_DELTA_COALESCE_MS`: how long later deltas wait to be sent together.
    #[serde(
        rename = "BESTCHAT_DELTA_COALESCE_MS",
        deserialize_with = "bestchat_domain::settings::millis"
    )]
    pub coalesce_window: Duration,
    /// Largest frame posted to a connection (API Gateway's WebSocket frame limit).
    #[serde(skip)]
    pub frame_max_bytes: usize,
    /// `BESTCHAT_CONNECTION_REFRESH_MS`: how often a turn looks for new subscribers and resumes.
    #[serde(
        rename = "BESTCHAT_CONNECTION_REFRESH_MS",
        deserialize_with = "bestchat_domain::settings::millis"
    )]
    pub connection_refresh: Duration,
    /// `BESTCHAT_CANCEL_POLL_MS`: how often a turn checks for cancellation while the provider is
    /// silent.
    #[serde(
        rename = "BESTCHAT_CANCEL_POLL_MS",
        deserialize_with = "bestchat_domain::settings::millis"
    )]
    pub cancel_poll: Duration,
    /// `BESTCHAT_STREAM_BUFFER_TTL_MS`: how long frames stay available for `resume`.
    #[serde(
        rename = "BESTCHAT_STREAM_BUFFER_TTL_MS",
        deserialize_with = "bestchat_domain::settings::millis"
    )]
    pub stream_buffer_ttl: Duration,
    /// `BESTCHAT_STREAM_BUFFER_MAX_FRAMES`: frames kept per message.
    #[serde(rename = "BESTCHAT_STREAM_BUFFER_MAX_FRAMES")]
    pub stream_buffer_max_frames: u64,
    /// `BESTCHAT_STREAM_BUFFER_MAX_BYTES_PER_USER`: bytes of one user's frames the resume
    /// buffer (a shared Redis in AWS) takes within its TTL; an answer that would pass it ends
    /// `incomplete` (`answer_too_large`).
    #[serde(rename = "BESTCHAT_STREAM_BUFFER_MAX_BYTES_PER_USER")]
    pub stream_buffer_max_bytes_per_user: u64,
    /// `BESTCHAT_MESSAGE_MAX_BYTES`: the most text one answer may hold (text, visible
    /// reasoning and tool call arguments together); streaming past it ends the answer
    /// `incomplete` with what arrived up to it.
    #[serde(rename = "BESTCHAT_MESSAGE_MAX_BYTES")]
    pub message_max_bytes: usize,
    /// `BESTCHAT_MAX_CONNECTIONS_PER_USER`: open WebSocket connections one user may hold.
    #[serde(rename = "BESTCHAT_MAX_CONNECTIONS_PER_USER")]
    pub max_connections_per_user: usize,
    /// `BESTCHAT_MAX_SSE_STREAMS_PER_USER`: answers one user may stream as SSE at once.
    #[serde(rename = "BESTCHAT_MAX_SSE_STREAMS_PER_USER")]
    pub max_sse_streams_per_user: usize,
    /// `BESTCHAT_EMULATOR_SECRET`: sent by the SDK clients to the local gateway's AWS
    /// emulation, which refuses requests without it. Unset in AWS; the gateway makes one.
    #[serde(rename = "BESTCHAT_EMULATOR_SECRET")]
    pub emulator_secret: Option<String>,
}

impl Default for RealtimeConfig {
    fn default() -> Self {
        Self {
            connections_table: None,
            ws_endpoint: None,
            chat_turn_function: None,
            summarize_function: None,
            connection_ttl: CONNECTION_TTL,
            coalesce_window: Duration::from_millis(40),
            frame_max_bytes: WS_FRAME_MAX_BYTES,
            connection_refresh: Duration::from_millis(250),
            cancel_poll: Duration::from_millis(250),
            stream_buffer_ttl: Duration::from_secs(60 * 60),
            stream_buffer_max_frames: 20_000,
            stream_buffer_max_bytes_per_user: 64 * 1024 * 1024,
            message_max_bytes: 1024 * 1024,
            max_connections_per_user: 20,
            max_sse_streams_per_user: 5,
            emulator_secret: None,
        }
    }
}

/// API Gateway's WebSocket frame limit.
pub const WS_FRAME_MAX_BYTES: usize = 32 * 1024;
/// API Gateway closes a WebSocket connection after two hours; keep the record a little longer.
pub const CONNECTION_TTL: Duration = Duration::from_secs(3 * 60 * 60);

/// Context management: how long conversations are fitted into each model's window.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ContextConfig {
    #[serde(skip)]
    pub settings: ContextSettings,
    /// `BESTCHAT_RESERVED_OUTPUT_TOKENS`: space kept for the answer when the conversation does
    /// not set `max_output_tokens` (never more than the model's output limit).
    #[serde(rename = "BESTCHAT_RESERVED_OUTPUT_TOKENS")]
    pub reserved_output_tokens: u32,
    /// `BESTCHAT_SUMMARY_MODEL` (`provider/model`): the model that writes summaries, before the
    /// catalog's cheap model of the conversation's provider and the conversation's own model.
    #[serde(skip)]
    pub summary_model: Option<ModelRef>,
    /// `BESTCHAT_SUMMARY_MAX_TOKENS`: longest summary.
    #[serde(rename = "BESTCHAT_SUMMARY_MAX_TOKENS")]
    pub summary_max_tokens: u32,
    /// `BESTCHAT_CONTEXT_CACHE_TTL_MS`: how long a conversation's summary is cached.
    #[serde(
        rename = "BESTCHAT_CONTEXT_CACHE_TTL_MS",
        deserialize_with = "bestchat_domain::settings::millis"
    )]
    pub cache_ttl: Duration,
    /// `BESTCHAT_HISTORY_MAX_MESSAGES`: most messages a turn reads back through.
    #[serde(rename = "BESTCHAT_HISTORY_MAX_MESSAGES")]
    pub history_max_messages: usize,
    /// `BESTCHAT_HISTORY_MAX_TOKENS`: a turn stops reading back once this many tokens are in.
    #[serde(rename = "BESTCHAT_HISTORY_MAX_TOKENS")]
    pub history_max_tokens: u64,
}

impl Default for ContextConfig {
    fn default() -> Self {
        Self {
            settings: ContextSettings::default(),
            reserved_output_tokens: 4_096,
            summary_model: None,
            summary_max_tokens: 1_024,
            cache_ttl: Duration::from_secs(30 * 60),
            history_max_messages: 20_000,
            history_max_tokens: 2_000_000,
        }
    }
}

/// The values of [`Config`] that are not a section of their own.
#[derive(Deserialize)]
#[serde(default)]
struct GeneralValues {
    #[serde(rename = "BESTCHAT_DATA_DIR")]
    data_dir: PathBuf,
    #[serde(rename = "DATABASE_IAM_AUTH")]
    database_iam_auth: bool,
    #[serde(rename = "BESTCHAT_DEFAULT_PROVIDER")]
    default_provider: String,
    #[serde(rename = "BESTCHAT_DEFAULT_MODEL")]
    default_model: String,
    #[serde(rename = "BESTCHAT_MAX_REQUEST_BYTES")]
    max_request_bytes: usize,
    #[serde(rename = "BESTCHAT_MAX_RESPONSE_BYTES")]
    max_response_bytes: usize,
    #[serde(rename = "BESTCHAT_ENV_KEYS")]
    env_keys: bool,
    #[serde(rename = "BESTCHAT_BEDROCK")]
    bedrock: bool,
    #[serde(rename = "BESTCHAT_BEDROCK_MODELS")]
    bedrock_models: Option<String>,
    #[serde(rename = "BESTCHAT_ALLOW_PRIVATE_PROVIDER_URLS")]
    allow_private_provider_urls: Option<bool>,
    #[serde(
        rename = "BESTCHAT_TURN_MAX_MS",
        deserialize_with = "bestchat_domain::settings::millis"
    )]
    turn_max_duration: Duration,
    #[serde(
        rename = "BESTCHAT_TURN_LEASE_MS",
        deserialize_with = "bestchat_domain::settings::millis"
    )]
    turn_lease: Duration,
    #[serde(
        rename = "BESTCHAT_TURN_START_TIMEOUT_MS",
        deserialize_with = "bestchat_domain::settings::millis"
    )]
    turn_start_timeout: Duration,
    #[serde(rename = "BESTCHAT_METRICS")]
    metrics: Option<String>,
    #[serde(rename = "BESTCHAT_METRICS_NAMESPACE")]
    metrics_namespace: String,
}

impl Default for GeneralValues {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            database_iam_auth: false,
            default_provider: "echo".into(),
            default_model: "echo-1".into(),
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            max_response_bytes: 5 * 1024 * 1024,
            env_keys: false,
            bedrock: false,
            bedrock_models: None,
            allow_private_provider_urls: None,
            turn_max_duration: Duration::from_secs(14 * 60),
            turn_lease: Duration::from_secs(30),
            turn_start_timeout: Duration::from_secs(120),
            metrics: None,
            metrics_namespace: "BestChat".into(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub store: StoreConfig,
    pub data_dir: PathBuf,
    pub postgres: PgSettings,
    /// Largest request body a handler accepts (`BESTCHAT_MAX_REQUEST_BYTES`).
    pub max_request_bytes: usize,
    /// `BESTCHAT_MAX_RESPONSE_BYTES`: most a list answers with at once (under Lambda's 6 MB
    /// response limit); a page that would pass it ends early, with a cursor for the rest.
    pub max_response_bytes: usize,
    /// Model for conversations created without one.
    pub default_model: ModelRef,
    pub cache: CacheConfig,
    pub vault: VaultConfig,
    pub provider_http: HttpSettings,
    pub retry: RetrySettings,
    pub breaker: BreakerSettings,
    /// `BESTCHAT_ENV_KEYS`: operator keys from the environment (`OPENAI_API_KEY`, …) serve users
    /// who have not set their own.
    pub env_keys: bool,
    /// `BESTCHAT_BEDROCK`: AWS Bedrock is usable, on the operator's AWS account (the process's
    /// own credentials). Off by default: with it off, Bedrock is listed as turned off.
    pub bedrock: bool,
    /// `BESTCHAT_BEDROCK_MODELS`: the Bedrock models users may call (base ids such as
    /// `anthropic.claude-sonnet-4-5-20250929-v1:0`; a cross-region profile `us.<id>` is the same
    /// model). Unset: every model the catalog lists. The template sets it to what its IAM grants
    /// allow, so a model outside it is refused before any call.
    pub bedrock_models: Option<Vec<String>>,
    /// `BESTCHAT_ALLOW_PRIVATE_PROVIDER_URLS`: whether users may point a provider (or an MCP
    /// server) at loopback, private or link-local addresses. On by default only with the
    /// embedded SQLite store, a one-person setup, for a laptop's Ollama; the local gateway turns
    /// that default off too when it listens beyond loopback.
    pub allow_private_provider_urls: bool,
    pub auth: AuthConfig,
    pub realtime: RealtimeConfig,
    /// `BESTCHAT_TURN_MAX_MS`: longest one chat-turn invocation may stream, all the steps of a
    /// tool loop it runs together (under the function's timeout, so the answer is stored as
    /// `incomplete` rather than lost).
    pub turn_max_duration: Duration,
    /// `BESTCHAT_TURN_LEASE_MS`: a running turn's lease on its answer; renewed every third of
    /// it, so the janitor ends a dead turn's answer this long after the turn stopped renewing.
    pub turn_lease: Duration,
    /// `BESTCHAT_TURN_START_TIMEOUT_MS`: a sent message's answer must be claimed by a turn
    /// within this, or the janitor ends it (the invocation was lost).
    pub turn_start_timeout: Duration,
    pub context: ContextConfig,
    pub tools: ToolsConfig,
    pub mcp: McpConfig,
    pub rate_limits: crate::rate_limit::RateLimits,
    pub budgets: crate::budget::BudgetSettings,
    pub billing: crate::billing::BillingSettings,
    pub files: crate::files::FileSettings,
    pub access: crate::roles::AccessSettings,
    /// `BESTCHAT_ROLE_TOOL_POLICIES`, read: per role, the most its members' tool rules allow.
    pub role_tool_ceilings:
        std::collections::BTreeMap<String, bestchat_tools::policy::AutoApproval>,
    /// `BESTCHAT_METRICS=emf`: CloudWatch metrics as EMF lines on stdout, in the namespace
    /// `BESTCHAT_METRICS_NAMESPACE`; `None`: off.
    pub metrics_namespace: Option<String>,
}

/// Remote MCP servers' limits.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct McpConfig {
    /// `BESTCHAT_MCP_TIMEOUT_MS`: longest a registration (every exchange it takes) or one call
    /// of a server's tool may take.
    #[serde(
        rename = "BESTCHAT_MCP_TIMEOUT_MS",
        deserialize_with = "bestchat_domain::settings::millis"
    )]
    pub timeout: Duration,
    /// `BESTCHAT_MCP_MAX_RESPONSE_BYTES`: largest answer read from a server.
    #[serde(rename = "BESTCHAT_MCP_MAX_RESPONSE_BYTES")]
    pub max_response_bytes: usize,
    /// `BESTCHAT_MCP_MAX_TOOLS`: most tools one server may list.
    #[serde(rename = "BESTCHAT_MCP_MAX_TOOLS")]
    pub max_tools: usize,
    /// `BESTCHAT_MCP_MAX_SERVERS`: servers one user may register.
    #[serde(rename = "BESTCHAT_MCP_MAX_SERVERS")]
    pub max_servers: usize,
    /// `BESTCHAT_MCP_MAX_LISTING_BYTES`: the most one server's tool listing may hold (every turn
    /// of its user sends the tools to the model).
    #[serde(rename = "BESTCHAT_MCP_MAX_LISTING_BYTES")]
    pub max_listing_bytes: usize,
}

impl Default for McpConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(20),
            max_response_bytes: 1024 * 1024,
            max_tools: 100,
            max_servers: 20,
            max_listing_bytes: 256 * 1024,
        }
    }
}

impl McpConfig {
    pub fn limits(&self) -> bestchat_mcp::Limits {
        bestchat_mcp::Limits {
            timeout: self.timeout,
            max_response_bytes: self.max_response_bytes,
            max_tools: self.max_tools,
        }
    }
}

pub const DEFAULT_DATA_DIR: &str = ".bestchat";
/// Most clock skew a deployment may forgive on tokens.
pub const MAX_JWT_LEEWAY: Duration = Duration::from_secs(300);
/// Shortest lease: renewals every third of it must stay cheap next to a database round trip.
pub const MIN_TURN_LEASE: Duration = Duration::from_millis(300);
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 1024 * 1024;
pub const SQLITE_FILE: &str = "bestchat.db";
pub const MASTER_KEY_FILE: &str = "master.key";
/// Under the data directory: the resume buffer, when no Redis is configured.
pub const STREAM_BUFFER_DIR: &str = "stream-buffer";

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_env_for(Uses::EVERYTHING)
    }

    pub fn from_env_for(uses: Uses) -> Result<Self, ConfigError> {
        Self::from_lookup_for(|key| std::env::var(key).ok(), uses)
    }

    /// Reads settings through `lookup`, so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Self::from_lookup_for(lookup, Uses::EVERYTHING)
    }

    /// As [`Config::from_lookup`] for a function that reaches only what `uses` names: the
    /// database and cache it does not use are neither required nor opened.
    pub fn from_lookup_for(
        lookup: impl Fn(&str) -> Option<String>,
        uses: Uses,
    ) -> Result<Self, ConfigError> {
        let env = Environment(&lookup);
        let general: GeneralValues = env.section()?;
        let data_dir = general.data_dir;
        let store = match env.optional("DATABASE_URL").filter(|_| uses.database) {
            None if !uses.database => StoreConfig::Absent,
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                StoreConfig::Postgres {
                    url,
                    iam_auth: general.database_iam_auth,
                }
            }
            Some(_) => {
                return Err(ConfigError(
                    "DATABASE_URL must be a postgres:// URL (unset it to use the embedded SQLite store)"
                        .into(),
                ));
            }
            None => StoreConfig::Sqlite {
                path: data_dir.join(SQLITE_FILE),
            },
        };
        let postgres = PgSettings {
            roots: tls_roots(&env)?,
            ..env.section()?
        };
        if postgres.pool_size == 0 {
            return Err(ConfigError("DATABASE_POOL_SIZE must be at least 1".into()));
        }
        let default_model = ModelRef {
            provider: ProviderId::parse(&general.default_provider)
                .map_err(|e| ConfigError(format!("BESTCHAT_DEFAULT_PROVIDER: {}", e.message)))?,
            model: ModelId::parse(&general.default_model)
                .map_err(|e| ConfigError(format!("BESTCHAT_DEFAULT_MODEL: {}", e.message)))?,
        };
        let cache = match env.optional("REDIS_URL").filter(|_| uses.cache) {
            None if !uses.cache => CacheConfig::Memory,
            Some(url) if url.starts_with("redis://") || url.starts_with("rediss://") => {
                CacheConfig::Redis {
                    url,
                    settings: env.section()?,
                    iam: redis_iam(&env)?,
                }
            }
            Some(_) => {
                return Err(ConfigError(
                    "REDIS_URL must be a redis:// or rediss:// URL (unset it for the in-process cache)"
                        .into(),
                ));
            }
            // In Lambda every container would get its own resume buffer and breakers, and a
            // client reconnecting to another container would resume from nothing.
            None if env.optional("AWS_LAMBDA_FUNCTION_NAME").is_some() => {
                return Err(ConfigError(
                    "REDIS_URL is required in AWS Lambda: resume buffers, cancel flags and circuit breakers must be shared by every container".into(),
                ));
            }
            None => CacheConfig::Memory,
        };
        let vault = match env.optional("KMS_KEY_ID") {
            Some(key_id) => VaultConfig::Kms { key_id },
            None => VaultConfig::Local {
                path: data_dir.join(MASTER_KEY_FILE),
            },
        };
        let breaker: BreakerSettings = env.section()?;
        if breaker.failure_threshold == 0 {
            return Err(ConfigError(
                "BESTCHAT_BREAKER_THRESHOLD must be at least 1".into(),
            ));
        }
        let auth = AuthConfig {
            keys: auth_keys(&env)?,
            ..env.section()?
        };
        if auth.leeway > MAX_JWT_LEEWAY {
            return Err(ConfigError(format!(
                "BESTCHAT_JWT_LEEWAY_S must be at most {}",
                MAX_JWT_LEEWAY.as_secs()
            )));
        }
        let realtime: RealtimeConfig = env.section()?;
        if let Some(secret) = &realtime.emulator_secret
            && (secret.len() < crate::auth::MIN_SECRET_BYTES
                || !secret.bytes().all(|b| b.is_ascii_graphic()))
        {
            return Err(ConfigError(format!(
                "BESTCHAT_EMULATOR_SECRET must be at least {} visible ASCII characters",
                crate::auth::MIN_SECRET_BYTES
            )));
        }
        if realtime.coalesce_window > Duration::from_secs(1) {
            return Err(ConfigError(
                "BESTCHAT_DELTA_COALESCE_MS must be at most 1000".into(),
            ));
        }
        let context = context(&env)?;
        if general.turn_lease < MIN_TURN_LEASE {
            return Err(ConfigError(format!(
                "BESTCHAT_TURN_LEASE_MS must be at least {}",
                MIN_TURN_LEASE.as_millis()
            )));
        }
        let tools = ToolsConfig::from_env(&env, &data_dir)?;
        if tools.ceilings.max_output_bytes
            > u64::try_from(realtime.message_max_bytes).unwrap_or(u64::MAX)
        {
            return Err(ConfigError(
                "BESTCHAT_TOOL_MAX_OUTPUT_BYTES must be at most BESTCHAT_MESSAGE_MAX_BYTES: a tool's result is stored as a message".into(),
            ));
        }
        let allow_private_provider_urls = general
            .allow_private_provider_urls
            .unwrap_or(matches!(store, StoreConfig::Sqlite { .. }));
        let access: crate::roles::AccessSettings = env.section()?;
        Ok(Self {
            context,
            tools,
            mcp: env.section()?,
            rate_limits: env.section()?,
            budgets: env.section()?,
            billing: {
                let billing: crate::billing::BillingSettings = env.section()?;
                billing.check()?;
                billing
            },
            files: {
                let files: crate::files::FileSettings = env.section()?;
                files.check()?;
                files
            },
            role_tool_ceilings: access.ceilings()?,
            access,
            metrics_namespace: match general.metrics.as_deref() {
                None | Some("off") => None,
                Some("emf") => Some(general.metrics_namespace),
                Some(other) => {
                    return Err(ConfigError(format!(
                        "BESTCHAT_METRICS must be emf or off, not {other:?}"
                    )));
                }
            },
            turn_lease: general.turn_lease,
            turn_start_timeout: general.turn_start_timeout,
            turn_max_duration: general.turn_max_duration,
            auth,
            realtime,
            store,
            data_dir,
            postgres,
            max_request_bytes: general.max_request_bytes,
            max_response_bytes: general.max_response_bytes,
            default_model,
            cache,
            vault,
            provider_http: env.section()?,
            retry: env.section()?,
            breaker,
            env_keys: general.env_keys,
            bedrock: general.bedrock,
            bedrock_models: general.bedrock_models.map(|list| {
                list.split(',')
                    .map(|m| m.trim().to_owned())
                    .filter(|m| !m.is_empty())
                    .collect()
            }),
            allow_private_provider_urls,
        })
    }
}

/// What verifies the database server's certificate.
fn tls_roots(env: &Environment<'_>) -> Result<TlsRoots, ConfigError> {
    match (
        env.optional("DATABASE_CA_FILE"),
        env.optional("DATABASE_CA_BUNDLE").as_deref(),
    ) {
        (Some(_), Some(_)) => Err(ConfigError(
            "set DATABASE_CA_FILE or DATABASE_CA_BUNDLE, not both".into(),
        )),
        (Some(file), None) => Ok(TlsRoots::File(PathBuf::from(file))),
        (None, Some("aws-rds")) => Ok(TlsRoots::AwsRds),
        (None, Some(other)) => Err(ConfigError(format!(
            "DATABASE_CA_BUNDLE must be aws-rds (the bundle built in), not {other:?}"
        ))),
        (None, None) => Ok(TlsRoots::Mozilla),
    }
}

/// How tokens are checked: one of a shared secret or the identity provider's keys.
fn auth_keys(env: &Environment<'_>) -> Result<AuthKeys, ConfigError> {
    match (
        env.optional("BESTCHAT_JWT_SECRET"),
        env.optional("BESTCHAT_JWKS_URL"),
    ) {
        (Some(_), Some(_)) => Err(ConfigError(
            "set BESTCHAT_JWT_SECRET or BESTCHAT_JWKS_URL, not both".into(),
        )),
        (Some(secret), None) if secret.len() < crate::auth::MIN_SECRET_BYTES => {
            Err(ConfigError(format!(
                "BESTCHAT_JWT_SECRET must be at least {} bytes",
                crate::auth::MIN_SECRET_BYTES
            )))
        }
        (Some(secret), None) => Ok(AuthKeys::Secret(secret)),
        (None, Some(url)) => Ok(AuthKeys::Jwks(url)),
        (None, None) => Ok(AuthKeys::Unset),
    }
}

/// `REDIS_IAM_SERVERLESS`: on unless set to 0.
#[derive(Deserialize)]
#[serde(default)]
struct IamServerless {
    #[serde(rename = "REDIS_IAM_SERVERLESS")]
    on: bool,
}

impl Default for IamServerless {
    fn default() -> Self {
        Self { on: true }
    }
}

fn redis_iam(env: &Environment<'_>) -> Result<Option<RedisIam>, ConfigError> {
    match (
        env.optional("REDIS_IAM_USER"),
        env.optional("REDIS_IAM_CACHE"),
    ) {
        (None, None) => Ok(None),
        (Some(user), Some(cache)) => Ok(Some(RedisIam {
            user,
            cache,
            serverless: env.section::<IamServerless>()?.on,
        })),
        _ => Err(ConfigError(
            "REDIS_IAM_USER and REDIS_IAM_CACHE go together (IAM authentication to ElastiCache)"
                .into(),
        )),
    }
}

fn context(env: &Environment<'_>) -> Result<ContextConfig, ConfigError> {
    let settings: ContextSettings = env.section()?;
    for (key, value) in [
        ("BESTCHAT_CONTEXT_MARGIN_PERCENT", settings.margin_percent),
        (
            "BESTCHAT_SUMMARIZE_AT_PERCENT",
            settings.summarize_at_percent,
        ),
        (
            "BESTCHAT_SUMMARY_KEEPS_RECENT_PERCENT",
            settings.summary_keeps_recent_percent,
        ),
    ] {
        if value > 100 {
            return Err(ConfigError(format!("{key} must be at most 100")));
        }
    }
    let summary_model = match env.optional("BESTCHAT_SUMMARY_MODEL") {
        None => None,
        Some(raw) => {
            let (provider, model) = raw.split_once('/').ok_or_else(|| {
                ConfigError("BESTCHAT_SUMMARY_MODEL must be provider/model".into())
            })?;
            Some(ModelRef {
                provider: ProviderId::parse(provider)
                    .map_err(|e| ConfigError(format!("BESTCHAT_SUMMARY_MODEL: {}", e.message)))?,
                model: ModelId::parse(model)
                    .map_err(|e| ConfigError(format!("BESTCHAT_SUMMARY_MODEL: {}", e.message)))?,
            })
        }
    };
    Ok(ContextConfig {
        settings,
        summary_model,
        ..env.section()?
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn embedded_defaults() {
        let c = config(&[]).unwrap();
        assert_eq!(
            c.store,
            StoreConfig::Sqlite {
                path: PathBuf::from(".bestchat/bestchat.db")
            }
        );
        assert_eq!(c.max_request_bytes, DEFAULT_MAX_REQUEST_BYTES);
        assert_eq!(c.default_model.provider.as_str(), "echo");
        assert!(matches!(c.cache, CacheConfig::Memory));
        assert_eq!(
            c.vault,
            VaultConfig::Local {
                path: PathBuf::from(".bestchat/master.key")
            }
        );
        assert!(!c.env_keys);
        assert!(
            !c.bedrock,
            "Bedrock bills the operator: off until turned on"
        );
        assert!(c.allow_private_provider_urls);
    }

    #[test]
    fn cloud_adapters_and_provider_limits() {
        let c = config(&[
            ("REDIS_URL", "redis://cache:6379"),
            ("KMS_KEY_ID", "alias/bestchat"),
            ("BESTCHAT_ENV_KEYS", "1"),
            ("BESTCHAT_BEDROCK", "1"),
            ("BESTCHAT_PROVIDER_MAX_RETRIES", "4"),
            ("BESTCHAT_BREAKER_COOLDOWN_MS", "1500"),
        ])
        .unwrap();
        assert!(matches!(c.cache, CacheConfig::Redis { .. }));
        assert_eq!(
            c.vault,
            VaultConfig::Kms {
                key_id: "alias/bestchat".into()
            }
        );
        assert!(c.env_keys);
        assert!(c.bedrock);
        assert_eq!(c.retry.max_retries, 4);
        assert_eq!(c.breaker.cooldown, Duration::from_millis(1500));
        assert!(config(&[("REDIS_URL", "memcached://x")]).is_err());
        let in_lambda = config(&[("AWS_LAMBDA_FUNCTION_NAME", "chat-turn")]).unwrap_err();
        assert!(in_lambda.to_string().contains("REDIS_URL"), "{in_lambda}");
        assert!(
            config(&[
                ("AWS_LAMBDA_FUNCTION_NAME", "chat-turn"),
                ("REDIS_URL", "rediss://cache:6379"),
                ("REDIS_COOLDOWN_MS", "2000"),
            ])
            .is_ok()
        );
        assert!(config(&[("BESTCHAT_ENV_KEYS", "maybe")]).is_err());
        assert!(config(&[("BESTCHAT_BREAKER_THRESHOLD", "0")]).is_err());
    }

    #[test]
    fn postgres_and_overrides() {
        let c = config(&[
            ("DATABASE_URL", "postgres://u@h/db"),
            ("DATABASE_POOL_SIZE", "2"),
            ("BESTCHAT_MAX_REQUEST_BYTES", "10"),
        ])
        .unwrap();
        assert!(matches!(c.store, StoreConfig::Postgres { .. }));
        assert_eq!(c.postgres.pool_size, 2);
        assert_eq!(c.max_request_bytes, 10);
        assert!(
            !c.allow_private_provider_urls,
            "a shared store is a shared service: users stay off the private network"
        );
        let laptop_with_postgres = config(&[
            ("DATABASE_URL", "postgres://u@h/db"),
            ("BESTCHAT_ALLOW_PRIVATE_PROVIDER_URLS", "1"),
        ])
        .unwrap();
        assert!(laptop_with_postgres.allow_private_provider_urls);
    }

    #[test]
    fn malformed_values_name_the_variable() {
        let e = config(&[("DATABASE_POOL_SIZE", "many")]).unwrap_err();
        assert!(e.to_string().contains("DATABASE_POOL_SIZE"));
        let e = config(&[("DATABASE_URL", "mysql://x")]).unwrap_err();
        assert!(e.to_string().contains("DATABASE_URL"));
        assert!(config(&[("DATABASE_POOL_SIZE", "0")]).is_err());
    }

    /// What the SAM template sets: IAM tokens for RDS Proxy and ElastiCache, the AWS CA bundle.
    #[test]
    fn the_deployed_settings() {
        let c = config(&[
            (
                "DATABASE_URL",
                "postgres://bestchat@proxy:5432/bestchat?sslmode=require",
            ),
            ("DATABASE_IAM_AUTH", "1"),
            ("DATABASE_CA_BUNDLE", "aws-rds"),
            ("REDIS_URL", "rediss://cache:6379"),
            ("REDIS_IAM_USER", "bestchat"),
            ("REDIS_IAM_CACHE", "bestchat-cache"),
            ("BESTCHAT_METRICS", "emf"),
        ])
        .unwrap();
        assert!(matches!(
            c.store,
            StoreConfig::Postgres { iam_auth: true, .. }
        ));
        assert_eq!(c.postgres.roots, TlsRoots::AwsRds);
        let CacheConfig::Redis { iam: Some(iam), .. } = &c.cache else {
            panic!("Redis with IAM expected: {:?}", c.cache);
        };
        assert_eq!(
            (iam.user.as_str(), iam.cache.as_str(), iam.serverless),
            ("bestchat", "bestchat-cache", true)
        );
        assert_eq!(c.metrics_namespace.as_deref(), Some("BestChat"));
        let defaults = config(&[]).unwrap();
        assert_eq!(defaults.metrics_namespace, None);
        assert_eq!(defaults.postgres.roots, TlsRoots::Mozilla);
    }

    #[test]
    fn deployed_settings_that_cannot_work_are_refused_with_their_name() {
        for (vars, named) in [
            (
                &[("DATABASE_CA_BUNDLE", "mozilla")][..],
                "DATABASE_CA_BUNDLE",
            ),
            (
                &[
                    ("DATABASE_CA_BUNDLE", "aws-rds"),
                    ("DATABASE_CA_FILE", "/ca.pem"),
                ][..],
                "DATABASE_CA_FILE",
            ),
            (
                &[
                    ("DATABASE_URL", "postgres://u@h/db"),
                    ("DATABASE_IAM_AUTH", "yes please"),
                ][..],
                "DATABASE_IAM_AUTH",
            ),
            (
                &[("REDIS_URL", "rediss://c:6379"), ("REDIS_IAM_USER", "u")][..],
                "REDIS_IAM_CACHE",
            ),
            (&[("BESTCHAT_METRICS", "statsd")][..], "BESTCHAT_METRICS"),
        ] {
            let e = config(vars).unwrap_err().to_string();
            assert!(e.contains(named), "{vars:?}: {e}");
        }
    }

    /// A function outside the VPC has neither, and must start without them even in Lambda.
    #[test]
    fn a_function_that_uses_nothing_needs_neither_database_nor_cache() {
        let c = Config::from_lookup_for(
            |k| (k == "AWS_LAMBDA_FUNCTION_NAME").then(|| "ws-connect".to_owned()),
            Uses::NOTHING,
        )
        .unwrap();
        assert_eq!(c.store, StoreConfig::Absent);
        assert!(matches!(c.cache, CacheConfig::Memory));
    }
}
