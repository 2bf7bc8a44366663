//! The planner: a pure function from a history with stored token counts, a model's limits and
//! the settings to what is sent and what was done to make it fit.
//!
//! The history is cut into turns (a user message and everything up to the next one), so a tool
//! call always travels with its results. Priorities when space runs out: the latest turn (never
//! dropped: if it cannot fit, the plan fails), then the summary, then the first exchange, then
//! the newest of the turns in between. Strategies, in order: compression, then the stored
//! summary in place of the turns it covers, then truncation of the oldest turns.

use std::ops::Range;

use bestchat_domain::context::Strategy;
use bestchat_domain::ids::MessageId;
use bestchat_domain::message::Role;
use serde::{Deserialize, Serialize};

use crate::compress::{Compressed, Compressor};
use crate::settings::{ContextSettings, Limits, percent};
use crate::tokens::{MESSAGE_OVERHEAD_TOKENS, REQUEST_OVERHEAD_TOKENS};

/// One message of the history, oldest first, with its stored count.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    pub id: MessageId,
    pub role: Role,
    pub content: &'a str,
    pub tokens: u32,
}

/// The stored summary: it stands for the turns after the first exchange up to `through`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SummaryRef {
    pub through: MessageId,
    /// As it will be sent, framing included.
    pub tokens: u32,
}

pub struct PlanInput<'a> {
    pub system_tokens: u32,
    pub entries: &'a [Entry<'a>],
    pub summary: Option<SummaryRef>,
    pub limits: Limits,
    pub settings: &'a ContextSettings,
}

/// A message that is sent: its index in the history and, when compressed, its new content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub index: usize,
    pub content: Option<String>,
}

/// One strategy applied: the prompt's size before and after it, and the messages it touched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Optimization {
    pub strategy: Strategy,
    pub tokens_before: u32,
    pub tokens_after: u32,
    pub messages_affected: u32,
    pub first: Option<MessageId>,
    pub last: Option<MessageId>,
}

/// The span a summary should cover next, for the `summarize` function.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SummarizeSpan {
    pub from: MessageId,
    pub through: MessageId,
    pub tokens: u32,
    /// The span starts right after the stored summary, which the new one replaces.
    pub extends_summary: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub messages: Vec<Planned>,
    /// The stored summary is sent in place of the turns it covers.
    pub use_summary: bool,
    pub budget: u32,
    pub tokens_before: u32,
    pub tokens_after: u32,
    pub optimizations: Vec<Optimization>,
    pub summarize: Option<SummarizeSpan>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error(
        "the latest message needs {needed} tokens with the system prompt, but this model accepts at most {budget} (its context window less the space kept for the answer)"
    )]
    TooLarge { needed: u32, budget: u32 },
}

/// Turns: each user message starts one; anything before the first user message belongs to the
/// first turn.
pub fn turns(entries: &[Entry<'_>]) -> Vec<Range<usize>> {
    let mut out: Vec<Range<usize>> = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        match out.last_mut() {
            Some(turn) if e.role != Role::User => turn.end = i + 1,
            _ => out.push(i..i + 1),
        }
    }
    out
}

/// Tokens an entry takes in a request.
pub fn cost(tokens: u32) -> u32 {
    tokens.saturating_add(MESSAGE_OVERHEAD_TOKENS)
}

pub fn plan(input: &PlanInput<'_>, counter: &dyn Fn(&str) -> u32) -> Result<Plan, PlanError> {
    let entries = input.entries;
    let settings = input.settings;
    let budget = input.limits.budget(settings);
    let fixed = u64::from(input.system_tokens) + u64::from(REQUEST_OVERHEAD_TOKENS);
    let turns = turns(entries);
    let raw = |i: usize| u64::from(cost(entries[i].tokens));
    let raw_turn = |t: &Range<usize>| t.clone().map(raw).sum::<u64>();
    let tokens_before = fixed + turns.iter().map(raw_turn).sum::<u64>();
    let coverage = input
        .summary
        .and_then(|s| covered(&turns, entries, s.through));
    let summary_tokens = input.summary.map_or(0, |s| u64::from(s.tokens));
    let span = |pressure: u64| {
        (pressure > u64::from(percent(budget, settings.summarize_at_percent)))
            .then(|| next_span(entries, &turns, coverage, budget, settings))
            .flatten()
    };
    if tokens_before <= u64::from(budget) {
        return Ok(Plan {
            messages: (0..entries.len())
                .map(|index| Planned {
                    index,
                    content: None,
                })
                .collect(),
            use_summary: false,
            budget,
            tokens_before: saturate(tokens_before),
            tokens_after: saturate(tokens_before),
            optimizations: Vec::new(),
            summarize: span(tokens_before),
        });
    }
    let too_large = |needed: u64| PlanError::TooLarge {
        needed: saturate(needed),
        budget,
    };
    let Some(latest) = turns.last().cloned() else {
        return Err(too_large(tokens_before));
    };
    let mut compressor = Compressor::new(entries, settings, counter);
    let mut done: Vec<Option<Compressed>> = vec![None; entries.len()];
    let must = fixed + visit_turn(&mut compressor, &latest, &mut done);
    if must > u64::from(budget) {
        return Err(too_large(must));
    }
    let free = u64::from(budget) - must;
    let middle = 1..turns.len().saturating_sub(1);
    // The first exchange, compressed against the latest turn only: its cost can only shrink
    // once the middle turns it repeats are known.
    let first = (turns.len() > 1).then(|| turns[0].clone());
    let first_against_latest: Vec<Compressed> = first.clone().map_or_else(Vec::new, |t| {
        t.map(|i| compressor.visit(i, &|_| true, false)).collect()
    });
    let first_cost: u64 = first_against_latest
        .iter()
        .map(|c| u64::from(cost(c.tokens)))
        .sum();
    // Middle turns newest first, compressed, until even the plainest plan has no room left.
    let room_without_summary = if first_cost <= free {
        free - first_cost
    } else {
        free
    };
    let mut walked: Vec<(usize, u64)> = Vec::new();
    let mut used = 0;
    for t in middle.clone().rev() {
        let c = visit_turn(&mut compressor, &turns[t], &mut done);
        walked.push((t, c));
        used += c;
        if used > room_without_summary {
            break;
        }
    }
    let everything_fits =
        first_cost <= free && used <= room_without_summary && walked.len() == middle.len();
    let use_summary = !everything_fits && coverage.is_some() && summary_tokens <= free;
    let mut room = free;
    if use_summary {
        room -= summary_tokens;
    }
    let keep_first = first.is_some() && first_cost <= room;
    if keep_first {
        room -= first_cost;
    }
    let oldest_candidate = if use_summary {
        coverage.map_or(1, |k| k + 1)
    } else {
        1
    };
    let mut kept_middle: Vec<usize> = Vec::new();
    for &(t, c) in &walked {
        if t < oldest_candidate || c > room {
            break;
        }
        room -= c;
        kept_middle.push(t);
    }
    let mut sent = vec![false; entries.len()];
    for t in kept_middle.iter().map(|&t| &turns[t]).chain([&latest]) {
        for i in t.clone() {
            sent[i] = true;
        }
    }
    if let Some(t) = first.filter(|_| keep_first) {
        let is_sent = |j: usize| sent[j];
        let informed: Vec<Compressed> = t
            .clone()
            .map(|i| compressor.visit(i, &is_sent, false))
            .collect();
        for ((i, informed), conservative) in t.clone().zip(informed).zip(first_against_latest) {
            done[i] = Some(if informed.tokens <= conservative.tokens {
                informed
            } else {
                conservative
            });
        }
        for i in t {
            sent[i] = true;
        }
    }
    let covered_turns = if use_summary {
        coverage.map_or(1..1, |k| 1..k + 1)
    } else {
        1..1
    };
    let covered_entries = if covered_turns.is_empty() {
        0..0
    } else {
        turns[covered_turns.start].start..turns[covered_turns.end - 1].end
    };
    let messages: Vec<Planned> = (0..entries.len())
        .filter(|&i| sent[i])
        .map(|index| Planned {
            index,
            content: done[index].as_ref().and_then(|c| c.content.clone()),
        })
        .collect();
    let tokens_after = fixed
        + if use_summary { summary_tokens } else { 0 }
        + messages
            .iter()
            .map(|p| {
                u64::from(cost(
                    done[p.index]
                        .as_ref()
                        .map_or(entries[p.index].tokens, |c| c.tokens),
                ))
            })
            .sum::<u64>();
    let mut optimizations = Vec::new();
    let compressed: Vec<usize> = messages
        .iter()
        .filter(|p| p.content.is_some())
        .map(|p| p.index)
        .collect();
    let saved: u64 = compressed
        .iter()
        .map(|&i| {
            raw(i)
                - done[i]
                    .as_ref()
                    .map_or(raw(i), |c| u64::from(cost(c.tokens)))
        })
        .sum();
    let mut stage = tokens_before;
    if !compressed.is_empty() {
        optimizations.push(record(
            Strategy::Compression,
            stage,
            stage - saved,
            entries,
            &compressed,
        ));
        stage -= saved;
    }
    if use_summary {
        let covered: Vec<usize> = covered_entries.clone().collect();
        let replaced: u64 = covered.iter().map(|&i| raw(i)).sum();
        let after = stage - replaced + summary_tokens;
        optimizations.push(record(
            Strategy::Summarization,
            stage,
            after,
            entries,
            &covered,
        ));
        stage = after;
    }
    let dropped: Vec<usize> = (0..entries.len())
        .filter(|i| !sent[*i] && !covered_entries.contains(i))
        .collect();
    if !dropped.is_empty() {
        optimizations.push(record(
            Strategy::Truncation,
            stage,
            tokens_after,
            entries,
            &dropped,
        ));
    }
    let pressure = if use_summary {
        tokens_before - covered_entries.clone().map(raw).sum::<u64>() + summary_tokens
    } else {
        tokens_before
    };
    Ok(Plan {
        messages,
        use_summary,
        budget,
        tokens_before: saturate(tokens_before),
        tokens_after: saturate(tokens_after),
        optimizations,
        summarize: span(pressure),
    })
}

/// Compresses a turn newest message first; returns what it costs after.
fn visit_turn(
    compressor: &mut Compressor<'_>,
    turn: &Range<usize>,
    done: &mut [Option<Compressed>],
) -> u64 {
    turn.clone()
        .rev()
        .map(|i| {
            let c = compressor.visit(i, &|_| true, true);
            let tokens = u64::from(cost(c.tokens));
            done[i] = Some(c);
            tokens
        })
        .sum()
}

/// The last turn the summary covers, when it ends on a turn boundary between the first exchange
/// and the latest turn.
fn covered(turns: &[Range<usize>], entries: &[Entry<'_>], through: MessageId) -> Option<usize> {
    let p = entries.iter().position(|e| e.id == through)?;
    let k = turns.iter().rposition(|t| t.end <= p + 1)?;
    (k >= 1 && k + 1 < turns.len()).then_some(k)
}

/// The oldest turns not yet summarized, leaving the newest that fit in the kept share.
fn next_span(
    entries: &[Entry<'_>],
    turns: &[Range<usize>],
    coverage: Option<usize>,
    budget: u32,
    settings: &ContextSettings,
) -> Option<SummarizeSpan> {
    let turn_cost = |t: usize| -> u64 {
        turns[t]
            .clone()
            .map(|i| u64::from(cost(entries[i].tokens)))
            .sum()
    };
    let start = coverage.map_or(1, |k| k + 1);
    let latest = turns.len().checked_sub(1)?;
    let keep = u64::from(percent(budget, settings.summary_keeps_recent_percent));
    let mut tail = turn_cost(latest);
    let mut end = latest;
    while end > start && tail + turn_cost(end - 1) <= keep {
        end -= 1;
        tail += turn_cost(end);
    }
    // Turns start..end are summarized, at most the span limit of them.
    let mut tokens = 0;
    let mut last = None;
    for t in start..end {
        let c = turn_cost(t);
        if last.is_some() && tokens + c > u64::from(settings.summary_span_max_tokens) {
            break;
        }
        tokens += c;
        last = Some(t);
    }
    let last = last?;
    Some(SummarizeSpan {
        from: entries[turns[start].start].id,
        through: entries[turns[last].end - 1].id,
        tokens: saturate(tokens),
        extends_summary: coverage.is_some(),
    })
}

fn record(
    strategy: Strategy,
    before: u64,
    after: u64,
    entries: &[Entry<'_>],
    affected: &[usize],
) -> Optimization {
    Optimization {
        strategy,
        tokens_before: saturate(before),
        tokens_after: saturate(after),
        messages_affected: u32::try_from(affected.len()).unwrap_or(u32::MAX),
        first: affected.first().map(|&i| entries[i].id),
        last: affected.last().map(|&i| entries[i].id),
    }
}

fn saturate(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
