use bestchat_app::events::FILES_PROCESS_FUNCTION;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    bestchat_functions::event::run(FILES_PROCESS_FUNCTION.handler).await
}
