//! The streaming part of a turn: the provider's events in, numbered and coalesced deltas out,
//! until the provider finishes, fails, the user cancels, or the turn runs out of time.
//!
//! Every future raced in the loop's `select!` is cancel-safe: [`EventStream::next`] keeps what it
//! has read across a dropped call (see its documentation), the timers are recreated each turn of
//! the loop or are `Interval::tick`, and all other work happens in the arms' bodies, which are
//! never raced.

use std::time::{Duration, Instant};

use bestchat_domain::message::{FinishReason, ToolCall};
use bestchat_domain::ports::cache::Cache;
use bestchat_domain::text::replace_nul_in_json;
use bestchat_domain::wire::DeltaChannel;
use bestchat_providers::failover::Attempt;
use bestchat_providers::{EventStream, ProviderError, StreamEvent, TokenUsage};
use serde_json::Value;

use super::fanout::Fanout;
use super::job::{TurnJob, cancel_key};
use super::lease::Lease;
use crate::config::RealtimeConfig;

/// How the provider part of a turn ended.
pub(super) enum Ending {
    Finished(FinishReason),
    Cancelled,
    /// The provider failed after content arrived.
    Cut(ProviderError),
    /// Nothing usable came: every target failed, or none could be called.
    Failed(bestchat_domain::message::MessageError),
    TimedOut,
    /// The answer passed `BESTCHAT_MESSAGE_MAX_BYTES`, or its user's share of the resume
    /// buffer: what arrived up to it is kept.
    TooLarge,
}

/// What arrived from the provider.
#[derive(Default)]
pub(super) struct Streamed {
    pub text: String,
    pub tool_calls: Vec<ToolCall>,
    pub usage: Option<TokenUsage>,
    pub first_token: Option<Duration>,
    pub attempts: Vec<Attempt>,
}

/// Deltas waiting for their window to close (or, while the lease cannot be counted on, for it
/// to be renewed), in order, consecutive deltas of one channel joined.
#[derive(Default)]
pub(super) struct Batch {
    parts: Vec<(DeltaChannel, String)>,
    bytes: usize,
    due: Option<tokio::time::Instant>,
}

impl Batch {
    fn push(&mut self, channel: DeltaChannel, text: &str) {
        self.bytes += text.len();
        match self.parts.last_mut() {
            Some((last, joined)) if *last == channel => joined.push_str(text),
            _ => self.parts.push((channel, text.to_owned())),
        }
    }

    fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }
}

/// When the answer started, and when the invocation's steps must have ended.
#[derive(Debug, Clone, Copy)]
pub(super) struct Clocks {
    pub started: Instant,
    pub deadline: tokio::time::Instant,
}

pub(super) async fn run(
    fanout: &mut Fanout<'_>,
    mut events: EventStream,
    attempts: Vec<Attempt>,
    job: &TurnJob,
    lease: &Lease,
    clocks: Clocks,
) -> (Streamed, Ending, Batch) {
    // The cancel flags live in the cache the fanout counts buffered bytes in.
    let (realtime, cache) = (fanout.ports().realtime, fanout.ports().cache);
    let Clocks { started, deadline } = clocks;
    let mut got = Streamed {
        attempts,
        ..Streamed::default()
    };
    let mut calls: Vec<(u32, ToolCall, String)> = Vec::new();
    let mut batch = Batch::default();
    // What the answer may still take in: text, reasoning and call arguments together.
    let mut room = realtime.message_max_bytes;
    let mut poll = tokio::time::interval(realtime.cancel_poll);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let ending = loop {
        let due = batch.due.unwrap_or(deadline);
        tokio::select! {
            event = events.next() => {
                let Some(event) = event else { break Ending::Cut(ProviderError::incomplete()) };
                match event {
                    StreamEvent::TextDelta(t) | StreamEvent::ReasoningDelta(t) if t.is_empty() => {}
                    StreamEvent::TextDelta(t) => {
                        let (t, full) = within(&mut room, t, fanout.over_budget());
                        got.text.push_str(&t);
                        let sent = !t.is_empty()
                            && add(fanout, &mut batch, &mut got, t, DeltaChannel::Text, started, realtime, lease).await;
                        if full {
                            break Ending::TooLarge;
                        }
                        if sent && cancelled(cache, job).await {
                            break Ending::Cancelled;
                        }
                    }
                    StreamEvent::ReasoningDelta(t) => {
                        let (t, full) = within(&mut room, t, fanout.over_budget());
                        let sent = !t.is_empty()
                            && add(fanout, &mut batch, &mut got, t, DeltaChannel::Reasoning, started, realtime, lease).await;
                        if full {
                            break Ending::TooLarge;
                        }
                        if sent && cancelled(cache, job).await {
                            break Ending::Cancelled;
                        }
                    }
                    StreamEvent::ToolCallStart { id, name, .. } if id.len() + name.len() > room => {
                        break Ending::TooLarge;
                    }
                    StreamEvent::ToolCallStart { index, id, name } => {
                        room -= id.len() + name.len();
                        calls.push((
                            index,
                            ToolCall { id, name, arguments: Value::Null, signature: None },
                            String::new(),
                        ));
                    }
                    StreamEvent::ToolCallDelta { arguments, .. } if arguments.len() > room => {
                        break Ending::TooLarge;
                    }
                    StreamEvent::ToolCallDelta { index, arguments } => {
                        room -= arguments.len();
                        if let Some(call) = calls.iter_mut().find(|c| c.0 == index) {
                            call.2.push_str(&arguments);
                        }
                    }
                    StreamEvent::ToolCallSignature { index, signature } => {
                        if let Some(call) = calls.iter_mut().find(|c| c.0 == index) {
                            call.1.signature = Some(signature);
                        }
                    }
                    StreamEvent::ToolCallEnd { .. } => {}
                    StreamEvent::Usage(u) => got.usage = Some(u),
                    StreamEvent::Finish(reason) => break Ending::Finished(reason),
                    StreamEvent::Error(e) => {
                        tracing::warn!(message = %job.message_id, lease = %lease.id(), error = %e, "the provider failed mid-answer");
                        break Ending::Cut(e);
                    }
                }
            }
            () = tokio::time::sleep_until(due), if batch.due.is_some() => {
                flush_if_held(fanout, &mut batch, realtime, lease).await;
                if cancelled(cache, job).await {
                    break Ending::Cancelled;
                }
            }
            _ = poll.tick() => {
                fanout.refresh_if_due().await;
                if cancelled(cache, job).await {
                    break Ending::Cancelled;
                }
            }
            () = tokio::time::sleep_until(deadline) => break Ending::TimedOut,
        }
    };
    flush_if_held(fanout, &mut batch, realtime, lease).await;
    got.tool_calls = calls
        .into_iter()
        .map(|(_, mut call, arguments)| {
            let mut parsed = serde_json::from_str(&arguments).unwrap_or(Value::String(arguments));
            replace_nul_in_json(&mut parsed);
            call.arguments = parsed;
            call
        })
        .collect();
    super::calls::make_ids_unique(&mut got.tool_calls);
    (got, ending, batch)
}

/// What of `text` the answer may still take (all of it, or the longest prefix that fits, cut
/// on a character boundary), and whether the answer is now full: past its size, or past its
/// user's share of the resume buffer (`over`).
fn within(room: &mut usize, mut text: String, over: bool) -> (String, bool) {
    if over {
        return (String::new(), true);
    }
    if text.len() <= *room {
        *room -= text.len();
        return (text, false);
    }
    let mut end = *room;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    *room = 0;
    (text, true)
}

/// Adds a delta to the batch; the first delta of the answer goes out at once, later ones wait
/// for the window or a full frame. Returns whether a batch was sent.
#[allow(clippy::too_many_arguments)]
async fn add(
    fanout: &mut Fanout<'_>,
    batch: &mut Batch,
    got: &mut Streamed,
    text: String,
    channel: DeltaChannel,
    started: Instant,
    realtime: &RealtimeConfig,
    lease: &Lease,
) -> bool {
    batch.push(channel, &text);
    if got.first_token.is_none() {
        got.first_token = Some(started.elapsed());
        return flush_if_held(fanout, batch, realtime, lease).await;
    }
    if batch.bytes >= realtime.frame_max_bytes / 2 {
        return flush_if_held(fanout, batch, realtime, lease).await;
    }
    if batch.due.is_none() {
        batch.due = Some(tokio::time::Instant::now() + realtime.coalesce_window);
    }
    false
}

/// Posts the batch while the lease is provably ours. Otherwise the batch waits (checked again
/// after a window): were the janitor to end the answer meanwhile, it would store what was
/// posted, so a client never sees text the stored answer lacks.
async fn flush_if_held(
    fanout: &mut Fanout<'_>,
    batch: &mut Batch,
    realtime: &RealtimeConfig,
    lease: &Lease,
) -> bool {
    if batch.is_empty() {
        batch.due = None;
        return false;
    }
    if !lease.held() {
        batch.due = Some(tokio::time::Instant::now() + realtime.coalesce_window);
        return false;
    }
    flush(fanout, batch).await;
    true
}

/// Posts the batch, whatever the lease says (the caller knows the answer is stored).
pub(super) async fn flush(fanout: &mut Fanout<'_>, batch: &mut Batch) {
    let parts = std::mem::take(batch);
    for (channel, text) in parts.parts {
        fanout.delta(&text, channel).await;
    }
    fanout.refresh_if_due().await;
}

async fn cancelled(cache: &dyn Cache, job: &TurnJob) -> bool {
    matches!(cache.get(&cancel_key(job.message_id)).await, Ok(Some(_)))
}
