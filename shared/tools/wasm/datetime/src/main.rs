//! `datetime`: the time now in a time zone, date arithmetic, the difference between two times,
//! and formatting. Times are RFC 3339 (`2026-12-01T18:30:00Z`) or plain dates (`2026-12-01`,
//! midnight in the zone); zones are IANA names (`Europe/Lisbon`), UTC by default.
//!
//! Arguments, by `operation`:
//! - `now`: `{"operation": "now", "timezone"?}`
//! - `add`: `{"operation": "add", "datetime", "days"?, "hours"?, "minutes"?, "seconds"?,
//!   "months"?, "years"?, "timezone"?}` (months and years keep the day, clamped to the month's end)
//! - `diff`: `{"operation": "diff", "from", "to"}`
//! - `format`: `{"operation": "format", "datetime", "format" (strftime), "timezone"?}`

use chrono::{
    DateTime, Datelike, Duration, Months, NaiveDate, NaiveTime, SecondsFormat, TimeZone, Utc,
};
use chrono_tz::Tz;
use serde_json::{Value, json};

/// Largest shift in either direction: a hundred thousand years of days.
const MAX_DAYS: i64 = 36_524_250;
/// Longest format string.
const MAX_FORMAT_CHARS: usize = 200;

fn main() {
    bestchat_tool_sdk::run(|args| run(&args, Utc::now()));
}

fn run(args: &Value, now: DateTime<Utc>) -> Result<Value, String> {
    let zone = zone(args)?;
    match args["operation"].as_str().unwrap_or("now") {
        "now" => Ok(describe(now.with_timezone(&zone))),
        "add" => {
            let start = time(args, "datetime", zone)?;
            let number = |key: &str| -> Result<i64, String> {
                match &args[key] {
                    Value::Null => Ok(0),
                    v => v.as_i64().ok_or(format!("{key} must be a whole number")),
                }
            };
            let mut at = start;
            let months = number("years")?
                .checked_mul(12)
                .and_then(|m| m.checked_add(number("months").ok()?));
            let months = months.ok_or("years and months are too large")?;
            if months.unsigned_abs() > (MAX_DAYS / 28) as u64 {
                return Err("years and months are too large".into());
            }
            let shifted = if months >= 0 {
                at.checked_add_months(Months::new(months as u32))
            } else {
                at.checked_sub_months(Months::new(months.unsigned_abs() as u32))
            };
            at = shifted.ok_or("the date is out of range")?;
            let seconds = [
                ("days", 86_400),
                ("hours", 3_600),
                ("minutes", 60),
                ("seconds", 1),
            ]
            .iter()
            .try_fold(0i64, |total, (key, unit)| {
                let n = number(key)?;
                if n.unsigned_abs() > (MAX_DAYS * 86_400 / unit) as u64 {
                    return Err(format!("{key} is too large"));
                }
                Ok(total.saturating_add(n * unit))
            })?;
            let at = at
                .checked_add_signed(Duration::seconds(seconds))
                .ok_or("the date is out of range")?;
            Ok(describe(at))
        }
        "diff" => {
            let from = time(args, "from", zone)?;
            let to = time(args, "to", zone)?;
            let d = to.signed_duration_since(from);
            Ok(json!({
                "seconds": d.num_seconds(),
                "minutes": d.num_minutes(),
                "hours": d.num_hours(),
                "days": d.num_days(),
                "weeks": d.num_weeks(),
                "human": human(d),
            }))
        }
        "format" => {
            let at = time(args, "datetime", zone)?;
            let format = args["format"]
                .as_str()
                .ok_or("format must be a strftime string")?;
            if format.chars().count() > MAX_FORMAT_CHARS {
                return Err(format!(
                    "format is longer than {MAX_FORMAT_CHARS} characters"
                ));
            }
            let items: Vec<chrono::format::Item<'_>> =
                chrono::format::StrftimeItems::new(format).collect();
            if items
                .iter()
                .any(|i| matches!(i, chrono::format::Item::Error))
            {
                return Err(format!("{format:?} is not a valid strftime format"));
            }
            Ok(json!({ "formatted": at.format_with_items(items.into_iter()).to_string() }))
        }
        other => Err(format!(
            "unknown operation {other:?}: use now, add, diff or format"
        )),
    }
}

fn zone(args: &Value) -> Result<Tz, String> {
    match args["timezone"].as_str() {
        None => Ok(Tz::UTC),
        Some(name) => name
            .parse::<Tz>()
            .map_err(|_| format!("{name:?} is not an IANA time zone (like Europe/Lisbon)")),
    }
}

fn time(args: &Value, key: &str, zone: Tz) -> Result<DateTime<Tz>, String> {
    let text = args[key]
        .as_str()
        .ok_or(format!("{key} must be a date or time"))?;
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&zone));
    }
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| format!("{key} {text:?} is neither RFC 3339 nor YYYY-MM-DD"))?;
    zone.from_local_datetime(&date.and_time(NaiveTime::MIN))
        .earliest()
        .ok_or(format!("{text} has no midnight in {zone}"))
}

fn describe(at: DateTime<Tz>) -> Value {
    json!({
        "datetime": at.to_rfc3339_opts(SecondsFormat::Secs, true),
        "timezone": at.timezone().name(),
        "date": at.format("%Y-%m-%d").to_string(),
        "time": at.format("%H:%M:%S").to_string(),
        "weekday": at.format("%A").to_string(),
        "day_of_year": at.ordinal(),
        "iso_week": at.iso_week().week(),
        "unix": at.timestamp(),
        "utc_offset": at.format("%:z").to_string(),
    })
}

fn human(d: Duration) -> String {
    let sign = if d < Duration::zero() { "-" } else { "" };
    let s = d.num_seconds().unsigned_abs();
    let (days, hours, minutes, seconds) = (s / 86_400, s % 86_400 / 3_600, s % 3_600 / 60, s % 60);
    format!("{sign}{days}d {hours}h {minutes}m {seconds}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-01T18:30:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn now_in_a_zone() {
        let v = run(&json!({"operation": "now", "timezone": "Asia/Tokyo"}), at()).unwrap();
        assert_eq!(v["datetime"], "2026-12-02T03:30:00+09:00");
        assert_eq!(v["weekday"], "Wednesday");
        assert_eq!(
            run(&json!({}), at()).unwrap()["datetime"],
            "2026-12-01T18:30:00Z"
        );
    }

    #[test]
    fn arithmetic_and_differences() {
        let v = run(
            &json!({"operation": "add", "datetime": "2024-01-31", "months": 1, "days": 1}),
            at(),
        )
        .unwrap();
        assert_eq!(
            v["date"], "2024-03-01",
            "Jan 31 + 1 month is Feb 29 (leap), then a day"
        );
        let dst = run(&json!({"operation": "add", "datetime": "2026-03-28T12:00:00+00:00", "hours": 24, "timezone": "Europe/Lisbon"}), at()).unwrap();
        assert_eq!(
            dst["datetime"], "2026-03-29T13:00:00+01:00",
            "24 hours across the clock change"
        );
        let d = run(
            &json!({"operation": "diff", "from": "2026-01-01", "to": "2026-12-25T06:00:00Z"}),
            at(),
        )
        .unwrap();
        assert_eq!(d["days"], 358);
        assert_eq!(d["human"], "358d 6h 0m 0s");
        let f = run(&json!({"operation": "format", "datetime": "2026-12-01T18:30:00Z", "format": "%A %e %B %Y, %H:%M", "timezone": "America/New_York"}), at()).unwrap();
        assert_eq!(f["formatted"], "Tuesday  1 December 2026, 13:30");
    }

    #[test]
    fn bad_arguments_are_explained() {
        for bad in [
            json!({"operation": "now", "timezone": "Mars/Olympus"}),
            json!({"operation": "add", "datetime": "yesterday"}),
            json!({"operation": "add", "datetime": "2026-01-01", "days": 1.5}),
            json!({"operation": "add", "datetime": "2026-01-01", "years": 9_000_000_000_i64}),
            json!({"operation": "add", "datetime": "2026-01-01", "seconds": i64::MAX}),
            json!({"operation": "format", "datetime": "2026-01-01", "format": "%Q"}),
            json!({"operation": "dance"}),
        ] {
            assert!(run(&bad, at()).is_err(), "{bad}");
        }
    }
}
