#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    bestchat_functions::event::run_tool_executor().await
}
