//! The admin routes: users with what they spent and may spend, a user's budget, and usage by
//! user. Every one answers 403 to a caller without the `admin` role, and every change is
//! audited under the admin who made it.

use bestchat_domain::DomainError;
use bestchat_domain::budget::Period;
use bestchat_domain::ids::UserId;
use bestchat_domain::page::{CursorKey, Page, PageRequest};
use bestchat_domain::ports::store::{AuditEntry, PeriodStarts};
use bestchat_domain::time::{Timestamp, now};
use bestchat_domain::usage::{USAGE_GROUPS_MAX, UsageGroup};
use http::StatusCode;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::usage::usage_query;
use super::{Handler, admin, handler};
use crate::budget::operator_limit;
use crate::error::AppError;
use crate::http::{ApiRequest, ApiResponse, json_response};
use crate::state::AppState;

pub const USERS: Handler = handler!(users);
pub const PUT_BUDGET: Handler = handler!(put_budget);
pub const USAGE: Handler = handler!(usage);

/// One user as an admin sees them.
#[derive(Debug, Serialize, JsonSchema)]
pub struct AdminUser {
    pub id: UserId,
    /// The token's subject (a Cognito user's `sub`).
    pub subject: String,
    /// A dev token's name; `null` for users of the identity provider.
    pub name: Option<String>,
    pub roles: Vec<String>,
    pub created_at: Timestamp,
    pub period: Period,
    /// Spent since the user's period began.
    pub spent_micros: i64,
    /// The operator's limit that applies (the user's, else the default); `null`: none.
    pub limit_micros: Option<i64>,
    pub personal_limit_micros: Option<i64>,
}

/// `PUT /api/admin/users/{id}/budget`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OperatorBudget {
    /// Micro-dollars per period (0 stops the user's spending); `null`: no limit for this user.
    /// Required: leaving it out is not taken to mean "no limit".
    #[serde(deserialize_with = "present")]
    #[schemars(required)]
    pub limit_micros: Option<i64>,
    pub period: Period,
}

/// An `Option` that must be in the body (`null` or a value): serde takes a missing `Option`
/// as `None` unless the field deserializes by a function.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Option::<i64>::deserialize(d)
}

/// Records an admin's read of other users' data (the trail keeps who looked at what).
async fn audit_read(
    state: &AppState,
    actor: UserId,
    action: &str,
    details: serde_json::Value,
) -> Result<(), AppError> {
    let entry = AuditEntry {
        id: uuid::Uuid::now_v7(),
        user_id: actor,
        action: action.to_owned(),
        target_type: None,
        target_id: None,
        details,
        created_at: now(),
    };
    Ok(state.store().append_audit(&entry).await?)
}

async fn users(state: &AppState, request: ApiRequest) -> Result<ApiResponse, AppError> {
    let actor = admin(state, &request).await?;
    let page = PageRequest::parse(request.query_param("limit"), request.query_param("cursor"))?;
    let at = now();
    let settings = &state.config.budgets;
    let mut rows = state
        .store()
        .users_page(
            page.after.map(|c| UserId::from_uuid(c.id)),
            page.limit + 1,
            settings.period,
            PeriodStarts {
                day: Period::Day.start(at),
                month: Period::Month.start(at),
            },
        )
        .await?;
    let next_cursor = if rows.len() > page.limit as usize {
        rows.truncate(page.limit as usize);
        rows.last().map(|u| {
            CursorKey {
                at: u.created_at,
                id: *u.id.as_uuid(),
            }
            .encode()
        })
    } else {
        None
    };
    let items = rows
        .into_iter()
        .map(|u| AdminUser {
            id: u.id,
            name: u.subject.strip_prefix("dev:").map(str::to_owned),
            subject: u.subject,
            roles: u.roles,
            created_at: u.created_at,
            period: u
                .budget
                .filter(|b| b.operator_set)
                .map_or(settings.period, |b| b.period),
            spent_micros: u.spent_micros,
            limit_micros: operator_limit(u.budget.as_ref(), settings),
            personal_limit_micros: u.budget.and_then(|b| b.personal_limit_micros),
        })
        .collect();
    audit_read(
        state,
        actor,
        "admin.users.list",
        json!({"after": page.after.map(|c| c.id.to_string())}),
    )
    .await?;
    json_response(StatusCode::OK, &Page { items, next_cursor })
}

async fn put_budget(state: &AppState, request: ApiRequest) -> Result<ApiResponse, AppError> {
    let actor = admin(state, &request).await?;
    let target = request
        .path_param("id")
        .and_then(|raw| uuid::Uuid::parse_str(raw).ok())
        .map(UserId::from_uuid)
        .ok_or_else(|| DomainError::of(bestchat_domain::ErrorCode::UserNotFound))?;
    let body: OperatorBudget = request.json()?;
    if body.limit_micros.is_some_and(|l| l < 0) {
        return Err(DomainError::validation("limit_micros must not be negative").into());
    }
    if state.store().roles(target).await?.is_none() {
        return Err(DomainError::of(bestchat_domain::ErrorCode::UserNotFound).into());
    }
    let at = now();
    let entry = AuditEntry::of(
        actor,
        "admin.budget.put",
        ("user", &target.to_string()),
        json!({"limit_micros": body.limit_micros, "period": body.period.as_str()}),
        at,
    );
    state
        .store()
        .put_operator_budget(target, body.limit_micros, body.period, at, &entry)
        .await?;
    json_response(StatusCode::OK, &state.budgets().view(target).await?)
}

async fn usage(state: &AppState, request: ApiRequest) -> Result<ApiResponse, AppError> {
    let actor = admin(state, &request).await?;
    let query = usage_query(&request, UsageGroup::parse_for_admin)?;
    audit_read(
        state,
        actor,
        "admin.usage.read",
        json!({"group_by": query.group_by.as_str()}),
    )
    .await?;
    let report = state.store().usage(None, &query, USAGE_GROUPS_MAX).await?;
    json_response(StatusCode::OK, &report)
}
