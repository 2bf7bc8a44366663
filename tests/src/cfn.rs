//! A stand-in for CloudFormation's presigned response URL: a loopback HTTP server that records
//! the one PUT a custom resource makes and answers it with a chosen status.

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;

/// Largest request the stand-in reads (CloudFormation's limit is 4 KB).
const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// The request the custom resource sent: its request line, headers and JSON body.
pub struct Answer {
    pub head: String,
    pub body: Value,
}

pub struct ResponseUrl {
    pub url: String,
    task: JoinHandle<Answer>,
}

impl ResponseUrl {
    /// Starts the stand-in; it answers `status` to the first request.
    pub async fn start(status: u16) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/cfn-response?X-Amz-Signature=abc",
            listener.local_addr().unwrap()
        );
        let task = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut raw = Vec::new();
            let mut buf = [0u8; 4096];
            while raw.len() < MAX_REQUEST_BYTES {
                let n = socket.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                raw.extend_from_slice(&buf[..n]);
                if complete(&raw) {
                    break;
                }
            }
            let reply =
                format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            socket.write_all(reply.as_bytes()).await.unwrap();
            let text = String::from_utf8_lossy(&raw).into_owned();
            let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
            Answer {
                head: head.to_owned(),
                body: serde_json::from_str(body).unwrap_or(Value::Null),
            }
        });
        Self { url, task }
    }

    /// The request received.
    pub async fn answer(self) -> Answer {
        self.task.await.unwrap()
    }
}

fn complete(raw: &[u8]) -> bool {
    let text = String::from_utf8_lossy(raw);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    let length = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .and_then(|v| v.trim().parse::<usize>().ok())
        })
        .unwrap_or(0);
    body.len() >= length
}

/// A CloudFormation custom resource request answered at `url`.
pub fn request(kind: &str, url: &str, physical: Option<&str>) -> Value {
    let mut event = serde_json::json!({
        "RequestType": kind,
        "ResponseURL": url,
        "StackId": "arn:aws:cloudformation:eu-west-1:123456789012:stack/bestchat/1",
        "RequestId": "req-1",
        "LogicalResourceId": "Migrations",
        "ResourceType": "Custom::Migrations",
        "ResourceProperties": { "ServiceToken": "arn:x", "SchemaVersion": "7" }
    });
    if let Some(id) = physical {
        event["PhysicalResourceId"] = serde_json::json!(id);
    }
    event
}
