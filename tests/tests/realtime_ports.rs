//! Contracts of the real-time ports, each run against every adapter: the connection registry
//! (in-process and DynamoDB on moto), the stream buffer (in-process and Redis Streams), and the
//! production publisher and invoker (real AWS SDK clients) against the local gateway's
//! emulations of API Gateway's Management API and Lambda's Invoke API.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_apigatewaymanagement::config::{BehaviorVersion, Credentials, Region};
use bestchat_cache::{
    BufferSettings, FileStreamBuffer, RedisCache, RedisSettings, RedisStreamBuffer,
};
use bestchat_domain::ids::{ConversationId, MessageId, UserId};
use bestchat_domain::ports::realtime::{
    ConnectionId, Connections, InvokeError, Invoker, PublishError, Publisher, StreamBuffer,
};
use bestchat_domain::time::now;
use bestchat_platform::connections::{DynamoConnections, MemoryConnections};
use bestchat_platform::invoke::LambdaInvoker;
use bestchat_platform::publish::ApiGatewayPublisher;
use bestchat_tests::gateway::{EMULATOR_SECRET, cloud, create_connections_table, dynamodb};
use bestchat_tests::ws::WsClient;
use bestchat_tests::{redis_url, unique_prefix};
use serde_json::json;

const TTL: Duration = Duration::from_secs(3600);

async fn dynamo() -> DynamoConnections {
    DynamoConnections::with_client(create_connections_table().await, dynamodb())
}

macro_rules! registry_contract {
    ($($case:ident),* $(,)?) => {
        mod memory_registry {
            $( #[tokio::test] async fn $case() { super::$case(&bestchat_platform::connections::MemoryConnections::new()).await; } )*
        }
        mod dynamodb_registry {
            $( #[tokio::test] async fn $case() { super::$case(&super::dynamo().await).await; } )*
        }
    };
}

registry_contract!(
    connections_are_found_by_user_with_their_subscriptions,
    a_resume_request_is_claimed_exactly_once,
    removed_connections_are_gone,
);

fn conn(name: &str) -> ConnectionId {
    ConnectionId::parse(name).unwrap()
}

async fn connections_are_found_by_user_with_their_subscriptions(registry: &dyn Connections) {
    let (alice, bob) = (UserId::generate(), UserId::generate());
    let (c1, c2) = (ConversationId::generate(), ConversationId::generate());
    registry
        .register(&conn("phone="), alice, now(), TTL)
        .await
        .unwrap();
    registry
        .register(&conn("laptop="), alice, now(), TTL)
        .await
        .unwrap();
    registry
        .register(&conn("bobs="), bob, now(), TTL)
        .await
        .unwrap();
    assert!(
        registry
            .subscribe(&conn("phone="), alice, c1)
            .await
            .unwrap()
    );
    assert!(
        registry
            .subscribe(&conn("phone="), alice, c2)
            .await
            .unwrap()
    );
    assert!(
        registry
            .subscribe(&conn("phone="), alice, c1)
            .await
            .unwrap(),
        "idempotent"
    );
    assert!(
        !registry.subscribe(&conn("bobs="), alice, c1).await.unwrap(),
        "not alice's connection"
    );
    assert!(
        !registry
            .subscribe(&conn("nobody="), alice, c1)
            .await
            .unwrap()
    );
    let mine = registry.of_user(alice).await.unwrap();
    let ids: Vec<&str> = mine.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, vec!["laptop=", "phone="]);
    assert_eq!(mine[1].subscriptions, [c1, c2].into_iter().collect());
    assert!(mine[0].subscriptions.is_empty());
    assert_eq!(registry.of_user(bob).await.unwrap().len(), 1);
}

async fn a_resume_request_is_claimed_exactly_once(registry: &dyn Connections) {
    let alice = UserId::generate();
    let (m1, m2) = (MessageId::generate(), MessageId::generate());
    let id = conn("resumer=");
    registry.register(&id, alice, now(), TTL).await.unwrap();
    assert_eq!(registry.claim_resume(&id, m1).await.unwrap(), None);
    registry.request_resume(&id, m1, 7).await.unwrap();
    registry.request_resume(&id, m2, 3).await.unwrap();
    let (a, b) = tokio::join!(
        registry.claim_resume(&id, m1),
        registry.claim_resume(&id, m1)
    );
    let claims: Vec<Option<u64>> = vec![a.unwrap(), b.unwrap()];
    assert!(
        claims.contains(&Some(7)) && claims.contains(&None),
        "{claims:?}"
    );
    assert_eq!(registry.claim_resume(&id, m2).await.unwrap(), Some(3));
    // A request for a connection that is gone is dropped quietly.
    registry
        .request_resume(&conn("ghost="), m1, 1)
        .await
        .unwrap();
}

async fn removed_connections_are_gone(registry: &dyn Connections) {
    let alice = UserId::generate();
    registry
        .register(&conn("brief="), alice, now(), TTL)
        .await
        .unwrap();
    registry.remove(&conn("brief=")).await.unwrap();
    registry.remove(&conn("brief=")).await.unwrap();
    assert!(registry.of_user(alice).await.unwrap().is_empty());
    // A record past its TTL is not returned even before the store deletes it.
    registry
        .register(&conn("stale="), alice, now(), Duration::ZERO)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(registry.of_user(alice).await.unwrap().is_empty());
}

fn settings() -> BufferSettings {
    BufferSettings {
        ttl: Duration::from_millis(800),
        max_frames: 50,
    }
}

fn redis_buffer() -> RedisStreamBuffer {
    let redis = RedisCache::connect(
        &redis_url(),
        &RedisSettings {
            key_prefix: unique_prefix(),
            command_timeout: Duration::from_secs(2),
            ..RedisSettings::default()
        },
    )
    .unwrap();
    RedisStreamBuffer::new(redis, settings())
}

macro_rules! buffer_contract {
    ($($case:ident),* $(,)?) => {
        mod file_buffer {
            $( #[tokio::test] async fn $case() {
                let dir = bestchat_tests::TempDir::new("frames");
                super::$case(&bestchat_cache::FileStreamBuffer::new(dir.path().join("frames"), super::settings())).await;
            } )*
        }
        mod redis_buffer {
            $( #[tokio::test] async fn $case() { super::$case(&super::redis_buffer()).await; } )*
        }
    };
}

buffer_contract!(
    frames_come_back_in_order_after_a_seq,
    frames_are_capped_and_expire
);

async fn frames_come_back_in_order_after_a_seq(buffer: &dyn StreamBuffer) {
    let m = MessageId::generate();
    for seq in 1..=5 {
        buffer
            .append(m, seq, &format!("frame {seq}"))
            .await
            .unwrap();
    }
    buffer.append(m, 3, "a retried append").await.unwrap();
    let after = buffer.read_after(m, 2).await.unwrap();
    assert_eq!(
        after,
        vec![
            (3, "frame 3".to_owned()),
            (4, "frame 4".to_owned()),
            (5, "frame 5".to_owned())
        ]
    );
    assert_eq!(buffer.read_after(m, 5).await.unwrap(), vec![]);
    // The last seq there can be: nothing after it, and no wrap back to the start.
    assert_eq!(buffer.read_after(m, u64::MAX).await.unwrap(), vec![]);
    assert_eq!(buffer.read_after(m, u64::MAX - 1).await.unwrap(), vec![]);
    assert_eq!(
        buffer.read_after(MessageId::generate(), 0).await.unwrap(),
        vec![]
    );
}

async fn frames_are_capped_and_expire(buffer: &dyn StreamBuffer) {
    let m = MessageId::generate();
    for seq in 1..=500 {
        buffer.append(m, seq, "x").await.unwrap();
    }
    let kept = buffer.read_after(m, 0).await.unwrap();
    // Redis trims approximately (MAXLEN ~); both keep the newest and stay near the cap.
    assert!(kept.len() >= 50 && kept.len() < 500, "kept {}", kept.len());
    assert_eq!(kept.last().unwrap().0, 500);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(buffer.read_after(m, 0).await.unwrap(), vec![]);
}

fn management(endpoint: &str) -> aws_sdk_apigatewaymanagement::Client {
    let config = aws_sdk_apigatewaymanagement::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .build();
    aws_sdk_apigatewaymanagement::Client::from_conf(config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_gateway_publisher_posts_through_the_management_api() {
    let running = cloud(&[]).await;
    let mut client = WsClient::connect(&running.gateway, "alice").await;
    let registry = DynamoConnections::with_client(running.table.clone().unwrap(), dynamodb());
    // The test token's subject is "alice" itself.
    let user = UserId::from_subject(&bestchat_domain::ids::Subject::parse("alice").unwrap());
    let id = registry
        .of_user(user)
        .await
        .unwrap()
        .pop()
        .expect("the socket is registered")
        .id;

    // Only the gateway's own process may use its emulation: without the secret, nothing.
    let outsider = ApiGatewayPublisher::with_client(management(&running.gateway.base_url), None);
    assert!(matches!(
        outsider.post(&id, br#"{"type":"pong"}"#).await,
        Err(PublishError::Failed(_))
    ));
    let wrong = ApiGatewayPublisher::with_client(
        management(&running.gateway.base_url),
        Some("not-the-secret-not-the-secret-not-it".into()),
    );
    assert!(wrong.post(&id, br#"{"type":"pong"}"#).await.is_err());
    assert!(
        management(&running.gateway.base_url)
            .get_connection()
            .connection_id(id.as_str())
            .send()
            .await
            .is_err()
    );
    let publisher = ApiGatewayPublisher::with_client(
        management(&running.gateway.base_url),
        Some(EMULATOR_SECRET.into()),
    );
    publisher.post(&id, br#"{"type":"pong"}"#).await.unwrap();
    assert_eq!(client.next().await.unwrap(), json!({"type": "pong"}));
    let info = management(&running.gateway.base_url)
        .get_connection()
        .connection_id(id.as_str())
        .customize()
        .mutate_request(|r| {
            r.headers_mut()
                .insert("x-bestchat-emulator-secret", EMULATOR_SECRET);
        })
        .send()
        .await
        .unwrap();
    assert!(info.connected_at.is_some());
    assert_eq!(
        info.identity.and_then(|i| i.source_ip),
        Some("127.0.0.1".to_owned())
    );
    assert!(matches!(
        publisher.post(&conn("nobody="), b"{}").await,
        Err(PublishError::Gone)
    ));
    client.close().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(matches!(
        publisher.post(&id, b"{}").await,
        Err(PublishError::Gone)
    ));
    assert!(
        registry.of_user(user).await.unwrap().is_empty(),
        "$disconnect removed it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lambda_invoker_invokes_through_the_invoke_api() {
    let running = cloud(&[]).await;
    let config = aws_sdk_lambda::Config::builder()
        .behavior_version(aws_sdk_lambda::config::BehaviorVersion::latest())
        .region(aws_sdk_lambda::config::Region::new("us-east-1"))
        .endpoint_url(&running.gateway.base_url)
        .credentials_provider(aws_sdk_lambda::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .build();
    let functions = HashMap::from([
        ("migrate".to_owned(), "migrate".to_owned()),
        (
            "chat-turn".to_owned(),
            "arn:aws:lambda:us-east-1:000000000000:function:chat-turn".to_owned(),
        ),
        ("missing".to_owned(), "does-not-exist".to_owned()),
    ]);
    let client = aws_sdk_lambda::Client::from_conf(config);
    let outsider = LambdaInvoker::with_client(functions.clone(), client.clone(), None);
    assert!(matches!(
        outsider.invoke("migrate", &json!({})).await,
        Err(InvokeError::Failed { .. })
    ));
    assert!(
        outsider
            .invoke_async("chat-turn", &json!({}))
            .await
            .is_err()
    );
    let invoker = LambdaInvoker::with_client(functions, client, Some(EMULATOR_SECRET.into()));
    assert_eq!(
        invoker.invoke("migrate", &json!({})).await.unwrap(),
        json!({"applied": []})
    );
    assert!(matches!(
        invoker.invoke("chat-turn", &json!({"not": "a job"})).await,
        Err(InvokeError::FunctionError { .. })
    ));
    invoker
        .invoke_async("chat-turn", &json!({"not": "a job"}))
        .await
        .unwrap();
    assert!(matches!(
        invoker.invoke("missing", &json!({})).await,
        Err(InvokeError::Failed { .. })
    ));
    assert!(matches!(
        invoker.invoke("unconfigured", &json!({})).await,
        Err(InvokeError::Failed { .. })
    ));
}

#[tokio::test]
async fn the_in_process_adapters_need_no_server() {
    let registry = MemoryConnections::new();
    let user = UserId::generate();
    registry
        .register(&conn("x="), user, now(), TTL)
        .await
        .unwrap();
    assert_eq!(registry.of_user(user).await.unwrap().len(), 1);
    let dir = bestchat_tests::TempDir::new("frames");
    let buffer = FileStreamBuffer::new(dir.path().join("frames"), settings());
    buffer.append(MessageId::generate(), 1, "f").await.unwrap();
}
