use bestchat_app::config::Uses;
use bestchat_app::api::openapi;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    bestchat_functions::http::run_with(openapi::GET, Uses::NOTHING).await
}
