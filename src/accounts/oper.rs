//! Server operators (`--oper NAME:HASH`): who may become one by IRC's OPER (text `/oper`,
//! JSON `oper`) and with which password, kept as the argon2 hash `charla account hash`
//! prints, never as the password. An operator may kick and change the modes of any room,
//! and WHO and WHOIS show them as one; it lasts until the session ends or drops it
//! (`MODE nick -o`).

use argon2::password_hash::PasswordHash;

use crate::hub::Nick;

/// One server operator as configured: a name and the PHC string of its password.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerOper {
    pub name: Nick,
    pub phc: String,
}

impl ServerOper {
    /// `NAME:HASH`: NAME as a nick is written, HASH an argon2 PHC string
    /// (`$argon2id$v=19$…`). A hash that does not parse is refused here, at start-up,
    /// rather than failing every OPER later.
    pub fn parse(spec: &str) -> Result<ServerOper, String> {
        let (name, phc) = spec
            .split_once(':')
            .ok_or("an operator is NAME:HASH, HASH as `charla account hash` prints it")?;
        let name =
            Nick::parse(name).map_err(|e| format!("{name:?} is not an operator name: {e}"))?;
        PasswordHash::new(phc).map_err(|e| {
            format!("the hash of operator {name} is not an argon2 hash (`charla account hash` prints one): {e}")
        })?;
        Ok(ServerOper {
            name,
            phc: phc.to_string(),
        })
    }
}

/// The name only: even a hash is not for the logs.
impl std::fmt::Debug for ServerOper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ServerOper({})", self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::{Secret, password};

    #[test]
    fn an_operator_is_a_name_and_an_argon2_hash_and_debug_shows_the_name() {
        let phc = password::hash(&Secret::new("operpassword")).unwrap();
        let oper = ServerOper::parse(&format!("root:{phc}")).unwrap();
        assert_eq!(oper.name.as_str(), "root");
        assert!(password::verify(&Secret::new("operpassword"), &oper.phc));
        assert_eq!(format!("{oper:?}"), "ServerOper(root)");
        assert!(ServerOper::parse("root").is_err());
        assert!(ServerOper::parse("root:operpassword").is_err());
        assert!(ServerOper::parse(&format!("no one:{phc}")).is_err());
    }
}
