//! submit_sm and deliver_sm decode/encode: ours vs the `smpp34` crate on the
//! same bytes and the same field values, then a table of ours/smpp34 ratios.
//!
//! Run: `cargo bench -p smpp-protocol --bench codec -- --warm-up-time 1 --measurement-time 3`
//!
//! Workloads (fixtures shared with the tests):
//! - submit_sm: `fixtures/pdu/submit_sm_sar.hex` (short_message + 3 SAR TLVs)
//! - deliver_sm: `fixtures/pdu/deliver_sm_receipt.hex` (105-octet receipt + 2 TLVs)
//!
//! Fairness notes:
//! - decode: both start from the whole frame and parse header + body.
//!   Ours takes `&Bytes` (as the codec hands it over); smpp34 takes `&[u8]`.
//! - encode: smpp34's `encode(self)` consumes the PDU, so its clone is made in
//!   criterion's untimed setup (`iter_batched`). Ours is timed twice: into a
//!   reused buffer (what the tokio Encoder does) and into a fresh buffer per PDU
//!   (`to_bytes`, the same allocation pattern as smpp34's `Vec`).
#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use criterion::{BatchSize, Criterion};
use smpp_protocol::Pdu;

fn load_hex(name: &str) -> Bytes {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../fixtures/pdu/{name}.hex"));
    let text = std::fs::read_to_string(path).unwrap();
    let bytes: Vec<u8> = text
        .lines()
        .flat_map(|l| l.split('#').next().unwrap().split_whitespace())
        .map(|t| u8::from_str_radix(t, 16).unwrap())
        .collect();
    Bytes::from(bytes)
}

fn out_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("criterion")
}

fn bench_submit_sm(c: &mut Criterion) {
    let frame = load_hex("submit_sm_sar");
    let ours = Pdu::decode(&frame).unwrap();
    let h = smpp34::CommandHeader::decode(&frame).unwrap();
    let theirs = smpp34::submit_sm::decode(h, &frame).unwrap();
    // Same workload: both encoders reproduce the fixture exactly.
    assert_eq!(ours.to_bytes(), frame);
    assert_eq!(theirs.clone().encode(), frame.to_vec());

    let mut g = c.benchmark_group("submit_sm");
    g.bench_function("decode/ours", |b| {
        b.iter(|| Pdu::decode(black_box(&frame)).unwrap())
    });
    g.bench_function("decode/smpp34", |b| {
        b.iter(|| {
            let f: &[u8] = black_box(&frame);
            let h = smpp34::CommandHeader::decode(f).unwrap();
            smpp34::submit_sm::decode(h, f).unwrap()
        })
    });
    let mut dst = BytesMut::with_capacity(4096);
    g.bench_function("encode/ours", |b| {
        b.iter(|| {
            dst.clear();
            black_box(&ours).encode(&mut dst);
            black_box(dst.len())
        })
    });
    g.bench_function("encode_fresh/ours", |b| {
        b.iter(|| black_box(&ours).to_bytes())
    });
    g.bench_function("encode/smpp34", |b| {
        b.iter_batched(|| theirs.clone(), |p| p.encode(), BatchSize::SmallInput)
    });
    g.finish();
}

fn bench_deliver_sm(c: &mut Criterion) {
    let frame = load_hex("deliver_sm_receipt");
    let ours = Pdu::decode(&frame).unwrap();
    let h = smpp34::CommandHeader::decode(&frame).unwrap();
    let theirs = smpp34::deliver_sm::decode(h, &frame).unwrap();
    assert_eq!(ours.to_bytes(), frame);
    assert_eq!(theirs.clone().encode(), frame.to_vec());

    let mut g = c.benchmark_group("deliver_sm");
    g.bench_function("decode/ours", |b| {
        b.iter(|| Pdu::decode(black_box(&frame)).unwrap())
    });
    g.bench_function("decode/smpp34", |b| {
        b.iter(|| {
            let f: &[u8] = black_box(&frame);
            let h = smpp34::CommandHeader::decode(f).unwrap();
            smpp34::deliver_sm::decode(h, f).unwrap()
        })
    });
    let mut dst = BytesMut::with_capacity(4096);
    g.bench_function("encode/ours", |b| {
        b.iter(|| {
            dst.clear();
            black_box(&ours).encode(&mut dst);
            black_box(dst.len())
        })
    });
    g.bench_function("encode_fresh/ours", |b| {
        b.iter(|| black_box(&ours).to_bytes())
    });
    g.bench_function("encode/smpp34", |b| {
        b.iter_batched(|| theirs.clone(), |p| p.encode(), BatchSize::SmallInput)
    });
    g.finish();
}

/// Time per iteration in ns from criterion's `estimates.json`: the slope (what
/// criterion prints) when it exists, else the mean. No JSON dependency: the
/// file is small and the keys are unique.
fn mean_ns(group: &str, id: &str) -> Option<f64> {
    let path = out_dir().join(group).join(id).join("new/estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let at = text
        .find("\"slope\":{")
        .or_else(|| text.find("\"mean\":{"))?;
    let rest = &text[at..];
    let p = rest.find("\"point_estimate\":")? + "\"point_estimate\":".len();
    let num: String = rest[p..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-' | '+'))
        .collect();
    num.parse().ok()
}

fn print_ratios() {
    println!("\n| PDU | op | ours (ns) | smpp34 (ns) | speed-up ours vs smpp34 |");
    println!("|---|---|---:|---:|---:|");
    for group in ["submit_sm", "deliver_sm"] {
        for (op, ours_id, theirs_id) in [
            ("decode", "decode/ours", "decode/smpp34"),
            ("encode (reused dst)", "encode/ours", "encode/smpp34"),
            (
                "encode (fresh buffer)",
                "encode_fresh/ours",
                "encode/smpp34",
            ),
        ] {
            // criterion names the directory after the id with '/' replaced by '_'.
            let o = mean_ns(group, &ours_id.replace('/', "_"));
            let t = mean_ns(group, &theirs_id.replace('/', "_"));
            if let (Some(o), Some(t)) = (o, t) {
                println!("| {group} | {op} | {o:.1} | {t:.1} | {:.2}x |", t / o);
            }
        }
    }
}

fn main() {
    let mut c = Criterion::default()
        .output_directory(&out_dir())
        .configure_from_args();
    bench_submit_sm(&mut c);
    bench_deliver_sm(&mut c);
    c.final_summary();
    print_ratios();
}
