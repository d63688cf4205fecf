//! Fuzz the PDU decoder and the stream codec.
//!
//! Properties: nothing panics; any frame that decodes re-encodes to exactly the
//! same bytes (the decoder is strict, so it accepts only canonical input).
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use smpp_protocol::codec::SmppCodec;
use smpp_protocol::Pdu;
use tokio_util::codec::Decoder;

fuzz_target!(|data: &[u8]| {
    let frame = Bytes::copy_from_slice(data);
    if let Ok(pdu) = Pdu::decode(&frame) {
        assert_eq!(pdu.to_bytes(), frame, "decode/encode must be byte-exact");
    }

    let mut codec = SmppCodec::with_max_length(4096);
    let mut buf = BytesMut::from(data);
    while let Ok(Some(_item)) = codec.decode(&mut buf) {}
});
