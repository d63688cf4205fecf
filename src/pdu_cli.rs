//! `smppd pdu decode <HEX|->`: prints PDUs from a capture as JSON, one object per
//! line, with the concatenation info and the decoded text — for testers.
//!
//! Input is hex (whitespace, `0x` prefixes, `:` separators and `#` comments allowed, so
//! `fixtures/pdu/*.hex` and Wireshark's "copy as hex stream" both work); it may hold
//! several PDUs back to back.
//!
//! `--alphabet` says what data_coding 0 means (as an account's `default_alphabet`
//! does); GSM 03.38 text is read with the national language tables its UDH names.

use std::io::Read;

use anyhow::{bail, Context};
use bytes::Bytes;
use serde_json::{json, Value};
use smpp_protocol::text::{
    decode_user_data_in, decode_user_data_lossy_in, DecodedText, DefaultAlphabet, TextContext,
};
use smpp_protocol::{Body, Header, Pdu};

/// Arguments of `smppd pdu`.
#[derive(Debug, clap::Args)]
pub struct PduArgs {
    #[command(subcommand)]
    pub command: PduCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum PduCommand {
    /// Print a PDU (or a stream of them) given as hex, or `-` for stdin, as JSON.
    Decode {
        /// Hex bytes (whitespace allowed) or `-` to read stdin.
        input: String,
        /// What data_coding 0 means: gsm7 (GSM 03.38), ascii or latin1.
        #[arg(long, default_value = "gsm7", value_parser = parse_alphabet)]
        alphabet: DefaultAlphabet,
    },
}

fn parse_alphabet(name: &str) -> Result<DefaultAlphabet, String> {
    DefaultAlphabet::parse(name)
        .ok_or_else(|| format!("\"{name}\": expected gsm7, ascii or latin1"))
}

/// Runs `smppd pdu ...`. Fails (non-zero exit) when any PDU did not decode; the JSON
/// of that PDU still names the failing field and its command_status.
pub fn run(args: PduArgs) -> anyhow::Result<()> {
    let PduCommand::Decode { input, alphabet } = args.command;
    let text = if input == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("reading stdin")?;
        s
    } else {
        input
    };
    let bytes = parse_hex(&text)?;
    let mut failures = 0;
    for item in decode_stream_in(&bytes, alphabet)? {
        if item.get("error").is_some() {
            failures += 1;
        }
        println!("{item}");
    }
    if failures > 0 {
        bail!("{failures} PDU(s) failed to decode");
    }
    Ok(())
}

/// Hex text → bytes, ignoring `#` comments, whitespace, `0x` prefixes and `:`.
pub fn parse_hex(text: &str) -> anyhow::Result<Vec<u8>> {
    let mut digits = String::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        for token in line.split(|c: char| c.is_whitespace() || c == ':' || c == ',') {
            let token = token.strip_prefix("0x").unwrap_or(token);
            digits.push_str(token);
        }
    }
    if digits.is_empty() {
        bail!("no hex bytes in the input");
    }
    hex::decode(&digits).map_err(|e| anyhow::anyhow!("input is not hex: {e}"))
}

/// Every PDU in `bytes`, as JSON values, data_coding 0 read as GSM 03.38.
#[cfg(test)]
pub fn decode_stream(bytes: &[u8]) -> anyhow::Result<Vec<Value>> {
    decode_stream_in(bytes, DefaultAlphabet::Gsm7)
}

/// Every PDU in `bytes`, as JSON values, data_coding 0 read as `alphabet`.
pub fn decode_stream_in(bytes: &[u8], alphabet: DefaultAlphabet) -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    let mut offset = 0;
    while offset < bytes.len() {
        let rest = &bytes[offset..];
        let Some(header) = Header::parse(rest) else {
            bail!(
                "offset {offset}: {} byte(s) left, a PDU header needs 16",
                rest.len()
            );
        };
        let len = header.command_length as usize;
        if len < 16 {
            bail!("offset {offset}: command_length {len} is below 16 (ESME_RINVCMDLEN)");
        }
        if len > rest.len() {
            bail!(
                "offset {offset}: command_length {len} but only {} byte(s) left (ESME_RINVCMDLEN)",
                rest.len()
            );
        }
        let frame = Bytes::copy_from_slice(&rest[..len]);
        out.push(describe(&header, &frame, alphabet));
        offset += len;
    }
    Ok(out)
}

fn describe(header: &Header, frame: &Bytes, alphabet: DefaultAlphabet) -> Value {
    let header_json = serde_json::to_value(header).unwrap_or(Value::Null);
    match Pdu::decode(frame) {
        Ok(pdu) => {
            let mut v = json!({ "header": header_json, "pdu": serde_json::to_value(&pdu).unwrap_or(Value::Null) });
            if let Some(extra) = message_info(&pdu.body, alphabet) {
                v["message"] = extra;
            }
            v
        }
        Err(e) => json!({
            "header": header_json,
            "error": {
                "command_status": format!("{:?}", e.command_status()),
                "command_status_value": format!("{:#010x}", e.command_status().0),
                "field": e.field(),
                "message": e.to_string(),
            }
        }),
    }
}

/// Concatenation info and decoded text of a submit/deliver/data PDU.
fn message_info(body: &Body, alphabet: DefaultAlphabet) -> Option<Value> {
    let (concat, data_coding, ctx) = match body {
        Body::SubmitSm(s) | Body::DeliverSm(s) => (
            s.concat(),
            s.data_coding,
            TextContext::of(alphabet, s.esm_class, s.user_data()),
        ),
        Body::DataSm(d) => (
            d.concat(),
            d.data_coding,
            TextContext::of(alphabet, d.esm_class, d.user_data()),
        ),
        Body::SubmitMulti(m) => (
            m.concat(),
            m.data_coding,
            TextContext::of(alphabet, m.esm_class, m.user_data()),
        ),
        _ => return None,
    };
    Some(match concat {
        Ok((info, user_data)) => {
            let text = match decode_user_data_in(data_coding, user_data, ctx) {
                Ok(DecodedText::Text(t)) => json!(t),
                Ok(DecodedText::Binary) => Value::Null,
                // A segment may end inside a UCS2 surrogate pair: show what can be shown.
                Err(e) => match decode_user_data_lossy_in(data_coding, user_data, ctx) {
                    DecodedText::Text(t) => json!({ "lossy": t, "problem": e.to_string() }),
                    DecodedText::Binary => Value::Null,
                },
            };
            let mut v = json!({
                "concat": serde_json::to_value(info).unwrap_or(Value::Null),
                "user_data_hex": hex::encode(user_data),
                "text": text,
            });
            if ctx.shift != Default::default() {
                v["national_language"] = json!({
                    "locking": ctx.shift.locking.0,
                    "single": ctx.shift.single.0,
                });
            }
            v
        }
        Err(e) => json!({
            "concat_error": {
                "command_status_value": format!("{:#010x}", e.command_status()),
                "message": e.to_string(),
            }
        }),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn decodes_udh_segment_with_concat_and_text() {
        // submit_sm, esm_class 0x40, short_message = UDH(ref 0xCC, 2 parts, part 1) + "hi"
        let hex = "0000002F 00000004 00000000 00000007 00 0101 313233 00 0101 343536 00 40 00 00 00 00 00 00 00 00 08 050003CC0201 6869";
        let items = decode_stream(&parse_hex(hex).unwrap()).unwrap();
        assert_eq!(items.len(), 1);
        let m = &items[0]["message"];
        assert_eq!(m["text"], "hi");
        assert_eq!(m["concat"]["reference"], 0xCC);
        assert_eq!(m["concat"]["total"], 2);
        assert_eq!(m["concat"]["seq"], 1);
    }

    /// submit_sm, data_coding 0, esm_class `esm`, short_message `sm` (hex).
    fn submit_hex(esm: u8, sm: &str) -> String {
        let sm = parse_hex(sm).unwrap();
        let len = 16 + 1 + 2 + 4 + 2 + 4 + 3 + 3 + 3 + 1 + sm.len();
        format!(
            "{len:08x} 00000004 00000000 00000007 00 0101 313233 00 0101 343536 00 {esm:02x} 00 00 00 00 00 00 00 00 {:02x} {}",
            sm.len(),
            hex::encode(&sm)
        )
    }

    #[test]
    fn the_alphabet_option_says_what_data_coding_zero_means() {
        // "a_b" and "é" as an ASCII / Latin-1 ESME sends them.
        let hex = submit_hex(0, "615f62 e9");
        let text = |a| {
            decode_stream_in(&parse_hex(&hex).unwrap(), a).unwrap()[0]["message"]["text"].clone()
        };
        assert_eq!(text(DefaultAlphabet::Latin1), "a_bé");
        assert_eq!(text(DefaultAlphabet::Ascii)["lossy"], "a_b\u{FFFD}");
        assert_eq!(text(DefaultAlphabet::Gsm7)["lossy"], "a§b\u{FFFD}");
        assert_eq!(parse_alphabet("ascii"), Ok(DefaultAlphabet::Ascii));
        assert!(parse_alphabet("utf8").is_err());
    }

    #[test]
    fn a_national_language_udh_selects_the_tables() {
        // UDH: locking shift Turkish (IEI 0x25); then 0x07 0x0B = "ıĞ" in Turkish.
        let hex = submit_hex(0x40, "03 25 01 01 07 0b");
        let items = decode_stream(&parse_hex(&hex).unwrap()).unwrap();
        let m = &items[0]["message"];
        assert_eq!(m["text"], "ıĞ");
        assert_eq!(m["national_language"]["locking"], 1);
        assert_eq!(m["national_language"]["single"], 0);
    }

    #[test]
    fn names_failing_field_and_status() {
        // enquire_link with one trailing byte: header-only PDU with a body.
        let items =
            decode_stream(&parse_hex("00000011 00000015 00000000 00000001 00").unwrap()).unwrap();
        assert!(items[0]["error"]["field"].is_string());
        assert_eq!(items[0]["error"]["command_status_value"], "0x00000002");
    }

    #[test]
    fn decodes_a_stream_of_several_pdus() {
        let hex =
            "00000010 00000015 00000000 00000001\n# second\n00000010 80000015 00000000 00000001";
        let items = decode_stream(&parse_hex(hex).unwrap()).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[1]["pdu"]["sequence_number"], 1);
    }

    #[test]
    fn rejects_truncated_stream_with_a_clear_message() {
        let err =
            decode_stream(&parse_hex("00000020 00000015 00000000 00000001").unwrap()).unwrap_err();
        assert!(err.to_string().contains("command_length 32"), "{err}");
    }
}
