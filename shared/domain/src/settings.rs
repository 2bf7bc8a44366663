//! How a named setting's value becomes a typed one, for the settings structs each crate declares
//! (`#[serde(rename = "BESTCHAT_…")]` on the field it sets; the app reads them from the
//! environment). Durations are written in whole milliseconds or seconds.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// `#[serde(deserialize_with = "millis")]`: a whole number of milliseconds.
pub fn millis<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    u64::deserialize(d).map(Duration::from_millis)
}

/// `#[serde(deserialize_with = "seconds")]`: a whole number of seconds.
pub fn seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    u64::deserialize(d).map(Duration::from_secs)
}
