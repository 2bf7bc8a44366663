//! Rate limits as GCRA (the generic cell rate algorithm): one stored number per key, the
//! "theoretical arrival time" of the next request, so a check is one atomic read-modify-write
//! (a Lua script in Redis, a map entry in process). A quota of `q` per window `w` lets `q`
//! requests through at once and then one every `w / q`.

use std::time::Duration;

/// `quota` requests per `window` (the IETF `RateLimit-Policy` `q` and `w`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub quota: u32,
    pub window: Duration,
}

impl Rate {
    /// Milliseconds one request uses of the window.
    pub fn interval_ms(&self) -> i64 {
        let window = i64::try_from(self.window.as_millis()).unwrap_or(i64::MAX);
        (window / i64::from(self.quota.max(1))).max(1)
    }

    /// Milliseconds of the whole quota.
    pub fn capacity_ms(&self) -> i64 {
        self.interval_ms()
            .saturating_mul(i64::from(self.quota.max(1)))
    }
}

/// What one check decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateDecision {
    pub allowed: bool,
    /// Requests still allowed right now (0 when refused).
    pub remaining: u32,
    /// How long to wait before the next request can pass (zero when allowed).
    pub retry_after: Duration,
    /// How long until the whole quota is available again.
    pub reset_after: Duration,
}

/// One check at `now_ms` against the stored arrival time `tat`: the decision, and the arrival
/// time to store (`None` when refused: nothing changes). The Redis script is this function.
pub fn gcra(rate: &Rate, tat: Option<i64>, now_ms: i64) -> (RateDecision, Option<i64>) {
    let interval = rate.interval_ms();
    let capacity = rate.capacity_ms();
    let tat = tat.unwrap_or(now_ms).max(now_ms);
    let next = tat.saturating_add(interval);
    let used = next - now_ms;
    if used > capacity {
        let decision = RateDecision {
            allowed: false,
            remaining: 0,
            retry_after: millis(used - capacity),
            reset_after: millis(tat - now_ms),
        };
        return (decision, None);
    }
    let decision = RateDecision {
        allowed: true,
        remaining: u32::try_from((capacity - used) / interval).unwrap_or(u32::MAX),
        retry_after: Duration::ZERO,
        reset_after: millis(used),
    };
    (decision, Some(next))
}

fn millis(ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: Rate = Rate {
        quota: 3,
        window: Duration::from_secs(3),
    };

    #[test]
    fn the_quota_passes_at_once_then_one_per_interval() {
        let mut tat = None;
        for remaining in [2, 1, 0] {
            let (d, next) = gcra(&RATE, tat, 10_000);
            assert!(d.allowed);
            assert_eq!(d.remaining, remaining);
            tat = next;
        }
        let (refused, unchanged) = gcra(&RATE, tat, 10_000);
        assert!(!refused.allowed);
        assert_eq!(unchanged, None);
        assert_eq!(refused.retry_after, Duration::from_secs(1));
        assert_eq!(refused.reset_after, Duration::from_secs(3));
        let (later, _) = gcra(&RATE, tat, 11_000);
        assert!(later.allowed, "one interval later one more passes");
        assert_eq!(later.remaining, 0);
    }

    #[test]
    fn an_idle_key_is_full_again() {
        let (_, tat) = gcra(&RATE, None, 0);
        let (d, _) = gcra(&RATE, tat, 60_000);
        assert!(d.allowed);
        assert_eq!(d.remaining, 2);
    }
}
