use bestchat_app::api::tool_executions;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    bestchat_functions::http::run(tool_executions::APPROVE).await
}
