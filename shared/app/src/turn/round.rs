//! A tool round: the approved calls of a step run in the `tool-executor` (concurrently, bounded),
//! each result stored with its `tool` message, and once every call of the step has ended the
//! loop's next answer is created and handed back to be streamed. Runs in the invocation that
//! streamed the step when nothing waited for the user, or in a fresh `chat-turn` invocation
//! started by the last decision (no function ever waits on a human).

use bestchat_domain::ids::{MessageId, UserId};
use bestchat_domain::message::{Message, MessageStatus};
use bestchat_domain::time::{after, now};
use bestchat_domain::tool::{
    ExecutionError, ExecutionStatus, ExecutionUsage, Runner, ToolExecution,
};
use bestchat_domain::wire::ServerEvent;
use bestchat_tools::{ExecRequest, ExecResponse};
use futures_util::StreamExt;

use super::calls::{DecidedCalls, RUN_GRACE, Toolbox, result_message};
use super::job::{StepOutcome, TurnJob};
use super::ports::StepPorts;
use crate::error::AppError;
use crate::settings::{auto_approval, fetch_hosts};
use crate::tools::TOOL_EXECUTOR;
use crate::tools::registration::registry;

/// The user's tools, rules and allowed hosts, as one step decides its calls against them.
pub(super) async fn toolbox(ports: &StepPorts<'_>, user: UserId) -> Result<Toolbox, AppError> {
    let (registry, _) = registry(ports.tools, user).await?;
    let mcp =
        crate::mcp::tools_of(ports.servers, user, &|name| registry.find(name).is_some()).await?;
    let roles = ports.users.roles(user).await?.unwrap_or_default();
    Ok(Toolbox {
        policy: auto_approval(ports.settings, user).await?,
        ceilings: crate::roles::ceilings_for(ports.role_ceilings, &roles),
        fetch_hosts: fetch_hosts(ports.settings, user).await?.hosts,
        mcp,
        registry,
    })
}

/// Calls of the earlier steps of this answer that ran without asking, for the per-turn cap.
pub(super) async fn auto_approved_before(
    ports: &StepPorts<'_>,
    user: UserId,
    earlier_steps: &[MessageId],
) -> Result<u32, AppError> {
    let mut count = 0u32;
    for step in earlier_steps {
        let executions = ports.executions.executions_of(user, *step).await?;
        let auto = executions.iter().filter(|e| {
            e.decision.as_ref().is_some_and(|d| {
                d.by == bestchat_domain::tool::DecidedBy::Policy
                    && d.verdict == bestchat_domain::tool::Verdict::Approve
            })
        });
        count = count.saturating_add(u32::try_from(auto.count()).unwrap_or(u32::MAX));
    }
    Ok(count)
}

/// Runs the step's approved calls, then continues the loop if every call has ended: the next
/// answer's job, when this invocation created it.
pub(super) async fn advance(ports: &StepPorts<'_>, job: &TurnJob) -> Result<StepOutcome, AppError> {
    let Some(step) = ports.turns.get_message(job.user_id, job.message_id).await? else {
        return Ok(StepOutcome::MessageGone);
    };
    let approved: Vec<ToolExecution> = ports
        .executions
        .executions_of(job.user_id, step.id)
        .await?
        .into_iter()
        .filter(|e| e.status == ExecutionStatus::Approved)
        .collect();
    let parallel = ports.tools_config.loop_limits.parallel_calls;
    let runs: Vec<Result<(), AppError>> = futures_util::stream::iter(approved)
        .map(|execution| run_call(ports, &step, execution))
        .buffer_unordered(parallel)
        .collect()
        .await;
    for failed in runs.into_iter().filter_map(Result::err) {
        // The call stays `running`; the janitor ends it once its time is up.
        tracing::error!(message = %step.id, error = %failed, "a tool call's result could not be stored");
    }
    next_step(ports, &step).await
}

/// One call: claimed (`approved` → `running`, so no two invocations run it), run, and its
/// result stored with the `tool` message the model reads.
async fn run_call(
    ports: &StepPorts<'_>,
    step: &Message,
    execution: ToolExecution,
) -> Result<(), AppError> {
    let store = ports.executions;
    let at = now();
    let wall = ports.tools_config.ceilings.max_wall;
    let running = ToolExecution {
        status: ExecutionStatus::Running,
        expires_at: Some(after(at, wall + RUN_GRACE)),
        updated_at: at,
        ..execution
    };
    if !store
        .transition_execution(&running, ExecutionStatus::Approved, None, None)
        .await?
    {
        return Ok(());
    }
    let (mut output, error, usage) = match running.runner() {
        Runner::Mcp(target) => {
            let call = crate::mcp::CallPorts {
                servers: ports.servers,
                vault: ports.vault,
                client: ports.mcp.mcp_client().ok(),
                timeout: ports.mcp_timeout,
            };
            crate::mcp::call(
                &call,
                running.user_id,
                target,
                &running.request["arguments"],
            )
            .await
        }
        Runner::Sandbox => execute(ports, &running).await,
    };
    // As the store will hold it (and the model read it): no NUL.
    if let Some(output) = &mut output {
        bestchat_domain::text::replace_nul_in_json(output);
    }
    let done_at = now();
    let ended = ToolExecution {
        status: if error.is_none() {
            ExecutionStatus::Succeeded
        } else {
            ExecutionStatus::Failed
        },
        output,
        error,
        usage,
        expires_at: None,
        updated_at: done_at,
        ..running
    };
    let kind = match ended.runner() {
        Runner::Mcp(_) => "mcp",
        Runner::Sandbox => "sandbox",
    };
    let mut values = vec![crate::metrics::Metric::count("ToolRuns", 1)];
    if let Some(u) = &ended.usage {
        values.push(crate::metrics::Metric::millis("ToolWallTime", u.wall_ms));
    }
    ports.metrics.emit(
        &[("Kind", kind), ("Outcome", ended.status.as_str())],
        &values,
    );
    let model = step.model.as_ref().map_or("", |m| m.as_str());
    let (ended, result) = match store_result(ports, ended, model).await {
        Ok(Some(stored)) => stored,
        Ok(None) => return Ok(()),
        Err(e) => return Err(e),
    };
    ports.devices.tool_result(&ended, &result).await;
    Ok(())
}

/// Stores an ended call with its `tool` message. A result the store cannot take ends the call
/// `failed` instead (`result_unstorable`, told to the model), never left `running`. `None`
/// when the call was no longer this run's to end.
async fn store_result(
    ports: &StepPorts<'_>,
    ended: ToolExecution,
    model: &str,
) -> Result<Option<(ToolExecution, Message)>, AppError> {
    let store = ports.executions;
    let result = result_message(&ended, model, ended.updated_at);
    let entry = crate::audit::execution(&ended, "run", ended.updated_at);
    match store
        .transition_execution(
            &ended,
            ExecutionStatus::Running,
            Some(&result),
            Some(&entry),
        )
        .await
    {
        Ok(true) => return Ok(Some((ended, result))),
        Ok(false) => return Ok(None),
        Err(e) => {
            tracing::error!(execution = %ended.id, error = %e, "a tool result could not be stored; the call fails");
        }
    }
    let failed = ToolExecution {
        status: ExecutionStatus::Failed,
        output: None,
        error: Some(ExecutionError {
            code: "result_unstorable".into(),
            message: "the tool's result could not be stored".into(),
        }),
        ..ended
    };
    let result = result_message(&failed, model, failed.updated_at);
    let entry = crate::audit::execution(&failed, "run", failed.updated_at);
    Ok(store
        .transition_execution(
            &failed,
            ExecutionStatus::Running,
            Some(&result),
            Some(&entry),
        )
        .await?
        .then_some((failed, result)))
}

/// Asks the executor; every outcome, its unavailability included, is the call's result.
async fn execute(
    ports: &StepPorts<'_>,
    execution: &ToolExecution,
) -> (
    Option<serde_json::Value>,
    Option<ExecutionError>,
    Option<ExecutionUsage>,
) {
    let unavailable = |detail: String| {
        tracing::error!(execution = %execution.id, detail, "the tool executor failed");
        (
            None,
            Some(ExecutionError {
                code: "executor_unavailable".into(),
                message: "the tool could not be run just now".into(),
            }),
            None,
        )
    };
    let Ok(request) = serde_json::from_value::<ExecRequest>(execution.request.clone()) else {
        return unavailable("the stored request is not an executor request".into());
    };
    let payload = match serde_json::to_value(&request) {
        Ok(p) => p,
        Err(e) => return unavailable(e.to_string()),
    };
    let answer = match ports.invoker.invoke(TOOL_EXECUTOR, &payload).await {
        Ok(answer) => answer,
        Err(e) => return unavailable(e.to_string()),
    };
    let response: ExecResponse = match serde_json::from_value(answer) {
        Ok(r) => r,
        Err(e) => return unavailable(format!("unreadable executor answer: {e}")),
    };
    let u = response.usage();
    let usage = Some(ExecutionUsage {
        wall_ms: u.wall_ms,
        fuel: u.fuel,
        memory_bytes: u.peak_memory_bytes,
    });
    match response {
        ExecResponse::Ok { output, .. } => (Some(output), None, usage),
        ExecResponse::Failed { failure, .. } => (
            None,
            Some(ExecutionError {
                code: serde_json::to_value(failure.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_else(|| "failed".into()),
                message: failure.message,
            }),
            usage,
        ),
    }
}

/// Creates the loop's next answer once every call of `step` has ended; its job, or `None` when
/// a call is still open or another invocation went on first.
pub(crate) async fn next_step(
    ports: &StepPorts<'_>,
    step: &Message,
) -> Result<StepOutcome, AppError> {
    let at = now();
    let next = Message::next_step(step, at);
    let claim_by = after(at, ports.turn_start_timeout);
    if !ports
        .executions
        .continue_step(step.user_id, step.id, &next, claim_by)
        .await?
    {
        return Ok(StepOutcome::ToolsWaiting);
    }
    // A step that waited for the user has gone on: its devices stop showing it as waiting.
    if step.status == MessageStatus::AwaitingApproval
        && let Some(resumed) = ports.turns.get_message(step.user_id, step.id).await?
    {
        ports
            .devices
            .broadcast(
                step.user_id,
                step.conversation_id,
                &ServerEvent::MessageUpdated { message: resumed },
            )
            .await;
    }
    ports
        .devices
        .broadcast(
            step.user_id,
            step.conversation_id,
            &ServerEvent::MessageCreated {
                message: next.clone(),
            },
        )
        .await;
    Ok(StepOutcome::ToolsDone(TurnJob {
        user_id: next.user_id,
        conversation_id: next.conversation_id,
        message_id: next.id,
        continue_tools: false,
    }))
}

/// `tool.pending` to every device of the user, whatever it follows: approval may come from any.
async fn announce_pending(ports: &StepPorts<'_>, execution: &ToolExecution) {
    ports
        .devices
        .to_every_device(
            execution.user_id,
            &ServerEvent::ToolPending {
                conversation_id: execution.conversation_id,
                message_id: execution.message_id,
                tool_execution_id: execution.id,
                tool_execution: execution.clone(),
            },
        )
        .await;
}

/// What a step's calls came to when it was written: the results of those that ended at once,
/// and `tool.pending` for those that wait.
pub(super) async fn announce_decided(ports: &StepPorts<'_>, decided: &DecidedCalls) {
    for ended in decided.executions.iter().filter(|e| e.status.is_final()) {
        let result = decided
            .results
            .iter()
            .find(|m| m.tool_call_id.as_deref() == Some(ended.tool_call_id.as_str()));
        if let Some(result) = result {
            ports.devices.tool_result(ended, result).await;
        }
    }
    for waiting in decided.waiting() {
        announce_pending(ports, waiting).await;
    }
}
