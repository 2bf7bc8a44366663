use bestchat_app::config::Uses;
use bestchat_app::ws::WS_FUNCTIONS;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let function = WS_FUNCTIONS
        .iter()
        .find(|f| f.name == "ws-disconnect")
        .ok_or("ws-disconnect is not a WebSocket function")?;
    bestchat_functions::ws::run(function.handler, Uses::NOTHING).await
}
