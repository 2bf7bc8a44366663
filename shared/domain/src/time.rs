//! Timestamps: UTC with microsecond precision, the precision both stores keep, so a value read
//! back equals the value written.

use chrono::{DateTime, SubsecRound, Utc};

pub type Timestamp = DateTime<Utc>;

pub fn now() -> Timestamp {
    Utc::now().trunc_subsecs(6)
}

pub fn to_micros(at: Timestamp) -> i64 {
    at.timestamp_micros()
}

pub fn from_micros(micros: i64) -> Option<Timestamp> {
    DateTime::from_timestamp_micros(micros)
}

/// `at` plus `span`, saturating at the latest time chrono can hold.
pub fn after(at: Timestamp, span: std::time::Duration) -> Timestamp {
    chrono::Duration::from_std(span)
        .ok()
        .and_then(|d| at.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}
