//! The `echo` provider: offline and deterministic. It answers with the last user message, word
//! by word, so the whole stack can run and be tested without a network or a key.

use std::collections::VecDeque;
use std::time::Duration;

use bestchat_domain::message::FinishReason;

use crate::types::{ChatMessage, ChatRequest, StreamEvent, TokenUsage};

pub struct Source {
    words: VecDeque<String>,
    delay: Duration,
    /// When the next word may go; `None` before the first (it goes at once).
    next_due: Option<tokio::time::Instant>,
    usage: TokenUsage,
    finished: bool,
}

/// What echo answers to `request`.
pub fn answer(request: &ChatRequest, model: &str) -> String {
    let last_user = request.messages.iter().rev().find_map(|m| match m {
        ChatMessage::User { text, .. } => Some(text.as_str()),
        _ => None,
    });
    match last_user {
        Some(text) if !text.trim().is_empty() => format!("Echo ({model}): {text}"),
        _ => format!("Echo ({model}): there is nothing to echo."),
    }
}

fn words(text: &str) -> u32 {
    u32::try_from(text.split_whitespace().count()).unwrap_or(u32::MAX)
}

impl Source {
    /// `delay` separates words, like a model producing tokens.
    pub fn new(request: &ChatRequest, model: &str, delay: Duration) -> Self {
        let text = answer(request, model);
        let prompt_words = request.system.as_deref().map_or(0, words)
            + request
                .messages
                .iter()
                .map(|m| match m {
                    ChatMessage::User { text, .. } => words(text),
                    ChatMessage::Assistant { text, .. } => words(text),
                    ChatMessage::Tool { content, .. } => words(content),
                })
                .sum::<u32>();
        let mut chunks = VecDeque::new();
        let mut rest = text.as_str();
        // Each word keeps its following whitespace, so the deltas concatenate to the answer.
        while !rest.is_empty() {
            let word_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            let space_end = rest[word_end..]
                .find(|c: char| !c.is_whitespace())
                .map_or(rest.len(), |i| word_end + i);
            chunks.push_back(rest[..space_end].to_owned());
            rest = &rest[space_end..];
        }
        Self {
            usage: TokenUsage {
                input_tokens: prompt_words,
                output_tokens: u32::try_from(chunks.len()).unwrap_or(u32::MAX),
                cached_tokens: 0,
                reasoning_tokens: 0,
            },
            words: chunks,
            delay,
            next_due: None,
            finished: false,
        }
    }

    /// The next word, once the pause that separates it from the previous one is over. The wait
    /// comes before the word is taken and is for a fixed time, so a caller that drops this
    /// future loses neither a word nor the time already waited.
    pub async fn pull(&mut self, out: &mut Vec<StreamEvent>) {
        if let Some(due) = self.next_due.filter(|_| !self.words.is_empty()) {
            tokio::time::sleep_until(due).await;
        }
        if let Some(word) = self.words.pop_front() {
            self.next_due =
                (!self.delay.is_zero()).then(|| tokio::time::Instant::now() + self.delay);
            out.push(StreamEvent::TextDelta(word));
        } else if !self.finished {
            self.finished = true;
            out.push(StreamEvent::Usage(self.usage));
            out.push(StreamEvent::Finish(FinishReason::Stop));
        }
    }
}
