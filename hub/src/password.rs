//! Password hashing for dashboard sign-in: Argon2id (memory-hard) with the crate's
//! recommended parameters, stored as a PHC string that carries its own salt and settings.
//! Hashing takes tens of milliseconds on purpose; callers on the async runtime run it on a
//! blocking thread.

use std::sync::LazyLock;

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

/// Shortest password accepted when one is set.
pub const MIN_LENGTH: usize = 10;

/// Hashes `password` with a fresh random salt.
pub fn hash(password: &str) -> Result<String, String> {
    if password.chars().count() < MIN_LENGTH {
        return Err(format!("a password needs at least {MIN_LENGTH} characters"));
    }
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("hashing the password: {e}"))
}

/// Whether `password` matches `stored`. With no stored hash (an unknown user, or one
/// without a password) a hash is still checked, so the answer takes as long either way and
/// does not tell which user names exist.
pub fn verify(password: &str, stored: Option<&str>) -> bool {
    static DECOY: LazyLock<String> =
        LazyLock::new(|| hash("decoy password, never matched").expect("hashing a constant"));
    let (phc, real) = match stored {
        Some(s) => (s, true),
        None => (DECOY.as_str(), false),
    };
    let Ok(parsed) = PasswordHash::new(phc) else {
        tracing::warn!("a stored password hash is not a PHC string; refusing the sign-in");
        return false;
    };
    let matched = Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok();
    matched && real
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_differ_by_salt() {
        let a = hash("correct horse battery").unwrap();
        let b = hash("correct horse battery").unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("$argon2id$"), "{a}");
        assert!(verify("correct horse battery", Some(&a)));
        assert!(!verify("correct horse batterY", Some(&a)));
        assert!(!verify("decoy password, never matched", None));
        assert!(!verify("anything at all", Some("not a hash")));
    }

    #[test]
    fn short_passwords_are_refused() {
        assert!(hash("short").unwrap_err().contains("at least 10"));
    }
}
