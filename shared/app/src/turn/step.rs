//! One step of a turn: claim the answer, keep its lease, plan the context, stream the
//! provider (with failover), then hand what arrived to `finish`.

use std::time::Instant;

use bestchat_domain::ids::MessageId;
use bestchat_domain::message::{Message, MessageError, Role, Usage};
use bestchat_domain::time::{after, now};
use bestchat_domain::wire::ServerEvent;
use bestchat_domain::{DomainError, ErrorCode};
use bestchat_providers::failover::Target;
use bestchat_providers::{ChatRequest, ErrorKind, ToolSpec};

use super::calls::Toolbox;
use super::chain::Candidate;
use super::fanout::Fanout;
use super::finish::finish;
use super::job::{StepOutcome, TurnJob};
use super::lease::Lease;
use super::ports::TurnPorts;
use super::stream::{Batch, Clocks, Ending, Streamed};
use super::{chain, context, history, round, stream};
use crate::budget::{Hold, worst_case};
use crate::error::AppError;

/// Claims the answer, then runs the turn while its lease is kept. If the lease is lost (the
/// janitor ended the answer), the turn is dropped where it stands: it can no longer write, and
/// must not post anything more.
pub async fn run(
    ports: &TurnPorts<'_>,
    job: &TurnJob,
    deadline: tokio::time::Instant,
) -> Result<StepOutcome, AppError> {
    let store = ports.store;
    let lease = Lease::new(job.message_id, ports.turn_lease);
    let at = now();
    if !store
        .claim_turn(
            job.user_id,
            job.message_id,
            lease.id(),
            at,
            lease.expiry(at),
        )
        .await?
    {
        tracing::info!(message = %job.message_id, "turn already claimed; nothing to do");
        return Ok(StepOutcome::AlreadyClaimed);
    }
    // Cancel safety: `keep` returns only when the lease is lost, and then dropping the turn
    // wherever it waits is the point; the turn finishing first drops `keep`, which at worst
    // abandons a renewal in flight.
    tokio::select! {
        outcome = answer(ports, job, &lease, deadline) => outcome,
        () = lease.keep(store) => {
            tracing::warn!(message = %job.message_id, lease = %lease.id(), "lease lost; the turn stops without writing");
            Ok(StepOutcome::LeaseLost)
        }
    }
}

async fn answer(
    ports: &TurnPorts<'_>,
    job: &TurnJob,
    lease: &Lease,
    deadline: tokio::time::Instant,
) -> Result<StepOutcome, AppError> {
    let store = ports.store;
    let Some(conversation) = store
        .get_conversation(job.user_id, job.conversation_id)
        .await?
    else {
        return Ok(StepOutcome::ConversationGone);
    };
    let Some(answer) = store.get_message(job.user_id, job.message_id).await? else {
        return Ok(StepOutcome::MessageGone);
    };
    let started = Instant::now();
    let mut fanout = Fanout::start(
        ports.fanout.clone(),
        job.user_id,
        job.conversation_id,
        job.message_id,
    )
    .await;
    let produced = match produce(
        ports,
        &mut fanout,
        &conversation,
        &answer,
        Clocks { started, deadline },
        job,
        lease,
    )
    .await
    {
        Ok(produced) => produced,
        Err(e) => {
            let public = e.to_public(&lease.id().to_string());
            Produced::failed(public.code, public.message)
        }
    };
    finish(&ports.step, &mut fanout, answer, produced, lease, started).await
}

/// What the provider part of a turn yielded, and from which model.
pub(super) struct Produced {
    pub(super) streamed: Streamed,
    pub(super) ending: Ending,
    /// Deltas not yet posted (held back while the lease could not be counted on).
    pub(super) unsent: Batch,
    pub(super) answered: Option<Candidate>,
    /// Where this answer stands in its tool loop.
    pub(super) position: LoopPosition,
    /// The tools the model was offered, when it was.
    pub(super) toolbox: Option<Toolbox>,
    /// The request's input tokens as planned, when a request was made.
    pub(super) planned_input: Option<u32>,
    /// Whether the call holds money in the user's budget (to settle when it ends).
    pub(super) held: bool,
}

impl Produced {
    fn failed(code: ErrorCode, message: String) -> Self {
        Self {
            streamed: Streamed::default(),
            ending: Ending::Failed(MessageError { code, message }),
            unsent: Batch::default(),
            answered: None,
            position: LoopPosition::default(),
            toolbox: None,
            planned_input: None,
            held: false,
        }
    }
}

/// The earlier steps of the answer being streamed: the assistant messages since the user's.
#[derive(Debug, Clone, Default)]
pub(super) struct LoopPosition {
    pub(super) earlier_steps: Vec<MessageId>,
    /// What the earlier steps cost, for the answer's total.
    pub(super) earlier_usage: Vec<Usage>,
}

impl LoopPosition {
    fn of(history: &[Message]) -> Self {
        let mut position = Self::default();
        for m in history.iter().rev().take_while(|m| m.role != Role::User) {
            if m.role == Role::Assistant {
                position.earlier_steps.push(m.id);
                position.earlier_usage.extend(m.usage);
            }
        }
        position
    }

    pub(super) fn number(&self) -> u32 {
        u32::try_from(self.earlier_steps.len())
            .unwrap_or(u32::MAX)
            .saturating_add(1)
    }
}

async fn produce(
    ports: &TurnPorts<'_>,
    fanout: &mut Fanout<'_>,
    conversation: &bestchat_domain::conversation::Conversation,
    answer: &Message,
    clocks: Clocks,
    job: &TurnJob,
    lease: &Lease,
) -> Result<Produced, AppError> {
    let history = history::load(ports.store, ports.context.settings, conversation, answer).await?;
    let position = LoopPosition::of(&history);
    let mut candidates = match chain::candidates(&ports.access, conversation, answer).await? {
        Ok(c) => c,
        Err(unusable) => {
            return Ok(Produced::failed(
                ErrorCode::ProviderNotConfigured,
                unusable.sentence(),
            ));
        }
    };
    // Tools go only to models that take them: offered when the first model does, and then
    // the fallbacks that do not are left out of the chain.
    let toolbox = if candidates.first().is_some_and(Candidate::supports_tools) {
        candidates.retain(Candidate::supports_tools);
        Some(round::toolbox(&ports.step, conversation.user_id).await?)
    } else {
        None
    };
    let specs: Vec<ToolSpec> = toolbox.as_ref().map_or_else(Vec::new, Toolbox::specs);
    let (request, planned_input) = match context::build(
        &ports.context,
        conversation,
        answer,
        &history,
        &candidates,
        specs,
    )
    .await?
    {
        Ok(built) => {
            for o in &built.optimizations {
                fanout
                    .event(&ServerEvent::ContextOptimized {
                        conversation_id: conversation.id,
                        message_id: Some(answer.id),
                        strategy: o.strategy.as_str().to_owned(),
                        tokens_before: o.tokens_before,
                        tokens_after: o.tokens_after,
                    })
                    .await;
            }
            (built.request, built.input_tokens)
        }
        Err(too_large) => {
            return Ok(Produced::failed(
                ErrorCode::ContextTooLarge,
                too_large.to_string(),
            ));
        }
    };
    drop(history);
    let held = match hold(
        ports,
        answer,
        &candidates,
        &request,
        planned_input,
        clocks.deadline,
    )
    .await?
    {
        Ok(held) => held,
        Err(refused) => return Ok(Produced::failed(refused.code, refused.message)),
    };
    let chain: Vec<Target> = candidates.iter().map(|c| c.target.clone()).collect();
    match ports.failover.start(&chain, &request).await {
        Err(exhausted) => {
            tracing::warn!(message = %answer.id, lease = %lease.id(), error = %exhausted.error, "every provider of the chain failed");
            let last = exhausted.attempts.last().map(|a| a.provider.clone());
            let index = candidates
                .iter()
                .position(|c| Some(c.target.provider.to_string()) == last)
                .unwrap_or(0);
            Ok(Produced {
                streamed: Streamed {
                    attempts: exhausted.attempts,
                    ..Streamed::default()
                },
                ending: Ending::Failed(MessageError {
                    // A refused key is the user's to fix (their settings), not worth a retry.
                    code: if exhausted.error.kind == ErrorKind::Auth {
                        ErrorCode::ProviderKeyRefused
                    } else {
                        ErrorCode::ProviderError
                    },
                    message: exhausted.error.kind.public_sentence().to_owned(),
                }),
                unsent: Batch::default(),
                answered: Some(candidates.swap_remove(index)),
                position,
                toolbox,
                planned_input: Some(planned_input),
                held,
            })
        }
        Ok(ready) => {
            let (streamed, ending, unsent) =
                stream::run(fanout, ready.stream, ready.attempts, job, lease, clocks).await;
            Ok(Produced {
                streamed,
                ending,
                unsent,
                answered: Some(candidates.swap_remove(ready.target)),
                position,
                toolbox,
                planned_input: Some(planned_input),
                held,
            })
        }
    }
}

/// Holds the call's worst case in the user's budget until the invocation's deadline (and a
/// lease past it: then the janitor has ended the answer); refused when it does not fit.
async fn hold(
    ports: &TurnPorts<'_>,
    answer: &Message,
    candidates: &[Candidate],
    request: &ChatRequest,
    planned_input: u32,
    deadline: tokio::time::Instant,
) -> Result<Result<bool, DomainError>, AppError> {
    let budgets = &ports.step.budgets;
    let max_output = request.max_output_tokens.unwrap_or_else(|| {
        candidates
            .iter()
            .map(|c| c.window_and_output().1)
            .max()
            .unwrap_or(0)
    });
    let worst = worst_case(
        candidates.iter().map(|c| c.info.as_ref()),
        planned_input,
        max_output,
        budgets.settings,
    );
    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
    let expires = after(now(), left + ports.turn_lease);
    Ok(budgets
        .reserve(answer.user_id, &answer.id.to_string(), worst, expires)
        .await?
        .map(|hold| hold == Hold::Held))
}
