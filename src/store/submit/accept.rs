//! Accepting a segment: its deadline, its message_id, and one Lua script that stores
//! it (and finishes the message when it was the last segment).
//!
//! The answer comes only after Redis acknowledged the script, so ESME_ROK means the
//! segment is in Redis memory and in the AOF buffer, fsynced within a second
//! (`appendfsync everysec`; see ARCHITECTURE.md for that window).
//!
//! A segment number seen twice in a pending message is not stored again; the second
//! submit gets ESME_ROK with the *first* submit's message_id, as an ESME that resends
//! after a lost submit_sm_resp expects.

use chrono::{DateTime, Utc};
use smpp_protocol::time::parse_time;

use crate::service::{AccountPolicy, AfterResponse, ServiceError, SubmitAccepted, SubmitRequest};
use crate::store::model::outcome::{receipts, QueuedReceipt, ReceiptStub};
use crate::store::model::{
    expiry_mode_code, group_key, FinishKind, FinishedGroup, FinishedSegment, GroupMeta,
    StoredSegment,
};
use crate::store::receipts::lease::Held;
use crate::store::redis::partition;
use crate::store::redis::scripts::submit::{Limit, SubmitKind, SubmitRecord, SubmitReply};
use crate::store::redis::scripts::ReceiptEntry;
use crate::store::{Inner, StoreError};

/// ESME_RINVEXPIRY
pub const ESME_RINVEXPIRY: u32 = 0x62;
/// ESME_RINVMSGLEN
pub const ESME_RINVMSGLEN: u32 = 0x01;

fn invalid_expiry(reason: impl Into<String>) -> ServiceError {
    ServiceError::Rejected {
        status: ESME_RINVEXPIRY,
        reason: reason.into(),
    }
}

/// The deadline of a message whose first segment carries `validity_period`, `now`
/// being Redis time: absolute, or relative to now, or the account's default when
/// empty; capped at the account's maximum. Malformed or not in the future →
/// ESME_RINVEXPIRY.
pub fn deadline(
    validity_period: &[u8],
    policy: &AccountPolicy,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, ServiceError> {
    let default = chrono::Duration::from_std(policy.default_validity)
        .map_err(|_| invalid_expiry("default validity out of range"))?;
    let max = chrono::Duration::from_std(policy.max_validity)
        .map_err(|_| invalid_expiry("max validity out of range"))?;
    let wanted = match parse_time(validity_period)
        .map_err(|e| invalid_expiry(format!("validity_period: {e}")))?
    {
        None => now + default,
        Some(t) => t
            .resolve(now)
            .ok_or_else(|| invalid_expiry("validity_period out of range"))?,
    };
    if wanted <= now {
        return Err(invalid_expiry("validity_period is already past"));
    }
    Ok(wanted.min(now + max))
}

/// When a message with this `schedule_delivery_time` may first be delivered (ms,
/// Redis time): `None` for none or one already past; after its `deadline` (or at it)
/// → ESME_RINVSCHED. Its format was checked by the codec.
pub fn schedule(
    schedule_delivery_time: &[u8],
    now: DateTime<Utc>,
    deadline: DateTime<Utc>,
) -> Result<Option<i64>, ServiceError> {
    let invalid = |reason: &str| ServiceError::Rejected {
        status: smpp_protocol::CommandStatus::ESME_RINVSCHED.0,
        reason: reason.into(),
    };
    let Some(t) = parse_time(schedule_delivery_time)
        .map_err(|e| invalid(&format!("schedule_delivery_time: {e}")))?
    else {
        return Ok(None);
    };
    let at = t
        .resolve(now)
        .ok_or_else(|| invalid("schedule_delivery_time out of range"))?;
    if at >= deadline {
        return Err(invalid(
            "schedule_delivery_time is not before the message's validity ends",
        ));
    }
    Ok((at > now).then(|| at.timestamp_millis()))
}

/// ESME_RINVMSGLEN when `len` octets of user data are more than the account allows in
/// one segment (submit and replace alike).
pub(crate) fn check_segment_octets(
    account: &AccountPolicy,
    len: usize,
) -> Result<(), ServiceError> {
    let max_octets = account.limits.max_segment_octets;
    if len <= max_octets {
        return Ok(());
    }
    crate::metrics::refused(&account.system_id, "segment_size");
    Err(ServiceError::Rejected {
        status: ESME_RINVMSGLEN,
        reason: format!(
            "{len} octets of user data in one segment, the account allows {max_octets} (max_segment_octets)"
        ),
    })
}

/// ESME_RMSGQFUL for a limit of held messages, octets or receipts, counted in the
/// metrics and naming its setting.
pub(crate) fn limit_reached(account: &str, limit: Limit) -> ServiceError {
    crate::metrics::refused(account, limit.as_str());
    ServiceError::QueueFull(format!(
        "{} limit reached ({})",
        limit.as_str(),
        limit.setting()
    ))
}

impl Inner {
    pub(crate) async fn submit(&self, req: SubmitRequest) -> Result<SubmitAccepted, ServiceError> {
        check_segment_octets(&req.policy, req.raw_user_data.len())?;
        if let Some(status) = req.simulate.as_ref().and_then(|p| p.submit_error()) {
            return Err(ServiceError::Rejected {
                status,
                reason: "a submit error of the route's [[simulate]] profile".into(),
            });
        }
        let now = self.clock.now();
        let deadline = deadline(&req.validity_period, &req.policy, now)?;
        if req.replace_if_present && req.concat.is_none_or(|c| c.total <= 1) {
            // The message it replaces ends DELETED (its receipts say so); then this one
            // is stored as any other. Not atomic with the store: a submit of the same
            // pair meanwhile is not replaced. A multi-part message replaces nothing (its
            // own earlier segments would match).
            let n = self
                .cancel_matching(
                    &req.policy.system_id,
                    &req.source,
                    Some(&req.dest),
                    Some(&req.service_type),
                )
                .await
                .map_err(ServiceError::from)?;
            if n > 0 {
                tracing::debug!(replaced = n, "replace_if_present");
            }
        }
        let schedule_ms = schedule(&req.schedule_delivery_time, now, deadline)?;
        let meta = GroupMeta::of(&req);
        // A single-part message is its own group, named after its message_id; its
        // group key is only stored (its facts), never looked up.
        let gk = group_key(&meta);
        let (part, message_id, hex_id) = self
            .next_message_id(
                (meta.total > 1).then(|| partition::of_group(&gk)),
                req.policy.message_id_format,
            )
            .await?;
        let seq = req.concat.filter(|c| c.total > 1).map_or(1, |c| c.seq);
        let segment = StoredSegment::from_request(&req);
        let single = meta.total == 1;
        // Simulated (`[[simulate]]`): its end is picked now, from the profile's seed
        // and the message (its message_id, or for a multi-part one its group key,
        // which all its segments share), and comes that long after it is complete.
        let sim = req.simulate.as_ref().map(|p| {
            let picked = p.pick(if single { &message_id } else { &gk });
            format!(
                "{} {} {}",
                crate::store::model::stat_letter(picked.stat),
                picked.err,
                picked.delay_ms
            )
        });
        // Forwarded, scheduled or simulated: not in the outbox yet (a forwarded one
        // waits for its delivery, the others for their time; none is finished on
        // arrival).
        let forwarded = req.forward_to.is_some() || schedule_ms.is_some() || sim.is_some();
        // Either way the facts are the group key plus the service_type, and the
        // segment binary (see SUBMIT): a single-part message is written as a finished
        // message hash holding its record, a multi-part one's segment appended to its
        // message's pending value.
        let account = meta.account.clone();
        let at_ms = self.clock.now_ms();
        let (record_tail, kind) = if single {
            // Its receipt goes in below, once its finished form is built.
            let kind = SubmitKind::Single {
                at_ms,
                receipt: None,
            };
            (segment.record_tail(), kind)
        } else {
            // A multi-part segment goes packed as its pending value holds it; an id
            // of the decimal or short format is kept with it (it cannot name its
            // message).
            let own = (message_id != hex_id).then_some(message_id.as_str());
            let (flags, packed) = crate::store::model::pending::packed_segment(&segment, own);
            let kind = SubmitKind::Part {
                expiry_code: expiry_mode_code(meta.expiry_mode),
                group_ids: crate::store::model::pending::group_ids(&gk),
                unique: hex_id,
                octets: segment.record_len(),
                flags,
                notify: None,
            };
            (packed, kind)
        };
        let mut record = SubmitRecord {
            part,
            gk,
            seq,
            total: meta.total,
            message_id: message_id.clone(),
            deadline_ms: deadline.timestamp_millis(),
            service_type: meta.service_type.clone(),
            record_tail,
            account: account.clone(),
            limits: req.policy.limits,
            forward_to: req.forward_to.clone(),
            forward_reassembled: req.forward_reassembled,
            schedule_ms,
            sim,
            protocol_id: req.protocol_id,
            priority: req.priority_flag,
            kind,
        };
        let seg = FinishedSegment {
            seq,
            message_id: message_id.clone(),
            received_ms: at_ms,
            data: segment,
            delivery: None,
        };
        // What SUBMIT queues held with the segment, sent once its submit_sm_resp is
        // queued (see ready.rs): a simulated segment's intermediate notification, or a
        // single-part message's receipt (or delivery).
        let mut owed = match &req.simulate {
            Some(p) if p.intermediate => notification(&meta, &seg, at_ms)?,
            _ => None,
        };
        if single {
            // Complete on arrival: its receipt is built now and queued by the same
            // script (see SUBMIT), with the time the stored record carries.
            let group = FinishedGroup {
                gid: message_id.clone(),
                meta,
                deadline_ms: deadline.timestamp_millis(),
                submitted_ms: at_ms,
                finished_ms: at_ms,
                // Forwarded: its delivery is queued in its place, and it waits
                // for that (not in the outbox).
                kind: if req.forward_to.is_some() {
                    FinishKind::Routed
                } else {
                    FinishKind::Complete
                },
                node: self.node().to_owned(),
                segments: vec![seg],
                forward_to: req.forward_to.clone(),
                partial: false,
                simulated: false,
                reassembled: false,
                protocol_id: req.protocol_id,
                priority: req.priority_flag,
            };
            // One segment, one receipt (or delivery) at most: kept to be sent from
            // memory, by the worker of the account whose queue it joins. A scheduled
            // or simulated one owes nothing yet: the releaser builds it at its time.
            if schedule_ms.is_none() && req.simulate.is_none() {
                owed = receipts(&group)
                    .map_err(internal)?
                    .into_iter()
                    .next()
                    .map(|(id, r)| Owed::new(id, r));
            }
            record.kind = SubmitKind::Single {
                at_ms,
                receipt: owed.as_ref().map(Owed::entry).transpose()?,
            };
            // Known before it is stored, so that no lease can find it in the outbox
            // first; dropped again below unless the script stored it. A forwarded
            // one is not in the outbox until its delivery ended.
            if !forwarded {
                self.known.put(group);
            }
        } else if let SubmitKind::Part { notify, .. } = &mut record.kind {
            *notify = owed.as_ref().map(Owed::entry).transpose()?;
        }
        let node_id = message_id.clone();
        let reply = self.submits.submit(record).await;
        if single && !forwarded && !matches!(reply, Ok(SubmitReply::Single { .. })) {
            // Not stored: nothing for the lease to take.
            self.known.take(&message_id);
        }
        match reply? {
            // A new deadline reaches every node's timer heap through `P:armed`.
            SubmitReply::Stored {
                held_until,
                message_id,
            } => {
                let owed = owed.map(|o| o.renamed(&node_id, &message_id));
                let mut accepted = SubmitAccepted::new(message_id);
                accepted.after_response = self.release_held(owed, held_until);
                Ok(accepted)
            }
            SubmitReply::Single {
                held_until,
                message_id: own,
            } => {
                // A multi-part segment's id comes from the script (it names its group).
                let owed = match &own {
                    Some(id) => owed.map(|o| o.renamed(&node_id, id)),
                    None => owed,
                };
                let message_id = own.unwrap_or(message_id);
                // Its receipt is queued already (held until the response is queued:
                // see ready.rs); only the outcome writer has work, and it has the
                // message in memory (`known`) rather than reading it back.
                if !forwarded {
                    self.finisher_wake.wake(part);
                }
                let mut accepted = SubmitAccepted::new(message_id);
                accepted.after_response = self.release_held(owed, held_until);
                Ok(accepted)
            }
            SubmitReply::Completed { group, message_id } => {
                self.finisher_wake.wake(part);
                let mut accepted = SubmitAccepted::new(message_id);
                // The group's data came back with the answer: to the releaser once
                // this response is queued (no receipt may overtake it).
                let completed = self.completed.clone();
                accepted.after_response = Some(AfterResponse::new(move || completed.push(group)));
                Ok(accepted)
            }
            SubmitReply::Duplicate { message_id } => Ok(SubmitAccepted::new(message_id)),
            SubmitReply::Full(limit) => Err(limit_reached(&account, limit)),
            SubmitReply::Expired => Err(invalid_expiry("validity_period is already past")),
            SubmitReply::Failed(e) => Err(StoreError::Script(e).into()),
        }
    }
}

impl Inner {
    /// Once the response is queued, the receipt SUBMIT queued held (`held_until`)
    /// goes to the ready queue: sent from memory or made due (see ready.rs).
    fn release_held(&self, owed: Option<Owed>, held_until: Option<i64>) -> Option<AfterResponse> {
        let (owed, held_until) = (owed?, held_until?);
        let held = Held {
            account: owed.account,
            id: owed.id,
            held_until,
            receipt: Some(owed.receipt),
        };
        let queue = self.ready.clone();
        Some(AfterResponse::new(move || queue.push(held)))
    }
}

/// A receipt SUBMIT queues held with a segment: the account whose queue it joins
/// (the receiver's, for a delivery), its id there, and the receipt.
struct Owed {
    account: String,
    id: String,
    receipt: QueuedReceipt,
}

impl Owed {
    /// The same, for a segment whose message_id the script gave (`to`) in place of the
    /// node's id (`from`): SUBMIT renamed the queued copy the same way.
    fn renamed(mut self, from: &str, to: &str) -> Owed {
        if from != to {
            self.id = self.id.replace(from, to);
            self.receipt.rename_message(from, to);
        }
        self
    }

    fn new(id: String, receipt: QueuedReceipt) -> Owed {
        Owed {
            account: receipt.receipt.system_id.clone(),
            id,
            receipt,
        }
    }

    fn entry(&self) -> Result<ReceiptEntry, ServiceError> {
        Ok(ReceiptEntry {
            account: self.account.clone(),
            id: self.id.clone(),
            payload: serde_json::to_string(&self.receipt).map_err(internal)?,
        })
    }
}

/// The intermediate notification a simulated segment owes when it is accepted, if
/// it asks for one (registered_delivery bit 4): ENROUTE, queued as
/// `<message_id>.n` like a held delivery's (`receipts::notify_held`). Held until the
/// submit_sm_resp is queued, it goes out before the simulated end (its receipt
/// comes the profile's delay after the message is complete).
fn notification(
    meta: &GroupMeta,
    seg: &FinishedSegment,
    at_ms: i64,
) -> Result<Option<Owed>, ServiceError> {
    if seg.data.rd & 0x10 == 0 {
        return Ok(None);
    }
    let receipt = ReceiptStub::of_segment(meta, seg)?.notification(at_ms);
    Ok(Some(Owed::new(
        format!("{}.n", seg.message_id),
        QueuedReceipt {
            receipt,
            created_ms: at_ms,
            attempts: 0,
            delivery: None,
        },
    )))
}

fn internal(e: impl std::fmt::Display) -> ServiceError {
    StoreError::Corrupt(e.to_string()).into()
}
