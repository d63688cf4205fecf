#!/usr/bin/env python3
"""Bind to smppd with python-smpplib (an independent, widely used ESME library),
send one message — split into UDH segments when long — and print the submit_sm_resp
message_ids and every delivery receipt that comes back.

    pip install smpplib
    scripts/send-sms.py --host 127.0.0.1 --port 2775 --system-id test --password secret \
        --to 447700900001 --text "a text longer than 160 characters is sent as several segments ..."

Use --drop-last to leave a message partial on purpose (its deadline then fires the
expiry path: the received segments are delivered one by one and receipted).
Use --receive N to send nothing and print the first N deliver_sm that arrive (the
receiving application of a [[route]]: `--system-id app2 --password secret2 --receive 1`).
"""
import argparse
import sys
import time

import smpplib.client
import smpplib.consts
import smpplib.gsm


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=2775)
    ap.add_argument("--system-id", default="test")
    ap.add_argument("--password", default="secret")
    ap.add_argument("--from", dest="source", default="12345")
    ap.add_argument("--to", default="447700900001")
    ap.add_argument("--text", default="Hello from smppd")
    ap.add_argument("--validity", default="", help="validity_period, e.g. 000000000030000R (30 s)")
    ap.add_argument("--drop-last", action="store_true", help="do not send the last segment")
    ap.add_argument("--wait", type=float, default=10.0, help="seconds to wait for receipts")
    ap.add_argument("--receive", type=int, default=0, help="send nothing; wait for this many deliver_sm")
    args = ap.parse_args()

    parts, encoding, esm_class = smpplib.gsm.make_parts(args.text)
    if args.drop_last and len(parts) > 1:
        parts = parts[:-1]
    if args.receive:
        parts = []
    expected = args.receive or len(parts)
    receipts = []

    client = smpplib.client.Client(args.host, args.port, allow_unknown_opt_params=True)
    client.set_message_sent_handler(
        lambda pdu: print(f"submit_sm_resp seq={pdu.sequence} status={pdu.status} message_id={pdu.message_id.decode()}")
    )

    def on_deliver(pdu):
        receipts.append(pdu)
        kind = "receipt" if pdu.esm_class & 0x04 else "message"
        print(f"deliver_sm {kind}: {pdu.short_message.decode(errors='replace')}")

    client.set_message_received_handler(on_deliver)
    client.connect()
    client.bind_transceiver(system_id=args.system_id, password=args.password)
    for part in parts:
        client.send_message(
            source_addr_ton=smpplib.consts.SMPP_TON_INTL,
            source_addr=args.source,
            dest_addr_ton=smpplib.consts.SMPP_TON_INTL,
            destination_addr=args.to,
            short_message=part,
            data_coding=encoding,
            esm_class=esm_class,
            registered_delivery=True,
            validity_period=args.validity or None,
        )
    deadline = time.monotonic() + args.wait
    client._socket.settimeout(0.5)
    while len(receipts) < expected and time.monotonic() < deadline:
        try:
            client.read_once()
        except OSError:
            pass
    client.unbind()
    client.disconnect()
    print(f"{len(receipts)}/{expected} deliver_sm")
    return 0 if len(receipts) == expected else 1


if __name__ == "__main__":
    sys.exit(main())
