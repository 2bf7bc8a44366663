use bestchat_app::events::JANITOR_FUNCTION;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    bestchat_functions::event::run(JANITOR_FUNCTION.handler).await
}
