//! Fetches the URL it is given, through the host's one network call, and returns the answer.
fn main() {
    bestchat_tool_sdk::run(|args| {
        let url = args["url"].as_str().ok_or("url")?;
        let response = bestchat_tool_sdk::fetch(url)?;
        Ok(
            serde_json::json!({ "status": response.status, "body": response.body, "truncated": response.truncated }),
        )
    });
}
