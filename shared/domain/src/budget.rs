//! Spend budgets that hold under any concurrency: reserve-then-settle. Before a provider call a
//! turn reserves the call's worst-case cost against every limit that applies (the period's
//! budget, the prepaid balance); a reservation passes only while spent + reserved + its amount
//! stays within each limit. After the call the turn settles: the reservation goes and the real
//! cost is added to what was spent. A reservation nobody settles (a crashed turn) expires.
//!
//! The ledger of one user is one cache entry (a Redis hash, or an in-process map entry), so a
//! reservation is one atomic read-modify-write; [`Ledger`] is that logic, and the Redis script
//! is the same steps in Lua. What was spent is durable in the usage rows: a ledger entry the
//! cache lost is seeded again from them.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::time::Timestamp;

/// How long a budget's spending adds up before it starts again from zero (UTC).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    Day,
    #[default]
    Month,
}

impl Period {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        match raw {
            "day" => Ok(Self::Day),
            "month" => Ok(Self::Month),
            _ => Err(DomainError::validation("period must be day or month")),
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Day => "day",
            Self::Month => "month",
        }
    }

    /// When the period holding `at` began.
    pub fn start(self, at: Timestamp) -> Timestamp {
        let day = at.date_naive();
        let first = match self {
            Self::Day => day,
            Self::Month => day.with_day(1).unwrap_or(day),
        };
        midnight(first)
    }

    /// When the period holding `at` ends (the next one begins).
    pub fn end(self, at: Timestamp) -> Timestamp {
        let start = self.start(at).date_naive();
        let next = match self {
            Self::Day => start.succ_opt(),
            Self::Month => start
                .with_month(start.month() + 1)
                .or_else(|| NaiveDate::from_ymd_opt(start.year() + 1, 1, 1)),
        };
        next.map_or(at, midnight)
    }

    /// The ledger's name for the period holding `at` (`month:2026-12`, `day:2026-12-07`).
    pub fn scope(self, at: Timestamp) -> String {
        match self {
            Self::Day => format!("day:{}", at.format("%Y-%m-%d")),
            Self::Month => format!("month:{}", at.format("%Y-%m")),
        }
    }
}

fn midnight(day: NaiveDate) -> Timestamp {
    Utc.from_utc_datetime(&day.and_hms_opt(0, 0, 0).unwrap_or_default())
}

/// The ledger's name for the prepaid balance: everything ever spent against everything ever
/// bought.
pub const CREDIT_SCOPE: &str = "credit";

/// One limit a reservation must fit: what is spent in `scope` may not pass `limit_micros`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limit {
    pub scope: String,
    pub limit_micros: i64,
}

/// A hold on money for one provider call; `id` is the answer being produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    pub id: String,
    pub amount_micros: i64,
    /// Milliseconds since the epoch after which the hold no longer counts.
    pub expires_at_ms: i64,
}

/// What a reservation came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReserveOutcome {
    Reserved,
    /// These scopes have no spending on record in the ledger: seed them from the usage rows
    /// and try again.
    Unseeded(Vec<String>),
    /// It does not fit `scope`: only `available_micros` (possibly negative) is left there.
    Refused {
        scope: String,
        available_micros: i64,
    },
}

/// One user's spending and holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    /// Micro-dollars spent, per scope.
    pub spent: BTreeMap<String, i64>,
    /// Live holds by id: (micro-dollars, expiry in ms since the epoch).
    pub holds: BTreeMap<String, (i64, i64)>,
}

impl Ledger {
    /// What live holds add up to at `now_ms`.
    pub fn reserved(&self, now_ms: i64) -> i64 {
        self.holds
            .values()
            .filter(|(_, expiry)| *expiry > now_ms)
            .map(|(amount, _)| amount)
            .sum()
    }

    /// Reserves `hold` within every limit, atomically with respect to other reservations. A
    /// hold with the same id is replaced (a retried step does not hold twice). Spending kept
    /// for scopes no longer asked for (a past period) is dropped: the usage rows still have it.
    pub fn reserve(&mut self, limits: &[Limit], hold: &Reservation, now_ms: i64) -> ReserveOutcome {
        self.holds.retain(|_, (_, expiry)| *expiry > now_ms);
        self.spent
            .retain(|scope, _| limits.iter().any(|l| &l.scope == scope));
        let missing: Vec<String> = limits
            .iter()
            .filter(|l| !self.spent.contains_key(&l.scope))
            .map(|l| l.scope.clone())
            .collect();
        if !missing.is_empty() {
            return ReserveOutcome::Unseeded(missing);
        }
        let others: i64 = self
            .holds
            .iter()
            .filter(|(id, _)| **id != hold.id)
            .map(|(_, (amount, _))| amount)
            .sum();
        for limit in limits {
            let spent = self.spent.get(&limit.scope).copied().unwrap_or_default();
            let available = limit.limit_micros - spent - others;
            if hold.amount_micros > available {
                return ReserveOutcome::Refused {
                    scope: limit.scope.clone(),
                    available_micros: available,
                };
            }
        }
        self.holds
            .insert(hold.id.clone(), (hold.amount_micros, hold.expires_at_ms));
        ReserveOutcome::Reserved
    }

    /// Records what a scope had spent, unless the ledger already has it (a seed never
    /// overwrites what settlements added since).
    pub fn seed(&mut self, scope: &str, spent_micros: i64) {
        self.spent.entry(scope.to_owned()).or_insert(spent_micros);
    }

    /// Ends hold `id`, adding `cost_micros` to every scope, when the hold was still there;
    /// `false` when it was not (expired, or settled already): then nothing is added, so a
    /// repeated settlement counts once.
    pub fn settle(&mut self, id: &str, cost_micros: i64) -> bool {
        if self.holds.remove(id).is_none() {
            return false;
        }
        for spent in self.spent.values_mut() {
            *spent = spent.saturating_add(cost_micros);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(raw: &str) -> Timestamp {
        chrono::DateTime::parse_from_rfc3339(raw).unwrap().into()
    }

    fn limit(scope: &str, micros: i64) -> Limit {
        Limit {
            scope: scope.into(),
            limit_micros: micros,
        }
    }

    fn hold(id: &str, amount: i64, expiry: i64) -> Reservation {
        Reservation {
            id: id.into(),
            amount_micros: amount,
            expires_at_ms: expiry,
        }
    }

    #[test]
    fn periods_start_and_end_at_utc_midnight() {
        let t = at("2026-12-31T23:59:59+00:00");
        assert_eq!(Period::Day.start(t), at("2026-12-31T00:00:00Z"));
        assert_eq!(Period::Day.end(t), at("2027-01-01T00:00:00Z"));
        assert_eq!(Period::Month.start(t), at("2026-12-01T00:00:00Z"));
        assert_eq!(Period::Month.end(t), at("2027-01-01T00:00:00Z"));
        assert_eq!(
            Period::Month.end(at("2026-02-10T05:00:00Z")),
            at("2026-03-01T00:00:00Z")
        );
        assert_eq!(Period::Month.scope(t), "month:2026-12");
        assert_eq!(Period::Day.scope(t), "day:2026-12-31");
    }

    #[test]
    fn an_unseeded_scope_is_asked_for_then_holds_fit_the_tightest_limit() {
        let mut ledger = Ledger::default();
        let limits = [limit("month:2026-12", 100), limit(CREDIT_SCOPE, 50)];
        assert_eq!(
            ledger.reserve(&limits, &hold("a", 10, 1_000), 0),
            ReserveOutcome::Unseeded(vec!["month:2026-12".into(), CREDIT_SCOPE.into()])
        );
        ledger.seed("month:2026-12", 20);
        ledger.seed(CREDIT_SCOPE, 30);
        ledger.seed(CREDIT_SCOPE, 999);
        assert_eq!(ledger.spent[CREDIT_SCOPE], 30, "a seed never overwrites");
        assert_eq!(
            ledger.reserve(&limits, &hold("a", 15, 1_000), 0),
            ReserveOutcome::Reserved
        );
        assert_eq!(
            ledger.reserve(&limits, &hold("b", 6, 1_000), 0),
            ReserveOutcome::Refused {
                scope: CREDIT_SCOPE.into(),
                available_micros: 5
            }
        );
        assert_eq!(
            ledger.reserve(&limits, &hold("a", 20, 1_000), 0),
            ReserveOutcome::Reserved,
            "the same id replaces its own hold"
        );
        assert_eq!(ledger.reserved(0), 20);
        assert!(ledger.settle("a", 12));
        assert!(!ledger.settle("a", 12), "a second settlement adds nothing");
        assert_eq!(ledger.spent["month:2026-12"], 32);
        assert_eq!(ledger.spent[CREDIT_SCOPE], 42);
        assert_eq!(ledger.reserved(0), 0);
    }

    #[test]
    fn an_expired_hold_frees_its_money_and_its_late_settlement_adds_nothing() {
        let mut ledger = Ledger::default();
        let limits = [limit("day:2026-12-07", 10)];
        ledger.seed("day:2026-12-07", 0);
        assert_eq!(
            ledger.reserve(&limits, &hold("crashed", 10, 500), 0),
            ReserveOutcome::Reserved
        );
        assert!(matches!(
            ledger.reserve(&limits, &hold("next", 1, 2_000), 499),
            ReserveOutcome::Refused { .. }
        ));
        assert_eq!(
            ledger.reserve(&limits, &hold("next", 10, 2_000), 500),
            ReserveOutcome::Reserved
        );
        assert!(!ledger.settle("crashed", 10));
        assert_eq!(ledger.spent["day:2026-12-07"], 0);
    }

    #[test]
    fn a_past_periods_spending_is_dropped_when_a_new_period_is_asked_for() {
        let mut ledger = Ledger::default();
        ledger.seed("day:2026-12-06", 10);
        let outcome = ledger.reserve(&[limit("day:2026-12-07", 10)], &hold("a", 1, 9), 0);
        assert_eq!(
            outcome,
            ReserveOutcome::Unseeded(vec!["day:2026-12-07".into()])
        );
        assert!(ledger.spent.is_empty());
    }

    /// One step of a random interleaving.
    #[derive(Debug, Clone)]
    pub(crate) enum Op {
        Reserve { id: u8, amount: i64, ttl: i64 },
        Settle { id: u8, cost_share: u8 },
        Wait(i64),
    }

    pub(crate) fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u8..8, 0i64..400, 1i64..50).prop_map(|(id, amount, ttl)| Op::Reserve {
                id,
                amount,
                ttl
            }),
            (0u8..8, 0u8..=100).prop_map(|(id, cost_share)| Op::Settle { id, cost_share }),
            (0i64..30).prop_map(Op::Wait),
        ]
    }

    proptest! {
        /// Whatever the order of reservations, settlements (never above what was held) and
        /// expiries, spent + reserved stays within every limit.
        #[test]
        fn spent_and_reserved_never_pass_a_limit(
            limit_micros in 0i64..2_000,
            credit in 0i64..2_000,
            ops in proptest::collection::vec(op(), 1..120),
        ) {
            let limits = [limit("month:2026-12", limit_micros), limit(CREDIT_SCOPE, credit)];
            let mut ledger = Ledger::default();
            ledger.seed("month:2026-12", 0);
            ledger.seed(CREDIT_SCOPE, 0);
            let mut now = 0;
            for op in ops {
                match op {
                    Op::Reserve { id, amount, ttl } => {
                        ledger.reserve(&limits, &hold(&id.to_string(), amount, now + ttl), now);
                    }
                    Op::Settle { id, cost_share } => {
                        // A settlement never costs more than its hold; an expired hold nobody
                        // reserved over since may still settle.
                        let held = ledger.holds.get(&id.to_string()).map_or(0, |h| h.0);
                        ledger.settle(&id.to_string(), held * i64::from(cost_share) / 100);
                    }
                    Op::Wait(ms) => now += ms,
                }
                for l in &limits {
                    prop_assert!(ledger.spent[&l.scope] + ledger.reserved(now) <= l.limit_micros);
                }
            }
        }
    }
}
