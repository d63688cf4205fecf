//! The bind states of reference §2.1 and which ESME requests each allows (§2.2).

use smpp_protocol::CommandId;

/// How the ESME bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BindType {
    Transmitter,
    Receiver,
    Transceiver,
}

impl BindType {
    /// The bind type a `bind_*` command_id asks for.
    pub fn of_request(id: CommandId) -> Option<BindType> {
        match id {
            CommandId::BIND_TRANSMITTER => Some(BindType::Transmitter),
            CommandId::BIND_RECEIVER => Some(BindType::Receiver),
            CommandId::BIND_TRANSCEIVER => Some(BindType::Transceiver),
            _ => None,
        }
    }

    /// Whether this bind takes deliver_sm (receipts).
    pub fn receives(self) -> bool {
        matches!(self, BindType::Receiver | BindType::Transceiver)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            BindType::Transmitter => "transmitter",
            BindType::Receiver => "receiver",
            BindType::Transceiver => "transceiver",
        }
    }
}

/// Session state as the SMSC sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Connected, not bound yet.
    Open,
    Bound(BindType),
}

/// What the session does with an ESME request in a state, before decoding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Process it.
    Allowed,
    /// `bind_*` while bound: its `_resp` with ESME_RALYBND.
    AlreadyBound,
    /// Its `_resp` (generic_nack when it has none) with ESME_RINVBNDSTS.
    WrongState,
}

/// The check of reference §10.8 step 4 for a *request* the ESME sent.
pub fn check(state: State, id: CommandId) -> Verdict {
    use BindType::*;
    let allowed = match id {
        CommandId::BIND_TRANSMITTER | CommandId::BIND_RECEIVER | CommandId::BIND_TRANSCEIVER => {
            return match state {
                State::Open => Verdict::Allowed,
                State::Bound(_) => Verdict::AlreadyBound,
            };
        }
        // Legal in every state ([5.0]; jsmpp answers it while OPEN too).
        CommandId::ENQUIRE_LINK => true,
        CommandId::UNBIND => matches!(state, State::Bound(_)),
        CommandId::SUBMIT_SM
        | CommandId::SUBMIT_MULTI
        | CommandId::QUERY_SM
        | CommandId::CANCEL_SM
        // 3.4's table lists replace_sm for TX only; [5.0] and jsmpp accept TRX (§2.2 ⚠).
        | CommandId::REPLACE_SM
        // data_sm ESME→SMSC is the transmitting direction (§2.2, [5.0] split).
        | CommandId::DATA_SM => matches!(state, State::Bound(Transmitter | Transceiver)),
        // SMSC→ESME requests (deliver_sm, outbind, alert_notification) are never
        // legal from an ESME.
        _ => false,
    };
    if allowed {
        Verdict::Allowed
    } else {
        Verdict::WrongState
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receiver_may_not_submit_but_may_enquire_and_unbind() {
        let rx = State::Bound(BindType::Receiver);
        assert_eq!(check(rx, CommandId::SUBMIT_SM), Verdict::WrongState);
        assert_eq!(check(rx, CommandId::DATA_SM), Verdict::WrongState);
        assert_eq!(check(rx, CommandId::ENQUIRE_LINK), Verdict::Allowed);
        assert_eq!(check(rx, CommandId::UNBIND), Verdict::Allowed);
        assert_eq!(check(rx, CommandId::BIND_RECEIVER), Verdict::AlreadyBound);
    }

    #[test]
    fn open_allows_only_bind_and_enquire_link() {
        assert_eq!(
            check(State::Open, CommandId::BIND_TRANSCEIVER),
            Verdict::Allowed
        );
        assert_eq!(
            check(State::Open, CommandId::ENQUIRE_LINK),
            Verdict::Allowed
        );
        assert_eq!(
            check(State::Open, CommandId::SUBMIT_SM),
            Verdict::WrongState
        );
        assert_eq!(check(State::Open, CommandId::UNBIND), Verdict::WrongState);
    }

    #[test]
    fn esme_may_never_send_smsc_requests() {
        let trx = State::Bound(BindType::Transceiver);
        assert_eq!(check(trx, CommandId::DELIVER_SM), Verdict::WrongState);
        assert_eq!(check(trx, CommandId::OUTBIND), Verdict::WrongState);
        assert_eq!(
            check(trx, CommandId::ALERT_NOTIFICATION),
            Verdict::WrongState
        );
    }
}
