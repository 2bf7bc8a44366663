//! A user's tool settings: the auto-approval rules (`GET/PUT /api/settings/auto-approval`) and
//! the hosts http_fetch may reach (`GET/PUT /api/settings/fetch-hosts`). Defaults until the user
//! sets them; every change on the audit trail. Each use case takes the settings port alone.

use bestchat_domain::DomainError;
use bestchat_domain::ids::UserId;
use bestchat_domain::ports::store::{AuditEntry, AutoApprovalRecord, SettingsStore};
use bestchat_domain::time::now;
use bestchat_tools::manifest::check_hosts;
use bestchat_tools::policy::{AutoApproval, RiskRules};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::AppError;

pub async fn auto_approval(
    store: &dyn SettingsStore,
    user: UserId,
) -> Result<AutoApproval, AppError> {
    let Some(record) = store.get_auto_approval(user).await? else {
        return Ok(AutoApproval::default());
    };
    let risk: RiskRules = serde_json::from_value(record.by_risk)
        .map_err(|e| AppError::Internal(format!("stored auto-approval rules: {e}")))?;
    let tools = serde_json::from_value(record.by_tool)
        .map_err(|e| AppError::Internal(format!("stored auto-approval rules: {e}")))?;
    Ok(AutoApproval {
        risk,
        tools,
        max_auto_per_turn: record.max_per_turn,
    })
}

pub async fn put_auto_approval(
    store: &dyn SettingsStore,
    user: UserId,
    rules: AutoApproval,
) -> Result<AutoApproval, AppError> {
    rules
        .check()
        .map_err(|e| DomainError::validation(e.to_string()))?;
    let at = now();
    let record = AutoApprovalRecord {
        user_id: user,
        by_risk: to_json(&rules.risk)?,
        by_tool: to_json(&rules.tools)?,
        max_per_turn: rules.max_auto_per_turn,
        updated_at: at,
    };
    let entry = AuditEntry::of(
        user,
        "settings.auto_approval.put",
        ("settings", "auto-approval"),
        json!({ "risk": record.by_risk, "tools": record.by_tool, "max_auto_per_turn": rules.max_auto_per_turn }),
        at,
    );
    store.put_auto_approval(&record, &entry).await?;
    Ok(rules)
}

/// The hosts http_fetch may reach for a user: none until the user names some.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ::schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FetchHosts {
    pub hosts: Vec<String>,
}

pub async fn fetch_hosts(store: &dyn SettingsStore, user: UserId) -> Result<FetchHosts, AppError> {
    let hosts = store.get_fetch_hosts(user).await?.unwrap_or_default();
    Ok(FetchHosts { hosts })
}

/// Stores the hosts, at most `max_hosts` (`BESTCHAT_TOOL_MAX_HOSTS`), sorted and once each.
pub async fn put_fetch_hosts(
    store: &dyn SettingsStore,
    max_hosts: usize,
    user: UserId,
    mut body: FetchHosts,
) -> Result<FetchHosts, AppError> {
    check_hosts(&body.hosts, max_hosts)
        .map_err(|e| DomainError::validation(format!("hosts: {e}")))?;
    body.hosts.sort();
    body.hosts.dedup();
    let at = now();
    let entry = AuditEntry::of(
        user,
        "settings.fetch_hosts.put",
        ("settings", "fetch-hosts"),
        json!({ "hosts": body.hosts }),
        at,
    );
    store.put_fetch_hosts(user, &body.hosts, at, &entry).await?;
    Ok(body)
}

fn to_json(value: &impl serde::Serialize) -> Result<Value, AppError> {
    serde_json::to_value(value).map_err(|e| AppError::Internal(e.to_string()))
}

/// The use cases with only their port: an in-memory settings store that records the audit trail.
#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;
    use bestchat_domain::ErrorCode;
    use bestchat_domain::ports::store::StoreError;
    use bestchat_domain::time::Timestamp;
    use bestchat_tools::policy::Rule;

    use super::*;

    #[derive(Default)]
    struct FakeSettings {
        rules: Mutex<Option<AutoApprovalRecord>>,
        hosts: Mutex<Option<Vec<String>>>,
        audit: Mutex<Vec<AuditEntry>>,
    }

    #[async_trait]
    impl SettingsStore for FakeSettings {
        async fn get_auto_approval(
            &self,
            _user: UserId,
        ) -> Result<Option<AutoApprovalRecord>, StoreError> {
            Ok(self.rules.lock().unwrap().clone())
        }

        async fn put_auto_approval(
            &self,
            record: &AutoApprovalRecord,
            audit: &AuditEntry,
        ) -> Result<(), StoreError> {
            *self.rules.lock().unwrap() = Some(record.clone());
            self.audit.lock().unwrap().push(audit.clone());
            Ok(())
        }

        async fn get_fetch_hosts(&self, _user: UserId) -> Result<Option<Vec<String>>, StoreError> {
            Ok(self.hosts.lock().unwrap().clone())
        }

        async fn put_fetch_hosts(
            &self,
            _user: UserId,
            hosts: &[String],
            _at: Timestamp,
            audit: &AuditEntry,
        ) -> Result<(), StoreError> {
            *self.hosts.lock().unwrap() = Some(hosts.to_vec());
            self.audit.lock().unwrap().push(audit.clone());
            Ok(())
        }
    }

    fn user() -> UserId {
        UserId::from_subject(&bestchat_domain::ids::Subject::parse("settings-user").unwrap())
    }

    #[tokio::test]
    async fn auto_approval_rules_default_then_round_trip_with_an_audit_entry() {
        let store = FakeSettings::default();
        assert_eq!(
            auto_approval(&store, user()).await.unwrap(),
            AutoApproval::default()
        );
        let mut rules = AutoApproval::default();
        rules.risk.write = Rule::Auto;
        rules.max_auto_per_turn = 3;
        put_auto_approval(&store, user(), rules.clone())
            .await
            .unwrap();
        assert_eq!(auto_approval(&store, user()).await.unwrap(), rules);
        let audit = store.audit.lock().unwrap();
        assert_eq!(audit.len(), 1);
        assert_eq!(audit[0].action, "settings.auto_approval.put");
        assert_eq!(audit[0].details["max_auto_per_turn"], 3);
    }

    #[tokio::test]
    async fn invalid_auto_approval_rules_are_refused_before_the_store() {
        let store = FakeSettings::default();
        let rules = AutoApproval {
            max_auto_per_turn: u32::MAX,
            ..AutoApproval::default()
        };
        let refused = put_auto_approval(&store, user(), rules).await.unwrap_err();
        assert_eq!(refused.code(), ErrorCode::ValidationFailed);
        assert!(store.rules.lock().unwrap().is_none());
        assert!(store.audit.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn fetch_hosts_are_stored_sorted_once_each_and_bounded() {
        let store = FakeSettings::default();
        assert!(fetch_hosts(&store, user()).await.unwrap().hosts.is_empty());
        let body = FetchHosts {
            hosts: vec!["docs.rs".into(), "*.example.org".into(), "docs.rs".into()],
        };
        let stored = put_fetch_hosts(&store, 4, user(), body).await.unwrap();
        assert_eq!(stored.hosts, ["*.example.org", "docs.rs"]);
        assert_eq!(fetch_hosts(&store, user()).await.unwrap(), stored);
        let too_many = FetchHosts {
            hosts: (0..5).map(|i| format!("h{i}.example.org")).collect(),
        };
        let refused = put_fetch_hosts(&store, 4, user(), too_many)
            .await
            .unwrap_err();
        assert_eq!(refused.code(), ErrorCode::ValidationFailed);
        assert_eq!(fetch_hosts(&store, user()).await.unwrap(), stored);
        assert_eq!(store.audit.lock().unwrap().len(), 1);
    }
}
