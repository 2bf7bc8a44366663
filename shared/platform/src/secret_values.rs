//! Secrets the deployment was given (Stripe's keys): a Secrets Manager secret holding a JSON
//! object, encrypted under the deployment's KMS key, read once by the functions that need it.

use std::collections::HashMap;

use bestchat_domain::ports::keys::VaultError;

/// Longest secret read (Secrets Manager's own limit is 64 KiB).
pub const SECRET_MAX_BYTES: usize = 64 * 1024;

/// The string fields of the JSON object in secret `arn`.
pub async fn json_fields(arn: &str) -> Result<HashMap<String, String>, VaultError> {
    let config = aws_config::load_from_env().await;
    let client = aws_sdk_secretsmanager::Client::new(&config);
    let value = client
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| VaultError::Unavailable(format!("GetSecretValue: {e}")))?;
    let text = value
        .secret_string()
        .ok_or_else(|| VaultError::Rejected("the secret holds no string".into()))?;
    if text.len() > SECRET_MAX_BYTES {
        return Err(VaultError::Rejected("the secret is too large".into()));
    }
    let fields: HashMap<String, serde_json::Value> = serde_json::from_str(text)
        .map_err(|_| VaultError::Rejected("the secret is not a JSON object".into()))?;
    Ok(fields
        .into_iter()
        .filter_map(|(k, v)| v.as_str().map(|s| (k, s.to_owned())))
        .collect())
}
