use bestchat_app::api::health;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    bestchat_functions::http::run(health::GET).await
}
