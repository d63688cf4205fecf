//! Which accepted connections may stay, decided the moment one is accepted, before a
//! byte of it is read.
//!
//! - A source with `max_connections_per_ip` connections open gets no more: refused.
//! - With no room left (`max_connections` open, or `max_unbound_connections` of them
//!   not bound yet), the oldest connection that has not bound is closed to make room;
//!   when every connection is bound, the new one is refused.
//!
//! So connections that never bind hold at most their share of the slots and cannot
//! keep an ESME out: its connection pushes out the oldest idle one and binds long
//! before as many new connections have arrived as the share has places.
//!
//! Refused and pushed-out connections are counted (metrics) and logged as one summary
//! line per [`SUMMARY_INTERVAL`], however many there were.
//!
//! IPv6 sources are counted per /64: one host usually holds a whole /64.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::ServerConfig;

/// How often refusals are summed up in the log.
pub const SUMMARY_INTERVAL: Duration = Duration::from_secs(10);

/// The limits in force at one accept (a reload applies to the next accept).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub max_per_source: usize,
    pub max_unbound: usize,
}

impl Limits {
    pub fn of(server: &ServerConfig) -> Limits {
        Limits {
            max_connections: server.max_connections,
            max_per_source: server.max_connections_per_ip,
            max_unbound: server.max_unbound_connections,
        }
    }
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// `max_connections` open, all of them bound.
    MaxConnections = 0,
    /// Its source has `max_connections_per_ip` open.
    PerSource = 1,
}

impl Refused {
    pub fn as_str(self) -> &'static str {
        match self {
            Refused::MaxConnections => "max_connections",
            Refused::PerSource => "max_connections_per_ip",
        }
    }
}

/// Open connections in total and per source. Shared with the metrics endpoint, which
/// has its own two limits.
#[derive(Debug, Default)]
pub struct SourceCounts {
    open: usize,
    per_source: HashMap<IpAddr, usize>,
}

impl SourceCounts {
    /// Counts one more connection of `source` unless its source is at `max_per_source`
    /// (the total is the caller's to check, see [`SourceCounts::open`]).
    pub fn try_add(&mut self, source: IpAddr, max_per_source: usize) -> bool {
        let key = source_key(source);
        if self.per_source.get(&key).copied().unwrap_or(0) >= max_per_source {
            return false;
        }
        *self.per_source.entry(key).or_insert(0) += 1;
        self.open += 1;
        true
    }

    /// Forgets one connection of `source` counted by [`SourceCounts::try_add`].
    pub fn remove(&mut self, source: IpAddr) {
        let key = source_key(source);
        if let Some(n) = self.per_source.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                self.per_source.remove(&key);
            }
            self.open -= 1;
        }
    }

    pub fn open(&self) -> usize {
        self.open
    }
}

/// The unit a per-source limit counts: an IPv4 address (IPv4-mapped IPv6 included),
/// or the /64 of an IPv6 address.
fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// Admission of the SMPP listeners (plain and TLS share one).
#[derive(Debug, Default)]
pub struct Admission {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    sources: SourceCounts,
    /// Connections not bound yet, oldest first, each with the token that closes it.
    unbound: BTreeMap<u64, CancellationToken>,
    next_id: u64,
    /// Since the last summary line.
    tally: Tally,
}

/// What happened since the last summary line.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tally {
    pub max_connections: u64,
    pub per_source: u64,
    pub evicted: u64,
    /// The source of the last refused connection.
    pub last_source: Option<IpAddr>,
}

impl Tally {
    fn is_empty(&self) -> bool {
        self.max_connections + self.per_source + self.evicted == 0
    }
}

impl Admission {
    /// Admits a connection from `source`, or says why not. `close` is cancelled if the
    /// connection is pushed out before it binds.
    pub fn admit(
        self: &Arc<Self>,
        source: IpAddr,
        limits: Limits,
        close: CancellationToken,
    ) -> Result<ConnectionSlot, Refused> {
        let mut st = self.lock();
        if !st.sources.try_add(source, limits.max_per_source) {
            return Err(st.refuse(Refused::PerSource, source));
        }
        // Counted from here: any early return must give the place back.
        let full =
            st.sources.open() > limits.max_connections || st.unbound.len() >= limits.max_unbound;
        if full {
            match st.unbound.pop_first() {
                Some((_, oldest)) => {
                    oldest.cancel();
                    st.tally.evicted += 1;
                    crate::metrics::unbound_evicted();
                }
                None => {
                    st.sources.remove(source);
                    return Err(st.refuse(Refused::MaxConnections, source));
                }
            }
        }
        st.next_id += 1;
        let id = st.next_id;
        st.unbound.insert(id, close);
        Ok(ConnectionSlot {
            admission: self.clone(),
            source,
            id,
        })
    }

    /// Connections open now (plain and TLS, bound or not).
    pub fn open(&self) -> usize {
        self.lock().sources.open()
    }

    /// Connections open now that have not bound yet.
    pub fn unbound(&self) -> usize {
        self.lock().unbound.len()
    }

    /// What was refused or pushed out since the last call.
    pub fn take_tally(&self) -> Tally {
        std::mem::take(&mut self.lock().tally)
    }

    /// Logs one summary line per [`SUMMARY_INTERVAL`] in which connections were refused
    /// or pushed out, until `stop`, and a last one then.
    pub async fn log_refusals(self: Arc<Self>, stop: CancellationToken) {
        let mut tick = tokio::time::interval(SUMMARY_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            let stopping = tokio::select! {
                _ = tick.tick() => false,
                _ = stop.cancelled() => true,
            };
            let t = self.take_tally();
            if !t.is_empty() {
                tracing::warn!(
                    refused_max_connections = t.max_connections,
                    refused_max_connections_per_ip = t.per_source,
                    closed_unbound_for_room = t.evicted,
                    last_refused = t.last_source.map(|s| s.to_string()),
                    open = self.open(),
                    unbound = self.unbound(),
                    "connections refused in the last {}s",
                    SUMMARY_INTERVAL.as_secs()
                );
            }
            if stopping {
                return;
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl State {
    fn refuse(&mut self, why: Refused, source: IpAddr) -> Refused {
        match why {
            Refused::MaxConnections => self.tally.max_connections += 1,
            Refused::PerSource => self.tally.per_source += 1,
        }
        self.tally.last_source = Some(source);
        crate::metrics::connection_refused(why);
        why
    }
}

/// One open connection's place; dropping it frees the place.
#[derive(Debug)]
pub struct ConnectionSlot {
    admission: Arc<Admission>,
    source: IpAddr,
    id: u64,
}

impl ConnectionSlot {
    /// The connection bound: it is no longer among the unbound ones pushed out for room.
    pub fn bound(&self) {
        self.admission.lock().unbound.remove(&self.id);
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut st = self.admission.lock();
        st.unbound.remove(&self.id);
        st.sources.remove(self.source);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn limits(max_connections: usize, max_per_source: usize, max_unbound: usize) -> Limits {
        Limits {
            max_connections,
            max_per_source,
            max_unbound,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|_| panic!("{s}"))
    }

    #[test]
    fn a_source_at_its_limit_is_refused_others_are_not() {
        let a = Arc::new(Admission::default());
        let l = limits(100, 2, 100);
        let s1 = a.admit(ip("10.0.0.1"), l, CancellationToken::new());
        let s2 = a.admit(ip("10.0.0.1"), l, CancellationToken::new());
        assert!(s1.is_ok() && s2.is_ok());
        assert_eq!(
            a.admit(ip("10.0.0.1"), l, CancellationToken::new()).err(),
            Some(Refused::PerSource)
        );
        assert!(a.admit(ip("10.0.0.2"), l, CancellationToken::new()).is_ok());
        drop(s1);
        assert!(a.admit(ip("10.0.0.1"), l, CancellationToken::new()).is_ok());
        let t = a.take_tally();
        assert_eq!((t.per_source, t.last_source), (1, Some(ip("10.0.0.1"))));
        assert!(a.take_tally().is_empty());
    }

    #[test]
    fn ipv6_sources_count_per_64_and_mapped_ipv4_as_ipv4() {
        let a = Arc::new(Admission::default());
        let l = limits(100, 1, 100);
        let _s = a
            .admit(ip("2001:db8:1:2::1"), l, CancellationToken::new())
            .unwrap();
        assert!(a
            .admit(ip("2001:db8:1:2:ffff::9"), l, CancellationToken::new())
            .is_err());
        assert!(a
            .admit(ip("2001:db8:1:3::1"), l, CancellationToken::new())
            .is_ok());
        let _v4 = a
            .admit(ip("192.0.2.7"), l, CancellationToken::new())
            .unwrap();
        assert!(a
            .admit(ip("::ffff:192.0.2.7"), l, CancellationToken::new())
            .is_err());
    }

    #[test]
    fn past_the_unbound_share_the_oldest_unbound_connection_makes_room() {
        let a = Arc::new(Admission::default());
        let l = limits(10, 10, 2);
        let tokens: Vec<_> = (0..3).map(|_| CancellationToken::new()).collect();
        let first = a.admit(ip("10.0.0.1"), l, tokens[0].clone()).unwrap();
        let second = a.admit(ip("10.0.0.1"), l, tokens[1].clone()).unwrap();
        second.bound();
        let _third = a.admit(ip("10.0.0.1"), l, tokens[2].clone()).unwrap();
        assert!(!tokens[0].is_cancelled() && !tokens[2].is_cancelled());
        // Two unbound now (first, third): a fourth pushes out the oldest, first.
        let _fourth = a
            .admit(ip("10.0.0.1"), l, CancellationToken::new())
            .unwrap();
        assert!(tokens[0].is_cancelled());
        assert!(!tokens[1].is_cancelled() && !tokens[2].is_cancelled());
        assert_eq!(a.unbound(), 2);
        // Its place frees once its session has closed.
        assert_eq!(a.open(), 4);
        drop(first);
        assert_eq!(a.open(), 3);
        assert_eq!(a.take_tally().evicted, 1);
    }

    #[test]
    fn at_max_connections_an_unbound_one_makes_room_and_bound_ones_never_do() {
        let a = Arc::new(Admission::default());
        let l = limits(2, 10, 2);
        let bound: Vec<_> = (0..2)
            .map(|_| {
                let s = a
                    .admit(ip("10.0.0.1"), l, CancellationToken::new())
                    .unwrap();
                s.bound();
                s
            })
            .collect();
        assert_eq!(
            a.admit(ip("10.0.0.2"), l, CancellationToken::new()).err(),
            Some(Refused::MaxConnections)
        );
        assert_eq!(a.open(), 2, "a refused connection takes no place");
        drop(bound);
        let idle = CancellationToken::new();
        let _idle = a.admit(ip("10.0.0.1"), l, idle.clone()).unwrap();
        let b = a
            .admit(ip("10.0.0.1"), l, CancellationToken::new())
            .unwrap();
        b.bound();
        assert!(!idle.is_cancelled());
        // Full (2 open): the unbound one makes room.
        let _c = a
            .admit(ip("10.0.0.2"), l, CancellationToken::new())
            .unwrap();
        assert!(idle.is_cancelled());
        let t = a.take_tally();
        assert_eq!((t.max_connections, t.evicted), (1, 1));
    }
}
