//! The key vault and the authenticator: KMS in production, local key files on a laptop.

mod kms;
mod local;
mod mac;

pub use kms::KmsKeyVault;
pub use local::LocalKeyVault;
pub use mac::{KmsMac, LocalMac};

use tokio::sync::OnceCell;

/// A KMS key and its client, built on first use, so functions that never touch the key pay
/// nothing for it at cold start.
struct KmsKey {
    id: String,
    client: OnceCell<aws_sdk_kms::Client>,
}

impl KmsKey {
    fn new(id: String) -> Self {
        Self {
            id,
            client: OnceCell::new(),
        }
    }

    fn with_client(id: String, client: aws_sdk_kms::Client) -> Self {
        Self {
            id,
            client: OnceCell::new_with(Some(client)),
        }
    }

    async fn client(&self) -> &aws_sdk_kms::Client {
        self.client
            .get_or_init(|| async {
                let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
                aws_sdk_kms::Client::new(&config)
            })
            .await
    }
}

/// The encryption context in one canonical form (sorted JSON object), so the same pairs always
/// give the same associated data.
pub(crate) fn canonical_context(context: &[(&str, &str)]) -> Vec<u8> {
    let map: std::collections::BTreeMap<&str, &str> = context.iter().copied().collect();
    serde_json::to_vec(&map).unwrap_or_default()
}
