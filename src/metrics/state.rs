//! Metrics read at scrape time from their owner instead of being tracked in gauges:
//! binds from the session registry, message counts from Redis, the store's own
//! counters. Rendered in the Prometheus text format after the recorded metrics.

use std::fmt::Write;
use std::sync::LazyLock;
use std::time::Duration;

use crate::server::ServerHandle;
use crate::store::redis::partition;
use crate::store::{Counter, Store};

/// How long a scrape waits for Redis before leaving the Redis gauges out.
const REDIS_TIMEOUT: Duration = Duration::from_secs(1);

/// Counts of a partition's pending area, outbox and every account's receipt queue in
/// one round trip. Read-only; key names as in `store/redis/lua/`.
static COUNTS: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
local P = ARGV[1]
local g = tonumber(redis.call('HGET', P .. 'usage', 'g')) or 0
local out = {g + redis.call('ZCARD', P .. 'deadlines'), redis.call('ZCARD', P .. 'outbox')}
for _, a in ipairs(redis.call('SMEMBERS', P .. 'racc')) do
  out[#out + 1] = a
  out[#out + 1] = redis.call('ZCARD', P .. 'r:' .. a)
end
return out
"#,
    )
});

/// Pending messages, the outbox and the receipt queue of every account with receipts
/// queued (all nodes); also read by the admin API's `/api/stats`.
pub(crate) struct RedisCounts {
    pub(crate) pending: i64,
    pub(crate) outbox: i64,
    pub(crate) receipts: Vec<(String, i64)>,
}

/// The counts of every partition, summed (the partitions' calls go at once).
pub(crate) async fn redis_counts(store: &Store) -> Result<RedisCounts, String> {
    let calls = (0..partition::COUNT).map(|p| partition_counts(store, p));
    let parts = tokio::time::timeout(REDIS_TIMEOUT, futures::future::try_join_all(calls))
        .await
        .map_err(|_| format!("no answer within {REDIS_TIMEOUT:?}"))??;
    let mut total = RedisCounts {
        pending: 0,
        outbox: 0,
        receipts: Vec::new(),
    };
    let mut receipts: std::collections::BTreeMap<String, i64> = Default::default();
    for c in parts {
        total.pending += c.pending;
        total.outbox += c.outbox;
        for (a, n) in c.receipts {
            *receipts.entry(a).or_default() += n;
        }
    }
    total.receipts = receipts.into_iter().collect();
    Ok(total)
}

async fn partition_counts(store: &Store, p: usize) -> Result<RedisCounts, String> {
    let mut conn = store.redis();
    let prefix = partition::prefix(store.key_prefix(), p);
    let mut call = COUNTS.prepare_invoke();
    call.key(format!("{prefix}deadlines")).arg(&prefix);
    let reply: redis::Value = call
        .invoke_async(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    let redis::Value::Array(items) = reply else {
        return Err(format!("unexpected reply {reply:?}"));
    };
    let int = |v: &redis::Value| match v {
        redis::Value::Int(n) => Some(*n),
        _ => None,
    };
    let (Some(pending), Some(outbox)) = (items.first().and_then(int), items.get(1).and_then(int))
    else {
        return Err("unexpected reply".into());
    };
    let receipts = items
        .get(2..)
        .unwrap_or_default()
        .chunks(2)
        .filter_map(|pair| match pair {
            [redis::Value::BulkString(a), n] => {
                Some((String::from_utf8_lossy(a).into_owned(), int(n)?))
            }
            _ => None,
        })
        .collect();
    Ok(RedisCounts {
        pending,
        outbox,
        receipts,
    })
}

/// A label value with `\`, `"` and newlines escaped (text format 0.0.4).
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Appends the scrape-time metrics of this App to `out`.
pub(super) async fn render(out: &mut String, store: &Store, server: &ServerHandle) {
    binds(out, server);
    limits(out, server);
    redis_gauges(out, store).await;
    store_counters(out, store);
}

fn binds(out: &mut String, server: &ServerHandle) {
    const TYPES: [&str; 3] = ["transmitter", "receiver", "transceiver"];
    let mut counts = server.registry().bind_counts();
    // Every configured account shows, with 0 when nothing is bound, so a series does
    // not vanish when its last bind ends.
    for a in &server.config().accounts {
        if !counts.iter().any(|(id, _)| *id == a.system_id) {
            counts.push((a.system_id.clone(), [0; 3]));
        }
    }
    counts.sort();
    header(
        out,
        "smppd_binds",
        "gauge",
        "Live binds by account and bind type.",
    );
    for (account, n) in &counts {
        let account = label(account);
        for (t, n) in TYPES.iter().zip(n) {
            let _ = writeln!(
                out,
                "smppd_binds{{account=\"{account}\",bind_type=\"{t}\"}} {n}"
            );
        }
    }
}

/// The configured limits the gauges below are held against (alerts: "near the limit").
fn limits(out: &mut String, server: &ServerHandle) {
    let config = server.config();
    header(
        out,
        "smppd_store_max_pending",
        "gauge",
        "[redis] max_pending: messages in Redis (pending + outcome backlog) past which submits get ESME_RMSGQFUL.",
    );
    let _ = writeln!(out, "smppd_store_max_pending {}", config.redis.max_pending);
    header(
        out,
        "smppd_account_max_queued_receipts",
        "gauge",
        "The account's max_queued_receipts: receipts queued past which its submits get ESME_RMSGQFUL.",
    );
    let mut accounts: Vec<_> = config.accounts.iter().collect();
    accounts.sort_by(|a, b| a.system_id.cmp(&b.system_id));
    for a in accounts {
        let _ = writeln!(
            out,
            "smppd_account_max_queued_receipts{{account=\"{}\"}} {}",
            label(&a.system_id),
            a.max_queued_receipts
        );
    }
}

async fn redis_gauges(out: &mut String, store: &Store) {
    let counts = redis_counts(store).await;
    header(
        out,
        "smppd_redis_scrape_ok",
        "gauge",
        "1 if the Redis gauges of this scrape could be read, else 0 (they are then left out).",
    );
    let c = match counts {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!(error = %e, "metrics: redis counts unavailable");
            let _ = writeln!(out, "smppd_redis_scrape_ok 0");
            return;
        }
    };
    let _ = writeln!(out, "smppd_redis_scrape_ok 1");
    header(
        out,
        "smppd_pending_messages",
        "gauge",
        "Messages waiting for more segments or their deadline (all nodes).",
    );
    let _ = writeln!(out, "smppd_pending_messages {}", c.pending);
    header(
        out,
        "smppd_outcome_backlog",
        "gauge",
        "Finished messages in the outbox, not yet acknowledged by MongoDB (all nodes).",
    );
    let _ = writeln!(out, "smppd_outcome_backlog {}", c.outbox);
    header(
        out,
        "smppd_receipt_queue",
        "gauge",
        "Receipts queued for an account, waiting or being sent (all nodes).",
    );
    for (account, n) in &c.receipts {
        let _ = writeln!(
            out,
            "smppd_receipt_queue{{account=\"{}\"}} {n}",
            label(account)
        );
    }
}

fn store_counters(out: &mut String, store: &Store) {
    let counts = store.counts();
    let on_cluster = counts[Counter::ClusterPrimaries] > 0;
    for c in Counter::ALL
        .iter()
        .filter(|c| on_cluster || !c.cluster_only())
    {
        header(out, c.name(), c.kind(), c.help());
        let _ = writeln!(out, "{} {}", c.name(), c.metric_value(counts[*c]));
    }
}

#[cfg(test)]
mod tests {
    use super::label;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
