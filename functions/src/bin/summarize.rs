use bestchat_app::events::{SUMMARIZE, event_function};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let handler = event_function(SUMMARIZE).ok_or("summarize is not an event function")?;
    bestchat_functions::event::run(handler).await
}
