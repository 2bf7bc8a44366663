//! A user's conversations: created, changed and deleted by their owner, each change announced
//! to every device of theirs. Each use case takes the store port and the devices, no more.

use bestchat_domain::DomainError;
use bestchat_domain::conversation::{Conversation, CreateConversation, UpdateConversation};
use bestchat_domain::ids::{ConversationId, UserId};
use bestchat_domain::model_ref::ModelRef;
use bestchat_domain::ports::store::{AuditEntry, ConversationStore};
use bestchat_domain::time::now;
use bestchat_domain::wire::ServerEvent;
use serde_json::json;

use crate::devices::Devices;
use crate::error::AppError;

/// Stores a new conversation (the request's model, else `default_model`) and announces it.
pub async fn create(
    store: &dyn ConversationStore,
    devices: &Devices,
    default_model: &ModelRef,
    user: UserId,
    body: CreateConversation,
) -> Result<Conversation, AppError> {
    let conversation = body.into_conversation(user, default_model, now())?;
    store.create_conversation(&conversation).await?;
    devices
        .to_every_device(
            user,
            &ServerEvent::ConversationCreated {
                conversation: conversation.clone(),
                omitted: false,
            },
        )
        .await;
    Ok(conversation)
}

/// Applies a change to the user's conversation and announces the result.
pub async fn update(
    store: &dyn ConversationStore,
    devices: &Devices,
    user: UserId,
    id: ConversationId,
    body: UpdateConversation,
) -> Result<Conversation, AppError> {
    let patch = body.validate()?;
    let conversation = store
        .update_conversation(user, id, &patch, now())
        .await?
        .ok_or_else(DomainError::conversation_not_found)?;
    devices
        .to_every_device(
            user,
            &ServerEvent::ConversationUpdated {
                conversation: conversation.clone(),
                omitted: false,
            },
        )
        .await;
    Ok(conversation)
}

/// Deletes the user's conversation and everything under it, on the audit trail.
pub async fn delete(
    store: &dyn ConversationStore,
    devices: &Devices,
    user: UserId,
    id: ConversationId,
) -> Result<(), AppError> {
    let entry = AuditEntry::of(
        user,
        "conversation.delete",
        ("conversation", &id.to_string()),
        json!({}),
        now(),
    );
    if !store.delete_conversation(user, id, &entry).await? {
        return Err(DomainError::conversation_not_found().into());
    }
    devices
        .to_every_device(
            user,
            &ServerEvent::ConversationDeleted {
                conversation_id: id,
            },
        )
        .await;
    Ok(())
}

/// The use cases with only their ports: an in-memory conversation store, and the in-process
/// connection registry and sockets standing in for DynamoDB and API Gateway.
#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use async_trait::async_trait;
    use bestchat_domain::ErrorCode;
    use bestchat_domain::conversation::ConversationPatch;
    use bestchat_domain::ids::Subject;
    use bestchat_domain::page::{Page, PageRequest};
    use bestchat_domain::ports::realtime::{ConnectionId, Connections};
    use bestchat_domain::ports::store::StoreError;
    use bestchat_domain::time::Timestamp;
    use bestchat_platform::connections::MemoryConnections;
    use bestchat_platform::publish::{ConnectionHub, Outgoing};
    use tokio::sync::mpsc::Receiver;

    use super::*;

    #[derive(Default)]
    struct FakeConversations {
        rows: Mutex<Vec<Conversation>>,
        audit: Mutex<Vec<AuditEntry>>,
    }

    #[async_trait]
    impl ConversationStore for FakeConversations {
        async fn create_conversation(&self, conversation: &Conversation) -> Result<(), StoreError> {
            self.rows.lock().unwrap().push(conversation.clone());
            Ok(())
        }

        async fn get_conversation(
            &self,
            user: UserId,
            id: ConversationId,
        ) -> Result<Option<Conversation>, StoreError> {
            let rows = self.rows.lock().unwrap();
            Ok(rows
                .iter()
                .find(|c| c.id == id && c.user_id == user)
                .cloned())
        }

        async fn list_conversations(
            &self,
            _user: UserId,
            _title: Option<&str>,
            _page: &PageRequest,
        ) -> Result<Page<Conversation>, StoreError> {
            Err(StoreError::Internal("not used by these use cases".into()))
        }

        async fn update_conversation(
            &self,
            user: UserId,
            id: ConversationId,
            patch: &ConversationPatch,
            now: Timestamp,
        ) -> Result<Option<Conversation>, StoreError> {
            let mut rows = self.rows.lock().unwrap();
            let Some(row) = rows.iter_mut().find(|c| c.id == id && c.user_id == user) else {
                return Ok(None);
            };
            if let Some(title) = &patch.title {
                row.title = title.clone();
            }
            row.updated_at = now;
            Ok(Some(row.clone()))
        }

        async fn delete_conversation(
            &self,
            user: UserId,
            id: ConversationId,
            audit: &AuditEntry,
        ) -> Result<bool, StoreError> {
            let mut rows = self.rows.lock().unwrap();
            let before = rows.len();
            rows.retain(|c| !(c.id == id && c.user_id == user));
            let deleted = rows.len() < before;
            if deleted {
                self.audit.lock().unwrap().push(audit.clone());
            }
            Ok(deleted)
        }
    }

    fn user(name: &str) -> UserId {
        UserId::from_subject(&Subject::parse(name).unwrap())
    }

    fn default_model() -> ModelRef {
        serde_json::from_value(serde_json::json!({"provider": "echo", "model": "echo-1"})).unwrap()
    }

    /// The devices of the test, and a socket of `owner`'s.
    async fn devices_with_socket(owner: UserId, name: &str) -> (Devices, Receiver<Outgoing>) {
        let hub = ConnectionHub::new();
        let connections = Arc::new(MemoryConnections::new());
        let id = ConnectionId::parse(name).unwrap();
        connections
            .register(&id, owner, now(), Duration::from_secs(60))
            .await
            .unwrap();
        let socket = hub.attach(id);
        let devices = Devices {
            connections,
            publisher: Arc::new(hub),
            frame_max_bytes: 64 * 1024,
        };
        (devices, socket)
    }

    #[tokio::test]
    async fn create_stores_the_conversation_and_tells_every_device() {
        let store = FakeConversations::default();
        let alice = user("alice");
        let (devices, mut socket) = devices_with_socket(alice, "alice-phone=").await;
        let body: CreateConversation =
            serde_json::from_value(serde_json::json!({"title": "Trip"})).unwrap();
        let created = create(&store, &devices, &default_model(), alice, body)
            .await
            .unwrap();
        assert_eq!(created.title, "Trip");
        assert_eq!(created.user_id, alice);
        assert_eq!(
            store.get_conversation(alice, created.id).await.unwrap(),
            Some(created.clone())
        );
        let got = crate::testing::drain(&mut socket);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0]["type"], "conversation.created");
        assert_eq!(got[0]["conversation"]["id"], created.id.to_string());
    }

    #[tokio::test]
    async fn an_invalid_conversation_is_refused_before_the_store_and_the_devices() {
        let store = FakeConversations::default();
        let alice = user("alice");
        let (devices, mut socket) = devices_with_socket(alice, "alice-phone=").await;
        let body: CreateConversation =
            serde_json::from_value(serde_json::json!({"title": "x".repeat(10_000)})).unwrap();
        let refused = create(&store, &devices, &default_model(), alice, body)
            .await
            .unwrap_err();
        assert_eq!(refused.code(), ErrorCode::ValidationFailed);
        assert!(store.rows.lock().unwrap().is_empty());
        assert!(crate::testing::drain(&mut socket).is_empty());
    }

    #[tokio::test]
    async fn another_users_conversation_is_neither_changed_nor_deleted_nor_announced() {
        let store = FakeConversations::default();
        let (alice, mallory) = (user("alice"), user("mallory"));
        let (devices, mut socket) = devices_with_socket(alice, "alice-phone=").await;
        let body: CreateConversation =
            serde_json::from_value(serde_json::json!({"title": "Mine"})).unwrap();
        let mine = create(&store, &devices, &default_model(), alice, body)
            .await
            .unwrap();
        crate::testing::drain(&mut socket);
        let rename: UpdateConversation =
            serde_json::from_value(serde_json::json!({"title": "Pwned"})).unwrap();
        let refused = update(&store, &devices, mallory, mine.id, rename)
            .await
            .unwrap_err();
        assert_eq!(refused.code(), ErrorCode::ConversationNotFound);
        let refused = delete(&store, &devices, mallory, mine.id)
            .await
            .unwrap_err();
        assert_eq!(refused.code(), ErrorCode::ConversationNotFound);
        assert_eq!(
            store.get_conversation(alice, mine.id).await.unwrap(),
            Some(mine.clone())
        );
        assert!(store.audit.lock().unwrap().is_empty());
        assert!(crate::testing::drain(&mut socket).is_empty());

        delete(&store, &devices, alice, mine.id).await.unwrap();
        assert!(
            store
                .get_conversation(alice, mine.id)
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(store.audit.lock().unwrap()[0].action, "conversation.delete");
        let got = crate::testing::drain(&mut socket);
        assert_eq!(got[0]["type"], "conversation.deleted");
    }
}
