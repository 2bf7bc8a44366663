//! The `migrate` function: brings the schema up to date, as a CloudFormation custom resource on
//! every deploy (so a failed migration fails the deploy before any function needing the new
//! schema is updated) or when invoked directly.

use bestchat_app::config::{ConfigError, Uses};
use bestchat_app::{AppState, Config};
use serde_json::{Value, json};

use crate::custom_resource;

/// What `migrate` reaches: the database only.
pub const USES: Uses = Uses {
    database: true,
    cache: false,
};

/// Handles one event. The state is built per event, so a bad configuration or an unreachable
/// database is answered to CloudFormation as a failure instead of leaving the stack waiting.
pub async fn handle(config: Result<Config, ConfigError>, event: Value) -> Result<Value, String> {
    if !custom_resource::is_request(&event) {
        return Ok(json!({ "applied": migrate(config).await? }));
    }
    let request =
        serde_json::from_value(event).map_err(|e| format!("not a CloudFormation request: {e}"))?;
    custom_resource::handle(request, |_, _| async move {
        // CloudFormation's `Fn::GetAtt` reads strings.
        let applied = migrate(config).await?;
        let versions: Vec<String> = applied.iter().map(i32::to_string).collect();
        Ok(json!({ "Applied": versions.join(",") }))
    })
    .await?;
    Ok(json!({}))
}

/// The versions applied now, in order.
async fn migrate(config: Result<Config, ConfigError>) -> Result<Vec<i32>, String> {
    let state = AppState::new(config.map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    let report = state
        .migrate()
        .await
        .map_err(|e| format!("migrations failed: {e}"))?;
    tracing::info!(applied = ?report.applied, "schema up to date");
    Ok(report.applied)
}
