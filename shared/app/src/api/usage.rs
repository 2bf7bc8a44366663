//! `GET /api/usage`: the caller's usage rows in a range, grouped by day, model, provider or
//! conversation, in tokens and money.

use bestchat_domain::DomainError;
use bestchat_domain::time::Timestamp;
use bestchat_domain::usage::{USAGE_GROUPS_MAX, UsageGroup, UsageQuery};
use http::StatusCode;

use super::{Handler, caller, handler};
use crate::error::AppError;
use crate::http::{ApiRequest, ApiResponse, json_response};
use crate::state::AppState;

pub const GET: Handler = handler!(usage);

async fn usage(state: &AppState, request: ApiRequest) -> Result<ApiResponse, AppError> {
    let user = caller(state, &request).await?;
    let query = usage_query(&request)?;
    let report = state.store().usage(user, &query, USAGE_GROUPS_MAX).await?;
    json_response(StatusCode::OK, &report)
}

fn usage_query(request: &ApiRequest) -> Result<UsageQuery, DomainError> {
    let time = |name: &str| {
        request
            .query_param(name)
            .map(|raw| {
                chrono::DateTime::parse_from_rfc3339(raw)
                    .map(Timestamp::from)
                    .map_err(|_| {
                        DomainError::validation(format!("{name} must be an RFC 3339 time"))
                    })
            })
            .transpose()
    };
    let query = UsageQuery {
        from: time("from")?,
        to: time("to")?,
        group_by: UsageGroup::parse(request.query_param("group_by").unwrap_or("day"))?,
    };
    if let (Some(from), Some(to)) = (query.from, query.to)
        && from > to
    {
        return Err(DomainError::validation("from must not be after to"));
    }
    Ok(query)
}
