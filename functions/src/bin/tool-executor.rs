fn main() -> Result<(), lambda_runtime::Error> {
    // In a compile child this compiles a user's module and exits (see the tools' sandbox).
    bestchat_tools::sandbox::serve_compile_child();
    run()
}

#[tokio::main]
async fn run() -> Result<(), lambda_runtime::Error> {
    bestchat_functions::event::run_tool_executor().await
}
