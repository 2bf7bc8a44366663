//! `regex`: find or replace a regular expression (Rust's `regex` syntax, linear time, no
//! backreferences) in text given inline.
//!
//! Arguments: `{"pattern", "text", "replacement"?, "case_insensitive"?, "max_matches"?}`. Without
//! `replacement`, the matches (text, start, end, capture groups by number and name); with it,
//! the replaced text (`$1`, `$name` refer to groups) and how many were replaced.

use regex::RegexBuilder;
use serde_json::{Map, Value, json};

/// Longest pattern read.
const MAX_PATTERN_CHARS: usize = 2_000;
/// Largest compiled program, so a pattern cannot take the sandbox's memory by itself.
const MAX_COMPILED_BYTES: usize = 2 * 1024 * 1024;
/// Matches listed when the caller names no limit, and the most it may ask for.
const DEFAULT_MATCHES: usize = 100;
const MAX_MATCHES: usize = 10_000;

fn main() {
    bestchat_tool_sdk::run(|args| run(&args));
}

fn run(args: &Value) -> Result<Value, String> {
    let pattern = args["pattern"].as_str().ok_or("pattern must be a string")?;
    let text = args["text"].as_str().ok_or("text must be a string")?;
    if pattern.chars().count() > MAX_PATTERN_CHARS {
        return Err(format!(
            "pattern is longer than {MAX_PATTERN_CHARS} characters"
        ));
    }
    let regex = RegexBuilder::new(pattern)
        .case_insensitive(args["case_insensitive"].as_bool().unwrap_or(false))
        .size_limit(MAX_COMPILED_BYTES)
        .build()
        .map_err(|e| format!("the pattern is not valid: {e}"))?;
    if let Some(replacement) = args.get("replacement").and_then(Value::as_str) {
        let count = regex.find_iter(text).count();
        let replaced = regex.replace_all(text, replacement).into_owned();
        return Ok(json!({ "text": replaced, "replacements": count }));
    }
    let limit = match &args["max_matches"] {
        Value::Null => DEFAULT_MATCHES,
        v => v
            .as_u64()
            .filter(|n| (1..=MAX_MATCHES as u64).contains(n))
            .ok_or(format!("max_matches must be 1 to {MAX_MATCHES}"))? as usize,
    };
    let names: Vec<Option<&str>> = regex.capture_names().collect();
    let mut matches = Vec::new();
    let mut total = 0usize;
    for captures in regex.captures_iter(text) {
        total += 1;
        if matches.len() == limit {
            continue;
        }
        let whole = captures
            .get(0)
            .map_or((0, 0, ""), |m| (m.start(), m.end(), m.as_str()));
        let mut groups = Vec::new();
        let mut named = Map::new();
        for (i, name) in names.iter().enumerate().skip(1) {
            let value = captures
                .get(i)
                .map(|m| Value::from(m.as_str()))
                .unwrap_or(Value::Null);
            if let Some(name) = name {
                named.insert((*name).to_owned(), value.clone());
            }
            groups.push(value);
        }
        matches.push(json!({"text": whole.2, "start": whole.0, "end": whole.1, "groups": groups, "named": named}));
    }
    Ok(json!({ "matches": matches, "count": total, "truncated": total > matches.len() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_with_groups_and_replaces() {
        let found =
            run(&json!({"pattern": r"(?P<y>\d{4})-(\d{2})", "text": "from 2024-05 to 2026-12"}))
                .unwrap();
        assert_eq!(found["count"], 2);
        assert_eq!(found["matches"][1]["text"], "2026-12");
        assert_eq!(found["matches"][1]["named"]["y"], "2026");
        assert_eq!(found["matches"][0]["groups"], json!(["2024", "05"]));
        let replaced =
            run(&json!({"pattern": r"(\w+)@(\w+)", "text": "a@b c@d", "replacement": "$2 at $1"}))
                .unwrap();
        assert_eq!(replaced["text"], "b at a d at c");
        assert_eq!(replaced["replacements"], 2);
        let limited = run(
            &json!({"pattern": "a", "text": "aaaa", "max_matches": 2, "case_insensitive": true}),
        )
        .unwrap();
        assert_eq!(limited["matches"].as_array().unwrap().len(), 2);
        assert_eq!(limited["truncated"], true);
    }

    #[test]
    fn bad_patterns_are_explained() {
        for bad in [
            json!({"pattern": "(", "text": ""}),
            json!({"pattern": r"(\w)\1", "text": ""}),
            json!({"pattern": "a{100000}{100000}", "text": ""}),
            json!({"pattern": "a", "text": 5}),
            json!({"pattern": "a", "text": "a", "max_matches": 0}),
        ] {
            assert!(run(&bad).is_err(), "{bad}");
        }
    }
}
