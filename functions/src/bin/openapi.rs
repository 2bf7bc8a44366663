use bestchat_app::api::openapi;
use bestchat_app::config::Uses;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    bestchat_functions::http::run_with(openapi::GET, Uses::NOTHING).await
}
