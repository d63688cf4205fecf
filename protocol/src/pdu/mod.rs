//! Whole PDUs: [`Pdu`] = header fields + typed [`Body`]; decode and encode.
//!
//! One file per PDU family, each holding its `parse_*` and `encode` side by side.

mod alert_notification;
mod bind;
mod cancel_sm;
mod data_sm;
mod query_sm;
mod replace_sm;
mod resp;
mod submit_multi;
mod submit_sm;

use bytes::{BufMut, Bytes, BytesMut};

pub use alert_notification::{parse_alert_notification, AlertNotification};
pub use bind::{parse_bind, parse_bind_resp, parse_outbind, Bind, BindResp, Outbind};
pub use cancel_sm::{parse_cancel_sm, CancelSm};
pub use data_sm::{parse_data_sm, DataSm};
pub use query_sm::{parse_query_sm, parse_query_sm_resp, QuerySm, QuerySmResp};
pub use replace_sm::{parse_replace_sm, ReplaceSm};
pub use resp::{parse_message_id_resp, DataSmResp, DeliverSmResp, MessageIdResp, SubmitSmResp};
pub use submit_multi::{
    parse_submit_multi, parse_submit_multi_resp, DestAddress, SubmitMulti, SubmitMultiResp,
    UnsuccessSme, MAX_DESTS,
};
pub use submit_sm::{parse_submit_sm, DeliverSm, SubmitSm};

use crate::command_id::CommandId;
use crate::command_status::CommandStatus;
use crate::error::{ErrorKind, PduError};
use crate::header::Header;
use crate::parse::expect_end;

/// The body of a PDU, one variant per SMPP v3.4 command.
///
/// Responses whose body the spec lets a peer omit (on error, or always for
/// deliver_sm_resp) hold an `Option`: `None` is the 16-octet form, `Some` the
/// form with a body — so both decode and re-encode byte-exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[allow(missing_docs)]
pub enum Body {
    BindReceiver(Bind),
    BindReceiverResp(Option<BindResp>),
    BindTransmitter(Bind),
    BindTransmitterResp(Option<BindResp>),
    BindTransceiver(Bind),
    BindTransceiverResp(Option<BindResp>),
    Outbind(Outbind),
    Unbind,
    UnbindResp,
    EnquireLink,
    EnquireLinkResp,
    GenericNack,
    SubmitSm(SubmitSm),
    SubmitSmResp(Option<SubmitSmResp>),
    SubmitMulti(SubmitMulti),
    SubmitMultiResp(Option<SubmitMultiResp>),
    DeliverSm(DeliverSm),
    DeliverSmResp(Option<DeliverSmResp>),
    DataSm(DataSm),
    DataSmResp(Option<DataSmResp>),
    QuerySm(QuerySm),
    QuerySmResp(Option<QuerySmResp>),
    CancelSm(CancelSm),
    CancelSmResp,
    ReplaceSm(ReplaceSm),
    ReplaceSmResp,
    AlertNotification(AlertNotification),
}

/// A decoded PDU. `command_length` is not stored (it is computed on encode) and
/// `command_id` follows from the body ([`Pdu::command_id`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Pdu {
    /// 0 in requests; the result in responses.
    pub command_status: CommandStatus,
    /// Links a response to its request.
    pub sequence_number: u32,
    /// The typed body.
    pub body: Body,
}

impl Body {
    /// The `command_id` this body is sent with.
    pub fn command_id(&self) -> CommandId {
        match self {
            Body::BindReceiver(_) => CommandId::BIND_RECEIVER,
            Body::BindReceiverResp(_) => CommandId::BIND_RECEIVER_RESP,
            Body::BindTransmitter(_) => CommandId::BIND_TRANSMITTER,
            Body::BindTransmitterResp(_) => CommandId::BIND_TRANSMITTER_RESP,
            Body::BindTransceiver(_) => CommandId::BIND_TRANSCEIVER,
            Body::BindTransceiverResp(_) => CommandId::BIND_TRANSCEIVER_RESP,
            Body::Outbind(_) => CommandId::OUTBIND,
            Body::Unbind => CommandId::UNBIND,
            Body::UnbindResp => CommandId::UNBIND_RESP,
            Body::EnquireLink => CommandId::ENQUIRE_LINK,
            Body::EnquireLinkResp => CommandId::ENQUIRE_LINK_RESP,
            Body::GenericNack => CommandId::GENERIC_NACK,
            Body::SubmitSm(_) => CommandId::SUBMIT_SM,
            Body::SubmitSmResp(_) => CommandId::SUBMIT_SM_RESP,
            Body::SubmitMulti(_) => CommandId::SUBMIT_MULTI,
            Body::SubmitMultiResp(_) => CommandId::SUBMIT_MULTI_RESP,
            Body::DeliverSm(_) => CommandId::DELIVER_SM,
            Body::DeliverSmResp(_) => CommandId::DELIVER_SM_RESP,
            Body::DataSm(_) => CommandId::DATA_SM,
            Body::DataSmResp(_) => CommandId::DATA_SM_RESP,
            Body::QuerySm(_) => CommandId::QUERY_SM,
            Body::QuerySmResp(_) => CommandId::QUERY_SM_RESP,
            Body::CancelSm(_) => CommandId::CANCEL_SM,
            Body::CancelSmResp => CommandId::CANCEL_SM_RESP,
            Body::ReplaceSm(_) => CommandId::REPLACE_SM,
            Body::ReplaceSmResp => CommandId::REPLACE_SM_RESP,
            Body::AlertNotification(_) => CommandId::ALERT_NOTIFICATION,
        }
    }

    /// The response body *without* a body (16-octet form) for a request id:
    /// what a session sends with an error status. `None` when `request` is a
    /// response, has no response (outbind, alert_notification) or is unknown
    /// (answer those with `generic_nack`).
    pub fn empty_response(request: CommandId) -> Option<Body> {
        Some(match request {
            CommandId::BIND_RECEIVER => Body::BindReceiverResp(None),
            CommandId::BIND_TRANSMITTER => Body::BindTransmitterResp(None),
            CommandId::BIND_TRANSCEIVER => Body::BindTransceiverResp(None),
            CommandId::UNBIND => Body::UnbindResp,
            CommandId::ENQUIRE_LINK => Body::EnquireLinkResp,
            CommandId::SUBMIT_SM => Body::SubmitSmResp(None),
            CommandId::SUBMIT_MULTI => Body::SubmitMultiResp(None),
            CommandId::DELIVER_SM => Body::DeliverSmResp(None),
            CommandId::DATA_SM => Body::DataSmResp(None),
            CommandId::QUERY_SM => Body::QuerySmResp(None),
            CommandId::CANCEL_SM => Body::CancelSmResp,
            CommandId::REPLACE_SM => Body::ReplaceSmResp,
            _ => return None,
        })
    }

    /// Appends the body octets (everything after the header).
    pub fn encode(&self, dst: &mut BytesMut) {
        match self {
            Body::BindReceiver(b) | Body::BindTransmitter(b) | Body::BindTransceiver(b) => {
                b.encode(dst)
            }
            Body::BindReceiverResp(r)
            | Body::BindTransmitterResp(r)
            | Body::BindTransceiverResp(r) => {
                if let Some(r) = r {
                    r.encode(dst)
                }
            }
            Body::Outbind(b) => b.encode(dst),
            Body::Unbind
            | Body::UnbindResp
            | Body::EnquireLink
            | Body::EnquireLinkResp
            | Body::GenericNack
            | Body::CancelSmResp
            | Body::ReplaceSmResp => {}
            Body::SubmitSm(b) | Body::DeliverSm(b) => b.encode(dst),
            Body::SubmitSmResp(r) | Body::DeliverSmResp(r) | Body::DataSmResp(r) => {
                if let Some(r) = r {
                    r.encode(dst)
                }
            }
            Body::SubmitMulti(b) => b.encode(dst),
            Body::SubmitMultiResp(r) => {
                if let Some(r) = r {
                    r.encode(dst)
                }
            }
            Body::DataSm(b) => b.encode(dst),
            Body::QuerySm(b) => b.encode(dst),
            Body::QuerySmResp(r) => {
                if let Some(r) = r {
                    r.encode(dst)
                }
            }
            Body::CancelSm(b) => b.encode(dst),
            Body::ReplaceSm(b) => b.encode(dst),
            Body::AlertNotification(b) => b.encode(dst),
        }
    }

    /// Decodes the body of a PDU whose header says `command_id`. `body` is the
    /// octets after the header; strings in the result are slices of it.
    pub fn decode(command_id: CommandId, body: &Bytes) -> Result<Body, PduError> {
        // A response body may be omitted (on error, and deliver_sm_resp in
        // practice); `None` remembers that so re-encoding is byte-exact.
        fn opt<T>(
            body: &Bytes,
            f: fn(&Bytes) -> Result<T, PduError>,
        ) -> Result<Option<T>, PduError> {
            if body.is_empty() {
                Ok(None)
            } else {
                f(body).map(Some)
            }
        }
        let header_only = |b: Body| expect_end(body, "body").map(|_| b);
        Ok(match command_id {
            CommandId::BIND_RECEIVER => Body::BindReceiver(parse_bind(body)?),
            CommandId::BIND_TRANSMITTER => Body::BindTransmitter(parse_bind(body)?),
            CommandId::BIND_TRANSCEIVER => Body::BindTransceiver(parse_bind(body)?),
            CommandId::BIND_RECEIVER_RESP => Body::BindReceiverResp(opt(body, parse_bind_resp)?),
            CommandId::BIND_TRANSMITTER_RESP => {
                Body::BindTransmitterResp(opt(body, parse_bind_resp)?)
            }
            CommandId::BIND_TRANSCEIVER_RESP => {
                Body::BindTransceiverResp(opt(body, parse_bind_resp)?)
            }
            CommandId::OUTBIND => Body::Outbind(parse_outbind(body)?),
            CommandId::UNBIND => header_only(Body::Unbind)?,
            CommandId::UNBIND_RESP => header_only(Body::UnbindResp)?,
            CommandId::ENQUIRE_LINK => header_only(Body::EnquireLink)?,
            CommandId::ENQUIRE_LINK_RESP => header_only(Body::EnquireLinkResp)?,
            CommandId::GENERIC_NACK => header_only(Body::GenericNack)?,
            CommandId::CANCEL_SM_RESP => header_only(Body::CancelSmResp)?,
            CommandId::REPLACE_SM_RESP => header_only(Body::ReplaceSmResp)?,
            CommandId::SUBMIT_SM => Body::SubmitSm(parse_submit_sm(body)?),
            CommandId::DELIVER_SM => Body::DeliverSm(parse_submit_sm(body)?),
            CommandId::SUBMIT_SM_RESP => Body::SubmitSmResp(opt(body, parse_message_id_resp)?),
            CommandId::DELIVER_SM_RESP => Body::DeliverSmResp(opt(body, parse_message_id_resp)?),
            CommandId::DATA_SM_RESP => Body::DataSmResp(opt(body, parse_message_id_resp)?),
            CommandId::SUBMIT_MULTI => Body::SubmitMulti(parse_submit_multi(body)?),
            CommandId::SUBMIT_MULTI_RESP => {
                Body::SubmitMultiResp(opt(body, parse_submit_multi_resp)?)
            }
            CommandId::DATA_SM => Body::DataSm(parse_data_sm(body)?),
            CommandId::QUERY_SM => Body::QuerySm(parse_query_sm(body)?),
            CommandId::QUERY_SM_RESP => Body::QuerySmResp(opt(body, parse_query_sm_resp)?),
            CommandId::CANCEL_SM => Body::CancelSm(parse_cancel_sm(body)?),
            CommandId::REPLACE_SM => Body::ReplaceSm(parse_replace_sm(body)?),
            CommandId::ALERT_NOTIFICATION => {
                Body::AlertNotification(parse_alert_notification(body)?)
            }
            _ => {
                return Err(PduError::new(
                    CommandStatus::ESME_RINVCMDID,
                    "command_id",
                    ErrorKind::UnknownCommandId,
                ))
            }
        })
    }
}

impl Pdu {
    /// A PDU with status 0.
    pub fn new(sequence_number: u32, body: Body) -> Pdu {
        Pdu {
            command_status: CommandStatus::ESME_ROK,
            sequence_number,
            body,
        }
    }

    /// `generic_nack` with `status`.
    pub fn generic_nack(sequence_number: u32, status: CommandStatus) -> Pdu {
        Pdu {
            command_status: status,
            sequence_number,
            body: Body::GenericNack,
        }
    }

    /// The answer to a request that failed with `status`: its own `_resp`
    /// without a body, or `generic_nack` when the id has no `_resp` of its own
    /// (unknown ids). `None` for responses and for requests that are never
    /// answered (outbind, alert_notification).
    pub fn error_response(header: &Header, status: CommandStatus) -> Option<Pdu> {
        let id = header.command_id;
        if id.is_response() || id.has_no_response() {
            return None;
        }
        let body = Body::empty_response(id).unwrap_or(Body::GenericNack);
        Some(Pdu {
            command_status: status,
            sequence_number: header.sequence_number,
            body,
        })
    }

    /// The `command_id` of this PDU.
    pub fn command_id(&self) -> CommandId {
        self.body.command_id()
    }

    /// The header this PDU encodes with, given its encoded length.
    pub fn header(&self, command_length: u32) -> Header {
        Header {
            command_length,
            command_id: self.command_id(),
            command_status: self.command_status,
            sequence_number: self.sequence_number,
        }
    }

    /// Appends the whole PDU to `dst`. The body is written straight into `dst`
    /// and `command_length` patched afterwards, so no temporary buffer is used.
    pub fn encode(&self, dst: &mut BytesMut) {
        let start = dst.len();
        dst.reserve(256);
        dst.put_u32(0);
        dst.put_u32(self.command_id().0);
        dst.put_u32(self.command_status.0);
        dst.put_u32(self.sequence_number);
        self.body.encode(dst);
        let len = (dst.len() - start) as u32;
        dst[start..start + 4].copy_from_slice(&len.to_be_bytes());
    }

    /// Encodes into a fresh buffer.
    pub fn to_bytes(&self) -> Bytes {
        let mut b = BytesMut::new();
        self.encode(&mut b);
        b.freeze()
    }

    /// Decodes one whole PDU (header + body). `command_length` must equal
    /// `frame.len()`; otherwise ESME_RINVCMDLEN.
    pub fn decode(frame: &Bytes) -> Result<Pdu, PduError> {
        let header = Header::parse(frame).ok_or(PduError::new(
            CommandStatus::ESME_RINVCMDLEN,
            "command_length",
            ErrorKind::BadCommandLength(frame.len() as u32),
        ))?;
        if header.command_length as usize != frame.len() {
            return Err(PduError::new(
                CommandStatus::ESME_RINVCMDLEN,
                "command_length",
                ErrorKind::BadCommandLength(header.command_length),
            ));
        }
        Self::decode_body(&header, &frame.slice(Header::LEN..))
    }

    /// Decodes a PDU from a borrowed slice (copies it once into `Bytes`).
    pub fn decode_slice(frame: &[u8]) -> Result<Pdu, PduError> {
        Self::decode(&Bytes::copy_from_slice(frame))
    }

    /// Decodes the body that follows an already-parsed header.
    pub fn decode_body(header: &Header, body: &Bytes) -> Result<Pdu, PduError> {
        Ok(Pdu {
            command_status: header.command_status,
            sequence_number: header.sequence_number,
            body: Body::decode(header.command_id, body)?,
        })
    }
}
