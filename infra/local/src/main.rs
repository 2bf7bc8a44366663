use std::process::ExitCode;

use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    // In a compile child this compiles a user's module and exits (see the tools' sandbox).
    bestchat_tools::sandbox::serve_compile_child();
    run()
}

#[tokio::main]
async fn run() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_target(false)
        .with_writer(std::io::stderr)
        .compact()
        .init();
    match bestchat_local::run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bestchat-local: {e}");
            ExitCode::FAILURE
        }
    }
}
