//! `[[route]]` and `[delivery]`: every problem with its key path, like the rest of
//! the config.

use std::collections::HashSet;
use std::time::Duration;

use regex::Regex;
use smpp_protocol::CommandStatus;

use smpp_protocol::receipt::ReceiptStat;

use super::raw::{RawDelivery, RawRoute, RawSimulate};
use super::validate::Collector;
use crate::routing::{DeliveryRules, Route, RouteTarget, Routes, Unrouted};
use crate::simulate::{Outcome, Profile, SubmitError};

/// The routes in file order; `accounts`: the configured system_ids, which a target
/// and a `from` must name.
pub(super) fn validate_routes(
    c: &mut Collector,
    raw: &[RawRoute],
    delivery: &RawDelivery,
    accounts: &HashSet<String>,
    profiles: &std::collections::HashMap<String, std::sync::Arc<Profile>>,
) -> Routes {
    let mut routes = Vec::new();
    for (i, r) in raw.iter().enumerate() {
        let p = |k: &str| format!("route[{i}].{k}");
        let mut regex = |key: &str, v: &Option<String>| {
            v.as_deref().and_then(|v| match Regex::new(v) {
                Ok(r) => Some(r),
                Err(e) => {
                    c.push(p(key), format!("invalid regular expression \"{v}\": {e}"));
                    None
                }
            })
        };
        let destination = regex("destination", &r.destination);
        let source = regex("source", &r.source);
        let from = r.from.clone().unwrap_or_default();
        for (j, a) in from.iter().enumerate() {
            if !accounts.contains(a) {
                c.push(
                    format!("route[{i}].from[{j}]"),
                    format!("no [[esme]] with system_id \"{a}\""),
                );
            }
        }
        let target = match r.target.as_deref() {
            None => {
                c.push(
                    p("target"),
                    "missing; use \"esme:<system_id>\" or \"store\"",
                );
                continue;
            }
            Some("store") => RouteTarget::Store,
            Some(t) => match t.strip_prefix("esme:") {
                Some(a) if accounts.contains(a) => RouteTarget::Esme {
                    account: a.to_owned(),
                    reassembled: match r.segments.as_deref() {
                        None | Some("as_received") => false,
                        Some("reassembled") => true,
                        Some(other) => {
                            c.push(
                                p("segments"),
                                format!("unknown value \"{other}\"; use \"as_received\" or \"reassembled\""),
                            );
                            false
                        }
                    },
                },
                Some(a) => {
                    c.push(p("target"), format!("no [[esme]] with system_id \"{a}\""));
                    continue;
                }
                None => match t.strip_prefix("simulate:") {
                    Some(name) => match profiles.get(name) {
                        Some(profile) => RouteTarget::Simulate(profile.clone()),
                        None => {
                            c.push(p("target"), format!("no [[simulate]] named \"{name}\""));
                            continue;
                        }
                    },
                    None => {
                        c.push(
                            p("target"),
                            format!(
                                "unknown target \"{t}\"; use \"esme:<system_id>\", \"simulate:<profile>\" or \"store\""
                            ),
                        );
                        continue;
                    }
                },
            },
        };
        routes.push(Route {
            destination,
            source,
            from,
            target,
        });
    }
    let unrouted = match delivery.default.as_deref() {
        None | Some("store") => Unrouted::Store,
        Some("refuse") => Unrouted::Refuse,
        Some(other) => {
            c.push(
                "delivery.default",
                format!("unknown value \"{other}\"; use \"store\" or \"refuse\""),
            );
            Unrouted::Store
        }
    };
    Routes { routes, unrouted }
}

/// A status by its name (`ESME_RX_P_APPN`) or number (`0x65`, `101`).
fn status(s: &str) -> Option<u32> {
    if let Some(c) = CommandStatus::ALL.iter().find(|c| c.name() == Some(s)) {
        return Some(c.0);
    }
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

pub(super) fn validate_delivery(c: &mut Collector, raw: &RawDelivery) -> DeliveryRules {
    let d = DeliveryRules::default();
    let mut permanent = d.permanent.clone();
    if let Some(list) = &raw.permanent {
        permanent.clear();
        for (i, s) in list.iter().enumerate() {
            match status(s) {
                Some(0) => c.push(
                    format!("delivery.permanent[{i}]"),
                    "ESME_ROK is not a refusal",
                ),
                Some(v) => permanent.push(v),
                None => c.push(
                    format!("delivery.permanent[{i}]"),
                    format!(
                        "unknown command_status \"{s}\"; use a name (ESME_RX_P_APPN) or a number"
                    ),
                ),
            }
        }
    }
    let retry_min = c.duration("delivery.retry_min", raw.retry_min.as_deref(), d.retry_min);
    let retry_max = c.duration("delivery.retry_max", raw.retry_max.as_deref(), d.retry_max);
    if retry_max < retry_min {
        c.push(
            "delivery.retry_max",
            "must not be less than delivery.retry_min",
        );
    }
    let partial_grace = c.duration_min(
        "delivery.partial_grace",
        raw.partial_grace.as_deref(),
        d.partial_grace,
        true,
    );
    DeliveryRules {
        partial_grace,
        permanent,
        retry_min,
        retry_max: retry_max.max(retry_min).max(Duration::from_millis(1)),
    }
}

/// `[[simulate]]` profiles by name.
pub(super) fn validate_simulate(
    c: &mut Collector,
    raw: &[RawSimulate],
) -> std::collections::HashMap<String, std::sync::Arc<Profile>> {
    let mut out = std::collections::HashMap::new();
    for (i, s) in raw.iter().enumerate() {
        let p = |k: &str| format!("simulate[{i}].{k}");
        let Some(name) = s.name.clone().filter(|n| !n.is_empty()) else {
            c.push(p("name"), "missing");
            continue;
        };
        if out.contains_key(&name) {
            c.push(p("name"), format!("a second profile named \"{name}\""));
            continue;
        }
        let mut outcomes = Vec::new();
        for (j, o) in s.outcomes.iter().enumerate() {
            let stat = match o.stat.as_deref().and_then(|t| {
                ReceiptStat::ALL
                    .into_iter()
                    .find(|s| s.as_str() == t && *s != ReceiptStat::Enroute)
            }) {
                Some(stat) => stat,
                None => {
                    c.push(
                        format!("simulate[{i}].outcomes[{j}].stat"),
                        "one of DELIVRD, EXPIRED, DELETED, UNDELIV, ACCEPTD, UNKNOWN, REJECTD",
                    );
                    continue;
                }
            };
            let weight = o.weight.unwrap_or(1);
            if !(0..=1_000_000).contains(&weight) {
                c.push(
                    format!("simulate[{i}].outcomes[{j}].weight"),
                    "0 to 1000000",
                );
                continue;
            }
            let err = o.err.unwrap_or(0);
            if !(0..=999).contains(&err) {
                c.push(
                    format!("simulate[{i}].outcomes[{j}].err"),
                    "0 to 999 (the receipt's err: has 3 digits)",
                );
                continue;
            }
            outcomes.push(Outcome {
                stat,
                err: err as u32,
                weight: weight as u32,
            });
        }
        if outcomes.iter().all(|o| o.weight == 0) {
            c.push(
                p("outcomes"),
                "needs at least one outcome with a weight above 0",
            );
        }
        let delay = match s.delay.as_deref() {
            None => (Duration::ZERO, Duration::ZERO),
            Some(d) => match d.split_once("..") {
                Some((a, b)) => {
                    let a = c.duration_min(&p("delay"), Some(a.trim()), Duration::ZERO, true);
                    let b = c.duration_min(&p("delay"), Some(b.trim()), Duration::ZERO, true);
                    if b < a {
                        c.push(p("delay"), "the range's end is before its start");
                    }
                    (a, b.max(a))
                }
                None => {
                    let d = c.duration_min(&p("delay"), Some(d), Duration::ZERO, true);
                    (d, d)
                }
            },
        };
        let mut submit_errors = Vec::new();
        for (j, e) in s.submit_errors.iter().enumerate() {
            let status = e.status.as_deref().and_then(status);
            let percent = e.percent.unwrap_or(0.0);
            match status {
                Some(st) if st != 0 && (0.0..=100.0).contains(&percent) => {
                    submit_errors.push(SubmitError {
                        status: st,
                        percent,
                    })
                }
                _ => c.push(
                    format!("simulate[{i}].submit_errors[{j}]"),
                    "needs a non-zero status (a name or a number) and a percent from 0 to 100",
                ),
            }
        }
        let intermediate = match &s.intermediate {
            None => false,
            Some(toml::Value::Boolean(b)) => *b,
            Some(other) => {
                c.push(
                    p("intermediate"),
                    format!("must be true or false, got {other}"),
                );
                false
            }
        };
        out.insert(
            name.clone(),
            std::sync::Arc::new(Profile::new(
                name,
                s.seed.unwrap_or(0) as u64,
                outcomes,
                delay,
                submit_errors,
                intermediate,
            )),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::status;
    use crate::config::{Config, EnvOverrides};

    const ACCOUNT: &str = "[[esme]]\nsystem_id = \"a\"\npassword = \"pw\"\n\n";

    fn problems(toml: &str) -> Vec<String> {
        match Config::from_toml(&format!("{ACCOUNT}{toml}"), &EnvOverrides::default(), None) {
            Ok(_) => Vec::new(),
            Err(p) => {
                p.0.into_iter()
                    .map(|p| format!("{}: {}", p.path, p.message))
                    .collect()
            }
        }
    }

    #[test]
    fn routes_and_profiles_are_checked_with_their_key_paths() {
        let bad = problems(
            "[[simulate]]\nname = \"p\"\ndelay = \"5s..1s\"\n\
             outcomes = [ { stat = \"LOST\" }, { stat = \"UNDELIV\", err = 1000 } ]\n\
             submit_errors = [ { status = \"ESME_NOPE\", percent = 5 } ]\n\
             intermediate = \"yes\"\n\n\
             [[route]]\ndestination = \"(\"\ntarget = \"simulate:q\"\n\n\
             [[route]]\ntarget = \"esme:nobody\"\nfrom = [\"ghost\"]\n\n\
             [delivery]\ndefault = \"drop\"\npermanent = [\"ESME_ROK\"]\n",
        );
        for path in [
            "simulate[0].delay",
            "simulate[0].outcomes[0].stat",
            "simulate[0].outcomes[1].err",
            "simulate[0].outcomes:",
            "simulate[0].submit_errors[0]",
            "simulate[0].intermediate: must be true or false, got \"yes\"",
            "route[0].destination",
            "route[0].target",
            "route[1].target",
            "route[1].from[0]",
            "delivery.default",
            "delivery.permanent[0]",
        ] {
            assert!(
                bad.iter().any(|p| p.starts_with(path)),
                "{path} not in {bad:#?}"
            );
        }
        let good = problems(
            "[[simulate]]\nname = \"p\"\ndelay = \"1s..5s\"\nintermediate = true\n\
             outcomes = [ { stat = \"REJECTD\", err = 11, weight = 3 } ]\n\n\
             [[route]]\ndestination = \"^44\"\ntarget = \"simulate:p\"\n\n\
             [[route]]\ntarget = \"esme:a\"\n",
        );
        assert_eq!(good, Vec::<String>::new());
    }

    #[test]
    fn statuses_read_by_name_or_number() {
        assert_eq!(status("ESME_RX_P_APPN"), Some(0x65));
        assert_eq!(status("0x65"), Some(0x65));
        assert_eq!(status("101"), Some(101));
        assert_eq!(status("ESME_NOPE"), None);
    }
}
