//! SMSC-originated requests of one session: our own sequence numbers, the table of
//! requests waiting for their response, and the bounded outbound window.
//!
//! The session's reader resolves entries as responses arrive ([`Outbound::resolve`]);
//! a caller that gives up (timeout) removes its own entry, so a late response finds
//! nothing and is logged and dropped (reference §10.7).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use smpp_protocol::{Body, CommandId, CommandStatus, Pdu};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};

use super::writer::Outgoing;

/// Largest sequence number; after it we wrap to 1 (reference §1.5).
const MAX_SEQ: u32 = 0x7FFF_FFFF;

/// Why an outbound request got no positive answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboundError {
    /// The peer answered with this non-zero status.
    Refused(CommandStatus),
    /// The peer answered with generic_nack, with this status: a generic_nack that
    /// matches an outstanding request means the request failed, even when its status
    /// is 0 (reference §10.4).
    Nacked(CommandStatus),
    /// No response in time.
    Timeout,
    /// The session ended before a response came.
    Closed,
}

/// The response that completed a request.
#[derive(Debug, Clone, Copy)]
struct Answer {
    /// A generic_nack rather than the request's own `_resp`.
    nack: bool,
    status: CommandStatus,
}

/// The outbound side of one session, shared by the session task and the registry.
#[derive(Debug)]
pub struct Outbound {
    next_seq: AtomicU32,
    pending: Mutex<HashMap<u32, oneshot::Sender<Answer>>>,
    window: Arc<Semaphore>,
    writer: mpsc::Sender<Outgoing>,
}

impl Outbound {
    pub fn new(window: usize, writer: mpsc::Sender<Outgoing>) -> Self {
        Outbound {
            next_seq: AtomicU32::new(1),
            pending: Mutex::new(HashMap::new()),
            window: Arc::new(Semaphore::new(window)),
            writer,
        }
    }

    /// The next sequence number for a request we send.
    pub fn next_sequence(&self) -> u32 {
        let mut cur = self.next_seq.load(Ordering::Relaxed);
        loop {
            let next = if cur >= MAX_SEQ { 1 } else { cur + 1 };
            match self.next_seq.compare_exchange_weak(
                cur,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return cur,
                Err(actual) => cur = actual,
            }
        }
    }

    /// A free slot of the outbound window right now, if any.
    pub fn try_slot(&self) -> Option<OwnedSemaphorePermit> {
        self.window.clone().try_acquire_owned().ok()
    }

    /// Waits for a free slot of the outbound window.
    pub async fn slot(&self) -> Option<OwnedSemaphorePermit> {
        self.window.clone().acquire_owned().await.ok()
    }

    /// Sends `body` as a request and waits up to `timeout` for its response.
    /// The caller holds a window slot for the duration.
    pub async fn request(
        &self,
        body: Body,
        timeout: Duration,
        _slot: &OwnedSemaphorePermit,
    ) -> Result<(), OutboundError> {
        let seq = self.next_sequence();
        let (tx, rx) = oneshot::channel();
        self.lock().insert(seq, tx);
        let sent =
            tokio::time::timeout(timeout, self.writer.send(Box::new(Pdu::new(seq, body)))).await;
        if !matches!(sent, Ok(Ok(()))) {
            self.lock().remove(&seq);
            return Err(if sent.is_err() {
                OutboundError::Timeout
            } else {
                OutboundError::Closed
            });
        }
        let answer = tokio::time::timeout(timeout, rx).await;
        self.lock().remove(&seq);
        match answer {
            Ok(Ok(Answer { nack: true, status })) => Err(OutboundError::Nacked(status)),
            Ok(Ok(Answer { status, .. })) if status == CommandStatus::ESME_ROK => Ok(()),
            Ok(Ok(Answer { status, .. })) => Err(OutboundError::Refused(status)),
            Ok(Err(_)) => Err(OutboundError::Closed),
            Err(_) => Err(OutboundError::Timeout),
        }
    }

    /// Completes the request `seq` with the response `id` (its `_resp` or a
    /// generic_nack) and its `status`; false if nothing waited for it.
    pub fn resolve(&self, seq: u32, id: CommandId, status: CommandStatus) -> bool {
        let answer = Answer {
            nack: id == CommandId::GENERIC_NACK,
            status,
        };
        match self.lock().remove(&seq) {
            Some(tx) => tx.send(answer).is_ok(),
            None => false,
        }
    }

    /// Fails every waiting request (the session is closing).
    pub fn close(&self) {
        self.lock().clear();
        self.window.close();
    }

    /// Requests still waiting for a response.
    pub fn in_flight(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u32, oneshot::Sender<Answer>>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Sends one request through a fresh `Outbound`, answers it with `id`/`status` as
    /// the session's reader would, and returns what the request resolved to.
    async fn answered(id: CommandId, status: CommandStatus) -> Result<(), OutboundError> {
        let (tx, mut rx) = mpsc::channel(1);
        let out = Arc::new(Outbound::new(1, tx));
        let o = out.clone();
        let req = tokio::spawn(async move {
            let slot = o.slot().await.unwrap();
            o.request(Body::EnquireLink, Duration::from_secs(5), &slot)
                .await
        });
        let sent = rx.recv().await.unwrap();
        assert!(out.resolve(sent.sequence_number, id, status));
        req.await.unwrap()
    }

    #[tokio::test]
    async fn own_resp_resolves_by_its_status() {
        assert_eq!(
            answered(CommandId::DELIVER_SM_RESP, CommandStatus::ESME_ROK).await,
            Ok(())
        );
        assert_eq!(
            answered(CommandId::DELIVER_SM_RESP, CommandStatus::ESME_RX_T_APPN).await,
            Err(OutboundError::Refused(CommandStatus::ESME_RX_T_APPN))
        );
    }

    #[tokio::test]
    async fn generic_nack_fails_the_request_whatever_its_status() {
        assert_eq!(
            answered(CommandId::GENERIC_NACK, CommandStatus::ESME_ROK).await,
            Err(OutboundError::Nacked(CommandStatus::ESME_ROK))
        );
        assert_eq!(
            answered(CommandId::GENERIC_NACK, CommandStatus::ESME_RINVCMDID).await,
            Err(OutboundError::Nacked(CommandStatus::ESME_RINVCMDID))
        );
    }
}
