use bestchat_app::api::health;
use bestchat_app::config::Uses;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    bestchat_functions::http::run_with(health::GET, Uses::NOTHING).await
}
