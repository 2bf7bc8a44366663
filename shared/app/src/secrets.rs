//! Secrets at rest (provider API keys, MCP servers' headers): AES-256-GCM under a fresh data key
//! per record, the data key wrapped by the key vault. The user id, the record (its kind and
//! name) and the origin the secret is sent to are bound to both layers (associated data and
//! vault context): a sealed secret copied to another user or record does not open, and neither
//! does one whose record was pointed at another server.

use bestchat_domain::ids::UserId;
use bestchat_domain::model_ref::ProviderId;
use bestchat_domain::ports::keys::{KeyVault, VaultError};
use bestchat_domain::provider::{SealedKey, key_last4};
use bestchat_platform::aead;

/// What a sealed secret is bound to besides its user: its kind, the name of its owner record,
/// and (from the second version on) the origin of the server it goes to.
#[derive(Debug, Clone, Copy)]
pub struct Binding<'a> {
    /// `bestchat:provider-key:v2`, `bestchat:mcp-headers:v2` (`…:v1` before origins were bound).
    pub kind: &'static str,
    /// The vault context key naming the record: `provider`, `mcp_server`.
    pub context_key: &'static str,
    pub name: &'a str,
    /// `scheme://host[:port]` of where the secret is sent; `None` for a secret sealed before.
    pub origin: Option<&'a str>,
}

impl<'a> Binding<'a> {
    pub fn provider(provider: &'a ProviderId, origin: &'a str) -> Self {
        Self {
            kind: "bestchat:provider-key:v2",
            context_key: "provider",
            name: provider.as_str(),
            origin: Some(origin),
        }
    }

    pub fn mcp_headers(server: &'a str, origin: &'a str) -> Self {
        Self {
            kind: "bestchat:mcp-headers:v2",
            context_key: "mcp_server",
            name: server,
            origin: Some(origin),
        }
    }

    /// The binding of a secret sealed before origins were bound (no origin): such a secret
    /// still opens, and the API refuses to move its record to another origin without it.
    fn legacy(self) -> Self {
        Self {
            kind: if self.context_key == "provider" {
                "bestchat:provider-key:v1"
            } else {
                "bestchat:mcp-headers:v1"
            },
            origin: None,
            ..self
        }
    }

    fn associated_data(&self, user: UserId) -> Vec<u8> {
        match self.origin {
            Some(origin) => format!("{}|{user}|{}|{origin}", self.kind, self.name),
            None => format!("{}|{user}|{}", self.kind, self.name),
        }
        .into_bytes()
    }

    fn context(&self, user: &'a str) -> Vec<(&'a str, &'a str)> {
        let mut context = vec![("user", user), (self.context_key, self.name)];
        context.extend(self.origin.map(|o| ("origin", o)));
        context
    }
}

/// `scheme://host[:port]` of `url` (the default port left out): where a secret goes.
pub fn origin_of(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    match parsed.origin() {
        url::Origin::Tuple(..) => Some(parsed.origin().ascii_serialization()),
        url::Origin::Opaque(_) => None,
    }
}

pub async fn seal_api_key(
    vault: &dyn KeyVault,
    user: UserId,
    provider: &ProviderId,
    origin: &str,
    key: &str,
) -> Result<SealedKey, VaultError> {
    seal(vault, user, Binding::provider(provider, origin), key).await
}

pub async fn open_api_key(
    vault: &dyn KeyVault,
    user: UserId,
    provider: &ProviderId,
    origin: &str,
    sealed: &SealedKey,
) -> Result<String, VaultError> {
    open(vault, user, Binding::provider(provider, origin), sealed).await
}

/// Seals `secret` for `user` under `binding`.
pub async fn seal(
    vault: &dyn KeyVault,
    user: UserId,
    binding: Binding<'_>,
    secret: &str,
) -> Result<SealedKey, VaultError> {
    let user_text = user.to_string();
    let context = binding.context(&user_text);
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

/// Opens what [`seal`] sealed for the same user and binding; anything else is refused. A
/// secret sealed before origins were bound opens under its old binding.
pub async fn open(
    vault: &dyn KeyVault,
    user: UserId,
    binding: Binding<'_>,
    sealed: &SealedKey,
) -> Result<String, VaultError> {
    match open_exactly(vault, user, binding, sealed).await {
        Err(VaultError::Rejected(why)) if binding.origin.is_some() => {
            open_exactly(vault, user, binding.legacy(), sealed)
                .await
                .map_err(|_| VaultError::Rejected(why))
        }
        other => other,
    }
}

async fn open_exactly(
    vault: &dyn KeyVault,
    user: UserId,
    binding: Binding<'_>,
    sealed: &SealedKey,
) -> Result<String, VaultError> {
    let user_text = user.to_string();
    let context = binding.context(&user_text);
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
        VaultError::Rejected(
            "the sealed secret does not open for this user, record and destination".into(),
        )
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

    const OPENAI: &str = "https://api.openai.com";

    #[tokio::test]
    async fn round_trip_and_binding_to_user_provider_and_origin() {
        let (vault, dir) = vault();
        let alice = UserId::generate();
        let openai = ProviderId::parse("openai").unwrap();
        let sealed = seal_api_key(&vault, alice, &openai, OPENAI, "sk-live-abcdef123456")
            .await
            .unwrap();
        assert_eq!(sealed.last4, "3456");
        assert!(!sealed.ciphertext.windows(6).any(|w| w == b"abcdef"));
        assert_eq!(
            open_api_key(&vault, alice, &openai, OPENAI, &sealed)
                .await
                .unwrap(),
            "sk-live-abcdef123456"
        );
        // Wrong associated data: another user, provider, kind of record, or destination.
        assert!(
            open(
                &vault,
                alice,
                Binding::mcp_headers("openai", OPENAI),
                &sealed
            )
            .await
            .is_err()
        );
        assert!(
            open_api_key(&vault, UserId::generate(), &openai, OPENAI, &sealed)
                .await
                .is_err()
        );
        let anthropic = ProviderId::parse("anthropic").unwrap();
        assert!(
            open_api_key(&vault, alice, &anthropic, OPENAI, &sealed)
                .await
                .is_err()
        );
        for elsewhere in [
            "https://attacker.example",
            "http://api.openai.com",
            "https://api.openai.com:8443",
        ] {
            assert!(
                open_api_key(&vault, alice, &openai, elsewhere, &sealed)
                    .await
                    .is_err(),
                "{elsewhere}"
            );
        }
        // Tampering with the ciphertext is detected.
        let mut tampered = sealed.clone();
        tampered.ciphertext[0] ^= 0x55;
        assert!(
            open_api_key(&vault, alice, &openai, OPENAI, &tampered)
                .await
                .is_err()
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn a_secret_sealed_before_origins_were_bound_still_opens() {
        let (vault, dir) = vault();
        let alice = UserId::generate();
        let openai = ProviderId::parse("openai").unwrap();
        let old = seal(
            &vault,
            alice,
            Binding::provider(&openai, OPENAI).legacy(),
            "sk-old-0123456789",
        )
        .await
        .unwrap();
        assert_eq!(
            open_api_key(&vault, alice, &openai, OPENAI, &old)
                .await
                .unwrap(),
            "sk-old-0123456789"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn origins_are_scheme_host_and_port() {
        assert_eq!(
            origin_of("https://API.openai.com/v1/").as_deref(),
            Some("https://api.openai.com")
        );
        assert_eq!(
            origin_of("https://api.openai.com:443/v1").as_deref(),
            Some("https://api.openai.com")
        );
        assert_eq!(
            origin_of("http://127.0.0.1:8080/v1").as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(origin_of("not a url"), None);
    }
}
