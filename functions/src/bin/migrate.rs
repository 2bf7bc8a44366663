use bestchat_app::events::event_function;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let handler = event_function("migrate").ok_or("migrate is not an event function")?;
    bestchat_functions::event::run(handler).await
}
