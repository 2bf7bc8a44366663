use bestchat_app::config::Uses;
use bestchat_app::api::health;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    bestchat_functions::http::run_with(health::GET, Uses::NOTHING).await
}
