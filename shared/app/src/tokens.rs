//! Token counts stored with each message when it is written, counted as the model that reads
//! it would, so planning a context never tokenizes history again.

use bestchat_context::tokens::Encoding;
use bestchat_domain::message::ToolCall;

pub fn message_tokens(model: &str, text: &str, tool_calls: &[ToolCall]) -> u32 {
    let encoding = Encoding::for_model(model);
    tool_calls.iter().fold(encoding.count(text), |sum, call| {
        sum.saturating_add(encoding.count(&call.name))
            .saturating_add(encoding.count(&call.arguments.to_string()))
    })
}
