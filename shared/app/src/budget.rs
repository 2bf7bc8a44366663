//! Spend budgets per user and period, and the prepaid balance when billing is on: the limits
//! that apply to a user, the hold a provider call takes before it starts and settles after it
//! (see [`bestchat_domain::budget`]), and the budget as the user sees it.
//!
//! The ledger lives in the cache, so a hold is one atomic step under any concurrency; what was
//! spent is durable in the usage rows, which seed a ledger the cache lost. With the cache down
//! a user under a limit cannot start a call (its cost could not be held), as with the turn's
//! rate limit; a user under no limit is not affected.

use std::time::Duration;

use bestchat_domain::budget::{CREDIT_SCOPE, Limit, Period, Reservation, ReserveOutcome};
use bestchat_domain::ids::UserId;
use bestchat_domain::ports::cache::Cache;
use bestchat_domain::ports::store::{BillingStore, BudgetRecord, BudgetStore, Credits};
use bestchat_domain::time::{Timestamp, now, to_micros};
use bestchat_domain::{DomainError, ErrorCode};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// How long a ledger nobody touches is kept (longer than a month: a period's spending).
pub const LEDGER_TTL: Duration = Duration::from_secs(40 * 24 * 60 * 60);
/// Seeding a lost ledger and trying again: at most once per scope, plus the try that works.
const RESERVE_TRIES: usize = 3;

/// The deployment's budget settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct BudgetSettings {
    /// Micro-dollars each user may spend per period unless an admin set theirs; 0 = no limit.
    #[serde(rename = "BESTCHAT_BUDGET_DEFAULT_MICROS")]
    pub default_limit_micros: u64,
    /// `day` or `month` (UTC), unless an admin set the user's.
    #[serde(rename = "BESTCHAT_BUDGET_PERIOD")]
    pub period: Period,
    /// Whether a user under a limit may call a model whose prices are unknown (its calls then
    /// count as free); off, such a call is refused: its cost could not be held.
    #[serde(rename = "BESTCHAT_BUDGET_ALLOW_UNPRICED")]
    pub allow_unpriced: bool,
    /// Percent added to the planned input tokens in a hold: providers count tokens with their
    /// own tokenizers, and a hold must not be below what the call can cost.
    #[serde(rename = "BESTCHAT_BUDGET_INPUT_MARGIN_PERCENT")]
    pub input_margin_percent: u32,
}

impl Default for BudgetSettings {
    fn default() -> Self {
        Self {
            default_limit_micros: 0,
            period: Period::Month,
            allow_unpriced: false,
            input_margin_percent: 25,
        }
    }
}

/// `GET /api/budget`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct BudgetView {
    pub period: Period,
    /// The operator's limit per period; `null`: none.
    pub limit_micros: Option<i64>,
    /// The user's own cap; it applies only below the operator's.
    pub personal_limit_micros: Option<i64>,
    /// Spent since the period began (from the usage rows).
    pub spent_micros: i64,
    /// Held by calls in flight.
    pub reserved_micros: i64,
    pub resets_at: Timestamp,
    /// What happens at the limit: `stop` (the next call is refused; a call in flight finishes).
    pub at_limit: &'static str,
    /// With billing on, the prepaid credit left; `null` when billing is off.
    pub balance_micros: Option<i64>,
}

/// The limits that apply to a user now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub period: Period,
    pub operator_limit: Option<i64>,
    pub personal_limit: Option<i64>,
    /// Paid credit, when billing is on.
    pub credits: Option<Credits>,
    /// Names this setting of the limits in the ledger's scopes: a ledger kept under another
    /// (before a cap or an admin's change, or while no limit applied and nothing was settled)
    /// is dropped and read again from the usage rows.
    pub version: String,
}

impl Applied {
    /// The tighter of the operator's limit and the user's cap.
    pub fn period_limit(&self) -> Option<i64> {
        match (self.operator_limit, self.personal_limit) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn limits(&self, at: Timestamp) -> Vec<Limit> {
        self.scopes(at)
            .into_iter()
            .map(|(limit, _)| limit)
            .collect()
    }

    /// Each limit with when the spending it counts began: the period's start, or the first
    /// payment's (a purchase names a new credit scope, so the ledger reads it again).
    pub fn scopes(&self, at: Timestamp) -> Vec<(Limit, Timestamp)> {
        let mut limits = Vec::new();
        if let Some(limit) = self.period_limit() {
            limits.push((
                Limit {
                    scope: format!("{}@{}", self.period.scope(at), self.version),
                    limit_micros: limit,
                },
                self.period.start(at),
            ));
        }
        if let Some(credits) = self.credits {
            limits.push((
                Limit {
                    scope: format!("{CREDIT_SCOPE}@{}", credits.total_micros),
                    limit_micros: credits.total_micros,
                },
                credits.since.unwrap_or(at),
            ));
        }
        limits
    }
}

/// What a hold came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Hold {
    /// No limit applies to the user: nothing was held.
    Unlimited,
    Held,
}

/// What budgets reach: the budget rows and usage sums, the payments, the cache's ledgers.
#[derive(Clone, Copy)]
pub struct Budgets<'a> {
    pub store: &'a dyn BudgetStore,
    pub billing: &'a dyn BillingStore,
    pub cache: &'a dyn Cache,
    pub settings: &'a BudgetSettings,
    /// Whether prepaid credit is a limit (billing is on).
    pub billing_on: bool,
}

fn ledger_key(user: UserId) -> String {
    format!("budget:{user}")
}

impl Budgets<'_> {
    /// The limits that apply to `user`: the operator's (an admin's for this user, else the
    /// default), the user's cap, and the prepaid credit when billing is on.
    pub async fn applied(&self, user: UserId) -> Result<Applied, AppError> {
        let record = self.store.budget(user).await?.unwrap_or_default();
        let operator_limit = operator_limit(Some(&record), self.settings);
        let period = if record.operator_set {
            record.period
        } else {
            self.settings.period
        };
        let credits = if self.billing_on {
            Some(self.billing.credits(user).await?)
        } else {
            None
        };
        let version = match record.updated_at {
            Some(at) => format!("r{}", to_micros(at)),
            None => format!("d{}", self.settings.default_limit_micros),
        };
        Ok(Applied {
            period,
            operator_limit,
            personal_limit: record.personal_limit_micros,
            credits,
            version,
        })
    }

    /// Holds `amount_micros` for the call producing answer `id` until `expires_at` (the
    /// invocation's deadline: a crashed turn's hold goes with it). Refused (402) when it does
    /// not fit a limit; `None` for the amount means the call's price is unknown.
    pub async fn reserve(
        &self,
        user: UserId,
        id: &str,
        amount_micros: Option<i64>,
        expires_at: Timestamp,
    ) -> Result<Result<Hold, DomainError>, AppError> {
        let at = now();
        let applied = self.applied(user).await?;
        let limits = applied.limits(at);
        if limits.is_empty() {
            return Ok(Ok(Hold::Unlimited));
        }
        let amount = match amount_micros {
            Some(amount) => amount,
            None if self.settings.allow_unpriced => 0,
            None => {
                return Ok(Err(DomainError::new(
                    ErrorCode::BudgetExceeded,
                    "this model has no known prices, so its cost cannot be held against your \
                     spending limit; choose a priced model",
                )));
            }
        };
        let hold = Reservation {
            id: id.to_owned(),
            amount_micros: amount,
            expires_at_ms: to_micros(expires_at) / 1000,
        };
        let key = ledger_key(user);
        for _ in 0..RESERVE_TRIES {
            let now_ms = to_micros(now()) / 1000;
            match self
                .cache
                .reserve(&key, &limits, &hold, now_ms, LEDGER_TTL)
                .await?
            {
                ReserveOutcome::Reserved => return Ok(Ok(Hold::Held)),
                ReserveOutcome::Refused { scope, .. } => {
                    return Ok(Err(refusal(&applied, &scope, at)));
                }
                ReserveOutcome::Unseeded(scopes) => {
                    for scope in scopes {
                        let spent = self.spent_in(user, &applied, &scope, at).await?;
                        self.cache.seed(&key, &scope, spent, LEDGER_TTL).await?;
                    }
                }
            }
        }
        Err(AppError::Internal(
            "the budget ledger could not be seeded".into(),
        ))
    }

    /// Ends the hold of answer `id` with what the call cost. A failure is logged: the hold
    /// expires on its own, and the usage row keeps the cost.
    pub async fn settle(&self, user: UserId, id: &str, cost_micros: i64) {
        if let Err(e) = self
            .cache
            .settle(&ledger_key(user), id, cost_micros, LEDGER_TTL)
            .await
        {
            tracing::warn!(%user, hold = id, error = %e, "cannot settle a budget hold; it expires");
        }
    }

    /// Refuses (402) when a limit is already used up: a send is turned away at once rather
    /// than starting a turn that cannot hold its first call.
    pub async fn check(&self, user: UserId) -> Result<Result<(), DomainError>, AppError> {
        let at = now();
        let applied = self.applied(user).await?;
        let limits = applied.limits(at);
        if limits.is_empty() {
            return Ok(Ok(()));
        }
        let ledger = self.cache.ledger(&ledger_key(user)).await?;
        let reserved = ledger.reserved(to_micros(at) / 1000);
        for limit in &limits {
            let spent = match ledger.spent.get(&limit.scope) {
                Some(spent) => *spent,
                None => self.spent_in(user, &applied, &limit.scope, at).await?,
            };
            if spent + reserved >= limit.limit_micros {
                return Ok(Err(refusal(&applied, &limit.scope, at)));
            }
        }
        Ok(Ok(()))
    }

    /// The budget as `GET /api/budget` shows it.
    pub async fn view(&self, user: UserId) -> Result<BudgetView, AppError> {
        let at = now();
        let applied = self.applied(user).await?;
        let spent = self
            .store
            .spent_since(user, Some(applied.period.start(at)))
            .await?;
        // Holds are shown when the cache answers; without it none can be taken either.
        let reserved = match self.cache.ledger(&ledger_key(user)).await {
            Ok(ledger) => ledger.reserved(to_micros(at) / 1000),
            Err(e) => {
                tracing::warn!(%user, error = %e, "cannot read the budget ledger");
                0
            }
        };
        let balance = match applied.credits {
            Some(credits) => Some(self.balance(user, credits).await?),
            None => None,
        };
        Ok(BudgetView {
            period: applied.period,
            limit_micros: applied.operator_limit,
            personal_limit_micros: applied.personal_limit,
            spent_micros: spent,
            reserved_micros: reserved,
            resets_at: applied.period.end(at),
            at_limit: "stop",
            balance_micros: balance,
        })
    }

    /// Paid credit less what was spent since the first of it was paid (spending before
    /// billing, or before the first purchase, is not charged to it).
    pub async fn balance(&self, user: UserId, credits: Credits) -> Result<i64, AppError> {
        let spent = match credits.since {
            Some(since) => self.store.spent_since(user, Some(since)).await?,
            None => 0,
        };
        Ok(credits.total_micros - spent)
    }

    /// What the usage rows say was spent in `scope`.
    async fn spent_in(
        &self,
        user: UserId,
        applied: &Applied,
        scope: &str,
        at: Timestamp,
    ) -> Result<i64, AppError> {
        let Some((_, since)) = applied
            .scopes(at)
            .into_iter()
            .find(|(l, _)| l.scope == scope)
        else {
            return Err(AppError::Internal(format!("no budget scope {scope}")));
        };
        // No paid credit yet: nothing is charged to it.
        if scope.starts_with(CREDIT_SCOPE) && applied.credits.is_some_and(|c| c.since.is_none()) {
            return Ok(0);
        }
        Ok(self.store.spent_since(user, Some(since)).await?)
    }
}

/// The operator's limit for a user with this budget row (or none): an admin's when one was set
/// (`None` there meaning no limit), else the deployment's default (0 meaning none).
pub fn operator_limit(record: Option<&BudgetRecord>, settings: &BudgetSettings) -> Option<i64> {
    match record {
        Some(r) if r.operator_set => r.limit_micros,
        _ => i64::try_from(settings.default_limit_micros)
            .ok()
            .filter(|d| *d > 0),
    }
}

fn refusal(applied: &Applied, scope: &str, at: Timestamp) -> DomainError {
    let message = if scope.starts_with(CREDIT_SCOPE) {
        "your prepaid credit is used up; buy more credit to go on".to_owned()
    } else {
        format!(
            "your spending limit for this {} is reached; it resets at {}",
            applied.period.as_str(),
            applied.period.end(at).to_rfc3339()
        )
    };
    DomainError::new(ErrorCode::BudgetExceeded, message)
}

/// The most a call can cost on any model of its chain: `input_tokens` (plus the margin) at the
/// input price and `max_output_tokens` at the output price; `None` when any model's prices are
/// unknown.
pub fn worst_case<'a>(
    models: impl IntoIterator<Item = Option<&'a bestchat_domain::provider::ModelInfo>>,
    input_tokens: u32,
    max_output_tokens: u32,
    settings: &BudgetSettings,
) -> Option<i64> {
    let input = u64::from(input_tokens) * (100 + u64::from(settings.input_margin_percent)) / 100;
    let usage = bestchat_providers::TokenUsage {
        input_tokens: u32::try_from(input).unwrap_or(u32::MAX),
        output_tokens: max_output_tokens,
        cached_tokens: 0,
        reasoning_tokens: 0,
    };
    let mut most = 0;
    for model in models {
        most = most.max(bestchat_providers::pricing::cost_micros(model?, &usage)?);
    }
    Some(most)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bestchat_domain::model_ref::ModelId;
    use bestchat_domain::provider::ModelInfo;

    fn model(input: Option<u64>, output: Option<u64>) -> ModelInfo {
        ModelInfo {
            id: ModelId::parse("m").unwrap(),
            provider: None,
            context_window: 1000,
            max_output_tokens: 100,
            input_price_per_mtok: input,
            cached_input_price_per_mtok: None,
            output_price_per_mtok: output,
            supports_tools: false,
            supports_vision: false,
            supports_reasoning: false,
        }
    }

    #[test]
    fn the_worst_case_is_the_dearest_model_of_the_chain_with_the_margin() {
        let settings = BudgetSettings::default();
        let (cheap, dear) = (
            model(Some(1_000_000), Some(2_000_000)),
            model(Some(3_000_000), Some(1_000_000)),
        );
        // 100 input tokens + 25% = 125; cheap: 125 + 2 * 50 = 225; dear: 375 + 50 = 425.
        assert_eq!(
            worst_case([Some(&cheap), Some(&dear)], 100, 50, &settings),
            Some(425)
        );
        assert_eq!(
            worst_case(
                [Some(&cheap), Some(&model(None, Some(1)))],
                100,
                50,
                &settings
            ),
            None
        );
        assert_eq!(worst_case([Some(&cheap), None], 100, 50, &settings), None);
    }

    #[test]
    fn a_personal_cap_only_lowers_the_operators_limit() {
        let applied = |operator, personal| Applied {
            period: Period::Month,
            operator_limit: operator,
            personal_limit: personal,
            credits: None,
            version: "d0".into(),
        };
        assert_eq!(applied(Some(100), Some(50)).period_limit(), Some(50));
        assert_eq!(applied(Some(100), Some(500)).period_limit(), Some(100));
        assert_eq!(applied(None, Some(50)).period_limit(), Some(50));
        assert_eq!(applied(None, None).period_limit(), None);
        let at = chrono::DateTime::parse_from_rfc3339("2026-12-07T10:00:00Z")
            .unwrap()
            .into();
        let mut with_credit = applied(None, None);
        with_credit.credits = Some(Credits::default());
        assert_eq!(
            with_credit.limits(at),
            vec![Limit {
                scope: format!("{CREDIT_SCOPE}@0"),
                limit_micros: 0
            }]
        );
        let mut capped = applied(Some(100), None);
        capped.version = "r42".into();
        assert_eq!(
            capped.limits(at)[0].scope,
            "month:2026-12@r42",
            "a change names a new scope"
        );
    }
}
