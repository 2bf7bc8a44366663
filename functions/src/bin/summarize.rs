use bestchat_app::events::SUMMARIZE_FUNCTION;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    bestchat_functions::event::run(SUMMARIZE_FUNCTION.handler).await
}
