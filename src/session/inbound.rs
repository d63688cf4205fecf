//! ESME requests that go to the message service: submit_sm, data_sm, submit_multi,
//! query_sm, cancel_sm, replace_sm. Each runs as its own task inside the session's
//! window and yields the response PDU.

use std::sync::Arc;

use bytes::Bytes;
use smpp_protocol::{
    Body, CommandStatus, DestAddress, MessageIdResp, Pdu, QuerySmResp, SubmitMultiResp,
    UnsuccessSme,
};

use super::registry::{cstr, AccountRuntime};
use super::submit::Parts;
use crate::routing::{NoRoute, RouteTarget};
use crate::service::{Address, AfterResponse, MessageService, ServiceError, SubmitRequest};

/// What a request task needs.
pub(crate) struct Inbound {
    pub service: Arc<dyn MessageService>,
    pub runtime: Arc<AccountRuntime>,
    /// The route table in force when the request arrived.
    pub routes: Arc<crate::routing::Routes>,
    pub log_message_text: bool,
    /// What the accepted submits hold back until their response is queued (their
    /// receipts): released when the Inbound is dropped, which the request task does
    /// right after queuing the response.
    pub after_response: std::sync::Mutex<Vec<AfterResponse>>,
}

/// ServiceError → command_status (peer faults precise, internal faults temporary).
fn status_of(e: &ServiceError) -> CommandStatus {
    match e {
        ServiceError::Rejected { status, .. } => CommandStatus(*status),
        ServiceError::QueueFull(_) => CommandStatus::ESME_RMSGQFUL,
        ServiceError::Internal(_) => CommandStatus::ESME_RSYSERR,
    }
}

fn log_error(what: &str, e: &ServiceError) {
    match e {
        ServiceError::Internal(_) => tracing::error!(error = %e, "{what} failed"),
        _ => tracing::info!(error = %e, "{what} refused"),
    }
}

fn error_pdu(seq: u32, body: Body, status: CommandStatus) -> Pdu {
    Pdu {
        command_status: status,
        sequence_number: seq,
        body,
    }
}

impl Inbound {
    /// Handles one allowed, decoded request; returns its response.
    pub async fn handle(&self, pdu: Pdu) -> Pdu {
        let seq = pdu.sequence_number;
        match pdu.body {
            Body::SubmitSm(s) => {
                let (parts, dest) = Parts::of_submit_sm(&s);
                match self.submit_one(&parts, dest, None).await {
                    Ok(id) => Pdu::new(seq, Body::SubmitSmResp(Some(message_id_resp(&id)))),
                    Err(status) => error_pdu(seq, Body::SubmitSmResp(None), status),
                }
            }
            Body::DataSm(d) => {
                let empty = Bytes::new();
                let (parts, dest) = Parts::of_data_sm(&d, &empty);
                match self.submit_one(&parts, dest, None).await {
                    Ok(id) => Pdu::new(seq, Body::DataSmResp(Some(message_id_resp(&id)))),
                    Err(status) => error_pdu(seq, Body::DataSmResp(None), status),
                }
            }
            Body::SubmitMulti(m) => self.submit_multi(seq, &m).await,
            Body::QuerySm(q) => {
                let source = addr(q.source_addr_ton, q.source_addr_npi, &q.source_addr);
                let id = q.message_id.to_string_lossy();
                match self.service.query(self.system_id(), &id, &source).await {
                    Ok(a) => Pdu::new(
                        seq,
                        Body::QuerySmResp(Some(QuerySmResp {
                            message_id: cstr(&a.message_id),
                            final_date: a
                                .final_date
                                .map(|d| cstr(&smpp_time(d)))
                                .unwrap_or_default(),
                            message_state: a.message_state,
                            error_code: a.error_code,
                            tlvs: Vec::new(),
                        })),
                    ),
                    Err(e) => {
                        log_error("query_sm", &e);
                        error_pdu(seq, Body::QuerySmResp(None), status_of(&e))
                    }
                }
            }
            Body::CancelSm(c) => {
                let source = addr(c.source_addr_ton, c.source_addr_npi, &c.source_addr);
                let dest = (!c.destination_addr.is_empty())
                    .then(|| addr(c.dest_addr_ton, c.dest_addr_npi, &c.destination_addr));
                let id = c.message_id.to_string_lossy();
                let service_type = c.service_type.to_string_lossy();
                let r = self
                    .service
                    .cancel(self.system_id(), &id, &source, dest.as_ref(), &service_type)
                    .await;
                match r {
                    Ok(()) => Pdu::new(seq, Body::CancelSmResp),
                    Err(e) => {
                        log_error("cancel_sm", &e);
                        error_pdu(seq, Body::CancelSmResp, status_of(&e))
                    }
                }
            }
            Body::ReplaceSm(r) => {
                let source = addr(r.source_addr_ton, r.source_addr_npi, &r.source_addr);
                let id = r.message_id.to_string_lossy();
                let res = self
                    .service
                    .replace(
                        &self.runtime.account.policy(),
                        &id,
                        &source,
                        r.registered_delivery,
                        r.validity_period.to_bytes(),
                        r.short_message.clone(),
                    )
                    .await;
                match res {
                    Ok(()) => Pdu::new(seq, Body::ReplaceSmResp),
                    Err(e) => {
                        log_error("replace_sm", &e);
                        error_pdu(seq, Body::ReplaceSmResp, status_of(&e))
                    }
                }
            }
            other => {
                // The session only routes the requests above here.
                let id = other.command_id();
                let body = Body::empty_response(id).unwrap_or(Body::GenericNack);
                error_pdu(seq, body, CommandStatus::ESME_RINVCMDID)
            }
        }
    }

    fn system_id(&self) -> &str {
        &self.runtime.account.system_id
    }

    /// `receipt_id`: the id the ESME knows this message by when not its own
    /// (see [`SubmitRequest::receipt_id`]).
    async fn submit_one(
        &self,
        parts: &Parts<'_>,
        dest: Address,
        receipt_id: Option<String>,
    ) -> Result<String, CommandStatus> {
        let mut req = parts.request(self.runtime.account.policy(), dest)?;
        req.receipt_id = receipt_id;
        req.forward_to = match self
            .routes
            .resolve(self.system_id(), &req.source, &req.dest)
        {
            Ok(RouteTarget::Store) => None,
            Ok(RouteTarget::Esme {
                account,
                reassembled,
            }) => {
                req.forward_reassembled = reassembled;
                Some(account)
            }
            Ok(RouteTarget::Simulate(profile)) => {
                req.simulate = Some(profile);
                None
            }
            Err(NoRoute) => {
                tracing::info!(dest = %req.dest.addr, "no route for the destination");
                return Err(CommandStatus::ESME_RINVDSTADR);
            }
        };
        self.log_submit(&req);
        match self.service.submit(req).await {
            Ok(a) => {
                tracing::debug!(message_id = %a.message_id, "accepted");
                if let Some(after) = a.after_response {
                    self.after_response
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(after);
                }
                Ok(a.message_id)
            }
            Err(e) => {
                log_error("submit", &e);
                Err(status_of(&e))
            }
        }
    }

    fn log_submit(&self, req: &SubmitRequest) {
        if self.log_message_text {
            tracing::debug!(
                dest = %req.dest.addr,
                data_coding = req.data_coding,
                text = %String::from_utf8_lossy(&req.user_data),
                "submit"
            );
        } else {
            tracing::debug!(dest = %req.dest.addr, data_coding = req.data_coding, len = req.user_data.len(), "submit");
        }
    }

    /// Each SME destination is its own submit; distribution lists are not supported
    /// (ESME_RINVDLNAME). The response carries the first accepted message_id and every
    /// failed destination in unsuccess_sme. SMPP gives the ESME that one id, so the
    /// later destinations are submitted with it as their `receipt_id`: their receipts
    /// name it too.
    async fn submit_multi(&self, seq: u32, m: &smpp_protocol::SubmitMulti) -> Pdu {
        let parts = Parts::of_submit_multi(m);
        let mut first_id: Option<String> = None;
        let mut unsuccess = Vec::new();
        for d in &m.dest_address {
            match d {
                DestAddress::SmeAddress {
                    dest_addr_ton,
                    dest_addr_npi,
                    destination_addr,
                } => {
                    let dest = addr(*dest_addr_ton, *dest_addr_npi, destination_addr);
                    match self.submit_one(&parts, dest, first_id.clone()).await {
                        Ok(id) => {
                            first_id.get_or_insert(id);
                        }
                        Err(status) => unsuccess.push(UnsuccessSme {
                            dest_addr_ton: *dest_addr_ton,
                            dest_addr_npi: *dest_addr_npi,
                            destination_addr: destination_addr.clone(),
                            error_status_code: status,
                        }),
                    }
                }
                DestAddress::DistributionList { dl_name } => unsuccess.push(UnsuccessSme {
                    dest_addr_ton: 0,
                    dest_addr_npi: 0,
                    destination_addr: dl_name.clone(),
                    error_status_code: CommandStatus::ESME_RINVDLNAME,
                }),
            }
        }
        Pdu::new(
            seq,
            Body::SubmitMultiResp(Some(SubmitMultiResp {
                message_id: cstr(first_id.as_deref().unwrap_or("")),
                unsuccess_sme: unsuccess,
                tlvs: Vec::new(),
            })),
        )
    }
}

fn addr(ton: u8, npi: u8, a: &smpp_protocol::COctetString) -> Address {
    Address {
        ton,
        npi,
        addr: a.to_string_lossy().into_owned(),
    }
}

fn message_id_resp(id: &str) -> MessageIdResp {
    MessageIdResp {
        message_id: cstr(id),
        tlvs: Vec::new(),
    }
}

/// Absolute SMPP time in UTC: `YYMMDDhhmmss` + tenths `0` + offset `00` + `+`.
fn smpp_time(d: chrono::DateTime<chrono::Utc>) -> String {
    format!("{}000+", d.format("%y%m%d%H%M%S"))
}
