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
    let query = usage_query(&request, UsageGroup::parse)?;
    let report = state
        .store()
        .usage(Some(user), &query, USAGE_GROUPS_MAX)
        .await?;
    json_response(StatusCode::OK, &report)
}

/// The range and grouping of a usage report; `group` reads `group_by` (an admin's may be `user`).
pub(crate) fn usage_query(
    request: &ApiRequest,
    group: fn(&str) -> Result<UsageGroup, DomainError>,
) -> Result<UsageQuery, DomainError> {
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
        group_by: group(request.query_param("group_by").unwrap_or("day"))?,
    };
    if let (Some(from), Some(to)) = (query.from, query.to)
        && from > to
    {
        return Err(DomainError::validation("from must not be after to"));
    }
    Ok(query)
}
