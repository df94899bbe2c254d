//! Camera passwords at rest: sealed with XChaCha20-Poly1305 under the hub's `registry_key`
//! (32 bytes, from the settings, never in the database), a fresh random nonce each time, and
//! the camera's id as associated data, so a sealed password copied onto another camera's
//! row does not open. Stored as base64 of nonce ‖ ciphertext.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};

const NONCE_LEN: usize = 24;

/// The key camera passwords are sealed with.
#[derive(Clone)]
pub struct SealKey(Key);

impl fmt::Debug for SealKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealKey(***)")
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("registry_key must be 32 bytes written as 64 hex digits (e.g. `openssl rand -hex 32`)")]
    BadKey,
    #[error(
        "a sealed password does not open: it is damaged, belongs to another camera, or was sealed under another registry_key"
    )]
    DoesNotOpen,
}

impl SealKey {
    /// From 64 hex digits.
    pub fn from_hex(text: &str) -> Result<Self, SealError> {
        let bytes = hex::decode(text.trim()).map_err(|_| SealError::BadKey)?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| SealError::BadKey)?;
        Ok(Self(bytes.into()))
    }

    /// Seals `secret` for the camera `camera_id`.
    pub fn seal(&self, camera_id: &str, secret: &str) -> String {
        let nonce: [u8; NONCE_LEN] = rand::random();
        let sealed = XChaCha20Poly1305::new(&self.0)
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: secret.as_bytes(),
                    aad: camera_id.as_bytes(),
                },
            )
            .expect("encryption into memory cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        STANDARD.encode(out)
    }

    /// Opens what [`SealKey::seal`] made for `camera_id`.
    pub fn open(&self, camera_id: &str, sealed: &str) -> Result<String, SealError> {
        let bytes = STANDARD
            .decode(sealed)
            .map_err(|_| SealError::DoesNotOpen)?;
        if bytes.len() < NONCE_LEN {
            return Err(SealError::DoesNotOpen);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().expect("split at its length");
        let plain = XChaCha20Poly1305::new(&self.0)
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: camera_id.as_bytes(),
                },
            )
            .map_err(|_| SealError::DoesNotOpen)?;
        String::from_utf8(plain).map_err(|_| SealError::DoesNotOpen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    #[test]
    fn a_sealed_password_opens_only_for_its_camera_and_key() {
        let key = SealKey::from_hex(KEY).unwrap();
        let sealed = key.seal("cam-01", "Admin#2024");
        assert!(!sealed.contains("Admin"), "{sealed}");
        assert_eq!(key.open("cam-01", &sealed).unwrap(), "Admin#2024");
        assert_ne!(
            key.seal("cam-01", "Admin#2024"),
            sealed,
            "a fresh nonce each time"
        );
        assert_eq!(key.open("cam-02", &sealed), Err(SealError::DoesNotOpen));
        let other = SealKey::from_hex(&KEY.replace("00", "ff")).unwrap();
        assert_eq!(other.open("cam-01", &sealed), Err(SealError::DoesNotOpen));
        let mut damaged = sealed.into_bytes();
        let last = damaged.len() - 3;
        damaged[last] = if damaged[last] == b'A' { b'B' } else { b'A' };
        let damaged = String::from_utf8(damaged).unwrap();
        assert_eq!(key.open("cam-01", &damaged), Err(SealError::DoesNotOpen));
        assert_eq!(key.open("cam-01", "short"), Err(SealError::DoesNotOpen));
    }

    #[test]
    fn keys_are_64_hex_digits_and_never_shown() {
        assert_eq!(SealKey::from_hex("abcd").unwrap_err(), SealError::BadKey);
        assert_eq!(
            SealKey::from_hex(&"zz".repeat(32)).unwrap_err(),
            SealError::BadKey
        );
        let key = SealKey::from_hex(KEY).unwrap();
        assert_eq!(format!("{key:?}"), "SealKey(***)");
    }
}
