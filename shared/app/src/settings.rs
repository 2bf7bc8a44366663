//! A user's auto-approval rules (`GET/PUT /api/settings/auto-approval`): the defaults until the
//! user sets them, and every change on the audit trail.

use bestchat_domain::DomainError;
use bestchat_domain::ids::UserId;
use bestchat_domain::ports::store::{AuditEntry, AutoApprovalRecord};
use bestchat_domain::time::now;
use bestchat_tools::policy::{AutoApproval, RiskRules};
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
    let entry = AuditEntry {
        id: uuid::Uuid::now_v7(),
        user_id: user,
        action: "settings.auto_approval.put".into(),
        target_type: Some("settings".into()),
        target_id: Some("auto-approval".into()),
        details: json!({ "risk": record.by_risk, "tools": record.by_tool, "max_auto_per_turn": rules.max_auto_per_turn }),
        created_at: at,
    };
    state.store().put_auto_approval(&record, &entry).await?;
    Ok(rules)
}

fn to_json(value: &impl serde::Serialize) -> Result<Value, AppError> {
    serde_json::to_value(value).map_err(|e| AppError::Internal(e.to_string()))
}
