//! The `migrate-resource` function: the `Migrations` custom resource. It runs outside the VPC,
//! starts `migrate` inside it (a synchronous invocation) for `Create` and `Update`, and answers
//! CloudFormation itself: on `Delete` at once, without starting anything, and on a migration
//! that hangs before its own deadline.

use std::future::Future;
use std::time::Duration;

use serde_json::{Value, json};

use crate::custom_resource;

/// The logical name `migrate` is invoked by (`MIGRATE_FUNCTION` names the deployed one).
pub const MIGRATE: &str = "migrate";

/// Answers the request in `event`; `migrate` runs the migrations with the payload it is given
/// (the application's database user, from the resource's `AppUser` and `AppPassword`) and gives
/// the versions applied.
pub async fn handle<M, F>(event: Value, budget: Duration, migrate: M) -> Result<Value, String>
where
    M: FnOnce(Value) -> F,
    F: Future<Output = Result<Value, String>>,
{
    let request =
        serde_json::from_value(event).map_err(|e| format!("not a CloudFormation request: {e}"))?;
    custom_resource::handle(request, budget, |_, properties| async move {
        let payload = match (
            properties.get("AppUser").and_then(Value::as_str),
            properties.get("AppPassword").and_then(Value::as_str),
        ) {
            (Some(name), Some(password)) => {
                json!({ "app_user": { "name": name, "password": password } })
            }
            _ => json!({}),
        };
        let answer = migrate(payload).await?;
        // CloudFormation's `Fn::GetAtt` reads strings.
        let versions: Vec<String> = answer["applied"]
            .as_array()
            .ok_or_else(|| format!("migrate answered without the versions applied: {answer}"))?
            .iter()
            .map(ToString::to_string)
            .collect();
        Ok(json!({ "Applied": versions.join(",") }))
    })
    .await?;
    Ok(json!({}))
}
