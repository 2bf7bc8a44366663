//! The `migrate-resource` function: the `Migrations` custom resource. It runs outside the VPC,
//! starts `migrate` inside it (a synchronous invocation) for `Create` and `Update`, and answers
//! CloudFormation itself: on `Delete` at once, without starting anything, and on a migration
//! that hangs before its own deadline.

use std::future::Future;
use std::time::Duration;

use serde_json::{Value, json};

use crate::custom_resource::{self, ResourceError};

/// The logical name `migrate` is invoked by (`MIGRATE_FUNCTION` names the deployed one).
pub const MIGRATE: &str = "migrate";

/// Answers the request in `event`; `migrate` runs the migrations with the payload it is given
/// (the application's database user, from the resource's `AppUser` and `AppPassword`) in the
/// version of `migrate` the request names (`CodeVersion`, if any) and gives the versions
/// applied. Running the version the request names is what lets a rollback succeed: its Update
/// carries the old version, which finds nothing to do, while the alias still points at the new
/// one that just failed.
pub async fn handle<M, F, E>(
    event: Value,
    budget: Duration,
    migrate: M,
) -> Result<Value, ResourceError>
where
    M: FnOnce(Value, Option<String>) -> F,
    F: Future<Output = Result<Value, E>>,
    E: std::fmt::Display,
{
    let request = serde_json::from_value(event).map_err(ResourceError::NotARequest)?;
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
        let version = properties
            .get("CodeVersion")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let answer = migrate(payload, version)
            .await
            .map_err(|e| MigrationsFailed(e.to_string()))?;
        // CloudFormation's `Fn::GetAtt` reads strings.
        let versions: Vec<String> = answer["applied"]
            .as_array()
            .ok_or_else(|| {
                MigrationsFailed(format!(
                    "migrate answered without the versions applied: {answer}"
                ))
            })?
            .iter()
            .map(ToString::to_string)
            .collect();
        Ok::<_, MigrationsFailed>(json!({ "Applied": versions.join(",") }))
    })
    .await?;
    Ok(json!({}))
}

/// The migrations' failure, as the stack event shows it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct MigrationsFailed(String);

/// A `CodeVersion` that is not a version of the deployed `migrate`.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("CodeVersion {requested} is not a version of {deployed}")]
pub struct NotAVersion {
    requested: String,
    deployed: String,
}

/// The function to invoke: the version a request names, when it is a version of the deployed
/// `migrate` (the same ARN but for its qualifier); else the deployed alias.
pub fn function_to_run(deployed: &str, requested: Option<&str>) -> Result<String, NotAVersion> {
    let Some(requested) = requested else {
        return Ok(deployed.to_owned());
    };
    let unqualified = |arn: &str| {
        arn.rsplit_once(':')
            .map(|(function, _)| function.to_owned())
    };
    match (unqualified(deployed), unqualified(requested)) {
        (Some(a), Some(b)) if a == b && a.contains(":function:") => Ok(requested.to_owned()),
        _ => Err(NotAVersion {
            requested: requested.to_owned(),
            deployed: deployed.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::function_to_run;

    #[test]
    fn the_requested_version_of_migrate_runs_and_no_other_function() {
        let alias = "arn:aws:lambda:eu-west-1:1:function:bestchat-migrate:live";
        let v3 = "arn:aws:lambda:eu-west-1:1:function:bestchat-migrate:3";
        assert_eq!(function_to_run(alias, Some(v3)).unwrap(), v3);
        assert_eq!(function_to_run(alias, None).unwrap(), alias);
        for other in [
            "arn:aws:lambda:eu-west-1:1:function:bestchat-janitor:3",
            "arn:aws:lambda:eu-west-1:1:function:bestchat-migrate-evil:3",
            "3",
        ] {
            assert!(function_to_run(alias, Some(other)).is_err(), "{other}");
        }
    }
}
