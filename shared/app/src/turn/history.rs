//! The conversation so far, and what of it a provider may be sent; the context planner decides
//! what of that fits.

use std::collections::HashSet;

use bestchat_domain::conversation::Conversation;
use bestchat_domain::ids::MessageId;
use bestchat_domain::limits::PAGE_LIMIT_MAX;
use bestchat_domain::message::{Message, MessageStatus, Role};
use bestchat_domain::page::PageRequest;
use bestchat_providers::ChatMessage;

use crate::error::AppError;
use crate::state::AppState;

/// Most messages read for one turn; beyond it the oldest are left out.
pub const HISTORY_LOAD_MAX: usize = 20_000;

/// Every message of the conversation, oldest first, up to (not including) `answer`.
pub async fn load(
    state: &AppState,
    conversation: &Conversation,
    answer: MessageId,
) -> Result<Vec<Message>, AppError> {
    let mut all = Vec::new();
    let mut page = PageRequest {
        limit: PAGE_LIMIT_MAX,
        after: None,
    };
    loop {
        let batch = state
            .store()
            .list_messages(conversation.user_id, conversation.id, &page)
            .await?;
        let done = batch.next_cursor.is_none();
        for message in batch.items {
            if message.id == answer {
                return Ok(keep_newest(all));
            }
            all.push(message);
        }
        match batch.next_cursor {
            Some(cursor) if !done => {
                page = PageRequest::parse(Some(&PAGE_LIMIT_MAX.to_string()), Some(&cursor))?
            }
            _ => return Ok(keep_newest(all)),
        }
    }
}

fn keep_newest(mut messages: Vec<Message>) -> Vec<Message> {
    if messages.len() > HISTORY_LOAD_MAX {
        messages.drain(..messages.len() - HISTORY_LOAD_MAX);
    }
    messages
}

/// A message as the provider will see it.
pub struct Sendable<'a> {
    pub message: &'a Message,
    pub chat: ChatMessage,
}

/// What of the history goes to a provider: failed and unfinished answers are left out, and a
/// tool call travels only with its result.
pub fn sendable(history: &[Message]) -> Vec<Sendable<'_>> {
    let answered: HashSet<&str> = history
        .iter()
        .filter(|m| m.role == Role::Tool)
        .filter_map(|m| m.tool_call_id.as_deref())
        .collect();
    let mut called = std::collections::HashMap::new();
    let mut out = Vec::with_capacity(history.len());
    for m in history {
        let chat = match m.role {
            Role::User => Some(ChatMessage::User {
                text: m.content.clone(),
            }),
            Role::Assistant => {
                let usable = matches!(
                    m.status,
                    MessageStatus::Complete | MessageStatus::Incomplete | MessageStatus::Cancelled
                );
                let tool_calls: Vec<_> = m
                    .tool_calls
                    .iter()
                    .filter(|c| answered.contains(c.id.as_str()))
                    .cloned()
                    .collect();
                (usable && (!m.content.is_empty() || !tool_calls.is_empty())).then(|| {
                    called.extend(tool_calls.iter().map(|c| (c.id.clone(), c.name.clone())));
                    ChatMessage::Assistant {
                        text: m.content.clone(),
                        tool_calls,
                    }
                })
            }
            Role::Tool => m
                .tool_call_id
                .as_ref()
                .and_then(|id| called.get(id).map(|name| (id, name)))
                .map(|(id, name)| ChatMessage::Tool {
                    call_id: id.clone(),
                    name: name.clone(),
                    content: m.content.clone(),
                }),
        };
        if let Some(chat) = chat {
            out.push(Sendable { message: m, chat });
        }
    }
    out
}

/// The message with its text replaced (by the planner's compression).
pub fn with_text(chat: ChatMessage, new: String) -> ChatMessage {
    match chat {
        ChatMessage::User { .. } => ChatMessage::User { text: new },
        ChatMessage::Assistant { tool_calls, .. } => ChatMessage::Assistant {
            text: new,
            tool_calls,
        },
        ChatMessage::Tool { call_id, name, .. } => ChatMessage::Tool {
            call_id,
            name,
            content: new,
        },
    }
}
