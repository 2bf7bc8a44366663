use bestchat_functions::sign_up::{Policy, check};
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let policy = Policy::from_env(
        std::env::var("SIGN_UP").ok().as_deref(),
        std::env::var("SIGN_UP_EMAIL_DOMAINS").ok().as_deref(),
    )?;
    let policy = &policy;
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        check(policy, event.payload).map_err(|refusal| Diagnostic {
            error_type: "BestChat.SignUpRefused".to_owned(),
            error_message: refusal.to_string(),
        })
    }))
    .await
}
