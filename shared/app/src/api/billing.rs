//! `POST /api/billing/checkout`, `POST /api/billing/webhook` (Stripe's, no token) and
//! `GET /api/billing`.

use bestchat_domain::DomainError;
use bestchat_domain::ports::store::Payment;
use bestchat_domain::time::{now, to_micros};
use http::StatusCode;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Handler, caller, handler};
use crate::billing::{Event, Handled, checkout, handle_event, verify_signature};
use crate::error::AppError;
use crate::http::{ApiRequest, ApiResponse, json_response};
use crate::state::AppState;

pub const CHECKOUT: Handler = handler!(start_checkout);
pub const WEBHOOK: Handler = handler!(webhook);
pub const GET: Handler = handler!(billing);

/// Payments `GET /api/billing` lists, newest first.
pub const PAYMENTS_LISTED: u32 = 50;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutRequest {
    /// Whole cents, within the deployment's bounds.
    pub amount_micros: i64,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct CheckoutStarted {
    /// Stripe's hosted payment page.
    pub url: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Billing {
    /// Credit bought less everything spent.
    pub balance_micros: i64,
    pub payments: Vec<Payment>,
}

async fn start_checkout(state: &AppState, request: ApiRequest) -> Result<ApiResponse, AppError> {
    let user = caller(state, &request).await?;
    let body: CheckoutRequest = request.json()?;
    let settings = &state.config.billing;
    settings.require_on()?;
    settings.check_amount(body.amount_micros)?;
    let keys = state.stripe_keys().await?;
    let url = checkout(settings, &keys, state.store(), user, body.amount_micros).await?;
    json_response(StatusCode::OK, &CheckoutStarted { url })
}

async fn webhook(state: &AppState, request: ApiRequest) -> Result<ApiResponse, AppError> {
    let settings = &state.config.billing;
    settings.require_on()?;
    let keys = state.stripe_keys().await?;
    let signature = request
        .headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    verify_signature(
        signature,
        &request.body,
        &keys.webhook_secret,
        to_micros(now()) / 1_000_000,
        settings.tolerance,
    )?;
    let event: Event = request
        .json()
        .map_err(|_| DomainError::validation("the body is not a Stripe event"))?;
    match handle_event(state.store(), &event, now()).await? {
        Handled::Credited {
            user,
            amount_micros,
        } => {
            tracing::info!(%user, amount_micros, event = %event.id, "credit bought");
        }
        Handled::Nothing => {
            tracing::info!(event = %event.id, kind = %event.kind, "Stripe event with nothing to credit");
        }
    }
    json_response(StatusCode::OK, &json!({ "received": true }))
}

async fn billing(state: &AppState, request: ApiRequest) -> Result<ApiResponse, AppError> {
    let user = caller(state, &request).await?;
    state.config.billing.require_on()?;
    let store = state.store();
    let balance = state
        .budgets()
        .balance(user, store.credits(user).await?)
        .await?;
    json_response(
        StatusCode::OK,
        &Billing {
            balance_micros: balance,
            payments: store.payments(user, PAYMENTS_LISTED).await?,
        },
    )
}
