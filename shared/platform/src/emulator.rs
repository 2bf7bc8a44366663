//! The local gateway emulates API Gateway's Management API and Lambda's Invoke API on its own
//! port. Only its own process may use them: the SDK clients of that process send a secret made
//! at start, and the emulation refuses requests without it.

/// The header that carries the secret.
pub const EMULATOR_SECRET_HEADER: &str = "x-bestchat-emulator-secret";

/// A request mutator that adds the secret, when there is one (never in AWS).
pub fn with_secret(
    secret: Option<String>,
) -> impl Fn(&mut aws_smithy_runtime_api::http::Request) + Send + Sync + 'static {
    move |request| {
        // The secret is checked to be visible ASCII when configured, so this cannot fail.
        if let Some(secret) = &secret {
            let _ = request
                .headers_mut()
                .try_insert(EMULATOR_SECRET_HEADER, secret.clone());
        }
    }
}

/// Compares a presented secret with the expected one in time that does not depend on where they
/// first differ.
pub fn secret_matches(presented: &[u8], expected: &[u8]) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(presented, expected).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_exactly() {
        assert!(secret_matches(b"abc", b"abc"));
        assert!(!secret_matches(b"abd", b"abc"));
        assert!(!secret_matches(b"ab", b"abc"));
        assert!(!secret_matches(b"", b"abc"));
    }
}
