//! Where a segment is accepted: its deadline and message_id ([`accept`]), the group
//! commit that stores the segments arriving together in one SUBMIT call ([`batch`]).

pub(crate) mod accept;
pub(crate) mod batch;
