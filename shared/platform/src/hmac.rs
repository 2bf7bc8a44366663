//! HMAC-SHA256, for signatures others compute over what they send us (Stripe's webhooks).

use aws_lc_rs::hmac;

/// The tag of `message` under `key`, in lowercase hex (as signature headers carry it).
pub fn sha256_hex(key: &[u8], message: &[u8]) -> String {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), message)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_rfc_4231_case_2() {
        assert_eq!(
            sha256_hex(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
