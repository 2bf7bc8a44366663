//! A user's tool settings: the auto-approval rules (`GET/PUT /api/settings/auto-approval`) and
//! the hosts http_fetch may reach (`GET/PUT /api/settings/fetch-hosts`). Defaults until the user
//! sets them; every change on the audit trail.

use bestchat_domain::DomainError;
use bestchat_domain::ids::UserId;
use bestchat_domain::ports::store::{AuditEntry, AutoApprovalRecord};
use bestchat_domain::time::now;
use bestchat_tools::manifest::check_hosts;
use bestchat_tools::policy::{AutoApproval, RiskRules};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::AppError;
use crate::state::AppState;

pub async fn auto_approval(state: &AppState, user: UserId) -> Result<AutoApproval, AppError> {
    let Some(record) = state.store().get_auto_approval(user).await? else {
        return Ok(AutoApproval::default());
    };
    let risk: RiskRules = serde_json::from_value(record.by_risk)
        .map_err(|e| AppError::Internal(format!("stored auto-approval rules: {e}")))?;
    let tools = serde_json::from_value(record.by_tool)
        .map_err(|e| AppError::Internal(format!("stored auto-approval rules: {e}")))?;
    Ok(AutoApproval {
        risk,
        tools,
        max_auto_per_turn: record.max_per_turn,
    })
}

pub async fn put_auto_approval(
    state: &AppState,
    user: UserId,
    rules: AutoApproval,
) -> Result<AutoApproval, AppError> {
    rules
        .check()
        .map_err(|e| DomainError::validation(e.to_string()))?;
    let at = now();
    let record = AutoApprovalRecord {
        user_id: user,
        by_risk: to_json(&rules.risk)?,
        by_tool: to_json(&rules.tools)?,
        max_per_turn: rules.max_auto_per_turn,
        updated_at: at,
    };
    let entry = AuditEntry::of(
        user,
        "settings.auto_approval.put",
        ("settings", "auto-approval"),
        json!({ "risk": record.by_risk, "tools": record.by_tool, "max_auto_per_turn": rules.max_auto_per_turn }),
        at,
    );
    state.store().put_auto_approval(&record, &entry).await?;
    Ok(rules)
}

/// The hosts http_fetch may reach for a user: none until the user names some.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ::schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FetchHosts {
    pub hosts: Vec<String>,
}

pub async fn fetch_hosts(state: &AppState, user: UserId) -> Result<FetchHosts, AppError> {
    let hosts = state
        .store()
        .get_fetch_hosts(user)
        .await?
        .unwrap_or_default();
    Ok(FetchHosts { hosts })
}

pub async fn put_fetch_hosts(
    state: &AppState,
    user: UserId,
    mut body: FetchHosts,
) -> Result<FetchHosts, AppError> {
    check_hosts(&body.hosts, state.config.tools.ceilings.max_hosts)
        .map_err(|e| DomainError::validation(format!("hosts: {e}")))?;
    body.hosts.sort();
    body.hosts.dedup();
    let at = now();
    let entry = AuditEntry::of(
        user,
        "settings.fetch_hosts.put",
        ("settings", "fetch-hosts"),
        json!({ "hosts": body.hosts }),
        at,
    );
    state
        .store()
        .put_fetch_hosts(user, &body.hosts, at, &entry)
        .await?;
    Ok(body)
}

fn to_json(value: &impl serde::Serialize) -> Result<Value, AppError> {
    serde_json::to_value(value).map_err(|e| AppError::Internal(e.to_string()))
}
