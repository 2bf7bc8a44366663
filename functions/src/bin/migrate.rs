#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    bestchat_functions::migrate::run().await
}
