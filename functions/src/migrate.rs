//! The `migrate` function: brings the schema up to date, inside the VPC, when invoked directly
//! (by `migrate-resource` on every deploy, or by an operator).

use bestchat_app::config::{ConfigError, Uses};
use bestchat_app::{AppState, Config};
use serde_json::{Value, json};

/// What `migrate` reaches: the database only.
pub const USES: Uses = Uses {
    database: true,
    cache: false,
};

/// The versions applied now, as `{"applied": [..]}`. The state is built per invocation, so a bad
/// configuration is this invocation's error instead of the process's.
pub async fn handle(config: Result<Config, ConfigError>) -> Result<Value, String> {
    let state = AppState::new(config.map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    let report = state
        .migrate()
        .await
        .map_err(|e| format!("migrations failed: {e}"))?;
    tracing::info!(applied = ?report.applied, "schema up to date");
    Ok(json!({ "applied": report.applied }))
}
