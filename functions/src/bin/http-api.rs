#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    bestchat_functions::http::run().await
}
