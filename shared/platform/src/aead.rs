//! AES-256-GCM with a random 96-bit nonce per message and associated data bound to the
//! ciphertext: decrypting under different associated data fails.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AeadError {
    #[error("no randomness available")]
    Random,
    /// Wrong key, wrong associated data, or tampered ciphertext.
    #[error("the ciphertext does not authenticate")]
    Rejected,
}

pub struct Sealed {
    pub nonce: [u8; NONCE_LEN],
    /// Ciphertext followed by the 16-byte tag.
    pub ciphertext: Vec<u8>,
}

pub fn random_bytes<const N: usize>() -> Result<[u8; N], AeadError> {
    let mut bytes = [0u8; N];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| AeadError::Random)?;
    Ok(bytes)
}

pub fn seal(key: &[u8; 32], plaintext: &[u8], aad: &[u8]) -> Result<Sealed, AeadError> {
    let nonce = random_bytes::<NONCE_LEN>()?;
    let key =
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).map_err(|_| AeadError::Rejected)?);
    let mut ciphertext = plaintext.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad),
        &mut ciphertext,
    )
    .map_err(|_| AeadError::Rejected)?;
    Ok(Sealed { nonce, ciphertext })
}

pub fn open(
    key: &[u8; 32],
    nonce: &[u8],
    ciphertext: &[u8],
    aad: &[u8],
) -> Result<Vec<u8>, AeadError> {
    let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| AeadError::Rejected)?;
    let key =
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).map_err(|_| AeadError::Rejected)?);
    let mut in_out = ciphertext.to_vec();
    let plain = key
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut in_out,
        )
        .map_err(|_| AeadError::Rejected)?;
    Ok(plain.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper_detection() {
        let key = random_bytes::<32>().unwrap();
        let sealed = seal(&key, b"sk-secret", b"user|openai").unwrap();
        assert_ne!(sealed.ciphertext, b"sk-secret".to_vec());
        assert_eq!(
            open(&key, &sealed.nonce, &sealed.ciphertext, b"user|openai").unwrap(),
            b"sk-secret"
        );
        assert_eq!(
            open(&key, &sealed.nonce, &sealed.ciphertext, b"user|anthropic"),
            Err(AeadError::Rejected)
        );
        let other = random_bytes::<32>().unwrap();
        assert_eq!(
            open(&other, &sealed.nonce, &sealed.ciphertext, b"user|openai"),
            Err(AeadError::Rejected)
        );
        let mut tampered = sealed.ciphertext.clone();
        tampered[0] ^= 1;
        assert_eq!(
            open(&key, &sealed.nonce, &tampered, b"user|openai"),
            Err(AeadError::Rejected)
        );
        // A fresh nonce every time: the same plaintext never seals to the same bytes.
        assert_ne!(
            seal(&key, b"x", b"").unwrap().nonce,
            seal(&key, b"x", b"").unwrap().nonce
        );
    }
}
