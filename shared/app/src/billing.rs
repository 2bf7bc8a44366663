//! Prepaid credit through Stripe: a Checkout Session for an amount, and the webhook that credits
//! it once Stripe says it was paid. The webhook has no token: Stripe's signature is its
//! authentication (`t=…,v1=…`: HMAC-SHA256 over `t.payload` under the endpoint's secret, within
//! a tolerance of `t`), and each event is handled once however often it is delivered.

use std::collections::HashMap;
use std::time::Duration;

use bestchat_domain::ids::UserId;
use bestchat_domain::ports::store::{BillingStore, Payment, PaymentStatus};
use bestchat_domain::time::{Timestamp, now};
use bestchat_domain::{DomainError, ErrorCode};
use bestchat_platform::emulator::secret_matches;
use serde::Deserialize;

use crate::config::ConfigError;
use crate::error::AppError;

/// Credit is sold in US dollars: models' prices, and so every budget, are in micro-dollars.
pub const CURRENCY: &str = "usd";
/// Micro-dollars in a cent, the smallest amount Stripe charges.
pub const MICROS_PER_CENT: i64 = 10_000;
/// Longest Stripe answer read.
pub const STRIPE_ANSWER_MAX_BYTES: usize = 256 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct BillingSettings {
    /// Prepaid credit is sold and is a limit on spending.
    #[serde(rename = "BESTCHAT_BILLING")]
    pub on: bool,
    /// Stripe's API (a fake on loopback in tests).
    #[serde(rename = "STRIPE_API_BASE")]
    pub api_base: String,
    /// On a laptop: the secret API key; in AWS it comes from `STRIPE_SECRETS_ARN`.
    #[serde(rename = "STRIPE_SECRET_KEY")]
    pub secret_key: String,
    /// On a laptop: the webhook endpoint's signing secret (`whsec_…`).
    #[serde(rename = "STRIPE_WEBHOOK_SECRET")]
    pub webhook_secret: String,
    /// In AWS: the Secrets Manager secret holding `{"secret_key", "webhook_secret"}`.
    #[serde(rename = "STRIPE_SECRETS_ARN")]
    pub secrets_arn: String,
    /// Where Stripe sends the buyer after paying, and after giving up.
    #[serde(rename = "BESTCHAT_BILLING_SUCCESS_URL")]
    pub success_url: String,
    #[serde(rename = "BESTCHAT_BILLING_CANCEL_URL")]
    pub cancel_url: String,
    /// Least and most one purchase may be.
    #[serde(rename = "BESTCHAT_BILLING_MIN_MICROS")]
    pub min_micros: i64,
    #[serde(rename = "BESTCHAT_BILLING_MAX_MICROS")]
    pub max_micros: i64,
    /// How old a webhook's signature may be (Stripe's own libraries use 300 s).
    #[serde(
        rename = "STRIPE_WEBHOOK_TOLERANCE_S",
        deserialize_with = "bestchat_domain::settings::seconds"
    )]
    pub tolerance: Duration,
    #[serde(
        rename = "STRIPE_TIMEOUT_MS",
        deserialize_with = "bestchat_domain::settings::millis"
    )]
    pub timeout: Duration,
}

impl Default for BillingSettings {
    fn default() -> Self {
        Self {
            on: false,
            api_base: "https://api.stripe.com".into(),
            secret_key: String::new(),
            webhook_secret: String::new(),
            secrets_arn: String::new(),
            success_url: "http://localhost:8080/?billing=paid".into(),
            cancel_url: "http://localhost:8080/?billing=cancelled".into(),
            min_micros: 1_000_000,
            max_micros: 1_000_000_000,
            tolerance: Duration::from_secs(300),
            timeout: Duration::from_secs(10),
        }
    }
}

/// Stripe's two secrets.
#[derive(Clone)]
pub struct StripeKeys {
    pub secret_key: String,
    pub webhook_secret: String,
}

impl BillingSettings {
    /// Both secrets: from the settings on a laptop, from Secrets Manager in AWS.
    pub async fn keys(&self) -> Result<StripeKeys, AppError> {
        if self.secrets_arn.is_empty() {
            return Ok(StripeKeys {
                secret_key: self.secret_key.clone(),
                webhook_secret: self.webhook_secret.clone(),
            });
        }
        let mut fields = bestchat_platform::secret_values::json_fields(&self.secrets_arn)
            .await
            .map_err(|e| AppError::Internal(format!("Stripe's secrets: {e}")))?;
        Ok(StripeKeys {
            secret_key: fields.remove("secret_key").unwrap_or_default(),
            webhook_secret: fields.remove("webhook_secret").unwrap_or_default(),
        })
    }

    /// A deployment that sells credit must say where and how.
    pub fn check(&self) -> Result<(), ConfigError> {
        if !self.on {
            return Ok(());
        }
        if self.secrets_arn.is_empty()
            && (self.secret_key.is_empty() || self.webhook_secret.is_empty())
        {
            return Err(ConfigError(
                "BESTCHAT_BILLING=1 needs STRIPE_SECRETS_ARN, or STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET".into(),
            ));
        }
        if self.min_micros < MICROS_PER_CENT
            || self.max_micros < self.min_micros
            || self.min_micros % MICROS_PER_CENT != 0
            || self.max_micros % MICROS_PER_CENT != 0
        {
            return Err(ConfigError(
                "BESTCHAT_BILLING_MIN_MICROS and _MAX_MICROS must be whole cents, the least at least a cent and at most the most".into(),
            ));
        }
        for (name, value) in [
            ("STRIPE_API_BASE", &self.api_base),
            ("BESTCHAT_BILLING_SUCCESS_URL", &self.success_url),
            ("BESTCHAT_BILLING_CANCEL_URL", &self.cancel_url),
        ] {
            if !url::Url::parse(value).is_ok_and(|u| matches!(u.scheme(), "http" | "https")) {
                return Err(ConfigError(format!("{name} must be an http(s) URL")));
            }
        }
        if self.timeout.is_zero() {
            return Err(ConfigError("STRIPE_TIMEOUT_MS must be above 0".into()));
        }
        Ok(())
    }

    pub fn require_on(&self) -> Result<(), DomainError> {
        if self.on {
            Ok(())
        } else {
            Err(DomainError::of(ErrorCode::BillingOff))
        }
    }

    /// An amount one purchase may be: within the bounds, in whole cents.
    pub fn check_amount(&self, amount_micros: i64) -> Result<(), DomainError> {
        if amount_micros < self.min_micros
            || amount_micros > self.max_micros
            || amount_micros % MICROS_PER_CENT != 0
        {
            return Err(DomainError::validation(format!(
                "amount_micros must be whole cents from {} to {}",
                self.min_micros, self.max_micros
            )));
        }
        Ok(())
    }
}

/// A Checkout Session as Stripe answers it (the fields used).
#[derive(Debug, Deserialize)]
struct Session {
    id: String,
    url: Option<String>,
}

/// Creates a Checkout Session for `amount_micros` of credit and records the payment as pending;
/// the URL to send the buyer to.
pub async fn checkout(
    settings: &BillingSettings,
    keys: &StripeKeys,
    payments: &dyn BillingStore,
    user: UserId,
    amount_micros: i64,
) -> Result<String, AppError> {
    let cents = (amount_micros / MICROS_PER_CENT).to_string();
    let user_id = user.to_string();
    let form = [
        ("mode", "payment"),
        ("line_items[0][quantity]", "1"),
        ("line_items[0][price_data][currency]", CURRENCY),
        ("line_items[0][price_data][unit_amount]", cents.as_str()),
        (
            "line_items[0][price_data][product_data][name]",
            "BestChat credit",
        ),
        ("client_reference_id", user_id.as_str()),
        ("metadata[user_id]", user_id.as_str()),
        ("success_url", settings.success_url.as_str()),
        ("cancel_url", settings.cancel_url.as_str()),
    ];
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let client = reqwest::Client::builder()
        .timeout(settings.timeout)
        .build()
        .map_err(|e| AppError::Internal(format!("HTTP client: {e}")))?;
    let unavailable = |detail: String| {
        tracing::error!(error = %detail, "Stripe checkout failed");
        AppError::from(DomainError::new(
            ErrorCode::Unavailable,
            "the payment provider could not start a checkout; try again shortly",
        ))
    };
    let response = client
        .post(format!(
            "{}/v1/checkout/sessions",
            settings.api_base.trim_end_matches('/')
        ))
        .bearer_auth(&keys.secret_key)
        // A retried request (ours, or reqwest's) creates one session, not two.
        .header("Idempotency-Key", uuid::Uuid::now_v7().to_string())
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(body)
        .send()
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    let status = response.status();
    let body = read_bounded(response)
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    if !status.is_success() {
        return Err(unavailable(format!(
            "status {status}: {}",
            String::from_utf8_lossy(&body)
        )));
    }
    let session: Session =
        serde_json::from_slice(&body).map_err(|e| unavailable(format!("answer: {e}")))?;
    let url = session
        .url
        .ok_or_else(|| unavailable("the session has no url".into()))?;
    payments
        .add_payment(&Payment {
            id: session.id,
            user_id: user,
            amount_micros,
            status: PaymentStatus::Pending,
            created_at: now(),
        })
        .await?;
    Ok(url)
}

async fn read_bounded(mut response: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > STRIPE_ANSWER_MAX_BYTES {
            return Err("the answer is too large".into());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Checks a `Stripe-Signature` header over `payload` at `now_s` (seconds since the epoch):
/// some `v1` must be the HMAC-SHA256 of `t.payload` under `secret`, and `t` within
/// `tolerance` of now.
pub fn verify_signature(
    header: Option<&str>,
    payload: &[u8],
    secret: &str,
    now_s: i64,
    tolerance: Duration,
) -> Result<(), DomainError> {
    let refused = |why: &str| DomainError::new(ErrorCode::InvalidSignature, why.to_owned());
    let header = header.ok_or_else(|| refused("the Stripe-Signature header is missing"))?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = Some(t.parse::<i64>().ok()),
            Some(("v1", sig)) => signatures.push(sig),
            _ => {}
        }
    }
    let t = timestamp
        .ok_or_else(|| refused("the signature has no timestamp"))?
        .ok_or_else(|| refused("the signature's timestamp is not a time in seconds"))?;
    if now_s.abs_diff(t) > tolerance.as_secs() {
        return Err(refused(
            "the signature's time is too far from now (an old or replayed event)",
        ));
    }
    if secret.is_empty() {
        return Err(refused("no webhook secret is configured"));
    }
    let expected = signature_v1(secret, t, payload);
    if signatures
        .iter()
        .any(|s| secret_matches(s.as_bytes(), expected.as_bytes()))
    {
        Ok(())
    } else {
        Err(refused("no signature matches"))
    }
}

/// Longest Stripe object id taken (theirs are a few dozen characters).
pub const STRIPE_ID_MAX_CHARS: usize = 255;

/// Stripe's `v1` signature of `payload` sent at `t`: HMAC-SHA256 of `t.payload` under the
/// endpoint's secret, in hex.
pub fn signature_v1(secret: &str, t: i64, payload: &[u8]) -> String {
    let mut signed = t.to_string().into_bytes();
    signed.push(b'.');
    signed.extend_from_slice(payload);
    bestchat_platform::hmac::sha256_hex(secret.as_bytes(), &signed)
}

/// A Stripe event (the fields used).
#[derive(Debug, Deserialize)]
pub struct Event {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub data: EventData,
}

#[derive(Debug, Deserialize)]
pub struct EventData {
    pub object: HashMap<String, serde_json::Value>,
}

/// What handling an event did.
#[derive(Debug, PartialEq, Eq)]
pub enum Handled {
    /// This delivery credited a payment.
    Credited { user: UserId, amount_micros: i64 },
    /// Nothing to credit: another type, unpaid, or delivered before.
    Nothing,
}

/// Credits the payment a paid checkout completed; a repeated delivery credits nothing (the
/// payment is paid already, and the event is on record).
pub async fn handle_event(
    payments: &dyn BillingStore,
    event: &Event,
    at: Timestamp,
) -> Result<Handled, AppError> {
    let id_ok = |id: &str| !id.is_empty() && id.chars().count() <= STRIPE_ID_MAX_CHARS;
    let session = event.data.object.get("id").and_then(|v| v.as_str());
    if !id_ok(&event.id)
        || session.is_some_and(|s| !id_ok(s))
        || event.kind.len() > STRIPE_ID_MAX_CHARS
    {
        return Err(DomainError::validation("the event's ids are not Stripe ids").into());
    }
    let paid_checkout = matches!(
        event.kind.as_str(),
        "checkout.session.completed" | "checkout.session.async_payment_succeeded"
    ) && event
        .data
        .object
        .get("payment_status")
        .and_then(|v| v.as_str())
        == Some("paid");
    let mut handled = Handled::Nothing;
    if paid_checkout
        && let Some(session) = event.data.object.get("id").and_then(|v| v.as_str())
        && let Some(payment) = payments.mark_paid(session, at).await?
    {
        handled = Handled::Credited {
            user: payment.user_id,
            amount_micros: payment.amount_micros,
        };
    }
    // Recorded after the credit: should the process die between the two, Stripe's retry finds
    // the payment paid and credits nothing.
    payments.record_event(&event.id, &event.kind, at).await?;
    Ok(handled)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test";

    fn sign(t: i64, payload: &str) -> String {
        format!("t={t},v1={}", signature_v1(SECRET, t, payload.as_bytes()))
    }

    #[test]
    fn a_signature_passes_only_when_fresh_and_made_with_the_secret() {
        let tolerance = Duration::from_secs(300);
        let payload = r#"{"id":"evt_1"}"#;
        let good = sign(1_000, payload);
        assert!(
            verify_signature(Some(&good), payload.as_bytes(), SECRET, 1_100, tolerance).is_ok()
        );
        let also_v0 = format!("{good},v0=deadbeef");
        assert!(
            verify_signature(Some(&also_v0), payload.as_bytes(), SECRET, 1_000, tolerance).is_ok()
        );
        let cases = [
            (Some(good.as_str()), payload, SECRET, 1_301),
            (Some("t=-9223372036854775808,v1=00"), payload, SECRET, 1_000),
            (Some(good.as_str()), r#"{"id":"evt_2"}"#, SECRET, 1_000),
            (Some(good.as_str()), payload, "whsec_other", 1_000),
            (Some("t=1000"), payload, SECRET, 1_000),
            (Some("v1=00"), payload, SECRET, 1_000),
            (None, payload, SECRET, 1_000),
        ];
        for (header, body, secret, now_s) in cases {
            let refused = verify_signature(header, body.as_bytes(), secret, now_s, tolerance);
            assert_eq!(
                refused.unwrap_err().code,
                ErrorCode::InvalidSignature,
                "{header:?} {body} {secret} {now_s}"
            );
        }
    }

    #[test]
    fn amounts_are_whole_cents_within_the_bounds() {
        let settings = BillingSettings::default();
        assert!(settings.check_amount(5_000_000).is_ok());
        for bad in [0, 999_999, 5_000_001, 1_000_010_000, -10_000] {
            assert!(settings.check_amount(bad).is_err(), "{bad}");
        }
    }
}
