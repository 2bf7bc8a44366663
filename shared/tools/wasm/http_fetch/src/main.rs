//! `http_fetch`: GETs a URL on a host the user allowed and returns it as readable text (HTML
//! reduced to its text; other text as is), cut at a limit.
//!
//! Arguments: `{"url": "https://…", "max_chars"?}`. Result: `{"url", "status", "content_type",
//! "text", "truncated"}`. The executor decides which hosts are reachable and refuses private
//! addresses; this tool only shapes what comes back.

mod html;

use serde_json::{Value, json};

/// Characters returned when the caller names no limit, and the most it may ask for.
const DEFAULT_CHARS: usize = 20_000;
const MAX_CHARS: usize = 100_000;

fn main() {
    bestchat_tool_sdk::run(|args| fetch(&args));
}

fn fetch(args: &Value) -> Result<Value, String> {
    let url = args["url"].as_str().ok_or("url must be a string")?;
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err("url must be an http:// or https:// URL".into());
    }
    let limit = match &args["max_chars"] {
        Value::Null => DEFAULT_CHARS,
        value => value
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| (1..=MAX_CHARS).contains(n))
            .ok_or(format!("max_chars must be 1 to {MAX_CHARS}"))?,
    };
    let response = bestchat_tool_sdk::fetch(url)?;
    let is_html = response
        .content_type
        .as_deref()
        .is_some_and(|t| t.contains("html"));
    let text = if is_html {
        html::to_text(&response.body)
    } else {
        response.body
    };
    let cut = text.chars().count() > limit;
    let text: String = text.chars().take(limit).collect();
    Ok(json!({
        "url": url,
        "status": response.status,
        "content_type": response.content_type,
        "text": text,
        "truncated": cut || response.truncated,
    }))
}
