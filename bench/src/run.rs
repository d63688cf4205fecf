//! `smppd-bench run`: bind, submit, wait for receipts, unbind, report.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::cli::{Kind, RunArgs};
use crate::message::MessagePlan;
use crate::procwatch::Watch;
use crate::record::Recorder;
use crate::report::{RedisMemory, RunReport, SessionsCfg};
use crate::session::{bind, BindKind, RunCtx, Session};
use crate::stats::{errors_by_name, SessionStats, Summary, Tracker};

pub async fn run(args: RunArgs) -> anyhow::Result<RunReport> {
    args.validate().map_err(anyhow::Error::msg)?;
    let t = &args.target;
    // The forwarding target's receivers first, then the receipts' receivers, so no
    // message or receipt waits for a bind.
    let (fwd_id, fwd_pw) = args.forward_account();
    let mut forward = Vec::with_capacity(args.forward_rx);
    for i in 0..args.forward_rx {
        let addr = t.addr[i % t.addr.len()];
        forward.push(
            bind(addr, fwd_id, fwd_pw, BindKind::Receiver)
                .await
                .with_context(|| format!("forward receiver bind to {addr} as {fwd_id}"))?,
        );
    }
    let mut kinds = vec![BindKind::Receiver; args.rx];
    kinds.extend(std::iter::repeat_n(BindKind::Transceiver, args.trx));
    kinds.extend(std::iter::repeat_n(BindKind::Transmitter, args.tx));
    let mut framed = Vec::with_capacity(kinds.len());
    for (i, k) in kinds.iter().enumerate() {
        let addr = t.addr[i % t.addr.len()];
        framed.push(
            bind(addr, &t.system_id, &t.password, *k)
                .await
                .with_context(|| format!("{k:?} bind to {addr}"))?,
        );
    }
    let redis_before = match args.redis_info {
        Some(a) => Some(crate::redis_info::used_memory(a).await?),
        None => None,
    };
    let tracker = args
        .expects_receipts()
        .then(|| Arc::new(Tracker::default()));
    let recorder = match &args.record {
        Some(p) => Some(Arc::new(Recorder::create(p)?)),
        None => None,
    };
    let watch = Watch::start(&t.watch);
    let ctx = Arc::new(RunCtx::new(args.clone(), tracker.clone(), recorder.clone()));
    let n = kinds.len();
    let mut sessions: Vec<Session> = framed
        .into_iter()
        .zip(&kinds)
        .enumerate()
        .map(|(i, (f, k))| Session::start(f, *k, i, ctx.clone(), None))
        .collect();
    sessions.extend(forward.into_iter().enumerate().map(|(i, f)| {
        let account = Some((fwd_id.to_owned(), fwd_pw.to_owned()));
        Session::start(f, BindKind::Receiver, n + i, ctx.clone(), account)
    }));

    let mut total = SessionStats::default();
    for s in &mut sessions {
        total.merge(&s.submitted().await);
    }
    let submit_end = Instant::now();
    let processes = watch.finish();
    let redis = match (args.redis_info, redis_before) {
        (Some(a), Some(before)) => {
            let after = crate::redis_info::used_memory(a).await?;
            let ok = ctx.ok_total.load(Ordering::Relaxed);
            Some(RedisMemory {
                used_before: before,
                used_after: after,
                segments: ok,
                bytes_per_segment: after.saturating_sub(before) as f64 / ok.max(1) as f64,
                payload_octets: payload_octets(&args),
            })
        }
        _ => None,
    };

    if let Some(tr) = &tracker {
        let latest =
            ctx.start + Duration::from_micros(ctx.latest_deadline_us.load(Ordering::Relaxed));
        let until = latest.max(submit_end) + args.receipt_wait;
        while tr.outstanding.load(Ordering::Relaxed) > 0 && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    ctx.closing.cancel();
    for s in sessions {
        total.merge(&s.close().await);
    }
    if let Some(r) = &recorder {
        r.flush()?;
    }

    let elapsed = match (total.first_send, total.last_resp) {
        (Some(a), Some(b)) => b.saturating_duration_since(a),
        _ => Duration::ZERO,
    };
    let measured = match total.last_resp {
        Some(b) => b.saturating_duration_since(
            total
                .first_send
                .map_or(ctx.warmup_end, |f| f.max(ctx.warmup_end)),
        ),
        None => Duration::ZERO,
    };
    let per_s = |n: u64| {
        if measured.is_zero() {
            0.0
        } else {
            n as f64 / measured.as_secs_f64()
        }
    };
    let submit_per_s = per_s(total.ok_after_warmup);
    // Segments sent per message on average: a partial message omits its last part.
    let weight: f64 = args.mix.0.iter().map(|e| e.weight).sum();
    let mean_parts = args
        .mix
        .0
        .iter()
        .map(|e| {
            let omitted = if e.parts > 1 { args.partial } else { 0.0 };
            e.weight * (f64::from(e.parts) - omitted)
        })
        .sum::<f64>()
        / weight;
    Ok(RunReport {
        label: t.label.clone(),
        addr: t
            .addr
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(","),
        sessions: SessionsCfg {
            tx: args.tx,
            rx: args.rx,
            trx: args.trx,
            window: args.window,
        },
        mix: args.mix.to_string(),
        coding: format!("{:?}", args.coding).to_lowercase(),
        registered_delivery: args.registered_delivery,
        offered_rate: args.rate,
        partial_fraction: args.partial,
        elapsed_s: elapsed.as_secs_f64(),
        messages_sent: total.messages_sent,
        segments_sent: total.segments_sent,
        segments_ok: total.ok,
        no_response: total.no_response,
        resent: total.resent,
        reconnects: total.reconnects,
        deliver_ignored: total.deliver_ignored,
        submit_per_s,
        messages_per_s: submit_per_s / mean_parts.max(1e-9),
        submit_latency: Summary::of(&total.latency),
        errors: errors_by_name(&total.errors),
        receipts: tracker.map(|t| t.report(total.ok)),
        redis,
        processes,
    })
}

/// Octets of short_message of a typical segment of the first multi-part mix entry
/// (else of a single): what "payload" means for memory per segment.
fn payload_octets(args: &RunArgs) -> u64 {
    let entry = args
        .mix
        .0
        .iter()
        .find(|e| e.kind != Kind::Single)
        .or(args.mix.0.first())
        .copied();
    entry.map_or(0, |entry| {
        let plan = MessagePlan {
            entry,
            coding: args.coding,
            chars: args.chars,
            registered_delivery: 0,
            deadline: None,
            number: 0,
            dest: 0,
        };
        plan.segment(1).short_message.len() as u64
    })
}
