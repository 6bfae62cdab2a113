//! A connection's account request in flight: carried out on another task (argon2 hashes
//! and the store must not run on the connection's), while the connection reads nothing
//! more, and what arrived with it is held, so what the client sends next is carried out
//! after it.

use std::sync::{Arc, Mutex};
use std::task::{Context, Waker};

use crate::hub::{Nick, SessionId};
use crate::protocol::Incoming;

/// Shared by the connection and the task doing its request; allocated only while a
/// connection has one, so an idle connection pays for an empty pointer.
#[derive(Default)]
pub(super) struct AccountJob {
    state: Mutex<JobState>,
}

#[derive(Default)]
struct JobState {
    done: bool,
    /// The connection's task, woken when the job is done.
    waker: Option<Waker>,
    /// The account a SASL exchange proved, for the registration that follows it.
    proved: Option<Nick>,
    /// The session, once the connection has registered: a SASL exchange still in flight
    /// then logs it in itself.
    session: Option<SessionId>,
    /// What the client sent after the request, in the same read: carried out once it is
    /// answered. Bounded by one read's worth of lines, as reading stops meanwhile.
    held: Vec<Incoming>,
}

impl AccountJob {
    pub fn new() -> Arc<AccountJob> {
        Arc::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut JobState) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Whether the job is done; if not, the task of `cx` is woken when it is.
    pub fn poll_done(&self, cx: &Context<'_>) -> bool {
        self.with(|state| {
            if !state.done {
                state.waker = Some(cx.waker().clone());
            }
            state.done
        })
    }

    pub fn is_done(&self) -> bool {
        self.with(|state| state.done)
    }

    /// Keeps `incoming` for when the job is done; gives it back if it is done already.
    pub fn hold(&self, incoming: Incoming) -> Option<Incoming> {
        self.with(|state| {
            if state.done {
                return Some(incoming);
            }
            state.held.push(incoming);
            None
        })
    }

    /// What was held, to carry out now that the job is done.
    pub fn take_held(&self) -> Vec<Incoming> {
        self.with(|state| std::mem::take(&mut state.held))
    }

    /// The job is over: wakes the connection to read again.
    pub fn finish(&self) {
        if let Some(waker) = self.with(|state| {
            state.done = true;
            state.waker.take()
        }) {
            waker.wake();
        }
    }

    /// A SASL exchange proved `account`. Returns the session to log in now when the
    /// connection registered meanwhile; otherwise its registration will use the account.
    pub fn proved(&self, account: Nick) -> Option<SessionId> {
        self.with(|state| {
            state.proved = Some(account);
            state.session
        })
    }

    /// Whether a SASL exchange (or IRC's PASS) proved an account.
    pub fn has_proved(&self) -> bool {
        self.with(|state| state.proved.is_some())
    }

    /// The account proved, for registering; and from now on, `session` is the one a
    /// late proof logs in.
    pub fn registering(&self, session: impl FnOnce(Option<Nick>) -> Option<SessionId>) {
        self.with(|state| {
            state.session = session(state.proved.clone());
        });
    }
}
