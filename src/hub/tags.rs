//! IRCv3 client-only tags (`+draft/react=👍`): what an IRC client attaches to a message for
//! other clients. The hub carries them with the message, unread, to the IRC readers that
//! asked for `message-tags`; nothing else shows them. History keeps them with the message.

use std::sync::Arc;

use crate::limits::MAX_CLIENT_TAGS_BYTES;

/// The client-only tags of one message, in their escaped wire form (`+a=b;+c`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientTags(Arc<str>);

/// Why a tags section cannot be relayed.
#[derive(Debug, PartialEq, Eq)]
pub struct TagsTooLong;

impl ClientTags {
    /// The client-only tags of a tags section as a client sent it (`label=x;+a=b`),
    /// `None` when it has none. Other tags (`label`…) are the server's to read, and a tag
    /// with a key the spec does not allow or a value holding a control character is
    /// dropped; more than [`MAX_CLIENT_TAGS_BYTES`] of client tags is refused whole.
    pub fn from_section(section: &str) -> Result<Option<ClientTags>, TagsTooLong> {
        let mut kept = String::new();
        for tag in section.split(';') {
            let (key, value) = tag.split_once('=').unwrap_or((tag, ""));
            let Some(name) = key.strip_prefix('+') else {
                continue;
            };
            let key_ok = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '/' | '.'));
            if !key_ok || value.chars().any(char::is_control) {
                continue;
            }
            if !kept.is_empty() {
                kept.push(';');
            }
            kept.push_str(key);
            if !value.is_empty() {
                kept.push('=');
                kept.push_str(value);
            }
        }
        if kept.len() > MAX_CLIENT_TAGS_BYTES {
            return Err(TagsTooLong);
        }
        Ok((!kept.is_empty()).then(|| ClientTags(kept.into())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_well_formed_client_tags_are_kept() {
        let tags = ClientTags::from_section("label=1;+draft/react=👍;time=x;+typing;+bad key=1")
            .unwrap()
            .unwrap();
        assert_eq!(tags.as_str(), "+draft/react=👍;+typing");
        assert_eq!(ClientTags::from_section("label=1;msgid=2"), Ok(None));
        assert_eq!(ClientTags::from_section("+=x;+a=\u{7}"), Ok(None));
        let long = format!("+a={}", "x".repeat(MAX_CLIENT_TAGS_BYTES));
        assert_eq!(ClientTags::from_section(&long), Err(TagsTooLong));
    }
}
