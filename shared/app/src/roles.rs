//! Roles: what the caller's token says they are (the identity provider's groups claim, a
//! Cognito group) or, on a laptop, whom `BESTCHAT_ADMINS` names; the `admin` role opens the
//! admin routes, and each role's tool permissions bound what its members' own rules allow.

use std::collections::BTreeMap;

use bestchat_domain::{DomainError, ErrorCode};
use bestchat_tools::policy::AutoApproval;
use serde::Deserialize;

use crate::config::ConfigError;

/// The role that opens the admin routes.
pub const ADMIN: &str = "admin";
/// The tool permissions of a user none of whose roles has its own.
pub const DEFAULT_ROLE: &str = "default";
/// Most roles one token may name (more are ignored).
pub const ROLES_MAX: usize = 32;
/// Longest role name kept.
pub const ROLE_MAX_CHARS: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct AccessSettings {
    /// Comma-separated user names (a dev token's name) or token subjects who are admins.
    #[serde(rename = "BESTCHAT_ADMINS")]
    pub admins: String,
    /// The token claim that lists the user's groups.
    #[serde(rename = "BESTCHAT_ROLES_CLAIM")]
    pub roles_claim: String,
    /// JSON: per role (group), the most its members' tool rules may allow, in the shape of
    /// `PUT /api/settings/auto-approval` (`{"staff": {"risk": {…}, "tools": {…},
    /// "max_auto_per_turn": 3}}`); `default` applies to users with no listed role. A `deny`
    /// means the role may not use that risk class or tool at all. Empty: no ceilings.
    #[serde(rename = "BESTCHAT_ROLE_TOOL_POLICIES")]
    pub tool_policies: String,
}

impl Default for AccessSettings {
    fn default() -> Self {
        Self {
            admins: String::new(),
            roles_claim: "cognito:groups".into(),
            tool_policies: String::new(),
        }
    }
}

impl AccessSettings {
    /// The role ceilings, read once at start: a deployment with a bad policy does not start.
    pub fn ceilings(&self) -> Result<BTreeMap<String, AutoApproval>, ConfigError> {
        if self.tool_policies.trim().is_empty() {
            return Ok(BTreeMap::new());
        }
        let policies: BTreeMap<String, AutoApproval> = serde_json::from_str(&self.tool_policies)
            .map_err(|e| {
                ConfigError(format!(
                    "BESTCHAT_ROLE_TOOL_POLICIES must map role names to auto-approval rules: {e}"
                ))
            })?;
        for (role, rules) in &policies {
            if role.is_empty() || role.chars().count() > ROLE_MAX_CHARS {
                return Err(ConfigError(format!(
                    "BESTCHAT_ROLE_TOOL_POLICIES: role names are 1 to {ROLE_MAX_CHARS} characters"
                )));
            }
            rules.check().map_err(|e| {
                ConfigError(format!("BESTCHAT_ROLE_TOOL_POLICIES: role {role:?}: {e}"))
            })?;
        }
        Ok(policies)
    }

    /// The caller's roles: the groups their token names, and `admin` when the deployment's
    /// admin list names them (by subject, or by the name of a `dev:` subject).
    pub fn roles_of(&self, subject: &str, groups: &[String]) -> Vec<String> {
        let mut roles: Vec<String> = groups
            .iter()
            .filter(|g| !g.is_empty() && g.chars().count() <= ROLE_MAX_CHARS)
            .take(ROLES_MAX)
            .cloned()
            .collect();
        let name = subject.strip_prefix("dev:").unwrap_or(subject);
        let listed = self
            .admins
            .split(',')
            .map(str::trim)
            .any(|a| !a.is_empty() && (a == subject || a == name));
        if listed && !roles.iter().any(|r| r == ADMIN) {
            roles.push(ADMIN.to_owned());
        }
        roles.sort();
        roles.dedup();
        roles
    }
}

/// The tool ceilings that apply to a user with `roles`: those of their roles that have one,
/// else the default's, else none.
pub fn ceilings_for(
    policies: &BTreeMap<String, AutoApproval>,
    roles: &[String],
) -> Vec<AutoApproval> {
    let mine: Vec<AutoApproval> = roles
        .iter()
        .filter_map(|r| policies.get(r))
        .cloned()
        .collect();
    if mine.is_empty() {
        policies.get(DEFAULT_ROLE).cloned().into_iter().collect()
    } else {
        mine
    }
}

/// 403 unless `roles` holds `admin`.
pub fn require_admin(roles: &[String]) -> Result<(), DomainError> {
    if roles.iter().any(|r| r == ADMIN) {
        Ok(())
    } else {
        Err(DomainError::new(
            ErrorCode::Forbidden,
            "this route is for admins",
        ))
    }
}

/// The groups a claim holds, as API Gateway hands claims over: a JSON array, a bracketed list
/// (`[admin staff]`, how its JWT authorizer flattens an array claim), or one name.
pub fn parse_groups(raw: &str) -> Vec<String> {
    let raw = raw.trim();
    if let Ok(list) = serde_json::from_str::<Vec<String>>(raw) {
        return list;
    }
    raw.trim_start_matches('[')
        .trim_end_matches(']')
        .split([',', ' '])
        .map(|g| g.trim().trim_matches('"').to_owned())
        .filter(|g| !g.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_come_in_every_shape_api_gateway_hands_them_over() {
        let want = vec!["admin".to_owned(), "staff".to_owned()];
        assert_eq!(parse_groups(r#"["admin","staff"]"#), want);
        assert_eq!(parse_groups("[admin staff]"), want);
        assert_eq!(parse_groups("admin, staff"), want);
        assert_eq!(parse_groups("admin"), vec!["admin".to_owned()]);
        assert!(parse_groups("").is_empty());
    }

    #[test]
    fn the_admin_list_names_users_by_dev_name_or_subject() {
        let settings = AccessSettings {
            admins: "alice, sub-123".into(),
            ..AccessSettings::default()
        };
        assert_eq!(settings.roles_of("dev:alice", &[]), vec!["admin"]);
        assert_eq!(
            settings.roles_of("sub-123", &["staff".into()]),
            vec!["admin", "staff"]
        );
        assert!(settings.roles_of("dev:mallory", &[]).is_empty());
        assert!(settings.roles_of("dev:alicex", &[]).is_empty());
        assert!(require_admin(&settings.roles_of("dev:mallory", &["staff".into()])).is_err());
        assert!(require_admin(&settings.roles_of("dev:bob", &["admin".into()])).is_ok());
    }

    #[test]
    fn a_user_without_a_listed_role_gets_the_default_ceiling() {
        let settings = AccessSettings {
            tool_policies: r#"{"default": {"risk": {"read": "auto", "write": "ask",
                "network": "deny", "exec": "deny", "destructive": "deny"},
                "max_auto_per_turn": 2}}"#
                .into(),
            ..AccessSettings::default()
        };
        let policies = settings.ceilings().unwrap();
        assert_eq!(ceilings_for(&policies, &["staff".into()]).len(), 1);
        assert!(ceilings_for(&BTreeMap::new(), &[]).is_empty());
        for bad in [
            r#"{"staff": 3}"#,
            r#"{"": {"risk": {"read": "auto", "write": "ask", "network": "ask", "exec": "ask", "destructive": "ask"}, "max_auto_per_turn": 1}}"#,
            r#"{"staff": {"risk": {"read": "auto", "write": "ask", "network": "ask", "exec": "ask", "destructive": "auto"}, "max_auto_per_turn": 1}}"#,
        ] {
            let settings = AccessSettings {
                tool_policies: bad.into(),
                ..AccessSettings::default()
            };
            assert!(settings.ceilings().is_err(), "{bad}");
        }
    }
}
