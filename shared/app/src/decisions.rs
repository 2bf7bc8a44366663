//! The user's decisions on calls that wait for them (`approveTool` over WebSocket,
//! `POST /api/tool-executions/{id}/approve|deny`), the janitor's end of the ones nobody decided,
//! and the list of executions. The first decision wins: a repeat of it changes nothing, a
//! different one is `conflict`; once no call of the step waits, a fresh `chat-turn` invocation
//! runs the approved ones and continues the loop.

use bestchat_domain::ids::{MessageId, ToolExecutionId, UserId};
use bestchat_domain::ports::realtime::{ConnectionId, Invoker};
use bestchat_domain::ports::store::{ToolExecutionStore, TurnStore};
use bestchat_domain::time::{Timestamp, after, now};
use bestchat_domain::tool::{
    DecidedBy, ExecutionDecision, ExecutionError, ExecutionStatus, ToolExecution, Verdict,
};
use bestchat_domain::wire::ServerEvent;
use bestchat_domain::{DomainError, ErrorCode};

use crate::devices::Devices;
use crate::error::AppError;
use crate::jobs::CHAT_TURN;
use crate::turn::calls::{RUN_GRACE, result_message};
use crate::turn::job::TurnJob;

/// What deciding a call reads and writes: the executions, the steps they belong to, the user's
/// devices, and the invoker that continues a step whose calls are all decided.
pub struct DecisionPorts<'a> {
    pub executions: &'a dyn ToolExecutionStore,
    pub turns: &'a dyn TurnStore,
    pub devices: Devices,
    pub invoker: &'a dyn Invoker,
}

/// Records the user's decision on a waiting call; the execution as it stands after it. A
/// deciding `connection` follows the conversation from here, as a sender does: subscribed before
/// the decision is written, it sees all of the call's run and the answer that follows.
pub async fn decide(
    ports: &DecisionPorts<'_>,
    user: UserId,
    id: ToolExecutionId,
    verdict: Verdict,
    connection: Option<&ConnectionId>,
) -> Result<ToolExecution, AppError> {
    let store = ports.executions;
    let not_found = || AppError::from(DomainError::of(ErrorCode::ToolExecutionNotFound));
    let current = store.get_execution(user, id).await?.ok_or_else(not_found)?;
    if let Some(connection) = connection {
        ports
            .devices
            .connections
            .subscribe(connection, user, current.conversation_id)
            .await?;
    }
    if current.status != ExecutionStatus::Pending {
        return already_decided(current, verdict);
    }
    let at = now();
    // Past its deadline the call is the clock's, whether or not the janitor came by yet.
    if current.expires_at.is_some_and(|deadline| deadline <= at) {
        if expire(ports, &current, at).await? {
            continue_if_decided(ports, user, current.message_id).await;
        }
        let now_stored = store.get_execution(user, id).await?.ok_or_else(not_found)?;
        return already_decided(now_stored, verdict);
    }
    let decision = ExecutionDecision {
        by: DecidedBy::User,
        verdict,
        rule: "user".into(),
        at,
        connection_id: connection.map(|c| c.as_str().to_owned()),
    };
    let decided = settle(&current, decision, at);
    let result = (verdict == Verdict::Deny).then(|| result_message(&decided, "", at));
    let entry = crate::audit::execution(&decided, verdict.as_str(), at);
    if !store
        .transition_execution(
            &decided,
            ExecutionStatus::Pending,
            result.as_ref(),
            Some(&entry),
        )
        .await?
    {
        // Decided elsewhere meanwhile: the first decision stands.
        let now_stored = store.get_execution(user, id).await?.ok_or_else(not_found)?;
        return already_decided(now_stored, verdict);
    }
    tracing::info!(execution = %id, tool = decided.tool, verdict = verdict.as_str(), "tool call decided");
    ports.devices.tool_decided(&decided).await;
    if let Some(result) = &result {
        ports.devices.tool_result(&decided, result).await;
    }
    continue_if_decided(ports, user, decided.message_id).await;
    Ok(decided)
}

/// Cancels an answer that waits for approval: every call not yet run is denied (rule `cancel`,
/// told to the model on the next turn), and the answer ends `cancelled`; the loop does not go
/// on. `false` when it was not waiting.
pub async fn cancel_step(
    ports: &DecisionPorts<'_>,
    user: UserId,
    step: MessageId,
    connection: Option<&ConnectionId>,
) -> Result<bool, AppError> {
    let store = ports.executions;
    let at = now();
    for execution in store.executions_of(user, step).await? {
        let from = execution.status;
        if !matches!(from, ExecutionStatus::Pending | ExecutionStatus::Approved) {
            continue;
        }
        let decision = ExecutionDecision {
            by: DecidedBy::User,
            verdict: Verdict::Deny,
            rule: "cancel".into(),
            at,
            connection_id: connection.map(|c| c.as_str().to_owned()),
        };
        let denied = ToolExecution {
            error: Some(ExecutionError {
                code: "denied".into(),
                message: "not run: the user stopped the answer".into(),
            }),
            ..settle(&execution, decision, at)
        };
        let result = result_message(&denied, "", at);
        let entry = crate::audit::execution(&denied, "deny", at);
        if store
            .transition_execution(&denied, from, Some(&result), Some(&entry))
            .await?
        {
            ports.devices.tool_decided(&denied).await;
            ports.devices.tool_result(&denied, &result).await;
        }
    }
    let ended = store
        .end_waiting_step(
            user,
            step,
            bestchat_domain::message::MessageStatus::Cancelled,
            at,
        )
        .await?;
    if ended && let Some(cancelled) = ports.turns.get_message(user, step).await? {
        ports
            .devices
            .broadcast(
                user,
                cancelled.conversation_id,
                &ServerEvent::MessageUpdated { message: cancelled },
            )
            .await;
    }
    Ok(ended)
}

/// The execution once `decision` is applied to it.
fn settle(current: &ToolExecution, decision: ExecutionDecision, at: Timestamp) -> ToolExecution {
    let approve = decision.verdict == Verdict::Approve;
    let denial = |code: &str, message: &str| ExecutionError {
        code: code.to_owned(),
        message: message.to_owned(),
    };
    ToolExecution {
        status: match (approve, decision.by) {
            (true, _) => ExecutionStatus::Approved,
            (false, DecidedBy::User) => ExecutionStatus::Denied,
            (false, DecidedBy::Policy) => ExecutionStatus::Expired,
        },
        error: match (approve, decision.by) {
            (true, _) => None,
            (false, DecidedBy::User) => Some(denial("denied", "denied by the user")),
            (false, DecidedBy::Policy) => Some(denial(
                "expired",
                "not run: nobody approved it in time (denied by timeout)",
            )),
        },
        expires_at: approve.then(|| after(at, RUN_GRACE)),
        decision: Some(decision),
        updated_at: at,
        ..current.clone()
    }
}

/// A decision on a call that is no longer waiting: the same verdict again is a no-op, another
/// one is refused.
fn already_decided(current: ToolExecution, verdict: Verdict) -> Result<ToolExecution, AppError> {
    match &current.decision {
        Some(d) if d.verdict == verdict => Ok(current),
        _ => Err(DomainError::new(
            ErrorCode::Conflict,
            match current.status {
                ExecutionStatus::Expired => {
                    "nobody approved this call in time; it was not run".to_owned()
                }
                status => format!(
                    "this call is already {}; the first decision stands",
                    status.as_str()
                ),
            },
        )
        .into()),
    }
}

/// Once no call of the step waits, a fresh `chat-turn` runs the approved calls and goes on.
/// Racing deciders may both start one: each call runs once, and the next step exists once.
async fn continue_if_decided(ports: &DecisionPorts<'_>, user: UserId, step: MessageId) {
    let waiting = match ports.executions.executions_of(user, step).await {
        Ok(all) => all.iter().any(|e| e.status == ExecutionStatus::Pending),
        Err(e) => {
            // The approved calls keep their expiry: the janitor starts the continuation.
            return tracing::warn!(message = %step, error = %e, "cannot check the step; the janitor will continue it");
        }
    };
    if !waiting {
        start_continuation(ports, user, step).await;
    }
}

/// Starts the invocation that runs the step's decided calls.
async fn start_continuation(ports: &DecisionPorts<'_>, user: UserId, step: MessageId) {
    let Ok(Some(message)) = ports.turns.get_message(user, step).await else {
        return tracing::warn!(message = %step, "the step to continue is gone");
    };
    let job = TurnJob {
        user_id: user,
        conversation_id: message.conversation_id,
        message_id: step,
        continue_tools: true,
    };
    let payload = serde_json::to_value(&job).unwrap_or_default();
    tracing::info!(message = %step, "a new invocation continues the tool step");
    if let Err(e) = ports.invoker.invoke_async(CHAT_TURN, &payload).await {
        tracing::error!(message = %step, error = %e, "cannot start the continuation; the janitor will");
    }
}

/// What the janitor did with overdue executions.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Overdue {
    pub expired: u32,
    pub interrupted: u32,
    pub restarted: u32,
}

/// Executions read per janitor run.
pub const OVERDUE_BATCH: u32 = 200;

/// Ends the approvals nobody gave in time (denied by timeout), the runs whose invocation died
/// (failed, `interrupted`), and restarts the continuation of approved calls nobody started.
pub async fn sweep_overdue(ports: &DecisionPorts<'_>) -> Result<Overdue, AppError> {
    let at = now();
    let mut done = Overdue::default();
    let mut steps: Vec<(UserId, MessageId)> = Vec::new();
    for execution in ports
        .executions
        .overdue_executions(at, OVERDUE_BATCH)
        .await?
    {
        let (user, step) = (execution.user_id, execution.message_id);
        let moved = match execution.status {
            ExecutionStatus::Pending => {
                let ended = expire(ports, &execution, at).await?;
                done.expired += u32::from(ended);
                ended
            }
            ExecutionStatus::Running => {
                let failed = ToolExecution {
                    status: ExecutionStatus::Failed,
                    error: Some(ExecutionError {
                        code: "interrupted".into(),
                        message: "the run was lost before it answered; it may have had effects"
                            .into(),
                    }),
                    expires_at: None,
                    updated_at: at,
                    ..execution
                };
                let ended = end(ports, &failed, ExecutionStatus::Running, "interrupt").await?;
                done.interrupted += u32::from(ended);
                ended
            }
            _ => {
                let later = ToolExecution {
                    expires_at: Some(after(at, RUN_GRACE)),
                    updated_at: at,
                    ..execution
                };
                let pushed = ports
                    .executions
                    .transition_execution(&later, ExecutionStatus::Approved, None, None)
                    .await?;
                done.restarted += u32::from(pushed);
                pushed
            }
        };
        if moved && !steps.contains(&(user, step)) {
            steps.push((user, step));
        }
    }
    for (user, step) in steps {
        continue_if_decided(ports, user, step).await;
    }
    Ok(done)
}

/// Ends a call nobody approved in time as denied by timeout; `false` when it was decided first.
async fn expire(
    ports: &DecisionPorts<'_>,
    waiting: &ToolExecution,
    at: Timestamp,
) -> Result<bool, AppError> {
    let decision = ExecutionDecision {
        by: DecidedBy::Policy,
        verdict: Verdict::Deny,
        rule: "timeout".into(),
        at,
        connection_id: None,
    };
    let expired = settle(waiting, decision, at);
    let ended = end(ports, &expired, ExecutionStatus::Pending, "expire").await?;
    if ended {
        ports.devices.tool_decided(&expired).await;
    }
    Ok(ended)
}

/// Moves an execution to its end with its `tool` message and audit entry.
async fn end(
    ports: &DecisionPorts<'_>,
    ended: &ToolExecution,
    from: ExecutionStatus,
    what: &str,
) -> Result<bool, AppError> {
    let result = result_message(ended, "", ended.updated_at);
    let entry = crate::audit::execution(ended, what, ended.updated_at);
    let moved = ports
        .executions
        .transition_execution(ended, from, Some(&result), Some(&entry))
        .await?;
    if moved {
        ports.devices.tool_result(ended, &result).await;
    }
    Ok(moved)
}

#[cfg(test)]
#[cfg(feature = "sqlite")]
mod tests {
    use std::time::Duration;

    use bestchat_domain::message::{Message, MessageStatus, Role, ToolCall};
    use bestchat_domain::page::PageRequest;
    use bestchat_domain::ports::store::{Finisher, LeaseId, StepRecords};
    use bestchat_domain::time::after;

    use serde_json::json;

    use super::*;
    use crate::testing;

    fn overdue(step: &Message, call: &str, status: ExecutionStatus) -> ToolExecution {
        let long_ago = now() - chrono::Duration::seconds(5);
        ToolExecution {
            id: ToolExecutionId::generate(),
            user_id: step.user_id,
            conversation_id: step.conversation_id,
            message_id: step.id,
            tool_call_id: call.into(),
            tool: "calculator".into(),
            risk: "read".into(),
            arguments: json!({"expression": "1"}),
            status,
            decision: None,
            output: None,
            error: None,
            usage: None,
            request: serde_json::Value::Null,
            expires_at: Some(long_ago),
            created_at: long_ago,
            updated_at: long_ago,
        }
    }

    #[tokio::test]
    async fn the_janitor_ends_undecided_and_lost_calls_and_the_loop_goes_on() {
        let embedded = testing::state(&[]).await;
        let state = &embedded.state;
        let (user, conversation) = testing::conversation(state, "sweeper").await;
        let question = Message {
            role: Role::User,
            content: "go".into(),
            status: MessageStatus::Complete,
            client_message_id: Some("q".into()),
            ..testing::assistant(user, conversation.id, MessageStatus::Complete)
        };
        let answer = Message {
            reply_to: Some(question.id),
            ..testing::assistant(user, conversation.id, MessageStatus::Pending)
        };
        let store = state.store();
        store
            .start_turn(&question, &answer, after(now(), Duration::from_secs(60)))
            .await
            .unwrap();
        let lease = LeaseId::generate();
        store
            .claim_turn(
                user,
                answer.id,
                lease,
                now(),
                after(now(), Duration::from_secs(60)),
            )
            .await
            .unwrap();
        let calls = ["lost", "undecided"].map(|id| ToolCall {
            id: id.into(),
            name: "calculator".into(),
            arguments: json!({"expression": "1"}),
            signature: None,
        });
        let step = Message {
            status: MessageStatus::AwaitingApproval,
            tool_calls: calls.to_vec(),
            ..answer.clone()
        };
        let executions = [
            overdue(&step, "lost", ExecutionStatus::Running),
            overdue(&step, "undecided", ExecutionStatus::Pending),
        ];
        let records = StepRecords {
            executions: &executions,
            results: &[],
            audit: &[],
            continue_by: None,
        };
        assert!(
            store
                .finish_turn(&step, None, Finisher::Lease(lease), &records)
                .await
                .unwrap()
        );

        let swept = sweep_overdue(&state.decision_ports()).await.unwrap();
        assert_eq!(
            swept,
            Overdue {
                expired: 1,
                interrupted: 1,
                restarted: 0
            }
        );
        let ended = store.executions_of(user, step.id).await.unwrap();
        let codes: Vec<(ExecutionStatus, &str)> = ended
            .iter()
            .map(|e| (e.status, e.error.as_ref().unwrap().code.as_str()))
            .collect();
        assert_eq!(
            codes,
            [
                (ExecutionStatus::Failed, "interrupted"),
                (ExecutionStatus::Expired, "expired")
            ]
        );
        assert_eq!(ended[1].decision.as_ref().unwrap().rule, "timeout");
        // The continuation the sweep started writes the next step (the echo model answers).
        let mut next = None;
        for _ in 0..100 {
            let all = store
                .list_messages(
                    user,
                    conversation.id,
                    &PageRequest::parse(None, None).unwrap(),
                )
                .await
                .unwrap()
                .items;
            if let Some(m) = all
                .iter()
                .find(|m| m.reply_to == Some(step.id) && !m.status.is_unfinished())
            {
                next = Some((all.clone(), m.clone()));
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (all, next) = next.expect("the loop went on");
        assert_eq!(next.role, Role::Assistant);
        let results = all.iter().filter(|m| m.role == Role::Tool).count();
        assert_eq!(results, 2, "each ended call has its result");
        // A second sweep finds nothing more to do.
        assert_eq!(
            sweep_overdue(&state.decision_ports()).await.unwrap(),
            Overdue::default()
        );
    }

    /// A step whose calls all ended but whose invocation died before it made the next step
    /// would hold the conversation forever: past its deadline the janitor goes on with it.
    #[tokio::test]
    async fn the_janitor_continues_a_loop_whose_continuation_was_lost() {
        let embedded = testing::state(&[]).await;
        let state = &embedded.state;
        let (user, conversation) = testing::conversation(state, "stalled").await;
        let question = Message {
            role: Role::User,
            content: "go".into(),
            status: MessageStatus::Complete,
            client_message_id: Some("q".into()),
            ..testing::assistant(user, conversation.id, MessageStatus::Complete)
        };
        let answer = Message {
            reply_to: Some(question.id),
            ..testing::assistant(user, conversation.id, MessageStatus::Pending)
        };
        let store = state.store();
        store
            .start_turn(&question, &answer, after(now(), Duration::from_secs(60)))
            .await
            .unwrap();
        let lease = LeaseId::generate();
        let deadline = after(now(), Duration::from_secs(60));
        store
            .claim_turn(user, answer.id, lease, now(), deadline)
            .await
            .unwrap();
        let step = Message {
            status: MessageStatus::Complete,
            tool_calls: vec![ToolCall {
                id: "done".into(),
                name: "calculator".into(),
                arguments: json!({"expression": "1"}),
                signature: None,
            }],
            ..answer.clone()
        };
        let ran = ToolExecution {
            status: ExecutionStatus::Succeeded,
            output: Some(json!({"result": "1"})),
            expires_at: None,
            ..overdue(&step, "done", ExecutionStatus::Succeeded)
        };
        let result = crate::turn::calls::result_message(&ran, "", now());
        let records = StepRecords {
            executions: std::slice::from_ref(&ran),
            results: std::slice::from_ref(&result),
            audit: &[],
            // Already past: the invocation that should have gone on died.
            continue_by: Some(now()),
        };
        assert!(
            store
                .finish_turn(&step, None, Finisher::Lease(lease), &records)
                .await
                .unwrap()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
        let report = crate::janitor::run(state).await.unwrap();
        assert_eq!(report.steps_continued, 1, "{report:?}");
        let mut next = None;
        for _ in 0..100 {
            let all = store
                .list_messages(
                    user,
                    conversation.id,
                    &PageRequest::parse(None, None).unwrap(),
                )
                .await
                .unwrap()
                .items;
            next = all
                .into_iter()
                .find(|m| m.reply_to == Some(step.id) && !m.status.is_unfinished());
            if next.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            next.expect("the loop went on").status,
            MessageStatus::Complete
        );
        assert_eq!(crate::janitor::run(state).await.unwrap().steps_continued, 0);
    }
}
