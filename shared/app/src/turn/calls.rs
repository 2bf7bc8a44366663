//! What becomes of the tool calls a step's answer asked for, decided before anything runs: each
//! call gets its execution record, and a call that ends at once (an unknown tool, arguments that
//! do not fit the schema, a refusal by the user's rules, the step limit) gets its `tool` message
//! too. Pure: the step's writer stores what this returns with the answer, in one transaction.

use bestchat_domain::ids::{ConversationId, MessageId, ToolExecutionId, UserId};
use bestchat_domain::message::{Message, MessageStatus, Role, ToolCall};
use bestchat_domain::time::{Timestamp, after};
use bestchat_domain::tool::{
    DecidedBy, ExecutionDecision, ExecutionError, ExecutionStatus, ToolExecution, Verdict,
};
use bestchat_tools::policy::{AutoApproval, Rule};
use bestchat_tools::registry::Registry;
use bestchat_tools::{Arguments, Ceilings, ExecRequest, Limits};
use serde_json::{Value, json};

use crate::tokens::message_tokens;
use crate::tools::config::LoopLimits;

/// What the step's calls are decided against.
pub(crate) struct Toolbox {
    pub registry: Registry,
    pub policy: AutoApproval,
    /// The hosts the user lets http_fetch reach.
    pub fetch_hosts: Vec<String>,
}

/// The answer the calls belong to, and where it stands in its loop.
pub(crate) struct StepOf {
    pub user: UserId,
    pub conversation: ConversationId,
    pub message: MessageId,
    /// 1 for the answer to the user's message, 2 for the step after its tool results, …
    pub number: u32,
    /// Calls of earlier steps of this answer that ran without asking.
    pub auto_so_far: u32,
    /// Counts the tokens of `tool` messages as the model reading them would.
    pub model: String,
    pub at: Timestamp,
}

/// Executions for every call, and `tool` messages for the ones that already ended.
#[derive(Debug, Default)]
pub(crate) struct DecidedCalls {
    pub executions: Vec<ToolExecution>,
    pub results: Vec<Message>,
}

impl DecidedCalls {
    pub fn waiting(&self) -> impl Iterator<Item = &ToolExecution> {
        self.executions
            .iter()
            .filter(|e| e.status == ExecutionStatus::Pending)
    }
}

/// How long an approved call may wait to be started, and how long past its wall-clock limit a
/// running call may take, before the janitor presumes its invocation lost: room for the
/// executor's cold start and the round trip.
pub(crate) const RUN_GRACE: std::time::Duration = std::time::Duration::from_secs(60);

/// The rule recorded for calls refused because the answer used all its steps.
pub const STEP_LIMIT_RULE: &str = "step_limit";

pub(crate) fn decide(
    toolbox: &Toolbox,
    step: &StepOf,
    calls: &[ToolCall],
    bounds: &LoopLimits,
    ceilings: &Ceilings,
) -> DecidedCalls {
    let mut out = DecidedCalls::default();
    let mut auto = step.auto_so_far;
    for (i, call) in calls.iter().enumerate() {
        let entry = toolbox.registry.find(&call.name);
        let mut execution = ToolExecution {
            id: ToolExecutionId::generate(),
            user_id: step.user,
            conversation_id: step.conversation,
            message_id: step.message,
            tool_call_id: call.id.clone(),
            tool: call.name.clone(),
            risk: entry.map_or("read", |e| e.manifest.risk.as_str()).to_owned(),
            arguments: call.arguments.clone(),
            status: ExecutionStatus::Failed,
            decision: None,
            output: None,
            error: None,
            usage: None,
            request: Value::Null,
            expires_at: None,
            created_at: step.at,
            updated_at: step.at,
        };
        let refusal = if step.number >= bounds.max_steps {
            Some(policy_refusal(
                step,
                STEP_LIMIT_RULE,
                "not run: the answer used as many tool steps as it may",
            ))
        } else if i >= bounds.max_calls_per_step {
            Some(policy_refusal(
                step,
                "max_calls_per_step",
                "not run: the model asked for more calls at once than it may",
            ))
        } else {
            None
        };
        if let Some((decision, error)) = refusal {
            execution.status = ExecutionStatus::Denied;
            execution.decision = Some(decision);
            execution.error = Some(error);
            out.push_ended(execution, step);
            continue;
        }
        let Some(entry) = entry else {
            execution.error = Some(ExecutionError {
                code: "tool_not_found".into(),
                message: format!("there is no tool named {:?}", call.name),
            });
            out.push_ended(execution, step);
            continue;
        };
        if let Err(problem) = check_arguments(&entry.manifest.parameters, &call.arguments) {
            execution.error = Some(ExecutionError {
                code: "invalid_arguments".into(),
                message: problem,
            });
            out.push_ended(execution, step);
            continue;
        }
        let mut limits = Limits::granted(&entry.manifest.grants, ceilings);
        if entry.hosts_from_user {
            limits.hosts.clone_from(&toolbox.fetch_hosts);
        }
        execution.request = serde_json::to_value(ExecRequest {
            tool: call.name.clone(),
            module: entry.module.clone(),
            arguments: call.arguments.clone(),
            limits,
        })
        .unwrap_or_default();
        let decision = toolbox
            .policy
            .decide(&call.name, entry.manifest.risk, auto);
        let recorded = |verdict| ExecutionDecision {
            by: DecidedBy::Policy,
            verdict,
            rule: decision.by.clone(),
            at: step.at,
            connection_id: None,
        };
        match decision.rule {
            Rule::Auto => {
                auto += 1;
                execution.status = ExecutionStatus::Approved;
                execution.decision = Some(recorded(Verdict::Approve));
                execution.expires_at = Some(after(step.at, RUN_GRACE));
                out.executions.push(execution);
            }
            Rule::Ask => {
                execution.status = ExecutionStatus::Pending;
                execution.expires_at = Some(after(step.at, bounds.approval_ttl));
                out.executions.push(execution);
            }
            Rule::Deny => {
                execution.status = ExecutionStatus::Denied;
                execution.decision = Some(recorded(Verdict::Deny));
                execution.error = Some(ExecutionError {
                    code: "denied".into(),
                    message: format!("denied by the user's settings ({})", decision.by),
                });
                out.push_ended(execution, step);
            }
        }
    }
    out
}

impl DecidedCalls {
    fn push_ended(&mut self, execution: ToolExecution, step: &StepOf) {
        self.results.push(result_message(&execution, &step.model, step.at));
        self.executions.push(execution);
    }
}

fn policy_refusal(step: &StepOf, rule: &str, sentence: &str) -> (ExecutionDecision, ExecutionError) {
    (
        ExecutionDecision {
            by: DecidedBy::Policy,
            verdict: Verdict::Deny,
            rule: rule.to_owned(),
            at: step.at,
            connection_id: None,
        },
        ExecutionError {
            code: rule.to_owned(),
            message: sentence.to_owned(),
        },
    )
}

/// The schema's verdict on the arguments; arguments that were not JSON at all arrive as the
/// string the model wrote.
fn check_arguments(schema: &Value, arguments: &Value) -> Result<(), String> {
    let checker = Arguments::compile(schema).map_err(|e| e.to_string())?;
    checker.check(arguments).map_err(|e| e.to_string())
}

/// What the model is told of an ended call: the tool's JSON, or why there is none.
pub(crate) fn result_content(execution: &ToolExecution) -> String {
    match (&execution.output, &execution.error) {
        (Some(output), None) => output.to_string(),
        (_, Some(error)) => json!({ "error": { "code": error.code, "message": error.message } })
            .to_string(),
        (None, None) => json!({ "error": { "code": "no_result", "message": "the call produced nothing" } })
            .to_string(),
    }
}

/// The `tool` message that carries an ended call's result back to the model.
pub(crate) fn result_message(execution: &ToolExecution, model: &str, at: Timestamp) -> Message {
    let content = result_content(execution);
    Message {
        id: MessageId::generate(),
        conversation_id: execution.conversation_id,
        user_id: execution.user_id,
        role: Role::Tool,
        token_count: message_tokens(model, &content, &[]),
        content,
        status: MessageStatus::Complete,
        client_message_id: None,
        reply_to: None,
        provider: None,
        model: None,
        tool_calls: Vec::new(),
        tool_call_id: Some(execution.tool_call_id.clone()),
        usage: None,
        finish_reason: None,
        error: None,
        created_at: at,
        updated_at: at,
        content_omitted: false,
    }
}
