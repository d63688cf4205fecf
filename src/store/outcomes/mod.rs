//! Where a finished message becomes its outcome: the writer moving finished messages
//! from the partitions' outboxes to MongoDB ([`writer`]),
//! the MongoDB collection ([`mongo`]), the
//! groups this node holds in memory already ([`known`], Redis read as the fallback) and
//! the writer's yielding to the receipt path during expiry bursts ([`backlog`]).

pub(crate) mod backlog;
pub(crate) mod known;
pub(crate) mod mongo;
pub(crate) mod writer;
