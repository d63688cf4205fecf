//! Where an accepted message goes: the `[[route]]` table of `config.toml` and the
//! `[delivery]` rules for what a receiving ESME's answers mean.
//!
//! Pure: sessions resolve a submit's route here (first match wins) and hand the
//! store only the outcome — keep the message (`store`) or forward it to an account.

use std::time::Duration;

use std::sync::Arc;

use regex::Regex;
use smpp_protocol::CommandStatus;

use crate::service::Address;
use crate::simulate::Profile;

/// What a matching route does with a message.
#[derive(Debug, Clone)]
pub enum RouteTarget {
    /// Keep it: outcome document and receipt at once (the default).
    Store,
    /// Forward it as deliver_sm to a receiver or transceiver bind of this account;
    /// `reassembled`: a multi-part message as one deliver_sm, its whole text in
    /// message_payload (`segments = "reassembled"`), else segment by segment.
    Esme { account: String, reassembled: bool },
    /// End it as this `[[simulate]]` profile says (testers).
    Simulate(Arc<Profile>),
}

impl PartialEq for RouteTarget {
    fn eq(&self, other: &RouteTarget) -> bool {
        self.label() == other.label()
    }
}

impl RouteTarget {
    /// As `config.toml` writes it.
    pub fn label(&self) -> String {
        match self {
            RouteTarget::Store => "store".into(),
            RouteTarget::Esme { account, .. } => format!("esme:{account}"),
            RouteTarget::Simulate(p) => format!("simulate:{}", p.name),
        }
    }
}

/// One `[[route]]`.
#[derive(Debug, Clone)]
pub struct Route {
    /// Over destination_addr; `None` = any.
    pub destination: Option<Regex>,
    /// Over source_addr; `None` = any.
    pub source: Option<Regex>,
    /// Only messages of these submitting accounts; empty = any.
    pub from: Vec<String>,
    pub target: RouteTarget,
}

impl Route {
    fn matches(&self, account: &str, source: &Address, dest: &Address) -> bool {
        (self.from.is_empty() || self.from.iter().any(|a| a == account))
            && self
                .destination
                .as_ref()
                .is_none_or(|r| r.is_match(&dest.addr))
            && self
                .source
                .as_ref()
                .is_none_or(|r| r.is_match(&source.addr))
    }
}

/// What happens to a message no route matches (`[delivery] default`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Unrouted {
    /// As the `store` target.
    #[default]
    Store,
    /// Refused at submit time with ESME_RINVDSTADR.
    Refuse,
}

/// The routes in file order and the default.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    pub routes: Vec<Route>,
    pub unrouted: Unrouted,
}

/// No route takes the message and the default refuses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoRoute;

impl Routes {
    /// The target of a message of `account` from `source` to `dest`: the first
    /// matching route's, else the default's.
    pub fn resolve(
        &self,
        account: &str,
        source: &Address,
        dest: &Address,
    ) -> Result<RouteTarget, NoRoute> {
        match self
            .routes
            .iter()
            .find(|r| r.matches(account, source, dest))
        {
            Some(r) => Ok(r.target.clone()),
            None => match self.unrouted {
                Unrouted::Store => Ok(RouteTarget::Store),
                Unrouted::Refuse => Err(NoRoute),
            },
        }
    }
}

/// The `[delivery]` rules: how a receiving ESME's deliver_sm_resp is read, and how
/// often a message is offered again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRules {
    /// command_status values that end a delivery as UNDELIVERABLE. Every other
    /// refusal, a generic_nack and no answer are temporary: offered again with
    /// backoff until the message's validity ends (then EXPIRED). Why this way round:
    /// a store-and-forward SMSC must not drop a message on a status it does not know.
    pub permanent: Vec<u32>,
    /// Backoff between offers: min · 2^(n−1), capped at max.
    pub retry_min: Duration,
    pub retry_max: Duration,
    /// How long after its deadline the received segments of a forwarded message that
    /// expired incomplete (`deliver_partial`) may still be delivered.
    pub partial_grace: Duration,
}

/// The permanent refusals by default: the receiver says it will never take this
/// message (reference §4, "P" for permanent; invalid addresses, length, coding).
pub const DEFAULT_PERMANENT: &[u32] = &[
    CommandStatus::ESME_RX_P_APPN.0,
    CommandStatus::ESME_RX_R_APPN.0,
    CommandStatus::ESME_RINVDSTADR.0,
    CommandStatus::ESME_RINVSRCADR.0,
    CommandStatus::ESME_RINVMSGLEN.0,
    CommandStatus::ESME_RINVESMCLASS.0,
];

impl Default for DeliveryRules {
    fn default() -> Self {
        DeliveryRules {
            permanent: DEFAULT_PERMANENT.to_vec(),
            retry_min: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
            partial_grace: Duration::from_secs(600),
        }
    }
}

impl DeliveryRules {
    pub fn is_permanent(&self, status: u32) -> bool {
        self.permanent.contains(&status)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn addr(a: &str) -> Address {
        Address {
            ton: 1,
            npi: 1,
            addr: a.into(),
        }
    }

    fn esme(to: &str) -> RouteTarget {
        RouteTarget::Esme {
            account: to.into(),
            reassembled: false,
        }
    }

    fn route(dest: Option<&str>, from: &[&str], to: &str) -> Route {
        Route {
            destination: dest.map(|d| Regex::new(d).unwrap()),
            source: None,
            from: from.iter().map(|s| s.to_string()).collect(),
            target: esme(to),
        }
    }

    #[test]
    fn the_first_matching_route_wins_and_the_default_takes_the_rest() {
        let mut routes = Routes {
            routes: vec![
                route(Some("^4477009"), &["a"], "b"),
                route(Some("^4477"), &[], "c"),
            ],
            unrouted: Unrouted::Store,
        };
        let r = |acct, d| routes.resolve(acct, &addr("1"), &addr(d));
        assert_eq!(r("a", "447700900001"), Ok(esme("b")));
        assert_eq!(r("x", "447700900001"), Ok(esme("c")));
        assert_eq!(r("a", "33600"), Ok(RouteTarget::Store));
        routes.unrouted = Unrouted::Refuse;
        assert_eq!(
            routes.resolve("a", &addr("1"), &addr("33600")),
            Err(NoRoute)
        );
    }

    #[test]
    fn only_listed_statuses_are_permanent() {
        let rules = DeliveryRules::default();
        assert!(rules.is_permanent(0x65));
        assert!(!rules.is_permanent(0x64));
        assert!(!rules.is_permanent(0x58));
        assert!(!rules.is_permanent(0x0400));
    }
}
