//! A cluster's shape as `CLUSTER NODES` tells it: its nodes, and which one owns —
//! or, while its primary is down, stands in for — each partition.
//!
//! The expiry subscriber needs it because keyspace events are node-local: every
//! primary publishes only its own keys' `expired`/`hexpired`, a replica none until it
//! is promoted, so smppd listens on every node (`expiry::cluster`).

use redis::aio::MultiplexedConnection;
use redis::{ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisResult};

use crate::store::error::StoreError;
use crate::store::redis::connection::Conn;
use crate::store::redis::partition;

/// One node of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub id: String,
    pub host: String,
    pub port: u16,
    pub primary: bool,
    /// Neither `fail` nor `fail?` nor without an address: worth connecting to.
    pub healthy: bool,
    /// A replica's primary.
    pub primary_id: Option<String>,
    /// Slot ranges a primary serves (inclusive).
    slots: Vec<(u16, u16)>,
}

impl Node {
    /// `host:port`, the node's name in logs and in the subscriber's map.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    fn serves(&self, slot: u16) -> bool {
        self.slots.iter().any(|(a, b)| (*a..=*b).contains(&slot))
    }
}

#[derive(Debug, Clone, Default)]
pub struct Topology {
    pub nodes: Vec<Node>,
}

impl Topology {
    /// Asks one node of the cluster through the store's connection.
    pub async fn read(conn: &mut Conn) -> Result<Topology, StoreError> {
        let text: String = redis::from_redis_value(
            conn.on_any(redis::cmd("CLUSTER").arg("NODES").clone())
                .await?,
        )
        .map_err(redis::RedisError::from)?;
        Ok(Topology::parse(&text))
    }

    /// Asks the first of `conns` that answers within `timeout` (connections of
    /// its own: the cluster client may be the thing that is stuck).
    pub async fn read_any(
        conns: Vec<MultiplexedConnection>,
        timeout: std::time::Duration,
    ) -> Result<Topology, StoreError> {
        let mut last = None;
        for mut c in conns {
            let cmd = redis::cmd("CLUSTER").arg("NODES").clone();
            let ask = cmd.query_async::<String>(&mut c);
            match tokio::time::timeout(timeout, ask).await {
                Ok(Ok(text)) => return Ok(Topology::parse(&text)),
                Ok(Err(e)) => last = Some(StoreError::Redis(e)),
                Err(_) => last = Some(StoreError::Corrupt("CLUSTER NODES: no answer".into())),
            }
        }
        Err(last.unwrap_or_else(|| StoreError::Corrupt("no cluster node to ask".into())))
    }

    /// Each partition's primary if it is reachable: what the store's connection must
    /// route by.
    pub fn healthy_owners(&self) -> Vec<Option<String>> {
        (0..partition::COUNT)
            .map(|p| self.owner(p).filter(|n| n.healthy).map(Node::addr))
            .collect()
    }

    /// Parses `CLUSTER NODES`: `<id> <ip:port@cport[,host]> <flags> <primary> <ping>
    /// <pong> <epoch> <link> <slot>…`, a slot being `n`, `a-b`, or a `[…]` migration
    /// mark (skipped: the slot's owner is the node listing it plainly).
    pub fn parse(text: &str) -> Topology {
        let nodes = text
            .lines()
            .filter_map(|line| {
                let f: Vec<&str> = line.split_whitespace().collect();
                if f.len() < 8 {
                    return None;
                }
                let addr = f[1].split(['@', ',']).next()?;
                let (host, port) = addr.rsplit_once(':')?;
                let port: u16 = port.parse().ok()?;
                let flags: Vec<&str> = f[2].split(',').collect();
                let healthy = !host.is_empty()
                    && port != 0
                    && !flags
                        .iter()
                        .any(|x| matches!(*x, "fail" | "fail?" | "noaddr" | "handshake"));
                let slots = f[8..]
                    .iter()
                    .filter(|s| !s.starts_with('['))
                    .filter_map(|s| match s.split_once('-') {
                        Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
                        None => s.parse().ok().map(|n| (n, n)),
                    })
                    .collect();
                Some(Node {
                    id: f[0].to_owned(),
                    host: host.to_owned(),
                    port,
                    primary: flags.contains(&"master"),
                    healthy,
                    primary_id: (f[3] != "-").then(|| f[3].to_owned()),
                    slots,
                })
            })
            .collect();
        Topology { nodes }
    }

    /// The primary owning partition `p`'s slot, reachable or not.
    pub fn owner(&self, p: usize) -> Option<&Node> {
        let slot = partition::home_slot(p);
        self.nodes.iter().find(|n| n.primary && n.serves(slot))
    }

    /// The node whose events and shard messages cover partition `p`: its owner, or
    /// while the owner is down a replica of it (which publishes the partition's events
    /// once promoted, on the same connection).
    pub fn serving(&self, p: usize) -> Option<&Node> {
        let owner = self.owner(p)?;
        if owner.healthy {
            return Some(owner);
        }
        self.nodes
            .iter()
            .find(|n| n.healthy && n.primary_id.as_deref() == Some(owner.id.as_str()))
    }

    pub fn primaries(&self) -> usize {
        self.nodes.iter().filter(|n| n.primary).count()
    }
}

/// Connection facts for `node`: the seed URL's (credentials, TLS, database) with the
/// node's address.
pub fn node_info(seed_url: &str, node: &Node) -> RedisResult<ConnectionInfo> {
    let info = seed_url.into_connection_info()?;
    let addr = match info.addr() {
        ConnectionAddr::TcpTls {
            insecure,
            tls_params,
            ..
        } => ConnectionAddr::TcpTls {
            host: node.host.clone(),
            port: node.port,
            insecure: *insecure,
            tls_params: tls_params.clone(),
        },
        _ => ConnectionAddr::Tcp(node.host.clone(), node.port),
    };
    Ok(info.set_addr(addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODES: &str = "\
a1 127.0.0.1:7001@17001 myself,master - 0 0 1 connected 0-5460
b2 127.0.0.1:7002@17002 master - 0 1 2 connected 5461-10922 [10923->-c3]
c3 127.0.0.1:7003@17003 master,fail - 0 1 3 disconnected 10923-16383
d4 127.0.0.1:7004@17004,host4 slave c3 0 1 3 connected
e5 :0@0 slave,noaddr a1 0 1 1 disconnected
";

    #[test]
    fn owners_and_stand_ins_come_from_cluster_nodes() {
        let t = Topology::parse(NODES);
        assert_eq!(t.nodes.len(), 5);
        assert_eq!(t.primaries(), 3);
        let id = |n: Option<&Node>| n.map(|n| n.id.clone());
        assert_eq!(id(t.owner(0)), Some("a1".into()));
        assert_eq!(id(t.owner(5)), Some("a1".into()), "slot 5120");
        assert_eq!(id(t.owner(6)), Some("b2".into()), "slot 6144");
        assert_eq!(id(t.owner(15)), Some("c3".into()));
        assert!(t.owner(15).is_some_and(|n| !n.healthy));
        // c3 is down: its replica d4 stands in.
        assert_eq!(t.serving(15).map(Node::addr), Some("127.0.0.1:7004".into()));
        assert_eq!(id(t.serving(0)), Some("a1".into()));
        assert!(!t.nodes[4].healthy, "no address");
    }

    #[test]
    fn a_node_keeps_the_seeds_credentials() {
        let t = Topology::parse(NODES);
        let info = node_info("redis://user:secret@10.0.0.1:6379/", &t.nodes[1]).expect("a URL");
        assert_eq!(info.redis_settings().username(), Some("user"));
        assert_eq!(info.redis_settings().password(), Some("secret"));
        assert!(matches!(info.addr(), ConnectionAddr::Tcp(h, 7002) if h == "127.0.0.1"));
    }
}
