//! The client's side of a conversation, whatever drives it (a person at a terminal or a
//! script): what it knows, what it awaits, and how what arrives is shown.

use tokio::time::Instant;

use super::conversation::Conversation;
use super::link::Welcome;
use super::tracker::{Purpose, Tracker, Unacked};
use super::view::{Mark, View};
use super::wire::{ClientRequest, Received, ServerEvent};
use crate::hub::RoomName;

pub struct Chat {
    pub conversation: Conversation,
    pub tracker: Tracker,
    pub view: View,
}

/// What one event from the server comes to.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Lines to show, in order.
    pub lines: Vec<String>,
    /// The request this event answered for good, if it was one of ours.
    pub settled: Option<Unacked>,
    /// The server's refusal of that request: its code and sentence.
    pub refusal: Option<(String, String)>,
}

impl Chat {
    pub fn new(conversation: Conversation, view: View) -> Chat {
        Chat {
            conversation,
            tracker: Tracker::default(),
            view,
        }
    }

    /// Records a request just sent with `reference`.
    pub fn sent(
        &mut self,
        reference: u64,
        request: ClientRequest,
        purpose: Purpose,
        room_before: Option<RoomName>,
    ) {
        let pending = Unacked {
            request,
            purpose,
            room_before,
            sent: Instant::now(),
        };
        self.tracker.add(reference, pending);
    }

    /// Takes in a welcome: the replies to the hello come first (shown as typed on a first
    /// connection, as catching up after a reconnect).
    pub fn welcome(&mut self, welcome: &Welcome, reconnect: bool) -> Outcome {
        let purpose = if reconnect {
            Purpose::CatchUp
        } else {
            Purpose::Typed
        };
        let mut outcome = Outcome::default();
        for reply in &welcome.replies {
            // The nick asked for is told with the welcome; no need to say it twice.
            if !matches!(reply.event, ServerEvent::Nick { you: true, .. }) {
                let shown = self.show(&reply.event, purpose);
                outcome.lines.extend(shown);
            }
            self.conversation.observe(&reply.event);
            if let ServerEvent::Error { code, message } = &reply.event {
                outcome
                    .refusal
                    .get_or_insert((code.clone(), message.clone()));
            }
        }
        self.conversation.welcomed(welcome, reconnect);
        outcome
    }

    /// Takes in one event: updates what the client knows, settles the request it answers,
    /// and says what to show.
    pub fn take_in(&mut self, received: &Received) -> Outcome {
        let event = &received.event;
        let purpose = received
            .reference
            .and_then(|r| self.tracker.purpose(r))
            .unwrap_or(Purpose::Typed);
        let lines = self.show(event, purpose);
        self.conversation.observe(event);
        let settled = received
            .reference
            .and_then(|r| self.tracker.settle(r, event));
        let mut refusal = None;
        if let Some(pending) = &settled {
            match (&pending.request, event) {
                (
                    ClientRequest::Say { room, .. } | ClientRequest::Me { room, .. },
                    ServerEvent::Ack { id, seq, ts },
                ) => self.conversation.sent(room, *id, *seq, *ts),
                (request, ServerEvent::Error { code, message }) => {
                    if let ClientRequest::Join { .. } = request {
                        self.conversation.join_refused(pending.room_before.clone());
                    }
                    refusal = Some((code.clone(), message.clone()));
                }
                _ => {}
            }
        }
        Outcome {
            lines,
            settled,
            refusal,
        }
    }

    fn show(&mut self, event: &ServerEvent, purpose: Purpose) -> Vec<String> {
        let me = self.conversation.nick().to_string();
        match (event, purpose) {
            (ServerEvent::History { room, messages }, Purpose::CatchUp) => {
                let unseen = self.conversation.unseen(room, messages);
                unseen
                    .into_iter()
                    .map(|p| self.view.post(room, p, Mark::Missed, &me))
                    .collect()
            }
            (ServerEvent::History { room, messages }, Purpose::Typed) => {
                self.conversation.unseen(room, messages);
                messages
                    .iter()
                    .map(|p| self.view.post(room, p, Mark::History, &me))
                    .collect()
            }
            (ServerEvent::Error { .. } | ServerEvent::Gap { .. }, _) | (_, Purpose::Typed) => {
                self.view.event(event, &me)
            }
            (_, Purpose::CatchUp) => Vec::new(),
        }
    }
}
