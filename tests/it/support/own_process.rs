//! Running one test alone, in a process of its own started from this test binary.
//!
//! Every integration test shares one process. A test that depends on process-wide
//! state which other tests change — the counters of the global metrics recorder,
//! tracing's cache of which log lines are wanted — asks for a process of its own
//! with [`alone`].

use std::process::Command;

/// Set (to the test's name) in the child process that runs the test.
const VAR: &str = "SMPPD_IT_ALONE";

/// Runs the test `name` of `module` (its `module_path!()`) alone in a new process of
/// this test binary (`<name> --exact --test-threads=1`) and fails if it fails there.
/// Returns `true` in the calling process once that passed: the caller returns. Returns
/// `false` in the child: the caller runs its body.
pub fn alone(module: &str, name: &str) -> bool {
    // `it::metrics_endpoint` → `metrics_endpoint::name`, the test's name in this binary.
    let path = match module.split_once("::") {
        Some((_crate, rest)) => format!("{rest}::{name}"),
        None => name.to_owned(),
    };
    if std::env::var(VAR).is_ok_and(|v| v == path) {
        return false;
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let out = Command::new(exe)
        .args([path.as_str(), "--exact", "--test-threads=1", "--nocapture"])
        .env(VAR, &path)
        .output()
        .expect("running the test binary again");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Shown by the harness with --nocapture or when this test fails.
    println!(
        "{path} in its own process ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(out.status.success(), "{path} failed in its own process");
    assert!(
        stdout.contains("test result: ok. 1 passed"),
        "{path} did not run in its own process"
    );
    true
}
