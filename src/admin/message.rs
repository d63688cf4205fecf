//! Where a message is, by any of its segments' message_ids, without knowing its
//! account (query_sm needs the account and the source address).
//!
//! The outcome document when MongoDB has it; before that, the message's state in
//! Redis (`Store::redis_state`): `ENROUTE` while segments are to come, or its final
//! state while the outcome is on its way (`final` true, no `outcome`). An id neither
//! holds is `pending_or_unknown` (a moment between the two, or never given).

use std::time::Duration;

use mongodb::bson::{doc, Bson, Document};

use super::api::{Address, Message, Outcome, Segment};
use crate::store::{RedisState, Store};

/// How long a lookup waits for MongoDB.
const MONGO_TIMEOUT: Duration = Duration::from_secs(5);
/// What a message_id may look like before it is sent to MongoDB: smppd's own are 20
/// hex characters; anything an ESME could be given fits this.
const MAX_ID_LEN: usize = 64;

/// `state` of a message whose outcome is not in MongoDB.
pub const PENDING_OR_UNKNOWN: &str = "pending_or_unknown";

/// Whether `id` can be a message_id (checked before any query).
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The state of message `message_id`. Err: MongoDB failed or timed out.
pub async fn lookup(store: &Store, message_id: &str) -> Result<Message, String> {
    let find = store
        .outcomes()
        .find_one(doc! { "segments.message_id": message_id });
    let found = tokio::time::timeout(MONGO_TIMEOUT, find)
        .await
        .map_err(|_| format!("MongoDB did not answer within {MONGO_TIMEOUT:?}"))?
        .map_err(|e| format!("MongoDB: {e}"))?;
    if let Some(d) = found {
        return Ok(finished(message_id, &d));
    }
    let (state, is_final) = match store
        .redis_state(message_id)
        .await
        .map_err(|e| format!("Redis: {e}"))?
    {
        Some(RedisState::Pending) => ("ENROUTE".to_owned(), false),
        Some(RedisState::Finished(s)) => (redis_final(&s).to_owned(), true),
        None => (PENDING_OR_UNKNOWN.to_owned(), false),
    };
    Ok(Message {
        message_id: message_id.to_owned(),
        state,
        is_final,
        outcome: None,
    })
}

/// A finished message's Redis state as the outcome document will name it (an
/// expired one is `EXPIRED` or `PARTIAL` by its account's mode; Redis says expired).
fn redis_final(state: &str) -> &'static str {
    match state {
        "complete" => "DELIVERED",
        "cancelled" => "CANCELLED",
        _ => "EXPIRED",
    }
}

/// An outcome document (`store/model/outcome.rs`, `outcome_document`) as the API shows it.
fn finished(message_id: &str, d: &Document) -> Message {
    let str_of = |d: &Document, k: &str| d.get_str(k).unwrap_or_default().to_owned();
    let int_of = |v: Option<&Bson>| match v {
        Some(Bson::Int32(n)) => u32::try_from(*n).unwrap_or(0),
        Some(Bson::Int64(n)) => u32::try_from(*n).unwrap_or(0),
        Some(Bson::Double(n)) => *n as u32,
        _ => 0,
    };
    let time_of = |d: &Document, k: &str| {
        d.get_datetime(k)
            .ok()
            .and_then(|t| chrono::DateTime::from_timestamp_millis(t.timestamp_millis()))
    };
    let address = |k: &str| {
        let a = d.get_document(k).ok();
        Address {
            ton: a.map_or(0, |a| int_of(a.get("ton")) as u8),
            npi: a.map_or(0, |a| int_of(a.get("npi")) as u8),
            addr: a.map(|a| str_of(a, "addr")).unwrap_or_default(),
        }
    };
    let segments = d
        .get_array("segments")
        .map(|a| {
            a.iter()
                .filter_map(Bson::as_document)
                .map(|s| Segment {
                    seq: int_of(s.get("seq")),
                    message_id: str_of(s, "message_id"),
                    received_at: time_of(s, "received_at"),
                })
                .collect()
        })
        .unwrap_or_default();
    let missing = d
        .get_array("missing")
        .map(|a| a.iter().map(|v| int_of(Some(v))).collect())
        .unwrap_or_default();
    Message {
        message_id: message_id.to_owned(),
        state: str_of(d, "state"),
        is_final: true,
        outcome: Some(Outcome {
            group_id: str_of(d, "_id"),
            account: str_of(d, "account"),
            source: address("source"),
            dest: address("dest"),
            total: int_of(d.get("total")),
            segments,
            missing,
            submitted_at: time_of(d, "submitted_at"),
            deadline: time_of(d, "deadline"),
            completed_at: time_of(d, "completed_at"),
            node: str_of(d, "node"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked_before_a_query() {
        assert!(valid_id("0000000100000000002A"));
        assert!(!valid_id(""));
        assert!(!valid_id("a b"));
        assert!(!valid_id("{\"$ne\":1}"));
        assert!(!valid_id(&"A".repeat(65)));
    }

    #[test]
    fn an_outcome_document_maps_to_the_api() {
        let t = mongodb::bson::DateTime::from_millis(1_700_000_000_000);
        let d = doc! {
            "_id": "G1", "account": "acme", "service_type": "",
            "source": { "ton": 5, "npi": 0, "addr": "SENDER" },
            "dest": { "ton": 1, "npi": 1, "addr": "4917" },
            "scheme": "udh8", "reference": 42, "total": 2, "state": "PARTIAL",
            "segments": [{ "seq": 1, "message_id": "G1", "received_at": t, "text": "hi" }],
            "missing": [2], "submitted_at": t, "deadline": t, "completed_at": t,
            "node": "n1", "text": "secret text",
        };
        let m = finished("G1", &d);
        assert_eq!(m.state, "PARTIAL");
        assert!(m.is_final);
        let o = m.outcome.expect("a finished message has its outcome");
        assert_eq!(o.total, 2);
        assert_eq!(o.missing, vec![2]);
        assert_eq!(o.segments[0].message_id, "G1");
        assert_eq!(o.source.addr, "SENDER");
        assert_eq!(o.dest.ton, 1);
        assert_eq!(o.submitted_at.map(|t| t.timestamp()), Some(1_700_000_000));
        let json = serde_json::to_string(&o).expect("serializes");
        assert!(!json.contains("secret text"), "no message text: {json}");
    }
}
