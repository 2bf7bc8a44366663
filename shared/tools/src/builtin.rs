//! The built-in tools' manifests. Their modules are built from `shared/tools/wasm` and
//! embedded by `bestchat-builtin-tools`; only the executor links those bytes.

use std::sync::LazyLock;

use serde_json::{Value, json};

use crate::limits::Grants;
use crate::manifest::{Manifest, Risk, ToolName};

/// A built-in tool: its manifest, and whether the hosts it may fetch from are the user's
/// allowed hosts (http_fetch) rather than its own grant.
pub struct Builtin {
    pub manifest: Manifest,
    pub hosts_from_user: bool,
}

pub fn all() -> &'static [Builtin] {
    &BUILTINS
}

pub fn find(name: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.manifest.name.as_str() == name)
}

static BUILTINS: LazyLock<Vec<Builtin>> = LazyLock::new(|| {
    let read = |name, description, parameters| {
        builtin(name, description, parameters, Risk::Read, Grants::default())
    };
    vec![
        read(
            "calculator",
            "Exact arithmetic on an expression: + - * / ^ %, parentheses, decimals and fractions as exact rationals (0.1 + 0.2 = 3/10); sqrt, ln, log, exp, sin, cos, tan, pi and e approximately. Returns the exact result, its decimal form and whether it is exact.",
            json!({
                "type": "object",
                "properties": {"expression": {"type": "string", "minLength": 1, "maxLength": 10000, "description": "e.g. (1 + 2) * 3 / 4"}},
                "required": ["expression"],
                "additionalProperties": false
            }),
        ),
        read(
            "datetime",
            "Dates and times: now in an IANA time zone, adding years/months/days/hours/minutes/seconds, the difference between two times, and strftime formatting. Times are RFC 3339 or plain dates.",
            json!({
                "type": "object",
                "properties": {
                    "operation": {"enum": ["now", "add", "diff", "format"]},
                    "timezone": {"type": "string", "description": "IANA name, e.g. Europe/Lisbon; UTC by default"},
                    "datetime": {"type": "string"},
                    "from": {"type": "string"},
                    "to": {"type": "string"},
                    "format": {"type": "string", "maxLength": 200},
                    "years": {"type": "integer"}, "months": {"type": "integer"},
                    "days": {"type": "integer"}, "hours": {"type": "integer"},
                    "minutes": {"type": "integer"}, "seconds": {"type": "integer"}
                },
                "required": ["operation"],
                "additionalProperties": false
            }),
        ),
        read(
            "json_query",
            "Runs a JMESPath query (https://jmespath.org) over JSON given as data and returns the result.",
            json!({
                "type": "object",
                "properties": {
                    "query": {"type": "string", "minLength": 1, "maxLength": 2000},
                    "data": {"description": "the JSON to query, or a string holding it"}
                },
                "required": ["query", "data"],
                "additionalProperties": false
            }),
        ),
        read(
            "regex",
            "Finds a regular expression (Rust regex syntax, linear time) in text, returning matches with their positions and capture groups; with replacement, returns the replaced text ($1 and $name refer to groups).",
            json!({
                "type": "object",
                "properties": {
                    "pattern": {"type": "string", "minLength": 1, "maxLength": 2000},
                    "text": {"type": "string"},
                    "replacement": {"type": "string"},
                    "case_insensitive": {"type": "boolean"},
                    "max_matches": {"type": "integer", "minimum": 1, "maximum": 10000}
                },
                "required": ["pattern", "text"],
                "additionalProperties": false
            }),
        ),
        Builtin {
            hosts_from_user: true,
            ..builtin(
                "http_fetch",
                "GETs a web page or text document from a host the user allowed and returns it as readable text (HTML reduced to its words), cut at max_chars.",
                json!({
                    "type": "object",
                    "properties": {
                        "url": {"type": "string", "pattern": "^https?://", "maxLength": 4096},
                        "max_chars": {"type": "integer", "minimum": 1, "maximum": 100000}
                    },
                    "required": ["url"],
                    "additionalProperties": false
                }),
                Risk::Network,
                Grants::default(),
            )
        },
        builtin(
            "run_javascript",
            "Runs JavaScript (ECMAScript, in the Boa engine) in a sandbox with no files or network, and returns the value of the last expression as JSON with the console.log output. Use it for computation, data transformation and checking logic.",
            json!({
                "type": "object",
                "properties": {"code": {"type": "string", "minLength": 1, "maxLength": 100000}},
                "required": ["code"],
                "additionalProperties": false
            }),
            Risk::Exec,
            Grants {
                memory_bytes: Some(128 * 1024 * 1024),
                fuel: Some(10_000_000_000),
                timeout_ms: Some(10_000),
                ..Grants::default()
            },
        ),
    ]
});

fn builtin(
    name: &'static str,
    description: &str,
    parameters: Value,
    risk: Risk,
    grants: Grants,
) -> Builtin {
    Builtin {
        manifest: Manifest {
            // Literals, each checked by `ToolName::parse` in the tests below.
            name: ToolName::from_static(name),
            description: description.to_owned(),
            parameters,
            risk,
            grants,
        },
        hosts_from_user: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Ceilings;
    use crate::manifest::ManifestError;

    #[test]
    fn every_builtin_manifest_is_valid() {
        for b in all() {
            assert!(ToolName::parse(b.manifest.name.as_str()).is_ok());
            let mut wire = serde_json::to_value(&b.manifest).unwrap();
            let parsed = Manifest::parse(wire.clone(), &Ceilings::default());
            if b.hosts_from_user {
                assert_eq!(parsed, Err(ManifestError::NetworkWithoutHosts));
                wire["grants"] = json!({"hosts": ["example.com"]});
                assert!(Manifest::parse(wire, &Ceilings::default()).is_ok());
            } else {
                assert_eq!(
                    parsed.as_ref().ok(),
                    Some(&b.manifest),
                    "{}",
                    b.manifest.name
                );
            }
        }
        assert_eq!(all().len(), 6);
        assert!(find("calculator").is_some());
        assert!(find("nope").is_none());
    }
}
