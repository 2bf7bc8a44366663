use bestchat_app::api::provider_configs;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    bestchat_functions::http::run(provider_configs::DELETE).await
}
