//! `PostToConnection` through aws-sdk-apigatewaymanagement; `GoneException` (410) means the
//! client has left.

use async_trait::async_trait;
use aws_sdk_apigatewaymanagement::error::ProvideErrorMetadata;
use aws_sdk_apigatewaymanagement::primitives::Blob;
use bestchat_domain::ports::realtime::{ConnectionId, PublishError, Publisher};
use tokio::sync::OnceCell;

use crate::emulator::with_secret;

pub struct ApiGatewayPublisher {
    /// `https://{api-id}.execute-api.{region}.amazonaws.com/{stage}` (`WS_ENDPOINT`).
    endpoint: String,
    client: OnceCell<aws_sdk_apigatewaymanagement::Client>,
    /// Proves to the local gateway's emulation that this process is its own; unset in AWS.
    emulator_secret: Option<String>,
}

impl ApiGatewayPublisher {
    pub fn new(endpoint: String, emulator_secret: Option<String>) -> Self {
        Self {
            endpoint,
            client: OnceCell::new(),
            emulator_secret,
        }
    }

    pub fn with_client(
        client: aws_sdk_apigatewaymanagement::Client,
        emulator_secret: Option<String>,
    ) -> Self {
        Self {
            endpoint: String::new(),
            client: OnceCell::new_with(Some(client)),
            emulator_secret,
        }
    }

    async fn client(&self) -> &aws_sdk_apigatewaymanagement::Client {
        self.client
            .get_or_init(|| async {
                let shared = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
                let config = aws_sdk_apigatewaymanagement::config::Builder::from(&shared)
                    .endpoint_url(&self.endpoint)
                    .build();
                aws_sdk_apigatewaymanagement::Client::from_conf(config)
            })
            .await
    }
}

#[async_trait]
impl Publisher for ApiGatewayPublisher {
    async fn post(&self, id: &ConnectionId, frame: &[u8]) -> Result<(), PublishError> {
        let result = self
            .client()
            .await
            .post_to_connection()
            .connection_id(id.as_str())
            .data(Blob::new(frame))
            .customize()
            .mutate_request(with_secret(self.emulator_secret.clone()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("GoneException") => Err(PublishError::Gone),
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 410) => {
                Err(PublishError::Gone)
            }
            Err(e) => Err(PublishError::Failed(format!("{e:?}"))),
        }
    }
}
