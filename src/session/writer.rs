//! The write side of a session: one task owns it, takes PDUs from a bounded channel
//! and flushes once per batch, so many responses share one syscall.

use futures::SinkExt;
use smpp_protocol::codec::{FrameError, SmppCodec};
use smpp_protocol::Pdu;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::codec::FramedWrite;
use tokio_util::sync::CancellationToken;

/// Capacity of the session's outgoing PDU queue; senders wait when it is full.
pub(crate) const QUEUE: usize = 256;
/// What a session queues for its writer. Boxed because a tokio channel allocates its
/// first block of 32 slots when it is created: 32 PDUs of 248 octets are 8 KiB of
/// every connection, bound or not (most of an unbound one); 32 boxes are 256 octets.
pub(crate) type Outgoing = Box<Pdu>;

/// Writes until every sender is gone or `stop` fires; on stop, what is already queued
/// is still written. Then the write side is shut down (FIN / TLS close_notify).
pub(crate) async fn write_loop<W: AsyncWrite + Unpin>(
    io: W,
    max_len: usize,
    mut rx: mpsc::Receiver<Outgoing>,
    stop: CancellationToken,
) -> Result<(), FrameError> {
    let mut framed = FramedWrite::new(io, SmppCodec::with_max_length(max_len));
    loop {
        let pdu = tokio::select! {
            biased;
            p = rx.recv() => p,
            _ = stop.cancelled() => None,
        };
        let Some(pdu) = pdu else { break };
        crate::metrics::pdu_out(&pdu);
        framed.feed(*pdu).await?;
        while let Ok(p) = rx.try_recv() {
            crate::metrics::pdu_out(&p);
            framed.feed(*p).await?;
        }
        SinkExt::<Pdu>::flush(&mut framed).await?;
    }
    while let Ok(p) = rx.try_recv() {
        crate::metrics::pdu_out(&p);
        framed.feed(*p).await?;
    }
    SinkExt::<Pdu>::flush(&mut framed).await?;
    framed.get_mut().shutdown().await?;
    Ok(())
}
