//! The KMS key vault through the real AWS SDK against moto on loopback.

use aws_sdk_kms::config::{BehaviorVersion, Credentials, Region};
use bestchat_app::secrets::{open_api_key, seal_api_key};
use bestchat_domain::ids::UserId;
use bestchat_domain::model_ref::ProviderId;
use bestchat_domain::ports::keys::{Authenticator, KeyVault, VaultError};
use bestchat_platform::keys::{KmsKeyVault, KmsMac};
use bestchat_tests::moto_url;

fn client() -> aws_sdk_kms::Client {
    let config = aws_sdk_kms::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(moto_url())
        .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
        .build();
    aws_sdk_kms::Client::from_conf(config)
}

async fn vault() -> KmsKeyVault {
    let client = client();
    let key = client
        .create_key()
        .description("bestchat test key")
        .send()
        .await
        .expect("moto creates a key");
    let key_id = key.key_metadata.expect("metadata").key_id;
    KmsKeyVault::with_client(key_id, client)
}

#[tokio::test]
async fn data_keys_unwrap_only_under_their_context() {
    let vault = vault().await;
    let ctx = [("user", "u-1"), ("provider", "openai")];
    let key = vault.generate_data_key(&ctx).await.unwrap();
    assert_ne!(key.wrapped.as_slice(), key.plaintext.as_slice());
    assert!(
        key.vault_key_id.starts_with("arn:aws:kms:"),
        "{}",
        key.vault_key_id
    );
    let unwrapped = vault
        .unwrap_data_key(&key.wrapped, &key.vault_key_id, &ctx)
        .await
        .unwrap();
    assert_eq!(unwrapped, key.plaintext);
    let other = [("user", "u-2"), ("provider", "openai")];
    assert!(matches!(
        vault
            .unwrap_data_key(&key.wrapped, &key.vault_key_id, &other)
            .await,
        Err(VaultError::Rejected(_))
    ));
}

#[tokio::test]
async fn api_keys_seal_and_open_with_kms() {
    let vault = vault().await;
    let user = UserId::generate();
    let provider = ProviderId::parse("anthropic").unwrap();
    let origin = "https://api.anthropic.com";
    let sealed = seal_api_key(&vault, user, &provider, origin, "sk-ant-api03-secret-9876")
        .await
        .unwrap();
    assert_eq!(sealed.last4, "9876");
    assert_eq!(
        open_api_key(&vault, user, &provider, origin, &sealed)
            .await
            .unwrap(),
        "sk-ant-api03-secret-9876"
    );
    assert!(
        open_api_key(&vault, UserId::generate(), &provider, origin, &sealed)
            .await
            .is_err()
    );
    // The encryption context names the destination: KMS itself refuses another.
    assert!(
        open_api_key(&vault, user, &provider, "https://attacker.example", &sealed)
            .await
            .is_err()
    );
}

/// The compiled-code key: KMS tags under an HMAC key and answers a tag that is not its own as
/// not valid (KMS says so with an error, which is `false` here, not a failure).
#[tokio::test]
async fn mac_tags_verify_only_for_their_message_and_key() {
    let client = client();
    let mut keys = Vec::new();
    for _ in 0..2 {
        let made = client
            .create_key()
            .key_spec(aws_sdk_kms::types::KeySpec::Hmac256)
            .key_usage(aws_sdk_kms::types::KeyUsageType::GenerateVerifyMac)
            .send()
            .await
            .expect("moto creates an HMAC key");
        keys.push(KmsMac::with_client(
            made.key_metadata.expect("metadata").key_id,
            client.clone(),
        ));
    }
    let tag = keys[0].tag(b"code digest").await.unwrap();
    assert_eq!(tag.len(), 32);
    assert!(keys[0].verify(b"code digest", &tag).await.unwrap());
    assert!(!keys[0].verify(b"other digest", &tag).await.unwrap());
    assert!(!keys[1].verify(b"code digest", &tag).await.unwrap());
    // A key that does not exist is not a verdict: it is an error the caller logs.
    let gone = KmsMac::with_client("no-such-key".into(), client);
    assert!(matches!(
        gone.verify(b"code digest", &tag).await,
        Err(VaultError::Unavailable(_))
    ));
}
