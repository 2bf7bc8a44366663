//! Compression: the older copy of content that is repeated later (the same file, tool output or
//! pasted block) and oversized tool outputs become short notes saying what was removed.

use std::hash::Hasher;
use std::ops::Range;

use bestchat_domain::message::Role;
use rustc_hash::{FxHashMap, FxHasher};

use crate::plan::Entry;
use crate::settings::ContextSettings;

/// An entry's content after compression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Compressed {
    /// `None`: unchanged.
    pub content: Option<String>,
    pub tokens: u32,
}

/// Visits entries newest first, remembering each block it saw, so an older copy is found in
/// one pass.
pub(crate) struct Compressor<'a> {
    entries: &'a [Entry<'a>],
    settings: &'a ContextSettings,
    counter: &'a dyn Fn(&str) -> u32,
    /// The newest occurrence of each block: hash → (entry, byte range).
    seen: FxHashMap<u64, (usize, Range<usize>)>,
}

impl<'a> Compressor<'a> {
    pub fn new(
        entries: &'a [Entry<'a>],
        settings: &'a ContextSettings,
        counter: &'a dyn Fn(&str) -> u32,
    ) -> Self {
        Self {
            entries,
            settings,
            counter,
            seen: FxHashMap::default(),
        }
    }

    /// Compresses entry `i` against the newer entries that `sent` says go out with it; when
    /// `remember`, its blocks become the reference for older entries.
    pub fn visit(&mut self, i: usize, sent: &dyn Fn(usize) -> bool, remember: bool) -> Compressed {
        let entry = &self.entries[i];
        let text = entry.content;
        let min = self.settings.duplicate_min_chars.max(1);
        let fences = fenced_blocks(text, min);
        let mut content = None;
        if text.len() >= min && self.repeated_later(text, i, sent) {
            content = Some(duplicate_note(text));
        } else {
            let repeated: Vec<&Range<usize>> = fences
                .iter()
                .filter(|r| self.repeated_later(&text[(*r).clone()], i, sent))
                .collect();
            if !repeated.is_empty() {
                content = Some(replace_blocks(text, &repeated));
            }
            if entry.role == Role::Tool && entry.tokens > self.settings.tool_output_max_tokens {
                let current = content.as_deref().unwrap_or(text);
                content = Some(excerpt(
                    current,
                    entry.tokens,
                    self.settings.tool_output_keep_tokens,
                ));
            }
        }
        if remember {
            if text.len() >= min {
                self.remember(text, i, 0..text.len());
            }
            for r in fences {
                self.remember(&text[r.clone()], i, r);
            }
        }
        let compressed = content.map(|c| ((self.counter)(&c), c));
        match compressed {
            Some((tokens, content)) if tokens < entry.tokens => Compressed {
                content: Some(content),
                tokens,
            },
            _ => Compressed {
                content: None,
                tokens: entry.tokens,
            },
        }
    }

    fn remember(&mut self, block: &str, entry: usize, range: Range<usize>) {
        self.seen.entry(hash(block)).or_insert((entry, range));
    }

    /// Whether `block` of entry `i` appears again in a newer entry that is sent; the bytes are
    /// compared, so a hash collision never removes anything.
    fn repeated_later(&self, block: &str, i: usize, sent: &dyn Fn(usize) -> bool) -> bool {
        self.seen.get(&hash(block)).is_some_and(|(j, range)| {
            *j > i && sent(*j) && self.entries[*j].content.get(range.clone()) == Some(block)
        })
    }
}

fn hash(block: &str) -> u64 {
    let mut h = FxHasher::default();
    h.write(block.as_bytes());
    h.write_usize(block.len());
    h.finish()
}

/// Fenced code blocks (```…```) of at least `min` bytes, fences included.
fn fenced_blocks(text: &str, min: usize) -> Vec<Range<usize>> {
    const FENCE: &str = "```";
    let mut blocks = Vec::new();
    let mut from = 0;
    while let Some(open) = text[from..].find(FENCE).map(|p| p + from) {
        let body = open + FENCE.len();
        let Some(close) = text[body..].find(FENCE).map(|p| p + body) else {
            break;
        };
        let end = close + FENCE.len();
        if end - open >= min {
            blocks.push(open..end);
        }
        from = end;
    }
    blocks
}

fn duplicate_note(removed: &str) -> String {
    format!(
        "[{} characters removed here: the same content appears later in this conversation]",
        removed.chars().count()
    )
}

fn replace_blocks(text: &str, blocks: &[&Range<usize>]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for r in blocks {
        out.push_str(&text[at..r.start]);
        out.push_str(&duplicate_note(&text[(*r).clone()]));
        at = r.end;
    }
    out.push_str(&text[at..]);
    out
}

/// The beginning of a long tool output, about `keep_tokens` of its `tokens`, and a note.
fn excerpt(text: &str, tokens: u32, keep_tokens: u32) -> String {
    let total = text.chars().count();
    let keep = usize::try_from(
        u64::try_from(total).unwrap_or(u64::MAX) * u64::from(keep_tokens)
            / u64::from(tokens.max(1)),
    )
    .unwrap_or(total)
    .min(total);
    let cut = text.char_indices().nth(keep).map_or(text.len(), |(i, _)| i);
    format!(
        "{}\n[tool output cut to fit the context window: {} of {} characters removed]",
        &text[..cut],
        total - keep,
        total
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fences_pair_up_and_short_ones_are_ignored() {
        let text = "a ```x``` b ```long block here``` c ```unclosed";
        let blocks = fenced_blocks(text, 10);
        assert_eq!(
            blocks.iter().map(|r| &text[r.clone()]).collect::<Vec<_>>(),
            vec!["```long block here```"]
        );
    }

    #[test]
    fn excerpt_keeps_the_beginning_and_says_what_went() {
        let text = "é".repeat(1000);
        let cut = excerpt(&text, 1000, 100);
        assert!(cut.starts_with(&"é".repeat(100)));
        assert!(cut.contains("900 of 1000 characters removed"));
    }
}
