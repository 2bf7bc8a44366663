use bestchat_app::events::event_function;
use bestchat_app::janitor::JANITOR;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let handler = event_function(JANITOR).ok_or("janitor is not an event function")?;
    bestchat_functions::event::run(handler).await
}
