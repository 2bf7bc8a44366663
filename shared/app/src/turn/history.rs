//! The conversation so far, and what of it a provider may be sent; the context planner decides
//! what of that fits.

use std::collections::{HashMap, HashSet};

use bestchat_domain::conversation::Conversation;
use bestchat_domain::message::{Message, MessageStatus, Role, ToolCall};
use bestchat_domain::page::CursorKey;
use bestchat_domain::ports::store::MessageStore;
use bestchat_providers::{ChatMessage, Part};

use crate::config::ContextConfig;
use crate::error::AppError;

/// Messages read per query while walking back through a conversation.
const HISTORY_PAGE: u32 = 200;

/// The conversation before `answer`, oldest first: read newest first, page by page, and no
/// further back than the history limits (`BESTCHAT_HISTORY_MAX_MESSAGES`,
/// `BESTCHAT_HISTORY_MAX_TOKENS`), so a turn never reads more than it could send.
pub async fn load(
    messages: &dyn MessageStore,
    limits: &ContextConfig,
    conversation: &Conversation,
    answer: &Message,
) -> Result<Vec<Message>, AppError> {
    let mut newest_first: Vec<Message> = Vec::new();
    let mut tokens = 0u64;
    let mut before = CursorKey {
        at: answer.created_at,
        id: *answer.id.as_uuid(),
    };
    loop {
        let room = limits
            .history_max_messages
            .saturating_sub(newest_first.len());
        let want = u32::try_from(room).unwrap_or(u32::MAX).min(HISTORY_PAGE);
        if want == 0 {
            break;
        }
        let page = messages
            .messages_before(conversation.user_id, conversation.id, before, want)
            .await?;
        let last_page = page.len() < want as usize;
        for message in page {
            tokens += u64::from(message.token_count);
            before = CursorKey {
                at: message.created_at,
                id: *message.id.as_uuid(),
            };
            newest_first.push(message);
            if tokens >= limits.history_max_tokens {
                newest_first.reverse();
                return Ok(newest_first);
            }
        }
        if last_page {
            break;
        }
    }
    newest_first.reverse();
    Ok(newest_first)
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
    /// The message as a provider takes it, with `text` in place of its content when given,
    /// and a user message's files as `parts`.
    pub fn chat(&self, text: Option<String>, parts: Vec<Part>) -> ChatMessage {
        let text = text.unwrap_or_else(|| self.message.content.clone());
        match &self.form {
            Form::User => ChatMessage::User { text, parts },
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
    in_call_order(&mut out);
    out
}

/// Puts each assistant message's results in the order of its calls: they are stored as the
/// calls end, which parallel calls do in any order.
fn in_call_order(out: &mut [Sendable<'_>]) {
    let mut i = 0;
    while i < out.len() {
        let Form::Assistant(calls) = &out[i].form else {
            i += 1;
            continue;
        };
        let order: HashMap<&str, usize> = calls
            .iter()
            .enumerate()
            .map(|(n, c)| (c.id.as_str(), n))
            .collect();
        let start = i + 1;
        let end = out[start..]
            .iter()
            .position(|s| !matches!(s.form, Form::Tool { .. }))
            .map_or(out.len(), |n| start + n);
        out[start..end].sort_by_key(|s| match s.form {
            Form::Tool { call_id, .. } => order.get(call_id).copied().unwrap_or(usize::MAX),
            _ => usize::MAX,
        });
        i = end.max(start);
    }
}

#[cfg(test)]
#[cfg(feature = "sqlite")]
mod tests {
    use bestchat_domain::time::{from_micros, now, to_micros};

    use super::*;
    use crate::state::AppState;
    use crate::testing;

    /// A conversation of `n` messages of 3 tokens each, a microsecond apart, and the answer
    /// that follows them.
    async fn conversation_of(state: &AppState, n: usize) -> (Conversation, Message) {
        let (user, conversation) = testing::conversation(state, "reader").await;
        let start = to_micros(now());
        let mut last = None;
        for i in 0..=n {
            let at = from_micros(start + i as i64).unwrap();
            let m = Message {
                content: format!("m{i}"),
                role: if i % 2 == 0 {
                    Role::User
                } else {
                    Role::Assistant
                },
                created_at: at,
                updated_at: at,
                token_count: 3,
                ..testing::assistant(user, conversation.id, MessageStatus::Complete)
            };
            state.store().insert_message(&m).await.unwrap();
            last = Some(m);
        }
        (conversation, last.unwrap())
    }

    #[tokio::test]
    async fn history_is_read_back_newest_first_no_further_than_its_limits() {
        let everything = testing::state(&[]).await;
        let (conversation, answer) = conversation_of(&everything.state, 450).await;
        let all = load(
            everything.state.store(),
            &everything.state.config.context,
            &conversation,
            &answer,
        )
        .await
        .unwrap();
        assert_eq!(
            all.len(),
            450,
            "every message before the answer, past page boundaries"
        );
        assert_eq!(all.first().unwrap().content, "m0");
        assert_eq!(all.last().unwrap().content, "m449");

        let by_count = testing::state(&[("BESTCHAT_HISTORY_MAX_MESSAGES", "10")]).await;
        let (conversation, answer) = conversation_of(&by_count.state, 30).await;
        let kept = load(
            by_count.state.store(),
            &by_count.state.config.context,
            &conversation,
            &answer,
        )
        .await
        .unwrap();
        let contents: Vec<&str> = kept.iter().map(|m| m.content.as_str()).collect();
        assert_eq!(
            contents,
            (20..30).map(|i| format!("m{i}")).collect::<Vec<_>>()
        );

        let by_tokens = testing::state(&[("BESTCHAT_HISTORY_MAX_TOKENS", "12")]).await;
        let (conversation, answer) = conversation_of(&by_tokens.state, 30).await;
        let kept = load(
            by_tokens.state.store(),
            &by_tokens.state.config.context,
            &conversation,
            &answer,
        )
        .await
        .unwrap();
        assert_eq!(kept.len(), 4, "3 tokens each, stopped once 12 were in");
        assert_eq!(kept.last().unwrap().content, "m29");
    }
}
