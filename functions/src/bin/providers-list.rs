use bestchat_app::api::providers;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    bestchat_functions::http::run(providers::LIST_PROVIDERS).await
}
