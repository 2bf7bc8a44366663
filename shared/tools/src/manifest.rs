//! A tool's manifest: its name, what it does, the JSON Schema of its arguments, its risk and
//! what it may use. Parsed once (at registration, or from the built-ins' code); a `Manifest`
//! is always valid.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::limits::{Ceilings, Grants, millis};

/// Longest description a manifest may carry (it is sent to the model with every turn).
pub const MAX_DESCRIPTION_CHARS: usize = 1_024;
/// Largest argument schema, serialized.
pub const MAX_SCHEMA_BYTES: usize = 32 * 1024;

/// How much harm a call can do; the user's approval rules are per risk.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ::schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Risk {
    Read,
    Write,
    Network,
    Exec,
    Destructive,
}

impl Risk {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Network => "network",
            Self::Exec => "exec",
            Self::Destructive => "destructive",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "read" => Self::Read,
            "write" => Self::Write,
            "network" => Self::Network,
            "exec" => Self::Exec,
            "destructive" => Self::Destructive,
            _ => return None,
        })
    }
}

/// `^[a-z][a-z0-9_]{0,63}$`: what every provider accepts as a function name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct ToolName(String);

impl ToolName {
    pub const MAX_CHARS: usize = 64;

    pub fn parse(text: &str) -> Result<Self, ManifestError> {
        let mut chars = text.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
        let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if first_ok && rest_ok && text.len() <= Self::MAX_CHARS {
            Ok(Self(text.to_owned()))
        } else {
            Err(ManifestError::Name)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A built-in tool's name, written in code.
    pub(crate) fn from_static(name: &'static str) -> Self {
        Self(name.to_owned())
    }
}

impl fmt::Display for ToolName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ToolName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Manifest {
    pub name: ToolName,
    pub description: String,
    /// JSON Schema (2020-12 unless `$schema` says otherwise) of the arguments: an object.
    pub parameters: Value,
    pub risk: Risk,
    #[serde(skip_serializing_if = "is_default")]
    pub grants: Grants,
}

fn is_default(grants: &Grants) -> bool {
    *grants == Grants::default()
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("the manifest is not a valid manifest object: {0}")]
    Shape(String),
    #[error(
        "name must be 1 to 64 characters: a lowercase letter, then lowercase letters, digits or _"
    )]
    Name,
    #[error("description must be 1 to {MAX_DESCRIPTION_CHARS} characters")]
    Description,
    #[error("parameters must be a JSON Schema for an object (\"type\": \"object\")")]
    ParametersNotObject,
    #[error("parameters is larger than {MAX_SCHEMA_BYTES} bytes")]
    ParametersTooLarge,
    #[error("parameters is not a valid JSON Schema: {0}")]
    ParametersInvalid(String),
    #[error("only a network tool may name hosts")]
    HostsWithoutNetwork,
    #[error("a network tool must name the hosts it fetches from")]
    NetworkWithoutHosts,
    #[error(
        "{0:?} is not a host name (a name like example.com or *.example.com, no scheme, port or path)"
    )]
    Host(String),
    #[error("the manifest names more than {0} hosts")]
    TooManyHosts(usize),
    #[error("{field} may be at most {max}")]
    OverCeiling { field: &'static str, max: u64 },
    #[error("{0} must be more than 0")]
    Zero(&'static str),
}

/// The manifest as a client sends it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    name: String,
    description: String,
    parameters: Value,
    risk: Risk,
    #[serde(default)]
    grants: Grants,
}

impl Manifest {
    /// A manifest read back from the store: checked as at registration, except its grants
    /// against today's ceilings (a lowered ceiling caps each call instead).
    pub fn stored(value: Value) -> Result<Self, ManifestError> {
        let unbounded = Ceilings {
            max_memory_bytes: u64::MAX,
            max_fuel: u64::MAX,
            max_wall: std::time::Duration::MAX,
            max_output_bytes: u64::MAX,
            max_hosts: usize::MAX,
            ..Ceilings::default()
        };
        Self::parse(value, &unbounded)
    }

    /// Checks every field, the schema itself (that it compiles: no remote `$ref`, valid
    /// keywords), and the grants against the deployment's ceilings.
    pub fn parse(value: Value, ceilings: &Ceilings) -> Result<Self, ManifestError> {
        let wire: Wire =
            serde_json::from_value(value).map_err(|e| ManifestError::Shape(e.to_string()))?;
        let name = ToolName::parse(&wire.name)?;
        let chars = wire.description.trim().chars().count();
        if chars == 0 || chars > MAX_DESCRIPTION_CHARS {
            return Err(ManifestError::Description);
        }
        check_parameters(&wire.parameters)?;
        check_grants(&wire.grants, wire.risk, ceilings)?;
        Ok(Self {
            name,
            description: wire.description,
            parameters: wire.parameters,
            risk: wire.risk,
            grants: wire.grants,
        })
    }
}

fn check_parameters(schema: &Value) -> Result<(), ManifestError> {
    if serde_json::to_vec(schema).map_or(true, |b| b.len() > MAX_SCHEMA_BYTES) {
        return Err(ManifestError::ParametersTooLarge);
    }
    if schema.get("type").and_then(Value::as_str) != Some("object") {
        return Err(ManifestError::ParametersNotObject);
    }
    jsonschema::meta::validate(schema)
        .map_err(|e| ManifestError::ParametersInvalid(e.to_string()))?;
    jsonschema::validator_for(schema)
        .map(|_| ())
        .map_err(|e| ManifestError::ParametersInvalid(e.to_string()))
}

fn check_grants(grants: &Grants, risk: Risk, ceilings: &Ceilings) -> Result<(), ManifestError> {
    match (risk, grants.hosts.is_empty()) {
        (Risk::Network, true) => return Err(ManifestError::NetworkWithoutHosts),
        (Risk::Network, false) => {}
        (_, false) => return Err(ManifestError::HostsWithoutNetwork),
        (_, true) => {}
    }
    check_hosts(&grants.hosts, ceilings.max_hosts)?;
    let checks = [
        (
            "grants.memory_bytes",
            grants.memory_bytes,
            ceilings.max_memory_bytes,
        ),
        ("grants.fuel", grants.fuel, ceilings.max_fuel),
        (
            "grants.timeout_ms",
            grants.timeout_ms,
            millis(ceilings.max_wall),
        ),
        (
            "grants.output_bytes",
            grants.output_bytes,
            ceilings.max_output_bytes,
        ),
    ];
    for (field, asked, max) in checks {
        match asked {
            Some(0) => return Err(ManifestError::Zero(field)),
            Some(n) if n > max => return Err(ManifestError::OverCeiling { field, max }),
            _ => {}
        }
    }
    Ok(())
}

/// A list of host patterns, as a manifest grants them or a user allows them.
pub fn check_hosts(hosts: &[String], max: usize) -> Result<(), ManifestError> {
    if hosts.len() > max {
        return Err(ManifestError::TooManyHosts(max));
    }
    match hosts.iter().find(|host| !is_host_pattern(host)) {
        Some(bad) => Err(ManifestError::Host(bad.clone())),
        None => Ok(()),
    }
}

/// `example.com`, `*.example.com` or an IP literal; lowercase, no scheme, port or path.
fn is_host_pattern(pattern: &str) -> bool {
    let name = pattern.strip_prefix("*.").unwrap_or(pattern);
    if name.is_empty() || name.len() > 253 || name != name.to_ascii_lowercase() {
        return false;
    }
    let is_ip = name.parse::<std::net::IpAddr>().is_ok();
    if is_ip {
        return !pattern.starts_with("*.");
    }
    name.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    })
}

/// Whether `host` (from a URL, lowercase) is one of `patterns`.
pub fn host_allowed(patterns: &[String], host: &str) -> bool {
    let host = host.trim_end_matches('.');
    patterns
        .iter()
        .any(|pattern| match pattern.strip_prefix("*.") {
            Some(parent) => host
                .strip_suffix(parent)
                .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
            None => pattern == host,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn manifest(overrides: Value) -> Value {
        let mut base = json!({
            "name": "weather",
            "description": "Looks up the weather.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            "risk": "read"
        });
        if let (Some(base), Some(extra)) = (base.as_object_mut(), overrides.as_object()) {
            base.extend(extra.clone());
        }
        base
    }

    fn parse(overrides: Value) -> Result<Manifest, ManifestError> {
        Manifest::parse(manifest(overrides), &Ceilings::default())
    }

    #[test]
    fn a_plain_manifest_parses() {
        let parsed = parse(json!({})).unwrap();
        assert_eq!(parsed.name.as_str(), "weather");
        assert_eq!(parsed.risk, Risk::Read);
    }

    #[test]
    fn names_are_what_every_provider_accepts() {
        for bad in ["", "Weather", "1st", "a-b", "a b", "é", &"a".repeat(65)] {
            assert_eq!(ToolName::parse(bad), Err(ManifestError::Name), "{bad:?}");
        }
        for good in ["a", "get_weather", "t2", &"a".repeat(64)] {
            assert!(ToolName::parse(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn every_bad_field_is_named() {
        let cases = [
            (json!({"description": " "}), ManifestError::Description),
            (
                json!({"parameters": {"type": "string"}}),
                ManifestError::ParametersNotObject,
            ),
            (
                json!({"parameters": []}),
                ManifestError::ParametersNotObject,
            ),
            (
                json!({"grants": {"hosts": ["example.com"]}}),
                ManifestError::HostsWithoutNetwork,
            ),
            (
                json!({"risk": "network"}),
                ManifestError::NetworkWithoutHosts,
            ),
            (
                json!({"grants": {"fuel": 0}}),
                ManifestError::Zero("grants.fuel"),
            ),
        ];
        for (overrides, expected) in cases {
            assert_eq!(parse(overrides.clone()), Err(expected), "{overrides}");
        }
        assert!(matches!(
            parse(json!({"grants": {"memory_bytes": u64::MAX}})),
            Err(ManifestError::OverCeiling {
                field: "grants.memory_bytes",
                ..
            })
        ));
        assert!(matches!(
            parse(json!({"risk": "admin"})),
            Err(ManifestError::Shape(_))
        ));
        assert!(matches!(
            parse(json!({"extra": 1})),
            Err(ManifestError::Shape(_))
        ));
    }

    #[test]
    fn a_schema_that_does_not_compile_or_reaches_out_is_refused() {
        let bad_keyword = json!({"parameters": {"type": "object", "minProperties": "two"}});
        assert!(matches!(
            parse(bad_keyword),
            Err(ManifestError::ParametersInvalid(_))
        ));
        let remote = json!({"parameters": {"type": "object", "$ref": "http://169.254.169.254/x"}});
        assert!(matches!(
            parse(remote),
            Err(ManifestError::ParametersInvalid(_))
        ));
        let huge =
            json!({"parameters": {"type": "object", "description": "x".repeat(MAX_SCHEMA_BYTES)}});
        assert_eq!(parse(huge), Err(ManifestError::ParametersTooLarge));
    }

    #[test]
    fn hosts_are_names_and_match_exactly_or_as_subdomains() {
        for bad in [
            "https://example.com",
            "example.com:443",
            "example.com/x",
            "Example.com",
            "*",
            "*.",
            "a..b",
            "-a.com",
            "*.1.2.3.4",
        ] {
            let m = json!({"risk": "network", "grants": {"hosts": [bad]}});
            assert_eq!(parse(m), Err(ManifestError::Host(bad.into())), "{bad}");
        }
        let patterns = vec!["example.com".to_owned(), "*.docs.rs".to_owned()];
        assert!(host_allowed(&patterns, "example.com"));
        assert!(host_allowed(&patterns, "example.com."));
        assert!(!host_allowed(&patterns, "www.example.com"));
        assert!(!host_allowed(&patterns, "badexample.com"));
        assert!(host_allowed(&patterns, "serde.docs.rs"));
        assert!(!host_allowed(&patterns, "docs.rs"));
        assert!(!host_allowed(&patterns, "evildocs.rs"));
    }
}
