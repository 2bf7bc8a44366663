use bestchat_app::events::{CHAT_TURN, event_function};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let handler = event_function(CHAT_TURN).ok_or("chat-turn is not an event function")?;
    bestchat_functions::event::run(handler).await
}
