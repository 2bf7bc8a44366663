use bestchat_app::api::openapi;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    bestchat_functions::http::run(openapi::GET).await
}
