use bestchat_app::events::CHAT_TURN_FUNCTION;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    bestchat_functions::event::run(CHAT_TURN_FUNCTION.handler).await
}
