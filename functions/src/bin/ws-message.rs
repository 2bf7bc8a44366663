use bestchat_app::config::Uses;
use bestchat_app::ws::WS_FUNCTIONS;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let function = WS_FUNCTIONS
        .iter()
        .find(|f| f.name == "ws-message")
        .ok_or("ws-message is not a WebSocket function")?;
    bestchat_functions::ws::run(function.handler, Uses::EVERYTHING).await
}
