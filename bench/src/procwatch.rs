//! CPU time and memory of other processes (smppd, Redis, the Mongo-protocol server)
//! from `/proc`, to tell which one bounds a run.

use std::time::Instant;

/// Clock ticks per second of `/proc/<pid>/stat` (USER_HZ is 100 on Linux x86/arm).
const TICKS_PER_SEC: f64 = 100.0;

/// utime + stime of `pid` in seconds.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name (which may hold spaces).
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after `)`.
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / TICKS_PER_SEC)
}

/// A `VmRSS`/`VmHWM`-style line of `/proc/<pid>/status`, in KiB.
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// One watched process over the measured phase.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProcReport {
    pub name: String,
    pub pid: u32,
    pub cpu_seconds: f64,
    /// CPU seconds per wall second: 1.0 = one core busy all the time.
    pub cores: f64,
    pub rss_kib: u64,
}

/// CPU readings taken at the start of the measured phase.
pub struct Watch {
    procs: Vec<(String, u32, f64)>,
    since: Instant,
}

impl Watch {
    pub fn start(procs: &[(String, u32)]) -> Watch {
        let mut v: Vec<(String, u32, f64)> = procs
            .iter()
            .map(|(n, p)| (n.clone(), *p, cpu_seconds(*p).unwrap_or(0.0)))
            .collect();
        let me = std::process::id();
        v.push(("smppd-bench".into(), me, cpu_seconds(me).unwrap_or(0.0)));
        Watch {
            procs: v,
            since: Instant::now(),
        }
    }

    pub fn finish(&self) -> Vec<ProcReport> {
        let wall = self.since.elapsed().as_secs_f64().max(1e-9);
        self.procs
            .iter()
            .map(|(name, pid, before)| {
                let cpu = cpu_seconds(*pid).unwrap_or(*before) - before;
                ProcReport {
                    name: name.clone(),
                    pid: *pid,
                    cpu_seconds: cpu,
                    cores: cpu / wall,
                    rss_kib: status_kib(*pid, "VmRSS").unwrap_or(0),
                }
            })
            .collect()
    }
}
