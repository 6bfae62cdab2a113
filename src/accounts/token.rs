//! API tokens for programs (`/token new`, `charla send --token`, HTTP `Authorization:
//! Bearer`).
//!
//! A token is 256 random bits, shown to its owner once; the server keeps only its SHA-256.
//! A fast hash is enough here, unlike for passwords: nobody can guess 256 random bits, so
//! there is no dictionary to slow down, and whoever reads the store learns no token from
//! the digests. Being unsalted and fast, the digest is also the key a token is found by,
//! with no scan over every account.

use argon2::password_hash::rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};

use crate::limits::MAX_TOKEN_LABEL_CHARS;

/// What every token starts with, so one pasted in the wrong place is recognisable (and
/// secret scanners can find them).
pub const PREFIX: &str = "charla_";

/// A new token and the digest to keep of it.
pub fn new() -> (String, String) {
    let mut bits = [0u8; 32];
    OsRng.fill_bytes(&mut bits);
    let token = format!("{PREFIX}{}", hex(&bits));
    let kept = digest(&token);
    (token, kept)
}

/// The SHA-256 of `token`, in hex: what the store keeps and looks tokens up by.
pub fn digest(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// Whether `label` may name a token: 1 to [`MAX_TOKEN_LABEL_CHARS`] letters, digits,
/// `-`, `_` or `.`; a sentence saying why not otherwise.
pub fn check_label(label: &str) -> Result<(), String> {
    let fine = |c: char| c.is_alphanumeric() || matches!(c, '-' | '_' | '.');
    let count = label.chars().count();
    if count == 0 || count > MAX_TOKEN_LABEL_CHARS || !label.chars().all(fine) {
        return Err(format!(
            "a token label is 1 to {MAX_TOKEN_LABEL_CHARS} letters, digits, -, _ or ."
        ));
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_kept_as_their_digest() {
        let (token, kept) = new();
        let (other, _) = new();
        assert_ne!(token, other);
        assert!(token.starts_with(PREFIX));
        assert_eq!(token.len(), PREFIX.len() + 64);
        assert_eq!(kept, digest(&token));
        assert_eq!(kept.len(), 64);
        assert!(!kept.contains(&token[PREFIX.len()..]));
        // The SHA-256 of "abc", as FIPS 180-2 gives it.
        assert_eq!(
            digest("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn labels_are_short_words() {
        assert!(check_label("deploy-bot").is_ok());
        assert!(check_label("").is_err());
        assert!(check_label("two words").is_err());
        assert!(check_label(&"x".repeat(MAX_TOKEN_LABEL_CHARS + 1)).is_err());
    }
}
