use std::collections::HashMap;

use bestchat_domain::ports::realtime::{InvokeError, Invoker};
use bestchat_functions::custom_resource::budget_until;
use bestchat_functions::migrate_resource::{MIGRATE, NotAVersion, function_to_run, handle};
use bestchat_platform::invoke::LambdaInvoker;
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::Value;

/// Why `migrate` did not run to the end.
#[derive(Debug, thiserror::Error)]
enum Failed {
    #[error(transparent)]
    Version(NotAVersion),
    #[error("migrations failed: {0}")]
    Invoke(InvokeError),
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let deployed = std::env::var("MIGRATE_FUNCTION").map_err(|_| "MIGRATE_FUNCTION is not set")?;
    let deployed = &deployed;
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        let budget = budget_until(event.context.deadline());
        handle(event.payload, budget, |payload, version| async move {
            let function =
                function_to_run(deployed, version.as_deref()).map_err(Failed::Version)?;
            LambdaInvoker::new(HashMap::from([(MIGRATE.to_owned(), function)]), None)
                .invoke(MIGRATE, &payload)
                .await
                .map_err(Failed::Invoke)
        })
        .await
        .map_err(|error| Diagnostic {
            error_type: "BestChat.MigrationFailed".to_owned(),
            error_message: error.to_string(),
        })
    }))
    .await
}
