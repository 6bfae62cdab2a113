//! Password hashes: argon2id with the crate's default parameters, kept as PHC strings
//! (`$argon2id$v=19$m=…$salt$hash`), so the parameters travel with each hash and can be
//! raised later without breaking the ones already kept.

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use crate::limits::{MAX_PASSWORD_BYTES, MIN_PASSWORD_CHARS};

/// A password, or any other secret a client sends: never shown by `Debug`, so no log line
/// can carry it by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(text: impl Into<String>) -> Secret {
        Secret(text.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// A client puts it on the wire as the string it is.
impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// Why a new password is refused, as a sentence for the user.
pub fn check_new(password: &Secret) -> Result<(), String> {
    let text = password.expose();
    if text.chars().count() < MIN_PASSWORD_CHARS {
        return Err(format!(
            "a password has at least {MIN_PASSWORD_CHARS} characters"
        ));
    }
    if text.len() > MAX_PASSWORD_BYTES {
        return Err(format!("a password has at most {MAX_PASSWORD_BYTES} bytes"));
    }
    Ok(())
}

/// The PHC string of `password` with a fresh random salt. Slow by design: call it on a
/// blocking thread.
pub fn hash(password: &Secret) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.expose().as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| e.to_string())
}

/// Whether `password` is the one `phc` was made from. The hashes are compared in constant
/// time (the crate compares its outputs so); an oversized password or a malformed hash is
/// simply no match. Slow by design: call it on a blocking thread.
pub fn verify(password: &Secret, phc: &str) -> bool {
    if password.expose().len() > MAX_PASSWORD_BYTES {
        return false;
    }
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    Argon2::default()
        .verify_password(password.expose().as_bytes(), &parsed)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_and_no_other() {
        let right = Secret::new("correct horse");
        let phc = hash(&right).unwrap();
        assert!(phc.starts_with("$argon2id$v=19$"), "{phc}");
        assert!(!phc.contains("correct horse"));
        assert!(verify(&right, &phc));
        assert!(!verify(&Secret::new("correct horsf"), &phc));
        assert!(!verify(&Secret::new(""), &phc));
    }

    #[test]
    fn each_hash_has_its_own_salt() {
        let password = Secret::new("same password");
        let (a, b) = (hash(&password).unwrap(), hash(&password).unwrap());
        assert_ne!(a, b);
        assert!(verify(&password, &a) && verify(&password, &b));
    }

    #[test]
    fn malformed_hashes_and_oversized_passwords_never_match() {
        let password = Secret::new("whatever1");
        assert!(!verify(&password, "not a phc string"));
        assert!(!verify(&password, ""));
        let long = Secret::new("x".repeat(MAX_PASSWORD_BYTES + 1));
        let phc = hash(&Secret::new("short")).unwrap();
        assert!(!verify(&long, &phc));
        assert!(check_new(&long).is_err());
        assert!(check_new(&Secret::new("short")).is_err());
        assert!(check_new(&Secret::new("long enough")).is_ok());
    }

    #[test]
    fn secrets_are_not_debug_printed() {
        let shown = format!("{:?}", Secret::new("hunter22"));
        assert!(!shown.contains("hunter22"));
    }
}
