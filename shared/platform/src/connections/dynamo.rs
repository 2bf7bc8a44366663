//! The connection registry on DynamoDB: one item per connection (`connection_id`), with the
//! user, the subscribed conversations (a string set), pending resumes (a map) and a TTL
//! attribute; a global secondary index `by_user` finds a user's connections.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use bestchat_domain::ids::{ConversationId, MessageId, UserId};
use bestchat_domain::ports::realtime::{
    ConnectionId, ConnectionRecord, Connections, RegistryError,
};
use bestchat_domain::time::{Timestamp, from_micros, to_micros};
use tokio::sync::OnceCell;

/// The index that finds a user's connections.
pub const BY_USER_INDEX: &str = "by_user";

pub struct DynamoConnections {
    table: String,
    client: OnceCell<aws_sdk_dynamodb::Client>,
}

fn failed(e: impl std::fmt::Debug) -> RegistryError {
    RegistryError(format!("{e:?}"))
}

fn conditional_failure<E: ProvideErrorMetadata>(e: &aws_sdk_dynamodb::error::SdkError<E>) -> bool {
    e.code() == Some("ConditionalCheckFailedException")
}

fn epoch_seconds() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

impl DynamoConnections {
    /// The client is built on first use (from the environment, honouring
    /// `AWS_ENDPOINT_URL_DYNAMODB`).
    pub fn new(table: String) -> Self {
        Self {
            table,
            client: OnceCell::new(),
        }
    }

    pub fn with_client(table: String, client: aws_sdk_dynamodb::Client) -> Self {
        Self {
            table,
            client: OnceCell::new_with(Some(client)),
        }
    }

    async fn client(&self) -> &aws_sdk_dynamodb::Client {
        self.client
            .get_or_init(|| async {
                let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
                aws_sdk_dynamodb::Client::new(&config)
            })
            .await
    }
}

fn record(item: &HashMap<String, AttributeValue>) -> Option<ConnectionRecord> {
    let id = ConnectionId::parse(item.get("connection_id")?.as_s().ok()?).ok()?;
    let user_id = item.get("user_id")?.as_s().ok()?.parse().ok()?;
    let connected_at = from_micros(item.get("connected_at")?.as_n().ok()?.parse().ok()?)?;
    let subscriptions: BTreeSet<ConversationId> = item
        .get("subscriptions")
        .and_then(|v| v.as_ss().ok())
        .map(|set| set.iter().filter_map(|c| c.parse().ok()).collect())
        .unwrap_or_default();
    let pending_resumes: BTreeSet<MessageId> = item
        .get("resumes")
        .and_then(|v| v.as_m().ok())
        .map(|m| m.keys().filter_map(|k| k.parse().ok()).collect())
        .unwrap_or_default();
    Some(ConnectionRecord {
        id,
        user_id,
        connected_at,
        subscriptions,
        pending_resumes,
    })
}

#[async_trait]
impl Connections for DynamoConnections {
    async fn register(
        &self,
        id: &ConnectionId,
        user: UserId,
        now: Timestamp,
        ttl: Duration,
    ) -> Result<(), RegistryError> {
        let expires =
            epoch_seconds().saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX));
        self.client()
            .await
            .put_item()
            .table_name(&self.table)
            .item("connection_id", s(id.as_str()))
            .item("user_id", s(user.to_string()))
            .item("connected_at", n(to_micros(now)))
            .item("expires_at", n(expires))
            .item("resumes", AttributeValue::M(HashMap::new()))
            .send()
            .await
            .map_err(failed)?;
        Ok(())
    }

    async fn remove(&self, id: &ConnectionId) -> Result<(), RegistryError> {
        self.client()
            .await
            .delete_item()
            .table_name(&self.table)
            .key("connection_id", s(id.as_str()))
            .send()
            .await
            .map_err(failed)?;
        Ok(())
    }

    async fn subscribe(
        &self,
        id: &ConnectionId,
        user: UserId,
        conversation: ConversationId,
    ) -> Result<bool, RegistryError> {
        let result = self
            .client()
            .await
            .update_item()
            .table_name(&self.table)
            .key("connection_id", s(id.as_str()))
            .update_expression("ADD subscriptions :c")
            .condition_expression("attribute_exists(connection_id) AND user_id = :u")
            .expression_attribute_values(":c", AttributeValue::Ss(vec![conversation.to_string()]))
            .expression_attribute_values(":u", s(user.to_string()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if conditional_failure(&e) => Ok(false),
            Err(e) => Err(failed(e)),
        }
    }

    async fn of_user(&self, user: UserId) -> Result<Vec<ConnectionRecord>, RegistryError> {
        let now = epoch_seconds();
        let mut records = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let page = self
                .client()
                .await
                .query()
                .table_name(&self.table)
                .index_name(BY_USER_INDEX)
                .key_condition_expression("user_id = :u")
                .expression_attribute_values(":u", s(user.to_string()))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(failed)?;
            for item in page.items() {
                // TTL deletion is lazy: an expired item may still be returned.
                let live = item
                    .get("expires_at")
                    .and_then(|v| v.as_n().ok())
                    .and_then(|v| v.parse::<i64>().ok())
                    .is_none_or(|at| at > now);
                if live && let Some(r) = record(item) {
                    records.push(r);
                }
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        records.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(records)
    }

    async fn request_resume(
        &self,
        id: &ConnectionId,
        message: MessageId,
        after_seq: u64,
    ) -> Result<(), RegistryError> {
        let result = self
            .client()
            .await
            .update_item()
            .table_name(&self.table)
            .key("connection_id", s(id.as_str()))
            .update_expression("SET resumes.#m = :s")
            .condition_expression("attribute_exists(connection_id)")
            .expression_attribute_names("#m", message.to_string())
            .expression_attribute_values(":s", n(after_seq))
            .send()
            .await;
        match result {
            // A connection that is gone has nothing left to resume.
            Ok(_) => Ok(()),
            Err(e) if conditional_failure(&e) => Ok(()),
            Err(e) => Err(failed(e)),
        }
    }

    async fn claim_resume(
        &self,
        id: &ConnectionId,
        message: MessageId,
    ) -> Result<Option<u64>, RegistryError> {
        let key = message.to_string();
        let result = self
            .client()
            .await
            .update_item()
            .table_name(&self.table)
            .key("connection_id", s(id.as_str()))
            .update_expression("REMOVE resumes.#m")
            .condition_expression("attribute_exists(resumes.#m)")
            .expression_attribute_names("#m", &key)
            .return_values(ReturnValue::UpdatedOld)
            .send()
            .await;
        match result {
            Ok(out) => Ok(out
                .attributes
                .as_ref()
                .and_then(|a| a.get("resumes"))
                .and_then(|r| r.as_m().ok())
                .and_then(|m| m.get(&key))
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse().ok())),
            Err(e) if conditional_failure(&e) => Ok(None),
            Err(e) => Err(failed(e)),
        }
    }
}
