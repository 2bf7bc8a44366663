use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        let budget = bestchat_functions::custom_resource::budget_until(event.context.deadline());
        bestchat_functions::web_publish::handle(event.payload, budget, None)
            .await
            .map_err(|error| Diagnostic {
                error_type: "BestChat.PublishFailed".to_owned(),
                error_message: error.to_string(),
            })
    }))
    .await
}
