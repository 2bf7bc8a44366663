use bestchat_app::Config;
use bestchat_functions::migrate::{USES, handle};
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        handle(Config::from_env_for(USES), event.payload)
            .await
            .map_err(|error| Diagnostic {
                error_type: "BestChat.MigrationFailed".to_owned(),
                error_message: error.to_string(),
            })
    }))
    .await
}
