//! query_sm, cancel_sm and replace_sm on top of the store.
//!
//! A message_id names its partition, and a multi-part segment's its group (or points
//! to it: `P{t}:m:<message_id>` for the decimal and short formats); it is found there
//! while its message is in Redis (pending, or finished and waiting for MongoDB), and
//! through the outcome document's `segments.message_id` index afterwards.

pub(crate) mod cancel_all;

use bytes::Bytes;
use mongodb::bson::Document;
use smpp_protocol::receipt::ReceiptStat;
use smpp_protocol::udh::parse_udh;

use crate::service::{AccountPolicy, Address, ExpiryMode, QueryAnswer, ServiceError};
use crate::store::model::address_key;
use crate::store::model::outcome::{datetime, OutcomeState};
use crate::store::redis::partition;
use crate::store::redis::scripts::ops::{
    CancelFilter, CancelReply, Owner, QueryReply, ReplaceReply, Replacement,
};
use crate::store::submit::accept::{check_segment_octets, deadline, limit_reached};
use crate::store::{Inner, StoreError};

pub const ESME_RINVMSGID: u32 = 0x0C;
pub const ESME_RCANCELFAIL: u32 = 0x11;
pub const ESME_RREPLACEFAIL: u32 = 0x13;

fn rejected(status: u32, reason: impl Into<String>) -> ServiceError {
    ServiceError::Rejected {
        status,
        reason: reason.into(),
    }
}

/// `address_key`, or empty (= any source) when the request left source_addr empty.
fn source_filter(source: &Address) -> String {
    if source.addr.is_empty() {
        String::new()
    } else {
        address_key(source)
    }
}

fn state_from_redis(s: &str, mode_partial: bool) -> OutcomeState {
    match s {
        "complete" => OutcomeState::Delivered,
        "cancelled" => OutcomeState::Cancelled,
        _ if mode_partial => OutcomeState::Partial,
        _ => OutcomeState::Expired,
    }
}

impl Inner {
    /// See [`crate::store::Store::redis_state`]. Two reads, not one script: a view for
    /// operators, which may be a step behind a message that changes meanwhile.
    pub(crate) async fn redis_state(
        &self,
        message_id: &str,
    ) -> Result<Option<crate::store::RedisState>, StoreError> {
        let Some(p) = partition::of_message_id(message_id) else {
            return Ok(None);
        };
        let pre = partition::prefix(self.prefix(), p);
        let mut conn = self.conn();
        let (gid, pending) = match self.named_group(p, message_id).await? {
            Some((gid, _)) => {
                let pending = self.pending_group(p, &gid).await?;
                (gid, pending.is_some())
            }
            None => (message_id.to_owned(), false),
        };
        if pending {
            return Ok(Some(crate::store::RedisState::Pending));
        }
        let state: Option<String> = redis::cmd("HGET")
            .arg(format!("{pre}d:{gid}"))
            .arg("state")
            .query_async(&mut conn)
            .await?;
        // Waiting for its time, its deliveries, or its outcome with their results:
        // not final yet as far as an operator can tell.
        Ok(state.map(|s| match s.as_str() {
            "sched" | "routed" | "done" => crate::store::RedisState::Pending,
            _ => crate::store::RedisState::Finished(s),
        }))
    }

    pub(crate) async fn query(
        &self,
        system_id: &str,
        message_id: &str,
        source: &Address,
    ) -> Result<QueryAnswer, ServiceError> {
        let src = source_filter(source);
        let owner = Owner {
            account: system_id,
            source: &src,
        };
        let reply = match partition::of_message_id(message_id) {
            Some(p) => self
                .scripts
                .query(&mut self.conn(), p, message_id, &owner)
                .await
                .map_err(ServiceError::from)?,
            // Not an id this store gave: MongoDB may still know it (below).
            None => QueryReply::Unknown,
        };
        match reply {
            QueryReply::Unknown => {}
            QueryReply::Pending => {
                return Ok(QueryAnswer {
                    message_id: message_id.to_owned(),
                    message_state: ReceiptStat::Enroute.message_state(),
                    final_date: None,
                    error_code: 0,
                })
            }
            QueryReply::Final {
                state,
                finished_ms,
                delivery,
                ..
            } if state == "done" => {
                // A forwarded message whose deliveries ended: this segment's result
                // (none: its delivery deadline came first).
                let (state, error_code, at) = match delivery.as_bytes() {
                    b"" => (OutcomeState::Expired, 0, finished_ms),
                    v => {
                        let r = crate::store::model::DeliveryResult::decode(v)
                            .map_err(ServiceError::from)?;
                        let err = if r.delivered() { 0 } else { r.status };
                        (OutcomeState::of_stat(r.stat), err, r.at_ms)
                    }
                };
                return Ok(QueryAnswer {
                    message_id: message_id.to_owned(),
                    message_state: state.receipt_stat().message_state(),
                    final_date: Some(datetime(at)),
                    error_code: u8::try_from(error_code).unwrap_or(u8::MAX),
                });
            }
            QueryReply::Final {
                state,
                finished_ms,
                expiry_code,
                ..
            } => {
                // Finished, its outcome not yet in MongoDB. A single-part message
                // has no expiry mode and is never partial.
                let partial = !expiry_code.is_empty()
                    && crate::store::model::expiry_mode(Some(expiry_code.as_bytes()))
                        == ExpiryMode::DeliverPartial;
                let state = state_from_redis(&state, partial);
                return Ok(QueryAnswer {
                    message_id: message_id.to_owned(),
                    message_state: state.receipt_stat().message_state(),
                    final_date: Some(datetime(finished_ms)),
                    error_code: 0,
                });
            }
        }
        let doc = self
            .outcomes
            .find_by_message_id(system_id, message_id)
            .await
            .map_err(ServiceError::from)?;
        match doc {
            Some(d) if source_matches(&d, source) => answer_from_document(message_id, &d),
            _ => Err(rejected(ESME_RINVMSGID, "unknown message_id")),
        }
    }

    pub(crate) async fn cancel(
        &self,
        system_id: &str,
        message_id: &str,
        source: &Address,
        dest: Option<&Address>,
        service_type: &str,
    ) -> Result<(), ServiceError> {
        if message_id.is_empty() {
            if source.addr.is_empty() {
                return Err(rejected(
                    ESME_RCANCELFAIL,
                    "cancel_sm without message_id needs source_addr",
                ));
            }
            let n = self
                .cancel_matching(
                    system_id,
                    source,
                    dest,
                    (!service_type.is_empty()).then_some(service_type),
                )
                .await
                .map_err(ServiceError::from)?;
            return if n == 0 {
                Err(rejected(ESME_RCANCELFAIL, "no pending message matched"))
            } else {
                Ok(())
            };
        }
        let src = source_filter(source);
        let owner = Owner {
            account: system_id,
            source: &src,
        };
        let Some(p) = partition::of_message_id(message_id) else {
            return Err(rejected(ESME_RCANCELFAIL, "unknown message_id"));
        };
        let reply = self
            .scripts
            .cancel(&mut self.conn(), p, message_id, &owner, &CancelFilter::ANY)
            .await
            .map_err(ServiceError::from)?;
        match reply {
            CancelReply::Cancelled => {
                self.finished(p);
                Ok(())
            }
            CancelReply::Final => Err(rejected(ESME_RCANCELFAIL, "message is already final")),
            CancelReply::Unknown => Err(rejected(ESME_RCANCELFAIL, "unknown message_id")),
        }
    }

    pub(crate) async fn replace(
        &self,
        account: &AccountPolicy,
        message_id: &str,
        source: &Address,
        registered_delivery: u8,
        validity_period: Bytes,
        short_message: Bytes,
    ) -> Result<(), ServiceError> {
        // replace_sm has no esm_class: a segment of a UDH-concatenated message carries
        // its UDH in the new short_message too, and it is stripped as on submit.
        let system_id = account.system_id.as_str();
        check_segment_octets(account, short_message.len())?;
        // A new validity is capped by the account's max_validity, as on submit (the
        // field is set, so its default does not apply).
        let new_deadline = if validity_period.is_empty() {
            None
        } else {
            Some(deadline(&validity_period, account, self.clock.now())?.timestamp_millis())
        };
        let Some(p) = partition::of_message_id(message_id) else {
            return Err(rejected(ESME_RREPLACEFAIL, "unknown message_id"));
        };
        let user_data = self
            .strip_udh_like_original(p, message_id, &short_message)
            .await?;
        let src = source_filter(source);
        let owner = Owner {
            account: system_id,
            source: &src,
        };
        let new = Replacement {
            user_data_offset: short_message.len().saturating_sub(user_data.len()),
            short_message: &short_message,
            registered_delivery,
            deadline_ms: new_deadline,
            max_pending_bytes: self.settings.max_pending_bytes,
            account_max_pending_bytes: account.limits.max_pending_bytes,
        };
        let reply = self
            .scripts
            .replace(&mut self.conn(), p, message_id, &owner, &new)
            .await
            .map_err(ServiceError::from)?;
        match reply {
            // A new deadline reaches every node's timer heap through `P:armed`.
            ReplaceReply::Replaced => Ok(()),
            ReplaceReply::Final => Err(rejected(ESME_RREPLACEFAIL, "message is already final")),
            ReplaceReply::Expired => Err(rejected(
                crate::store::submit::accept::ESME_RINVEXPIRY,
                "validity_period is already past",
            )),
            ReplaceReply::Unknown => Err(rejected(ESME_RREPLACEFAIL, "unknown message_id")),
            ReplaceReply::Full(limit) => Err(limit_reached(system_id, limit)),
        }
    }

    /// The gid and seq a multi-part segment's message_id names: its hex form names
    /// them, a decimal or short one points to that form (`P:m:<id>`). `None` for a
    /// single-part message's id (its own gid) or one not in Redis.
    async fn named_group(
        &self,
        p: usize,
        message_id: &str,
    ) -> Result<Option<(String, Option<u8>)>, StoreError> {
        let hex = message_id.bytes().all(|b| b.is_ascii_hexdigit());
        let named = match message_id.len() {
            partition::SEGMENT_ID_LEN if hex => Some(message_id.to_owned()),
            partition::MESSAGE_ID_LEN if hex => None,
            _ => {
                redis::cmd("GET")
                    .arg(format!(
                        "{}m:{message_id}",
                        partition::prefix(self.prefix(), p)
                    ))
                    .query_async(&mut self.conn())
                    .await?
            }
        };
        Ok(named.and_then(|n| {
            let (gid, seq) = n.split_at_checked(partition::GROUP_ID_LEN)?;
            Some((gid.to_owned(), u8::from_str_radix(seq, 16).ok()))
        }))
    }

    /// Message `gid`'s pending value, if it is still pending: its head and the value.
    async fn pending_group(
        &self,
        p: usize,
        gid: &str,
    ) -> Result<Option<(crate::store::model::pending::PendingHead, Vec<u8>)>, StoreError> {
        let Some(id) = gid.get(2..15) else {
            return Ok(None);
        };
        let v: Option<Vec<u8>> = redis::cmd("GET")
            .arg(format!("{}g:{id}", partition::prefix(self.prefix(), p)))
            .query_async(&mut self.conn())
            .await?;
        let Some(v) = v else { return Ok(None) };
        let head = crate::store::model::pending::PendingHead::parse(&v)?;
        Ok((head.gid(id) == gid).then_some((head, v)))
    }

    /// The user data of a replacement: without its UDH when the segment it replaces
    /// was sent with UDHI. That UDH must name the same segment — reference, total,
    /// seq and 8/16-bit form — or the replacement is refused (ESME_RREPLACEFAIL): a
    /// segment cannot move to another place or message by replace_sm.
    async fn strip_udh_like_original(
        &self,
        p: usize,
        message_id: &str,
        short_message: &Bytes,
    ) -> Result<Vec<u8>, ServiceError> {
        let mut original = None;
        if let Some((gid, seq)) = self
            .named_group(p, message_id)
            .await
            .map_err(ServiceError::from)?
        {
            if let Some((head, v)) = self
                .pending_group(p, &gid)
                .await
                .map_err(ServiceError::from)?
            {
                let seg = crate::store::model::pending::segments(&v)
                    .map_err(ServiceError::from)?
                    .into_iter()
                    .find(|s| Some(s.seq) == seq);
                original = seg.map(|s| (head.gk, s.data));
            }
        }
        // The original segment as received: its UDH, if its message is
        // UDH-concatenated (the group key says so).
        let original = original
            .filter(|(gk, _)| {
                crate::store::model::GroupMeta::from_key(gk, "", ExpiryMode::DeliverPartial)
                    .is_ok_and(|m| {
                        matches!(
                            m.scheme,
                            Some(
                                crate::service::ConcatScheme::Udh8
                                    | crate::service::ConcatScheme::Udh16
                            )
                        )
                    })
            })
            .map(|(_, seg)| seg);
        let Some(original) = original else {
            return Ok(short_message.to_vec());
        };
        let concat_of = |b: &[u8]| {
            parse_udh(b)
                .ok()
                .and_then(|(u, _)| u.concat().ok().flatten())
        };
        let (udh, rest) = parse_udh(short_message)
            .map_err(|e| rejected(e.command_status(), format!("replace_sm UDH: {e:?}")))?;
        let new = udh
            .concat()
            .map_err(|e| rejected(e.command_status(), format!("replace_sm UDH: {e:?}")))?;
        let old = concat_of(&original.raw);
        if new.is_none() || new != old {
            return Err(rejected(
                ESME_RREPLACEFAIL,
                format!(
                    "replace_sm UDH names another segment ({new:?}) than the one it replaces ({old:?})"
                ),
            ));
        }
        Ok(rest.to_vec())
    }
}

fn source_matches(d: &Document, source: &Address) -> bool {
    if source.addr.is_empty() {
        return true;
    }
    d.get_document("source")
        .ok()
        .and_then(|s| s.get_str("addr").ok())
        .is_some_and(|a| a == source.addr)
}

fn answer_from_document(message_id: &str, d: &Document) -> Result<QueryAnswer, ServiceError> {
    let state = d
        .get_str("state")
        .ok()
        .and_then(OutcomeState::parse)
        .ok_or_else(|| {
            ServiceError::from(StoreError::Corrupt("outcome document without state".into()))
        })?;
    let mut final_date = d
        .get_datetime("completed_at")
        .ok()
        .map(|t| datetime(t.timestamp_millis()));
    // A forwarded message: this segment's own delivery state and error.
    let seg = d.get_array("segments").ok().and_then(|segs| {
        segs.iter()
            .filter_map(|s| s.as_document())
            .find(|s| s.get_str("message_id").ok() == Some(message_id))
    });
    if let Some(dl) = seg.and_then(|s| s.get_document("delivery").ok()) {
        let state = dl
            .get_str("state")
            .ok()
            .and_then(OutcomeState::parse)
            .unwrap_or(state);
        if let Ok(at) = dl.get_datetime("at") {
            final_date = Some(datetime(at.timestamp_millis()));
        }
        return Ok(QueryAnswer {
            message_id: message_id.to_owned(),
            message_state: state.receipt_stat().message_state(),
            final_date,
            error_code: u8::try_from(dl.get_i64("error").unwrap_or(0)).unwrap_or(u8::MAX),
        });
    }
    Ok(QueryAnswer {
        message_id: message_id.to_owned(),
        message_state: state.receipt_stat().message_state(),
        final_date,
        error_code: 0,
    })
}
