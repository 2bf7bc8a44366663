//! AppState: the adapters, chosen once per cold start from the configuration.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use bestchat_cache::{
    BufferSettings, FileStreamBuffer, MemoryCache, RedisCache, RedisLogin, RedisStreamBuffer,
};
use bestchat_domain::ports::blobs::BlobStore;
use bestchat_domain::ports::cache::{Cache, CacheError};
use bestchat_domain::ports::credentials::ConnectionPassword;
use bestchat_domain::ports::keys::{KeyVault, VaultError};
use bestchat_domain::ports::realtime::{Connections, Invoker, Publisher, StreamBuffer};
use bestchat_domain::ports::store::StoreError;
use bestchat_egress::{Guard, Reach};
use bestchat_platform::connections::{DynamoConnections, MemoryConnections};
use bestchat_platform::iam_token::{IamAuthToken, TokenTarget};
use bestchat_platform::invoke::LambdaInvoker;
use bestchat_platform::keys::{KmsKeyVault, LocalKeyVault};
use bestchat_platform::publish::{ApiGatewayPublisher, ConnectionHub};
use bestchat_providers::Providers;
use bestchat_providers::breaker::Breaker;
use bestchat_providers::catalog::{Catalog, CatalogError};
use bestchat_providers::failover::Failover;
use bestchat_store::PgStore;
#[cfg(feature = "sqlite")]
use bestchat_store::SqliteStore;
use bestchat_store::migrations::MigrationReport;

use crate::auth::{JwtVerifier, KeySource};
use crate::config::{
    AuthKeys, BlobConfig, CacheConfig, Config, ConfigError, StoreConfig, Uses, VaultConfig,
};
use crate::decisions::DecisionPorts;
use crate::devices::Devices;
use crate::error::AppError;
use crate::jobs::{CHAT_TURN, SUMMARIZE};
use crate::mcp::McpClientSource;
use crate::metrics::Metrics;
use crate::models::{OperatorRules, ProviderAccess};
use crate::send::SendPorts;
use crate::tools::{TOOL_EXECUTOR, ToolRuntime};
use crate::turn::ports::{ContextPorts, FanoutPorts, StepPorts, TurnPorts};

pub use bestchat_domain::ports::store::Store;

#[derive(Clone)]
enum StoreAdapter {
    Postgres(PgStore),
    #[cfg(feature = "sqlite")]
    Sqlite(SqliteStore),
}

pub struct AppState {
    pub config: Config,
    store: StoreAdapter,
    pub cache: Arc<dyn Cache>,
    pub vault: Arc<dyn KeyVault>,
    pub providers: Providers,
    /// The private-address guard every user-aimed request goes through.
    pub guard: Guard,
    pub breaker: Breaker,
    pub catalog: &'static Catalog,
    pub connections: Arc<dyn Connections>,
    pub publisher: Arc<dyn Publisher>,
    /// The in-process sockets, when frames are not posted through API Gateway.
    pub hub: Option<ConnectionHub>,
    pub invoker: Arc<dyn Invoker>,
    pub stream_buffer: Arc<dyn StreamBuffer>,
    /// Token checks for the `$connect` authorizer; `None` when no keys are configured.
    pub auth: Option<JwtVerifier>,
    pub metrics: Metrics,
    /// The sandbox and module sources, built on first use: most functions never touch them.
    tools: std::sync::OnceLock<Result<ToolRuntime, crate::tools::ToolStartError>>,
    blobs: std::sync::OnceLock<Arc<dyn BlobStore>>,
    mcp: std::sync::OnceLock<Result<bestchat_mcp::McpClient, bestchat_mcp::McpError>>,
    /// Stripe's secrets, read on first use (from Secrets Manager in AWS).
    stripe_keys: tokio::sync::OnceCell<crate::billing::StripeKeys>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot open the store: {0}")]
    Store(#[from] StoreError),
    #[error("DATABASE_URL is required: this build has no embedded store")]
    NoEmbeddedStore,
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot set up the cache: {0}")]
    Cache(#[from] CacheError),
    #[error("cannot open the key vault: {0}")]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

/// IAM tokens for the database user, host and port of `url`.
fn rds_token(url: &str) -> Result<Arc<dyn ConnectionPassword>, StartError> {
    let invalid = |why: &str| StartError::Config(ConfigError(format!("DATABASE_URL {why}")));
    let parsed = url::Url::parse(url).map_err(|_| invalid("is not a URL"))?;
    let host = parsed.host_str().ok_or_else(|| invalid("names no host"))?;
    if parsed.username().is_empty() {
        return Err(invalid("names no user, which IAM authentication needs"));
    }
    Ok(Arc::new(IamAuthToken::new(
        TokenTarget::Rds {
            host: host.to_owned(),
            port: parsed.port().unwrap_or(5432),
            user: parsed.username().to_owned(),
        },
        None,
    )))
}

/// Makes the invoker that runs event functions on this process (see `in_process`).
pub(crate) type LocalInvoker = fn(Weak<AppState>) -> Arc<dyn Invoker>;

/// Lambda for the functions the environment names. With none named, event functions run on
/// this process when a `local` invoker is given; without one, invoking is refused.
fn invoker(
    functions: HashMap<String, String>,
    emulator_secret: Option<String>,
    local: Option<LocalInvoker>,
    state: &Weak<AppState>,
) -> Arc<dyn Invoker> {
    match local {
        Some(local) if functions.is_empty() => local(state.clone()),
        _ => Arc::new(LambdaInvoker::new(functions, emulator_secret)),
    }
}

impl AppState {
    pub fn from_env() -> Result<Arc<Self>, StartError> {
        Self::new(Config::from_env()?)
    }

    /// The state of a function that reaches only what `uses` names.
    pub fn for_function(uses: Uses) -> Result<Arc<Self>, StartError> {
        Self::new(Config::from_env_for(uses)?)
    }

    /// Builds every adapter; event functions run in Lambda (a build with the `in-process`
    /// feature defines `new` in `in_process`, which runs them here when none is named).
    #[cfg(not(feature = "in-process"))]
    pub fn new(config: Config) -> Result<Arc<Self>, StartError> {
        Self::assemble(config, None)
    }

    /// Builds every adapter; none opens a network connection here, so a cold start stays fast.
    pub(crate) fn assemble(
        config: Config,
        local: Option<LocalInvoker>,
    ) -> Result<Arc<Self>, StartError> {
        let store = match &config.store {
            StoreConfig::Postgres { url, iam_auth } => {
                let password = match iam_auth {
                    true => Some(rds_token(url)?),
                    false => None,
                };
                StoreAdapter::Postgres(PgStore::connect_with(url, &config.postgres, password)?)
            }
            StoreConfig::Absent => StoreAdapter::Postgres(PgStore::absent()?),
            #[cfg(not(feature = "sqlite"))]
            StoreConfig::Sqlite { .. } => return Err(StartError::NoEmbeddedStore),
            #[cfg(feature = "sqlite")]
            StoreConfig::Sqlite { path } => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|source| StartError::DataDir {
                        path: dir.display().to_string(),
                        source,
                    })?;
                }
                StoreAdapter::Sqlite(SqliteStore::open(path)?)
            }
        };
        let buffer_settings = BufferSettings {
            ttl: config.realtime.stream_buffer_ttl,
            max_frames: config.realtime.stream_buffer_max_frames,
        };
        let (cache, stream_buffer): (Arc<dyn Cache>, Arc<dyn StreamBuffer>) = match &config.cache {
            CacheConfig::Redis { url, settings, iam } => {
                let login = iam.as_ref().map(|iam| RedisLogin {
                    user: iam.user.clone(),
                    password: Arc::new(IamAuthToken::new(
                        TokenTarget::ElastiCache {
                            cache: iam.cache.clone(),
                            user: iam.user.clone(),
                            serverless: iam.serverless,
                        },
                        None,
                    )),
                });
                let redis = RedisCache::connect_with(url, settings, login)?;
                (
                    Arc::new(redis.clone()),
                    Arc::new(RedisStreamBuffer::new(redis, buffer_settings)),
                )
            }
            CacheConfig::Memory => (
                Arc::new(MemoryCache::new()),
                Arc::new(FileStreamBuffer::new(
                    config.data_dir.join(crate::config::STREAM_BUFFER_DIR),
                    buffer_settings,
                )),
            ),
        };
        let vault: Arc<dyn KeyVault> = match &config.vault {
            VaultConfig::Kms { key_id } => Arc::new(KmsKeyVault::new(key_id.clone())),
            VaultConfig::Local { path } => Arc::new(LocalKeyVault::open(path)?),
        };
        let guard = Guard::new(if config.allow_private_provider_urls {
            Reach::Anywhere
        } else {
            Reach::PublicOnly
        });
        let providers = Providers::new(config.provider_http.clone(), guard.clone());
        let breaker = Breaker::new(Arc::clone(&cache), config.breaker.clone());
        let catalog = Catalog::builtin()?;
        let connections: Arc<dyn Connections> = match &config.realtime.connections_table {
            Some(table) => Arc::new(DynamoConnections::new(table.clone())),
            None => Arc::new(MemoryConnections::new()),
        };
        let (publisher, hub): (Arc<dyn Publisher>, Option<ConnectionHub>) =
            match &config.realtime.ws_endpoint {
                Some(endpoint) => (
                    Arc::new(ApiGatewayPublisher::new(
                        endpoint.clone(),
                        config.realtime.emulator_secret.clone(),
                    )),
                    None,
                ),
                None => {
                    let hub = ConnectionHub::new();
                    (Arc::new(hub.clone()), Some(hub))
                }
            };
        let auth = match &config.auth.keys {
            AuthKeys::Secret(secret) => Some(KeySource::Secret(secret.clone().into_bytes())),
            AuthKeys::Jwks(url) => Some(KeySource::Jwks(url.clone())),
            AuthKeys::Unset => None,
        }
        .map(|keys| {
            JwtVerifier::new(keys, &config.auth.issuer, &config.auth.audience)
                .with_leeway(config.auth.leeway)
        });
        let lambda_functions: HashMap<String, String> = [
            (CHAT_TURN, &config.realtime.chat_turn_function),
            (SUMMARIZE, &config.realtime.summarize_function),
            (TOOL_EXECUTOR, &config.tools.executor_function),
            (crate::files::FILES_PROCESS, &config.files.process_function),
        ]
        .into_iter()
        .filter_map(|(logical, deployed)| Some((logical.to_owned(), deployed.clone()?)))
        .collect();
        let metrics = Metrics::new(config.metrics_namespace.clone());
        Ok(Arc::new_cyclic(|me| {
            let invoker = invoker(
                lambda_functions,
                config.realtime.emulator_secret.clone(),
                local,
                me,
            );
            Self {
                config,
                store,
                cache,
                vault,
                providers,
                guard,
                breaker,
                catalog,
                connections,
                publisher,
                hub,
                invoker,
                stream_buffer,
                auth,
                metrics,
                tools: std::sync::OnceLock::new(),
                blobs: std::sync::OnceLock::new(),
                mcp: std::sync::OnceLock::new(),
                stripe_keys: tokio::sync::OnceCell::new(),
            }
        }))
    }

    /// What deciding a user's providers and models reads.
    pub fn provider_access(&self) -> ProviderAccess<'_> {
        ProviderAccess {
            configs: self.store(),
            vault: self.vault.as_ref(),
            cache: self.cache.as_ref(),
            providers: &self.providers,
            catalog: self.catalog,
            guard: &self.guard,
            rules: OperatorRules {
                env_keys: self.config.env_keys,
                bedrock: self.config.bedrock,
                bedrock_models: self.config.bedrock_models.as_deref(),
            },
        }
    }

    /// What planning a turn's context reads and writes.
    pub(crate) fn context_ports(&self) -> ContextPorts<'_> {
        ContextPorts {
            store: self.store(),
            cache: self.cache.as_ref(),
            invoker: self.invoker.as_ref(),
            settings: &self.config.context,
            files: self.store(),
            blobs: self.blobs().as_ref(),
            file_settings: &self.config.files,
        }
    }

    /// What sending a message (or retrying an answer) reads and writes.
    pub fn send_ports(&self) -> SendPorts<'_> {
        SendPorts {
            conversations: self.store(),
            turns: self.store(),
            buffer: self.stream_buffer.as_ref(),
            devices: self.devices(),
            invoker: self.invoker.as_ref(),
            turn_start_timeout: self.config.turn_start_timeout,
            budgets: self.budgets(),
            files: self.store(),
            file_settings: &self.config.files,
        }
    }

    /// Stripe's secrets, read once per process.
    pub async fn stripe_keys(&self) -> Result<crate::billing::StripeKeys, AppError> {
        self.stripe_keys
            .get_or_try_init(|| self.config.billing.keys())
            .await
            .cloned()
    }

    /// The budgets' rows, payments and ledgers, and their settings.
    pub fn budgets(&self) -> crate::budget::Budgets<'_> {
        crate::budget::Budgets {
            store: self.store(),
            billing: self.store(),
            cache: self.cache.as_ref(),
            settings: &self.config.budgets,
            billing_on: self.config.billing.on,
        }
    }

    /// What deciding a tool call reads and writes.
    pub fn decision_ports(&self) -> DecisionPorts<'_> {
        DecisionPorts {
            executions: self.store(),
            turns: self.store(),
            devices: self.devices(),
            invoker: self.invoker.as_ref(),
        }
    }

    /// What streaming an answer to the user's devices reads and writes.
    pub(crate) fn turn_ports(&self) -> TurnPorts<'_> {
        TurnPorts {
            store: self.store(),
            turn_lease: self.config.turn_lease,
            access: self.provider_access(),
            failover: Failover {
                providers: &self.providers,
                breaker: &self.breaker,
                settings: &self.config.retry,
            },
            context: self.context_ports(),
            fanout: self.fanout_ports(),
            step: self.step_ports(),
        }
    }

    pub(crate) fn fanout_ports(&self) -> FanoutPorts<'_> {
        FanoutPorts {
            devices: self.devices(),
            buffer: self.stream_buffer.as_ref(),
            cache: self.cache.as_ref(),
            realtime: &self.config.realtime,
        }
    }

    /// What ending a step and running its tool calls reads and writes.
    pub(crate) fn step_ports(&self) -> StepPorts<'_> {
        StepPorts {
            tools: self.store(),
            servers: self.store(),
            settings: self.store(),
            executions: self.store(),
            turns: self.store(),
            vault: self.vault.as_ref(),
            mcp: self,
            invoker: self.invoker.as_ref(),
            metrics: &self.metrics,
            devices: self.devices(),
            tools_config: &self.config.tools,
            mcp_timeout: self.config.mcp.timeout,
            turn_start_timeout: self.config.turn_start_timeout,
            budgets: self.budgets(),
            users: self.store(),
            role_ceilings: &self.config.role_tool_ceilings,
        }
    }

    /// The user's devices: the connection registry and the frame publisher.
    pub fn devices(&self) -> Devices {
        Devices {
            connections: Arc::clone(&self.connections),
            publisher: Arc::clone(&self.publisher),
            frame_max_bytes: self.config.realtime.frame_max_bytes,
        }
    }

    pub fn store(&self) -> &dyn Store {
        match &self.store {
            StoreAdapter::Postgres(s) => s,
            #[cfg(feature = "sqlite")]
            StoreAdapter::Sqlite(s) => s,
        }
    }

    /// The MCP client (its connection pool through the guard), built the first time a
    /// function needs it and kept for the process.
    pub fn mcp(&self) -> Result<&bestchat_mcp::McpClient, AppError> {
        self.mcp
            .get_or_init(|| {
                bestchat_mcp::McpClient::new(self.guard.clone(), self.config.mcp.limits())
            })
            .as_ref()
            .map_err(|e| AppError::Internal(e.to_string()))
    }

    /// The tool runtime (sandbox, blob store), built the first time a function needs it.
    pub fn tools(&self) -> Result<&ToolRuntime, AppError> {
        self.tools
            .get_or_init(|| ToolRuntime::new(&self.config.tools, Arc::clone(self.blobs())))
            .as_ref()
            .map_err(|e| AppError::Internal(e.to_string()))
    }

    /// The blob store (tool modules and their compiled code), built on first use.
    pub fn blobs(&self) -> &Arc<dyn BlobStore> {
        self.blobs
            .get_or_init(|| crate::tools::blob_store(&self.config.tools.blobs))
    }

    /// Brings the schema up to date (the `migrate` function, and the local gateway at start).
    pub async fn migrate(&self) -> Result<MigrationReport, StoreError> {
        match &self.store {
            StoreAdapter::Postgres(s) => s.migrate().await,
            #[cfg(feature = "sqlite")]
            StoreAdapter::Sqlite(s) => s.migrate().await,
        }
    }

    /// Keeps the application's database user to data only (PostgreSQL; the embedded store has
    /// no users).
    pub async fn grant_app_user(&self, name: &str, password: &str) -> Result<(), StoreError> {
        match &self.store {
            StoreAdapter::Postgres(s) => s.grant_app_user(name, password).await,
            #[cfg(feature = "sqlite")]
            StoreAdapter::Sqlite(_) => Ok(()),
        }
    }

    /// One line per adapter, for the start banner.
    pub fn describe_adapters(&self) -> Vec<(&'static str, String)> {
        let store = match &self.config.store {
            StoreConfig::Postgres { url, .. } => format!("PostgreSQL at {}", redact_url(url)),
            StoreConfig::Sqlite { path } => format!("SQLite at {}", path.display()),
            StoreConfig::Absent => "none (this function uses no database)".to_owned(),
        };
        let cache = match &self.config.cache {
            CacheConfig::Redis { url, .. } => format!("Redis at {}", redact_url(url)),
            CacheConfig::Memory => "in-process".to_owned(),
        };
        let vault = match &self.config.vault {
            VaultConfig::Kms { key_id } => format!("KMS key {key_id}"),
            VaultConfig::Local { path } => format!("local master key {}", path.display()),
        };
        let realtime = &self.config.realtime;
        let connections = realtime.connections_table.as_ref().map_or_else(
            || "in-process".to_owned(),
            |t| format!("DynamoDB table {t}"),
        );
        let publisher = realtime.ws_endpoint.as_ref().map_or_else(
            || "in-process".to_owned(),
            |e| format!("API Gateway at {e}"),
        );
        let turns = realtime.chat_turn_function.as_ref().map_or_else(
            || "in-process".to_owned(),
            |f| format!("Lambda function {f}"),
        );
        let tools = &self.config.tools;
        let blobs = match &tools.blobs {
            BlobConfig::S3 { bucket, .. } => format!("S3 bucket {bucket}"),
            BlobConfig::Local { dir } => dir.display().to_string(),
        };
        let executor = tools.executor_function.as_ref().map_or_else(
            || "in-process".to_owned(),
            |f| format!("Lambda function {f}"),
        );
        vec![
            ("store", store),
            ("cache", cache),
            ("keys", vault),
            ("connections", connections),
            ("frames", publisher),
            ("turns", turns),
            ("tools", format!("{executor}, modules in {blobs}")),
        ]
    }
}

/// Drops the password from a connection URL before it is printed.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            let user = credentials.split(':').next().unwrap_or_default();
            format!("{}{}@{}", &url[..scheme_end + 3], user, &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

impl McpClientSource for AppState {
    fn mcp_client(&self) -> Result<&bestchat_mcp::McpClient, AppError> {
        self.mcp()
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_are_not_printed() {
        assert_eq!(
            redact_url("postgres://bob:s3cret@db:5432/x"),
            "postgres://bob@db:5432/x"
        );
        assert_eq!(redact_url("postgres://db/x"), "postgres://db/x");
    }
}
