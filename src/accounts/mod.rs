//! Accounts at work: registering a nick, logging in to it, passwords and API tokens.
//!
//! The hub decides who may hold which nick ([`crate::hub::Hub::logged_in`] and the rest);
//! this module does what it must not do under its lock: compute argon2 hashes (slow by
//! design) and ask the [`AccountStore`] (a file). Every hash runs on a blocking thread,
//! at most [`MAX_CONCURRENT_HASHES`] at once; a connection has at most one request here at
//! a time (it stops reading until it is answered), so the queue for them is bounded by the
//! connections served. Login attempts are counted per address and per account
//! ([`LOGIN_ATTEMPTS_PER_ADDRESS`], [`LOGIN_ATTEMPTS_PER_ACCOUNT`]) and registrations per
//! address ([`REGISTRATIONS_PER_ADDRESS`]) before any hash is computed.

pub mod gate;
mod limiter;
pub mod oper;
pub mod password;
pub mod token;

use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::Instant;

use tokio::sync::Semaphore;
use tracing::{info, warn};

use crate::hub::{
    AccountError, AccountNews, ErrorCode, Event, Failure, Hub, Nick, SessionId, not_logged_in,
};
use crate::limits::{
    LOGIN_ATTEMPTS_PER_ACCOUNT, LOGIN_ATTEMPTS_PER_ADDRESS, LOGIN_TRACKED, LOGIN_WINDOW,
    MAX_CONCURRENT_HASHES, REGISTRATIONS_PER_ADDRESS,
};
pub use gate::ServerPassword;
use limiter::Attempts;
pub use oper::ServerOper;
pub use password::Secret;

/// What a client asks of its account, whatever wire format it spoke.
#[derive(Debug, Clone)]
pub enum AccountRequest {
    /// Registers the nick the session has now.
    Register {
        password: Secret,
    },
    Login {
        account: Nick,
        password: Secret,
    },
    /// Logs in with an API token (`charla send --token`).
    TokenLogin {
        token: Secret,
    },
    Logout,
    Password {
        old: Secret,
        new: Secret,
    },
    Unregister {
        password: Secret,
    },
    TokenNew {
        label: String,
    },
    TokenList,
    TokenRevoke {
        label: String,
    },
    /// Become the server operator `name` (IRC's OPER), proving its password.
    Oper {
        name: Nick,
        password: Secret,
    },
}

/// Carries out account requests off the hub's lock and off the runtime's workers.
pub struct Accounts {
    hub: Hub,
    hashing: Semaphore,
    by_address: Attempts<IpAddr>,
    by_account: Attempts<Nick>,
    /// Attempts on each operator's name, counted as an account's are.
    by_oper: Attempts<Nick>,
    /// Registrations from each address.
    registrations: Attempts<IpAddr>,
    /// `--oper`: the server operators and their passwords' hashes.
    opers: Vec<ServerOper>,
}

impl Accounts {
    /// Accounts of `hub`'s store, and the server operators `opers`.
    pub fn new(hub: Hub, opers: Vec<ServerOper>) -> Accounts {
        Accounts {
            hub,
            hashing: Semaphore::new(MAX_CONCURRENT_HASHES),
            by_address: Attempts::new(LOGIN_ATTEMPTS_PER_ADDRESS, LOGIN_WINDOW, LOGIN_TRACKED),
            by_account: Attempts::new(LOGIN_ATTEMPTS_PER_ACCOUNT, LOGIN_WINDOW, LOGIN_TRACKED),
            by_oper: Attempts::new(LOGIN_ATTEMPTS_PER_ACCOUNT, LOGIN_WINDOW, LOGIN_TRACKED),
            registrations: Attempts::new(REGISTRATIONS_PER_ADDRESS, LOGIN_WINDOW, LOGIN_TRACKED),
            opers,
        }
    }

    /// Carries out `request` of session `id`, connected from `ip`, and answers it (an
    /// [`Event::Account`] or an error) through the hub, as the reply to `reference`.
    pub async fn carry_out(
        &self,
        id: SessionId,
        ip: Option<IpAddr>,
        request: AccountRequest,
        reference: Option<String>,
    ) {
        if let Err((code, message)) = self.run(id, ip, request, reference.clone()).await {
            self.hub
                .reply(id, Event::Error { code, message }, reference);
        }
    }

    async fn run(
        &self,
        id: SessionId,
        ip: Option<IpAddr>,
        request: AccountRequest,
        reference: Option<String>,
    ) -> Result<(), Failure> {
        let store = self.hub.accounts().clone();
        let news = match request {
            AccountRequest::Register { password } => {
                password::check_new(&password).map_err(invalid)?;
                if let Some(account) = self.hub.account_of(id) {
                    return Err((
                        ErrorCode::InvalidRequest,
                        format!("you are logged in as {account} already; /logout first"),
                    ));
                }
                let Some(name) = self.hub.nick_of(id) else {
                    return Ok(());
                };
                // A registration costs a hash as a login does and adds an account for
                // good: counted per address, so one address can neither fill the
                // database nor keep the hashing threads from everyone's logins.
                let now = Instant::now();
                if ip.is_some_and(|ip| self.registrations.spend(ip.to_canonical(), now).is_err()) {
                    warn!(nick = %name, ?ip, "registration refused: too many from one address");
                    return Err((
                        ErrorCode::RateLimited,
                        format!(
                            "too many registrations: at most {REGISTRATIONS_PER_ADDRESS} from \
                             one address every {}; try again later",
                            humantime::format_duration(LOGIN_WINDOW)
                        ),
                    ));
                }
                let phc = self.hash(password).await?;
                let created = name.clone();
                blocking(move || store.create(&created, &phc)).await??;
                info!(account = %name, "account registered");
                self.hub.account_created(Some(id), name, reference);
                return Ok(());
            }
            AccountRequest::Login { account, password } => {
                let name = self.verify(ip, &account, password).await?;
                self.hub.logged_in(id, name, reference);
                return Ok(());
            }
            AccountRequest::TokenLogin { token } => {
                let name = self.token_owner(token).await?;
                self.hub.logged_in(id, name, reference);
                return Ok(());
            }
            AccountRequest::Logout => {
                self.hub.logged_out(id, reference);
                return Ok(());
            }
            AccountRequest::Password { old, new } => {
                password::check_new(&new).map_err(invalid)?;
                let name = self.logged_in(id)?;
                self.verify(ip, &name, old).await?;
                let phc = self.hash(new).await?;
                blocking(move || store.set_password(&name, &phc)).await??;
                AccountNews::PasswordChanged
            }
            AccountRequest::Unregister { password } => {
                let name = self.logged_in(id)?;
                let name = self.verify(ip, &name, password).await?;
                let deleted = name.clone();
                blocking(move || store.delete(&deleted)).await??;
                info!(account = %name, "account deleted");
                self.hub.account_deleted(id, name, reference);
                return Ok(());
            }
            AccountRequest::TokenNew { label } => {
                token::check_label(&label).map_err(invalid)?;
                let name = self.logged_in(id)?;
                let (token, digest) = token::new();
                let kept = label.clone();
                blocking(move || store.add_token(&name, &kept, &digest)).await??;
                AccountNews::TokenCreated { label, token }
            }
            AccountRequest::TokenList => {
                let name = self.logged_in(id)?;
                AccountNews::Tokens(blocking(move || store.tokens(&name)).await??)
            }
            AccountRequest::TokenRevoke { label } => {
                let name = self.logged_in(id)?;
                let asked = label.clone();
                if !blocking(move || store.revoke(&name, &asked)).await?? {
                    return Err(invalid(format!("you have no token labelled {label:?}")));
                }
                AccountNews::TokenRevoked(label)
            }
            AccountRequest::Oper { name, password } => {
                self.oper(ip, &name, password).await?;
                info!(oper = %name, "server operator");
                self.hub.opered(id, name, reference);
                return Ok(());
            }
        };
        self.hub.reply(id, Event::Account(news), reference);
        Ok(())
    }

    /// The account `password` opens, as registered; refused past the login allowance of
    /// `ip` or of the account, before any hash is computed. An account that does not exist
    /// costs the same hash as a wrong password, so the time taken does not tell which.
    pub async fn verify(
        &self,
        ip: Option<IpAddr>,
        account: &Nick,
        password: Secret,
    ) -> Result<Nick, Failure> {
        let now = Instant::now();
        let allowed = ip.is_none_or(|ip| self.by_address.spend(ip.to_canonical(), now).is_ok())
            && self.by_account.spend(account.clone(), now).is_ok();
        if !allowed {
            warn!(%account, ?ip, "login refused: too many attempts");
            return Err((
                ErrorCode::RateLimited,
                format!(
                    "too many login attempts: at most {LOGIN_ATTEMPTS_PER_ADDRESS} from one \
                     address and {LOGIN_ATTEMPTS_PER_ACCOUNT} on one account every {}; try \
                     again later",
                    humantime::format_duration(LOGIN_WINDOW)
                ),
            ));
        }
        let store = self.hub.accounts().clone();
        let wanted = account.clone();
        let kept = blocking(move || store.password(&wanted)).await??;
        let _permit = self.hashing.acquire().await.map_err(|_| gone())?;
        let matched = blocking(move || match kept {
            Some((name, phc)) => password::verify(&password, &phc).then_some(name),
            None => {
                password::verify(&password, decoy());
                None
            }
        })
        .await?;
        matched.ok_or_else(|| {
            info!(%account, ?ip, "login failed");
            (
                ErrorCode::BadPassword,
                format!("no account {account} with that password"),
            )
        })
    }

    /// Checks that `password` is operator `name`'s, within the same allowances as a login
    /// (per address, and per operator name as per account). A name no operator has costs
    /// the same hash as a wrong password, and is answered the same.
    async fn oper(&self, ip: Option<IpAddr>, name: &Nick, password: Secret) -> Result<(), Failure> {
        if self.opers.is_empty() {
            return Err((
                ErrorCode::NoOperators,
                "this server has no operators (--oper NAME:HASH)".to_string(),
            ));
        }
        let now = Instant::now();
        let allowed = ip.is_none_or(|ip| self.by_address.spend(ip.to_canonical(), now).is_ok())
            && self.by_oper.spend(name.clone(), now).is_ok();
        if !allowed {
            warn!(oper = %name, ?ip, "OPER refused: too many attempts");
            return Err((
                ErrorCode::RateLimited,
                format!(
                    "too many attempts: at most {LOGIN_ATTEMPTS_PER_ADDRESS} from one address \
                     and {LOGIN_ATTEMPTS_PER_ACCOUNT} on one name every {}; try again later",
                    humantime::format_duration(LOGIN_WINDOW)
                ),
            ));
        }
        let phc = self
            .opers
            .iter()
            .find(|o| o.name == *name)
            .map(|o| o.phc.clone());
        let _permit = self.hashing.acquire().await.map_err(|_| gone())?;
        let matched = blocking(move || match phc {
            Some(phc) => password::verify(&password, &phc),
            None => {
                password::verify(&password, decoy());
                false
            }
        })
        .await?;
        if !matched {
            info!(oper = %name, ?ip, "OPER failed");
            return Err((
                ErrorCode::BadPassword,
                format!("no operator {name} with that password"),
            ));
        }
        Ok(())
    }

    /// Whose API token `token` is.
    pub async fn token_owner(&self, token: Secret) -> Result<Nick, Failure> {
        let store = self.hub.accounts().clone();
        let digest = token::digest(token.expose());
        blocking(move || store.token_owner(&digest))
            .await??
            .ok_or_else(|| {
                (
                    ErrorCode::BadPassword,
                    "that token is not valid".to_string(),
                )
            })
    }

    async fn hash(&self, password: Secret) -> Result<String, Failure> {
        let _permit = self.hashing.acquire().await.map_err(|_| gone())?;
        blocking(move || password::hash(&password))
            .await?
            .map_err(|e| (ErrorCode::StoreFailed, format!("cannot hash: {e}")))
    }

    fn logged_in(&self, id: SessionId) -> Result<Nick, Failure> {
        self.hub.account_of(id).ok_or_else(not_logged_in)
    }
}

/// A hash of no one's password, verified against when the account asked for does not
/// exist, so that case takes as long as a wrong password.
fn decoy() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| {
        let (random, _) = token::new();
        password::hash(&Secret::new(random)).unwrap_or_default()
    })
}

/// Runs `work` on a blocking thread, off the runtime's workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Failure> {
    tokio::task::spawn_blocking(work).await.map_err(|_| gone())
}

fn gone() -> Failure {
    (
        ErrorCode::StoreFailed,
        "the server is stopping; try again".to_string(),
    )
}

fn invalid(message: String) -> Failure {
    (ErrorCode::InvalidArgument, message)
}

impl From<AccountError> for Failure {
    fn from(error: AccountError) -> Failure {
        let code = match &error {
            AccountError::Exists(_) => ErrorCode::AccountExists,
            AccountError::NoSuchAccount(_) => ErrorCode::NotLoggedIn,
            AccountError::LabelTaken(_) | AccountError::TooManyTokens => ErrorCode::InvalidArgument,
            AccountError::Store(_) => {
                tracing::error!(%error, "account store");
                ErrorCode::StoreFailed
            }
        };
        (code, error.to_string())
    }
}
