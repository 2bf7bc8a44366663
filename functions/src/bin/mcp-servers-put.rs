use bestchat_app::api::mcp_servers;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    bestchat_functions::http::run(mcp_servers::PUT).await
}
