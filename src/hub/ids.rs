//! Ids that stay unique when several nodes serve one chat: each carries the number of the
//! node that minted it above a serial of that node's own.

/// Nodes a cluster may have: a node's number is below this.
pub const MAX_NODES: u16 = 1 << NODE_BITS;

/// Bits of an id that number the node.
const NODE_BITS: u32 = 10;

/// Bits of an id below the node's number: 2^43 ids a node (a million a second for three
/// months) while ids stay below 2^53, exact as JSON numbers in every language.
const SERIAL_BITS: u32 = 43;

/// One server of a cluster; a server alone is node 0, so its ids are plain serials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct NodeId(u16);

impl NodeId {
    /// The node numbered `n`; `None` when `n` is not below [`MAX_NODES`].
    pub fn new(n: u16) -> Option<NodeId> {
        (n < MAX_NODES).then_some(NodeId(n))
    }
}

impl NodeId {
    /// The node's number.
    pub fn number(self) -> u16 {
        self.0
    }

    /// The node that minted message id `id`; `None` for an id no node mints.
    pub fn of_message(id: u64) -> Option<NodeId> {
        u16::try_from(id >> SERIAL_BITS).ok().and_then(NodeId::new)
    }

    /// The message ids this node mints, from first to last possible.
    pub fn message_ids(self) -> std::ops::RangeInclusive<u64> {
        compose(self, 1)..=compose(self, (1 << SERIAL_BITS) - 1)
    }
}

/// Identifies a connected session, across the nodes of a cluster, for as long as they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(u64);

impl SessionId {
    /// The session numbered `serial` by `node`.
    pub fn new(node: NodeId, serial: u64) -> SessionId {
        SessionId(compose(node, serial))
    }

    /// The id as a number, as nodes tell it each other.
    pub fn bits(self) -> u64 {
        self.0
    }

    /// The id [`SessionId::bits`] gave.
    pub fn from_bits(bits: u64) -> SessionId {
        SessionId(bits)
    }

    /// The node the session is connected to.
    pub fn node(self) -> NodeId {
        NodeId((self.0 >> SERIAL_BITS) as u16)
    }
}

fn compose(node: NodeId, serial: u64) -> u64 {
    debug_assert!(serial < 1 << SERIAL_BITS, "a node's serials run out");
    u64::from(node.0) << SERIAL_BITS | serial
}

/// Mints a node's session and message ids. A message id orders the messages of its node;
/// across nodes only the room's own order does.
pub(super) struct Mint {
    node: NodeId,
    next_session: u64,
    next_message: u64,
}

impl Mint {
    pub fn new(node: NodeId) -> Mint {
        Mint {
            node,
            next_session: 1,
            next_message: 1,
        }
    }

    /// A mint whose message ids continue after `last`, the largest this node kept (in a
    /// durable store) before a restart, so ids stay unique and increasing across restarts.
    pub fn after(node: NodeId, last: Option<u64>) -> Mint {
        let mut mint = Mint::new(node);
        if let Some(last) = last.filter(|id| node.message_ids().contains(id)) {
            mint.next_message = (last - compose(node, 0)) + 1;
        }
        mint
    }

    pub fn session(&mut self) -> SessionId {
        let serial = self.next_session;
        self.next_session += 1;
        SessionId::new(self.node, serial)
    }

    pub fn message(&mut self) -> u64 {
        let serial = self.next_message;
        self.next_message += 1;
        compose(self.node, serial)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_of_two_nodes_never_meet_and_node_zero_counts_from_one() {
        let (mut a, mut b) = (
            Mint::new(NodeId::default()),
            Mint::new(NodeId::new(3).unwrap()),
        );
        assert_eq!(a.message(), 1, "a server alone numbers as before");
        let (sa, sb) = (a.session(), b.session());
        assert_ne!(sa, sb);
        assert_eq!(sb.node(), NodeId::new(3).unwrap());
        assert_eq!(sa.node(), NodeId::default());
        assert_ne!(a.message(), b.message());
        let last = Mint::new(NodeId::new(MAX_NODES - 1).unwrap()).message();
        assert!(last < 1 << 53, "exact as a JSON number");
        assert!(NodeId::new(MAX_NODES).is_none());
        assert_eq!(NodeId::of_message(b.message()), NodeId::new(3));
        assert_eq!(NodeId::of_message(a.message()), Some(NodeId::default()));
        assert_eq!(NodeId::of_message(last), NodeId::new(MAX_NODES - 1));
        assert_eq!(NodeId::of_message(u64::MAX), None);
    }

    #[test]
    fn ids_continue_after_the_last_kept_by_the_same_node() {
        let node = NodeId::new(3).unwrap();
        let mut first = Mint::new(node);
        let last = (0..5).map(|_| first.message()).last();
        let mut again = Mint::after(node, last);
        assert_eq!(again.message(), last.unwrap() + 1);
        // An id another node minted says nothing of this node's.
        let mut alone = Mint::after(NodeId::default(), last);
        assert_eq!(alone.message(), 1);
        assert_eq!(Mint::after(node, None).message(), Mint::new(node).message());
    }
}
