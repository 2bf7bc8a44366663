//! The `migrate` function: brings the schema up to date, inside the VPC, when invoked directly
//! (by `migrate-resource` on every deploy, or by an operator), and keeps the application's
//! database user to data only: the functions connect as it, never as the owner of the schema.

use bestchat_app::config::{ConfigError, Uses};
use bestchat_app::state::StartError;
use bestchat_app::{AppState, Config};
use bestchat_domain::ports::store::StoreError;
use serde::Deserialize;
use serde_json::{Value, json};

/// What `migrate` reaches: the database only.
pub const USES: Uses = Uses {
    database: true,
    cache: false,
};

/// What an invocation may ask besides migrating.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// The user the functions connect as: created if missing, given this password (the one
    /// RDS Proxy presents for it) and the rights to read and write the data, nothing more.
    pub app_user: Option<AppUser>,
}

#[derive(Deserialize)]
pub struct AppUser {
    pub name: String,
    pub password: String,
}

impl std::fmt::Debug for AppUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppUser")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Why `migrate` failed: the reason the deploy shows (never the password).
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("not a migrate request: {0}")]
    Request(serde_json::Error),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Start(#[from] StartError),
    #[error("migrations failed: {0}")]
    Migrations(StoreError),
    #[error("the application's database user: {0}")]
    AppUser(StoreError),
}

/// The versions applied now, as `{"applied": [..]}`. The state is built per invocation, so a bad
/// configuration is this invocation's error instead of the process's.
pub async fn handle(
    config: Result<Config, ConfigError>,
    payload: Value,
) -> Result<Value, MigrateError> {
    let request: Request = if payload.is_null() {
        Request::default()
    } else {
        serde_json::from_value(payload).map_err(MigrateError::Request)?
    };
    let state = AppState::new(config?)?;
    let report = state.migrate().await.map_err(MigrateError::Migrations)?;
    tracing::info!(applied = ?report.applied, "schema up to date");
    if let Some(user) = request.app_user {
        state
            .grant_app_user(&user.name, &user.password)
            .await
            .map_err(MigrateError::AppUser)?;
        tracing::info!(
            user = user.name,
            "the application's database user may read and write data only"
        );
    }
    Ok(json!({ "applied": report.applied }))
}
