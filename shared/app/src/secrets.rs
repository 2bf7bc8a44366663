//! Provider API keys at rest: AES-256-GCM under a fresh data key per record, the data key
//! wrapped by the key vault. The user id and provider id are bound to both layers (associated
//! data and vault context), so a sealed key copied to another user or provider does not open.

use bestchat_domain::ids::UserId;
use bestchat_domain::model_ref::ProviderId;
use bestchat_domain::ports::keys::{KeyVault, VaultError};
use bestchat_domain::provider::{SealedKey, key_last4};
use bestchat_platform::aead;

fn associated_data(user: UserId, provider: &ProviderId) -> Vec<u8> {
    format!("bestchat:provider-key:v1|{user}|{provider}").into_bytes()
}

pub async fn seal_api_key(
    vault: &dyn KeyVault,
    user: UserId,
    provider: &ProviderId,
    key: &str,
) -> Result<SealedKey, VaultError> {
    let user_text = user.to_string();
    let context = [
        ("user", user_text.as_str()),
        ("provider", provider.as_str()),
    ];
    let data_key = vault.generate_data_key(&context).await?;
    let sealed = aead::seal(
        &data_key.plaintext,
        key.as_bytes(),
        &associated_data(user, provider),
    )
    .map_err(|e| VaultError::Unavailable(e.to_string()))?;
    Ok(SealedKey {
        ciphertext: sealed.ciphertext,
        nonce: sealed.nonce.to_vec(),
        wrapped_data_key: data_key.wrapped,
        vault_key_id: data_key.vault_key_id,
        last4: key_last4(key),
    })
}

pub async fn open_api_key(
    vault: &dyn KeyVault,
    user: UserId,
    provider: &ProviderId,
    sealed: &SealedKey,
) -> Result<String, VaultError> {
    let user_text = user.to_string();
    let context = [
        ("user", user_text.as_str()),
        ("provider", provider.as_str()),
    ];
    let data_key = vault
        .unwrap_data_key(&sealed.wrapped_data_key, &sealed.vault_key_id, &context)
        .await?;
    let plain = aead::open(
        &data_key,
        &sealed.nonce,
        &sealed.ciphertext,
        &associated_data(user, provider),
    )
    .map_err(|_| {
        VaultError::Rejected("the sealed key does not open for this user and provider".into())
    })?;
    String::from_utf8(plain).map_err(|_| VaultError::Rejected("the key is not text".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bestchat_platform::keys::LocalKeyVault;

    fn vault() -> (LocalKeyVault, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("bestchat-secrets-{}", uuid::Uuid::now_v7()));
        (LocalKeyVault::open(&dir.join("master.key")).unwrap(), dir)
    }

    #[tokio::test]
    async fn round_trip_and_binding_to_user_and_provider() {
        let (vault, dir) = vault();
        let alice = UserId::generate();
        let openai = ProviderId::parse("openai").unwrap();
        let sealed = seal_api_key(&vault, alice, &openai, "sk-live-abcdef123456")
            .await
            .unwrap();
        assert_eq!(sealed.last4, "3456");
        assert!(!sealed.ciphertext.windows(6).any(|w| w == b"abcdef"));
        assert_eq!(
            open_api_key(&vault, alice, &openai, &sealed).await.unwrap(),
            "sk-live-abcdef123456"
        );
        // Wrong associated data: another user, or another provider.
        assert!(
            open_api_key(&vault, UserId::generate(), &openai, &sealed)
                .await
                .is_err()
        );
        let anthropic = ProviderId::parse("anthropic").unwrap();
        assert!(
            open_api_key(&vault, alice, &anthropic, &sealed)
                .await
                .is_err()
        );
        // Tampering with the ciphertext is detected.
        let mut tampered = sealed.clone();
        tampered.ciphertext[0] ^= 0x55;
        assert!(
            open_api_key(&vault, alice, &openai, &tampered)
                .await
                .is_err()
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
