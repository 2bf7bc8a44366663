use bestchat_app::config::Uses;
use bestchat_app::ws::WS_FUNCTIONS;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let function = WS_FUNCTIONS
        .iter()
        .find(|f| f.name == "ws-connect")
        .ok_or("ws-connect is not a WebSocket function")?;
    // The cache counts each user's new connections; the database stays out of reach.
    let uses = Uses {
        database: false,
        cache: true,
    };
    bestchat_functions::ws::run(function.handler, uses).await
}
