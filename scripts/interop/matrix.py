#!/usr/bin/env python3
"""Reads each client's output (RESULT / OUTCOME lines, see smpplib_client.py), checks the
expected outcomes against smppd's MongoDB documents and prints the Markdown matrix.
Exits 1 if any expected feature of any client failed.

    matrix.py --mongo URI --db NAME --run-info TEXT CLIENT=OUTFILE[:EXITCODE] ...
"""
import argparse
import sys
import time
from datetime import datetime, timezone

from pymongo import MongoClient

FEATURES = [
    ("bind_tx", "bind_transmitter"),
    ("bind_rx", "bind_receiver"),
    ("bind_trx", "bind_transceiver"),
    ("submit_single", "submit_sm, single, GSM 7-bit"),
    ("udh_gsm", "long, UDH (8-bit ref), GSM 7-bit"),
    ("udh_ucs2", "long, UDH (8-bit ref), UCS2"),
    ("sar_gsm", "long, SAR TLVs, GSM 7-bit"),
    ("sar_ucs2", "long, SAR TLVs, UCS2"),
    ("dlr_trx", "receipts on the TRX bind (registered_delivery 1)"),
    ("dlr_rx", "receipt on an RX bind for a TX submit"),
    ("dlr_text", "receipts' text: field (Appendix B: first 20 characters)"),
    ("query_sm", "query_sm (pending, delivered, cancelled, unknown)"),
    ("cancel_sm", "cancel_sm (pending, then final)"),
    ("replace_sm", "replace_sm (pending, then final)"),
    ("enquire_link", "enquire_link"),
    ("unbind", "unbind"),
    ("mongo", "outcome documents in MongoDB (state, text)"),
    ("mo", "routed (MO) deliver_sm"),
]
# Features no client reports yet, with the cell to show ("n/a (reason)").
NA = {}


def known_failures(path):
    """{(client or '*', feature): reason} from scripts/interop/known-failures."""
    known = {}
    try:
        lines = open(path, encoding="utf-8").read().splitlines()
    except FileNotFoundError:
        return known
    for line in lines:
        if line.strip() and not line.lstrip().startswith("#"):
            client, feature, reason = line.split(None, 2)
            known[(client, feature)] = reason
    return known


def parse(path):
    results, outcomes, extra = {}, [], []
    try:
        lines = open(path, encoding="utf-8", errors="replace").read().splitlines()
    except FileNotFoundError:
        lines = []
    for line in lines:
        parts = line.split("\t")
        if parts[0] == "RESULT" and len(parts) >= 3:
            results[parts[1]] = (parts[2], parts[3] if len(parts) > 3 else "")
        elif parts[0] == "OUTCOME" and len(parts) >= 4:
            text = None if parts[3] == "-" else bytes.fromhex(parts[3]).decode()
            deadline = float(parts[4]) if len(parts) > 4 and parts[4] else None
            route = parts[5] if len(parts) > 5 and parts[5] else None
            outcomes.append((parts[1], parts[2], text, deadline, route))
        elif parts[0] == "NOTE" and len(parts) >= 2:
            extra.append(parts[1])
    return results, outcomes, extra


def check_outcomes(coll, outcomes, wait_s=20.0):
    """(ok, detail): every expected message has one document with the state and text (and,
    for a routed message, its route target, every segment's delivery in the same state)."""
    wait_until = time.monotonic() + wait_s
    bad = []
    for mid, state, text, deadline, route in outcomes:
        doc = None
        while True:
            docs = list(coll.find({"segments.message_id": mid}))
            if docs or time.monotonic() > wait_until:
                break
            time.sleep(0.2)
        if len(docs) != 1:
            bad.append(f"{mid}: {len(docs)} documents")
            continue
        doc = docs[0]
        if doc.get("state") != state:
            bad.append(f"{mid}: state {doc.get('state')} (expected {state})")
        elif text is not None and doc.get("text") != text:
            bad.append(f"{mid}: text {doc.get('text')!r} (expected {text!r})")
        elif route is not None and (doc.get("route") or {}).get("target") != route:
            bad.append(f"{mid}: route {doc.get('route')} (expected target {route})")
        elif route is not None and any((s.get("delivery") or {}).get("state") != state for s in doc["segments"]):
            bad.append(f"{mid}: segment deliveries {[s.get('delivery') for s in doc['segments']]}")
        elif deadline is not None:
            got = doc.get("deadline")
            got_s = got.replace(tzinfo=timezone.utc).timestamp() if got else None
            if got_s is None or abs(got_s - deadline) > 60:
                bad.append(f"{mid}: deadline {got} (expected ~{datetime.fromtimestamp(deadline, timezone.utc)})")
    if not outcomes:
        return False, "no outcome expected: the client submitted nothing"
    if bad:
        return False, f"{len(bad)} of {len(outcomes)} wrong: " + "; ".join(bad)
    n_dl = sum(1 for o in outcomes if o[3] is not None)
    n_rt = sum(1 for o in outcomes if o[4] is not None)
    return True, (f"{len(outcomes)}/{len(outcomes)} documents: state and assembled text as sent"
                  + (f", {n_dl} deadline(s) as replaced" if n_dl else "")
                  + (f", {n_rt} routed with their target and per-segment deliveries" if n_rt else ""))


def cell(status, detail):
    if status == "ok":
        return "ok" if not detail.startswith("was a known failure") else "ok (was a known failure: remove it)"
    if status == "KNOWN":
        return f"**FAIL** (known: {detail.split(':')[0]})"
    if status == "n/a":
        # The cell names the reason up to its first colon; the details list the rest.
        return f"n/a ({detail.split(':')[0]})" if detail else "n/a"
    short = detail if len(detail) <= 60 else detail[:57] + "..."
    return f"**FAIL** ({short})".replace("|", "\\|")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mongo", required=True)
    ap.add_argument("--db", required=True)
    ap.add_argument("--run-info", default="")
    ap.add_argument("--summary", help="write 'N passed, N failed, N skipped' (features) here")
    ap.add_argument("--known-failures", help="scripts/interop/known-failures")
    ap.add_argument("clients", nargs="+", help="NAME=OUTFILE[:EXITCODE]")
    args = ap.parse_args()

    coll = MongoClient(args.mongo, serverSelectionTimeoutMS=5000)[args.db]["outcomes"]
    names, table, notes = [], {}, []
    known = known_failures(args.known_failures) if args.known_failures else {}
    failed = False
    for spec in args.clients:
        name, rest = spec.split("=", 1)
        path, _, code = rest.partition(":")
        results, outcomes, extra = parse(path)
        ok, detail = check_outcomes(coll, outcomes)
        results["mongo"] = ("ok" if ok else "FAIL", detail)
        for k, v in NA.items():
            results.setdefault(k, ("n/a", v[5:-1]))
        crash = results.pop("_crash", None)
        for key, _ in FEATURES:
            if key not in results:
                why = f"no result: client exited {code or '?'}"
                if crash:
                    why += f", {crash[1]}"
                results[key] = ("FAIL", why)
        for key, _ in FEATURES:
            reason = known.get((name, key)) or known.get(("*", key))
            status, detail = results[key]
            if reason and status == "FAIL":
                results[key] = ("KNOWN", f"{reason} — {detail}")
            elif reason and status == "ok":
                results[key] = ("ok", f"was a known failure: remove it from known-failures — {detail}")
        names.append(name)
        table[name] = results
        notes += [f"{name}: {n}" for n in extra]
        failed |= any(s == "FAIL" for s, _ in results.values())

    out = []
    out.append("| feature | " + " | ".join(names) + " |")
    out.append("|---|" + "---|" * len(names))
    for key, label in FEATURES:
        out.append(f"| {label} | " + " | ".join(cell(*table[n][key]) for n in names) + " |")
    out.append("")
    if args.run_info:
        out.append(args.run_info)
        out.append("")
    out.append("<details><summary>what each client saw</summary>")
    out.append("")
    for n in names:
        out.append(f"**{n}**")
        out.append("")
        for key, label in FEATURES:
            s, d = table[n][key]
            out.append(f"* {key}: {s}" + (f" — {d}" if d else ""))
        out.append("")
    for n in notes:
        out.append(f"* {n}")
    out.append("</details>")
    print("\n".join(out))
    if args.summary:
        cells = [s for n in names for s, _ in table[n].values()]
        with open(args.summary, "w", encoding="utf-8") as f:
            f.write(f"{cells.count('ok')} passed, {cells.count('FAIL')} failed, "
                    f"{cells.count('n/a') + cells.count('KNOWN')} skipped\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
