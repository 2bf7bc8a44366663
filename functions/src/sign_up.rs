//! The `sign-up-check` function: Cognito's pre-sign-up trigger. Who may become a user is the
//! operator's choice (the template's `SignUp`): nobody but those an administrator creates
//! (`closed`), or whoever proves an email address at one of the allowed domains (`domains`),
//! through the sign-up form or Google/OpenID Connect alike. A refusal is Cognito's error,
//! shown on the sign-up page.

use serde_json::Value;

/// The binary Cognito invokes.
pub const FUNCTION: &str = "sign-up-check";

/// Who may sign up, read from `SIGN_UP` and `SIGN_UP_EMAIL_DOMAINS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Policy {
    /// Anyone (the template then attaches no trigger; the function answers the same).
    Open,
    /// Only users an administrator creates.
    Closed,
    /// Email addresses at these domains (lower case, exact: `example.com` is not `a.example.com`).
    Domains(Vec<String>),
}

/// A sign-up policy that cannot be read, or a sign-up it refuses (Cognito shows the user this
/// sentence).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignUpError {
    #[error("SIGN_UP=domains needs SIGN_UP_EMAIL_DOMAINS")]
    NoDomains,
    #[error("SIGN_UP must be closed, domains or open, not {0:?}")]
    UnknownMode(String),
    #[error("Sign-up is closed: ask the operator for an account.")]
    Closed,
    #[error("Sign-up is open only to addresses at the operator's domains.")]
    OtherDomain,
}

impl Policy {
    pub fn from_env(mode: Option<&str>, domains: Option<&str>) -> Result<Self, SignUpError> {
        match mode {
            Some("closed") | None => Ok(Self::Closed),
            Some("open") => Ok(Self::Open),
            Some("domains") => {
                let list: Vec<String> = domains
                    .unwrap_or_default()
                    .split(',')
                    .map(|d| d.trim().trim_start_matches('@').to_ascii_lowercase())
                    .filter(|d| !d.is_empty())
                    .collect();
                if list.is_empty() {
                    return Err(SignUpError::NoDomains);
                }
                Ok(Self::Domains(list))
            }
            Some(other) => Err(SignUpError::UnknownMode(other.to_owned())),
        }
    }
}

/// Cognito's event back, unchanged, when the sign-up may go on; why not, otherwise.
pub fn check(policy: &Policy, event: Value) -> Result<Value, SignUpError> {
    // An administrator's own creations are the operator's decision already.
    if event["triggerSource"] == "PreSignUp_AdminCreateUser" {
        return Ok(event);
    }
    let email = event["request"]["userAttributes"]["email"]
        .as_str()
        .unwrap_or_default();
    match policy {
        Policy::Open => Ok(event),
        Policy::Closed => Err(SignUpError::Closed),
        Policy::Domains(allowed) => {
            let domain = email
                .rsplit_once('@')
                .map(|(_, d)| d.to_ascii_lowercase())
                .unwrap_or_default();
            if allowed.contains(&domain) {
                Ok(event)
            } else {
                Err(SignUpError::OtherDomain)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn event(source: &str, email: &str) -> Value {
        json!({"triggerSource": source, "request": {"userAttributes": {"email": email}},
               "response": {}})
    }

    #[test]
    fn closed_lets_only_administrators_create_users() {
        let closed = Policy::from_env(None, None).unwrap();
        assert!(check(&closed, event("PreSignUp_SignUp", "a@example.com")).is_err());
        assert!(
            check(
                &closed,
                event("PreSignUp_ExternalProvider", "a@example.com")
            )
            .is_err()
        );
        let admin = event("PreSignUp_AdminCreateUser", "a@example.com");
        assert_eq!(check(&closed, admin.clone()), Ok(admin));
    }

    #[test]
    fn domains_admit_exact_domains_from_any_sign_in() {
        let policy = Policy::from_env(Some("domains"), Some(" Example.com, @corp.io ")).unwrap();
        for ok in ["ann@example.com", "Bob@EXAMPLE.COM", "c@corp.io"] {
            let e = event("PreSignUp_ExternalProvider", ok);
            assert_eq!(check(&policy, e.clone()), Ok(e), "{ok}");
        }
        for refused in [
            "x@a.example.com",
            "x@example.com.evil.io",
            "x@evil.io",
            "no-at-sign",
            "",
            "x@example.com@evil.io",
        ] {
            assert!(
                check(&policy, event("PreSignUp_SignUp", refused)).is_err(),
                "{refused}"
            );
        }
        assert!(Policy::from_env(Some("domains"), Some(" , ")).is_err());
        assert!(Policy::from_env(Some("maybe"), None).is_err());
        let open = Policy::from_env(Some("open"), None).unwrap();
        assert!(check(&open, event("PreSignUp_SignUp", "x@evil.io")).is_ok());
    }
}
