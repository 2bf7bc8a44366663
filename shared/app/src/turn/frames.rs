//! `message.delta` frames that never exceed the connection's frame limit: a long batch is split
//! at character boundaries into several frames, each with its own `seq`.

use bestchat_domain::conversation::Conversation;
use bestchat_domain::ids::{ConversationId, MessageId};
use bestchat_domain::message::Message;
use bestchat_domain::wire::{DeltaChannel, ServerEvent};

/// Bytes `c` takes inside a JSON string.
fn escaped_len(c: char) -> usize {
    match c {
        '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
        c if (c as u32) < 0x20 => 6,
        c => c.len_utf8(),
    }
}

fn frame(
    conversation: ConversationId,
    message: MessageId,
    seq: u64,
    text: &str,
    channel: DeltaChannel,
) -> String {
    serde_json::to_string(&ServerEvent::MessageDelta {
        conversation_id: conversation,
        message_id: message,
        seq,
        text: text.to_owned(),
        channel,
    })
    .unwrap_or_default()
}

/// Most of a call's error sentence an event too large for its frame keeps.
const MAX_SLIM_ERROR_CHARS: usize = 1_000;

/// `event` as one frame of at most `max_bytes`. A message too large to ride along (in
/// `message.created` or `message.completed`) goes without its content and tool calls, marked
/// `content_omitted`; clients fetch it whole over HTTP. `None` only for an event that cannot
/// fit at all, which is logged.
pub fn encode_event(event: &ServerEvent, max_bytes: usize) -> Option<Vec<u8>> {
    let frame = serde_json::to_vec(event).ok()?;
    if frame.len() <= max_bytes {
        return Some(frame);
    }
    let omit = |message: &Message| Message {
        content: String::new(),
        tool_calls: Vec::new(),
        content_omitted: true,
        ..message.clone()
    };
    let slim = match event {
        ServerEvent::MessageCreated { message } => ServerEvent::MessageCreated {
            message: omit(message),
        },
        ServerEvent::MessageUpdated { message } => ServerEvent::MessageUpdated {
            message: omit(message),
        },
        // A system prompt may be 100,000 characters; the rest of a conversation is small.
        ServerEvent::ConversationCreated { conversation, .. } => ServerEvent::ConversationCreated {
            conversation: Conversation {
                system_prompt: None,
                ..conversation.clone()
            },
            omitted: true,
        },
        ServerEvent::ConversationUpdated { conversation, .. } => ServerEvent::ConversationUpdated {
            conversation: Conversation {
                system_prompt: None,
                ..conversation.clone()
            },
            omitted: true,
        },
        ServerEvent::MessageCompleted {
            conversation_id,
            message_id,
            message,
            usage,
            turn_usage,
            finish_reason,
        } => ServerEvent::MessageCompleted {
            conversation_id: *conversation_id,
            message_id: *message_id,
            message: omit(message),
            usage: *usage,
            turn_usage: *turn_usage,
            finish_reason: *finish_reason,
        },
        // The call's arguments and output are in `GET /api/tool-executions`.
        ServerEvent::ToolPending {
            conversation_id,
            message_id,
            tool_execution_id,
            tool_execution,
        } => ServerEvent::ToolPending {
            conversation_id: *conversation_id,
            message_id: *message_id,
            tool_execution_id: *tool_execution_id,
            tool_execution: bestchat_domain::tool::ToolExecution {
                arguments: serde_json::Value::Null,
                request: serde_json::Value::Null,
                ..tool_execution.clone()
            },
        },
        ServerEvent::ToolResult {
            conversation_id,
            message_id,
            tool_execution_id,
            status,
            error,
            ..
        } => ServerEvent::ToolResult {
            conversation_id: *conversation_id,
            message_id: *message_id,
            tool_execution_id: *tool_execution_id,
            status: *status,
            output: None,
            error: error
                .as_ref()
                .map(|e| bestchat_domain::tool::ExecutionError {
                    code: e.code.clone(),
                    message: e.message.chars().take(MAX_SLIM_ERROR_CHARS).collect(),
                }),
        },
        _ => {
            tracing::error!(
                bytes = frame.len(),
                "an event exceeds the frame limit; not sent"
            );
            return None;
        }
    };
    let frame = serde_json::to_vec(&slim).ok()?;
    if frame.len() <= max_bytes {
        Some(frame)
    } else {
        tracing::error!(
            bytes = frame.len(),
            "an event exceeds the frame limit; not sent"
        );
        None
    }
}

/// Frames for `text`, numbered from `first_seq`.
pub fn delta_frames(
    conversation: ConversationId,
    message: MessageId,
    first_seq: u64,
    text: &str,
    channel: DeltaChannel,
    max_bytes: usize,
) -> Vec<(u64, String)> {
    // The envelope with an empty text, with room for the widest seq.
    let overhead = frame(conversation, message, u64::MAX, "", channel).len();
    let budget = max_bytes.saturating_sub(overhead).max(6);
    let mut frames = Vec::new();
    let mut seq = first_seq;
    let mut rest = text;
    while !rest.is_empty() {
        let mut used = 0;
        let mut cut = rest.len();
        for (i, c) in rest.char_indices() {
            let len = escaped_len(c);
            if used + len > budget {
                cut = i;
                break;
            }
            used += len;
        }
        let (piece, tail) = rest.split_at(cut.max(rest.chars().next().map_or(0, char::len_utf8)));
        frames.push((seq, frame(conversation, message, seq, piece, channel)));
        seq += 1;
        rest = tail;
    }
    frames
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> (ConversationId, MessageId) {
        (ConversationId::generate(), MessageId::generate())
    }

    #[test]
    fn a_large_tool_result_is_sent_without_its_output() {
        let (c, m) = ids();
        let event = ServerEvent::ToolResult {
            conversation_id: c,
            message_id: m,
            tool_execution_id: bestchat_domain::ids::ToolExecutionId::generate(),
            status: bestchat_domain::tool::ExecutionStatus::Failed,
            output: Some(serde_json::json!({"text": "x".repeat(100_000)})),
            error: Some(bestchat_domain::tool::ExecutionError {
                code: "invalid_arguments".into(),
                message: "y".repeat(100_000),
            }),
        };
        let frame = encode_event(&event, 32 * 1024).expect("sent, trimmed");
        assert!(frame.len() <= 32 * 1024);
        let v: serde_json::Value = serde_json::from_slice(&frame).unwrap();
        assert_eq!(v["type"], "tool.result");
        assert!(v["output"].is_null());
        assert_eq!(v["error"]["code"], "invalid_arguments");
        assert_eq!(
            v["error"]["message"].as_str().unwrap().len(),
            MAX_SLIM_ERROR_CHARS
        );
    }

    #[test]
    fn short_text_is_one_frame() {
        let (c, m) = ids();
        let frames = delta_frames(c, m, 7, "Hello", DeltaChannel::Text, 32 * 1024);
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].0, 7);
        let v: serde_json::Value = serde_json::from_str(&frames[0].1).unwrap();
        assert_eq!(v["text"], "Hello");
        assert_eq!(v["seq"], 7);
    }

    #[test]
    fn long_text_splits_under_the_limit_and_reassembles() {
        let (c, m) = ids();
        // Quotes, newlines, control characters and multi-byte characters all expand differently.
        let text: String = "ab\"c\\d\ne\u{1}é€😀 ".repeat(3000);
        let limit = 1024;
        let frames = delta_frames(c, m, 1, &text, DeltaChannel::Reasoning, limit);
        assert!(frames.len() > 10);
        let mut joined = String::new();
        for (i, (seq, json)) in frames.iter().enumerate() {
            assert!(json.len() <= limit, "frame {i} is {} bytes", json.len());
            assert_eq!(*seq, i as u64 + 1);
            let v: serde_json::Value = serde_json::from_str(json).unwrap();
            assert_eq!(v["channel"], "reasoning");
            joined.push_str(v["text"].as_str().unwrap());
        }
        assert_eq!(joined, text);
    }
}
