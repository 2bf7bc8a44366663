//! Answers with NUL (U+0000) in a string and in a key: text PostgreSQL cannot hold.
fn main() {
    bestchat_tool_sdk::run(|_| Ok(serde_json::json!({ "text": "a\u{0}b", "k\u{0}ey": ["\u{0}"] })));
}
