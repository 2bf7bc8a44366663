#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    bestchat_functions::authorizer::run().await
}
