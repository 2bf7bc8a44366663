use bestchat_app::api::settings;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    bestchat_functions::http::run(settings::PUT_FETCH_HOSTS).await
}
