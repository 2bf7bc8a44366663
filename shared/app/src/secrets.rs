//! Secrets at rest (provider API keys, MCP servers' headers): AES-256-GCM under a fresh data key
//! per record, the data key wrapped by the key vault. The user id and the record (its kind and
//! name) are bound to both layers (associated data and vault context), so a sealed secret copied
//! to another user or record does not open.

use bestchat_domain::ids::UserId;
use bestchat_domain::model_ref::ProviderId;
use bestchat_domain::ports::keys::{KeyVault, VaultError};
use bestchat_domain::provider::{SealedKey, key_last4};
use bestchat_platform::aead;

/// What a sealed secret is bound to besides its user: its kind (in the associated data) and
/// the name of its owner record (in the associated data and the vault context).
#[derive(Debug, Clone, Copy)]
pub struct Binding<'a> {
    /// `bestchat:provider-key:v1`, `bestchat:mcp-headers:v1`.
    pub kind: &'static str,
    /// The vault context key naming the record: `provider`, `mcp_server`.
    pub context_key: &'static str,
    pub name: &'a str,
}

impl<'a> Binding<'a> {
    pub fn provider(provider: &'a ProviderId) -> Self {
        Self {
            kind: "bestchat:provider-key:v1",
            context_key: "provider",
            name: provider.as_str(),
        }
    }

    pub fn mcp_headers(server: &'a str) -> Self {
        Self {
            kind: "bestchat:mcp-headers:v1",
            context_key: "mcp_server",
            name: server,
        }
    }

    fn associated_data(&self, user: UserId) -> Vec<u8> {
        format!("{}|{user}|{}", self.kind, self.name).into_bytes()
    }
}

pub async fn seal_api_key(
    vault: &dyn KeyVault,
    user: UserId,
    provider: &ProviderId,
    key: &str,
) -> Result<SealedKey, VaultError> {
    seal(vault, user, Binding::provider(provider), key).await
}

pub async fn open_api_key(
    vault: &dyn KeyVault,
    user: UserId,
    provider: &ProviderId,
    sealed: &SealedKey,
) -> Result<String, VaultError> {
    open(vault, user, Binding::provider(provider), sealed).await
}

/// Seals `secret` for `user` under `binding`.
pub async fn seal(
    vault: &dyn KeyVault,
    user: UserId,
    binding: Binding<'_>,
    secret: &str,
) -> Result<SealedKey, VaultError> {
    let user_text = user.to_string();
    let context = [
        ("user", user_text.as_str()),
        (binding.context_key, binding.name),
    ];
    let data_key = vault.generate_data_key(&context).await?;
    let sealed = aead::seal(
        &data_key.plaintext,
        secret.as_bytes(),
        &binding.associated_data(user),
    )
    .map_err(|e| VaultError::Unavailable(e.to_string()))?;
    Ok(SealedKey {
        ciphertext: sealed.ciphertext,
        nonce: sealed.nonce.to_vec(),
        wrapped_data_key: data_key.wrapped,
        vault_key_id: data_key.vault_key_id,
        last4: key_last4(secret),
    })
}

/// Opens what [`seal`] sealed for the same user and binding; anything else is refused.
pub async fn open(
    vault: &dyn KeyVault,
    user: UserId,
    binding: Binding<'_>,
    sealed: &SealedKey,
) -> Result<String, VaultError> {
    let user_text = user.to_string();
    let context = [
        ("user", user_text.as_str()),
        (binding.context_key, binding.name),
    ];
    let data_key = vault
        .unwrap_data_key(&sealed.wrapped_data_key, &sealed.vault_key_id, &context)
        .await?;
    let plain = aead::open(
        &data_key,
        &sealed.nonce,
        &sealed.ciphertext,
        &binding.associated_data(user),
    )
    .map_err(|_| {
        VaultError::Rejected("the sealed secret does not open for this user and record".into())
    })?;
    String::from_utf8(plain).map_err(|_| VaultError::Rejected("the secret is not text".into()))
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
        // Wrong associated data: another user, another provider, another kind of record.
        assert!(
            open(&vault, alice, Binding::mcp_headers("openai"), &sealed)
                .await
                .is_err()
        );
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
