//! The IRC listener's server password (`--irc-password`): what IRC's PASS must give
//! before a client may register, as ngircd's and InspIRCd's `Password` settings are.
//!
//! Only its SHA-256 is kept, compared in constant time: the password is the operator's,
//! not a user's, so there is no dictionary of users' choices to slow down, and a fast
//! hash keeps a connection's check off any blocking thread.

use sha2::{Digest, Sha256};

use super::Secret;

/// The server password, as its digest; `Debug` shows nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerPassword([u8; 32]);

impl ServerPassword {
    pub fn new(password: &Secret) -> ServerPassword {
        ServerPassword(Sha256::digest(password.expose().as_bytes()).into())
    }

    /// Whether `given` is the password, in time that does not depend on where it differs.
    pub fn admits(&self, given: &Secret) -> bool {
        let given: [u8; 32] = Sha256::digest(given.expose().as_bytes()).into();
        let differ = self
            .0
            .iter()
            .zip(given)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        differ == 0
    }
}

impl std::fmt::Debug for ServerPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerPassword(…)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_the_password_alone_and_never_shows_it() {
        let gate = ServerPassword::new(&Secret::new("hunter2-long"));
        assert!(gate.admits(&Secret::new("hunter2-long")));
        assert!(!gate.admits(&Secret::new("hunter2-lonG")));
        assert!(!gate.admits(&Secret::new("")));
        assert_eq!(format!("{gate:?}"), "ServerPassword(…)");
    }
}
