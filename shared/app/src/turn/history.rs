//! The conversation so far, and what of it a provider may be sent; the context planner decides
//! what of that fits.

use std::collections::{HashMap, HashSet};

use bestchat_domain::conversation::Conversation;
use bestchat_domain::ids::MessageId;
use bestchat_domain::limits::PAGE_LIMIT_MAX;
use bestchat_domain::message::{Message, MessageStatus, Role, ToolCall};
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

/// A message a provider may be sent; its provider form is built only if the plan sends it.
pub struct Sendable<'a> {
    pub message: &'a Message,
    form: Form<'a>,
}

enum Form<'a> {
    User,
    /// The tool calls whose results are in the history.
    Assistant(Vec<&'a ToolCall>),
    /// The result of the call named so.
    Tool {
        call_id: &'a str,
        name: &'a str,
    },
}

impl Sendable<'_> {
    /// The message as a provider takes it, with `text` in place of its content when given.
    pub fn chat(&self, text: Option<String>) -> ChatMessage {
        let text = text.unwrap_or_else(|| self.message.content.clone());
        match &self.form {
            Form::User => ChatMessage::User { text },
            Form::Assistant(calls) => ChatMessage::Assistant {
                text,
                tool_calls: calls.iter().map(|c| (*c).clone()).collect(),
            },
            Form::Tool { call_id, name } => ChatMessage::Tool {
                call_id: (*call_id).to_owned(),
                name: (*name).to_owned(),
                content: text,
            },
        }
    }
}

/// What of the history goes to a provider: failed and unfinished answers are left out, and a
/// tool call travels only with its result.
pub fn sendable(history: &[Message]) -> Vec<Sendable<'_>> {
    let answered: HashSet<&str> = history
        .iter()
        .filter(|m| m.role == Role::Tool)
        .filter_map(|m| m.tool_call_id.as_deref())
        .collect();
    let mut called: HashMap<&str, &str> = HashMap::new();
    let mut out = Vec::with_capacity(history.len());
    for m in history {
        let form = match m.role {
            Role::User => Some(Form::User),
            Role::Assistant => {
                let usable = matches!(
                    m.status,
                    MessageStatus::Complete | MessageStatus::Incomplete | MessageStatus::Cancelled
                );
                let calls: Vec<&ToolCall> = m
                    .tool_calls
                    .iter()
                    .filter(|c| answered.contains(c.id.as_str()))
                    .collect();
                (usable && (!m.content.is_empty() || !calls.is_empty())).then(|| {
                    called.extend(calls.iter().map(|c| (c.id.as_str(), c.name.as_str())));
                    Form::Assistant(calls)
                })
            }
            Role::Tool => m
                .tool_call_id
                .as_deref()
                .and_then(|id| called.get(id).map(|name| Form::Tool { call_id: id, name })),
        };
        if let Some(form) = form {
            out.push(Sendable { message: m, form });
        }
    }
    out
}
