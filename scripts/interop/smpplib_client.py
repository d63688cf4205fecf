#!/usr/bin/env python3
"""The interop scenario (docs/interop-matrix.md) driven by python-smpplib, a synchronous ESME
library. Prints one line per feature and per expected MongoDB outcome:

    RESULT <feature> <ok|FAIL|n/a> <detail>
    OUTCOME <message_id> <DELIVERED|CANCELLED> <expected text, UTF-8 hex, or -> [<deadline, Unix s>
            [<route target, e.g. esme:smpplibmo>]]   (tab-separated; empty fields allowed)

Environment: SMPP_HOST, SMPP_PORT, SMPP_SYSTEM_ID, SMPP_PASSWORD; SMPP_MO_SYSTEM_ID (the
account a route of interop.sh's config forwards SMPP_MO_DST's prefix to; same password).

smpplib has no cancel_sm / replace_sm classes: they are added below on its own
`smpplib.command.Command` base (its encoder and decoder do the bytes), and its client
state table is widened so replace_sm may go out on a transceiver bind (smppd accepts
it there, as SMPP 5.0 does).
"""
import logging
import os
import random
import socket
import sys
import time
import traceback

import smpplib.client
import smpplib.command
import smpplib.consts as C
import smpplib.gsm
from smpplib.command import Command, Param

HOST = os.environ.get("SMPP_HOST", "127.0.0.1")
PORT = int(os.environ.get("SMPP_PORT", "2775"))
SYSTEM_ID = os.environ.get("SMPP_SYSTEM_ID", "test")
PASSWORD = os.environ.get("SMPP_PASSWORD", "secret")
SRC = "12345"
DST = "447700900001"
MO_SYSTEM_ID = os.environ.get("SMPP_MO_SYSTEM_ID", SYSTEM_ID + "mo")
MO_DST = os.environ.get("SMPP_MO_DST", "999700900001")
# The receiver holds each forwarded deliver_sm this long before its deliver_sm_resp,
# while the sender's bind reads: no receipt may come before the answer.
HOLD = float(os.environ.get("SMPP_HOLD", "0.3"))
WAIT = float(os.environ.get("SMPP_WAIT", "20"))
IDLE = float(os.environ.get("SMPP_IDLE", "3.5"))
if os.environ.get("SMPP_DEBUG"):  # every PDU in hex on stderr (target/interop/smpplib.log)
    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)

GSM_SINGLE = "Hello from smpplib @£$¥ interop"
MO_SINGLE = "Routed from smpplib @£$¥ {€} to another ESME"
# Long texts cut by octets after encoding (153 GSM septets / 134 UCS2 octets per part):
# a GSM escape (€ = 1B 65) straddles parts 1 and 2, a UTF-16 surrogate pair (😀)
# parts 1 and 2, so smppd must join the user data before decoding it.
_GSM = "smpplib GSM-7 long text @£$¥èé Ä Ö " * 12
GSM_LONG = _GSM[:152] + "€ {braces} [x] ~^|\\ " + _GSM[152:380]
_UCS = "Привет, мир! 你好 smpplib UCS2 " * 6
UCS2_LONG = _UCS[:66] + "😀" + _UCS[66:168]


def result(feature, status, detail=""):
    print(f"RESULT\t{feature}\t{status}\t{detail}", flush=True)


def outcome(mid, state, text, deadline=None, route=None):
    print(f"OUTCOME\t{mid}\t{state}\t{text.encode().hex() if text is not None else '-'}\t"
          f"{deadline or ''}\t{route or ''}", flush=True)


# --- cancel_sm / replace_sm on smpplib's Command base --------------------------------
class CancelSM(Command):
    params = {
        "service_type": Param(type=str, max=6),
        "message_id": Param(type=str, max=65),
        "source_addr_ton": Param(type=int, size=1),
        "source_addr_npi": Param(type=int, size=1),
        "source_addr": Param(type=str, max=21),
        "dest_addr_ton": Param(type=int, size=1),
        "dest_addr_npi": Param(type=int, size=1),
        "destination_addr": Param(type=str, max=21),
    }
    params_order = tuple(params)

    def __init__(self, command, **kwargs):
        super().__init__(command, **kwargs)
        self._set_vars(**(dict.fromkeys(self.params)))


class ReplaceSM(Command):
    params = {
        "message_id": Param(type=str, max=65),
        "source_addr_ton": Param(type=int, size=1),
        "source_addr_npi": Param(type=int, size=1),
        "source_addr": Param(type=str, max=21),
        "schedule_delivery_time": Param(type=str, max=17),
        "validity_period": Param(type=str, max=17),
        "registered_delivery": Param(type=int, size=1),
        "sm_default_msg_id": Param(type=int, size=1),
        "sm_length": Param(type=int, size=1),
        "short_message": Param(type=smpplib.command.ostr, max=254, len_field="sm_length"),
    }
    params_order = tuple(params)

    def __init__(self, command, **kwargs):
        super().__init__(command, **kwargs)
        self._set_vars(**(dict.fromkeys(self.params)))

    def prep(self):
        self.sm_length = len(self.short_message or b"")


class HeaderOnlyResp(Command):
    params = {}
    params_order = ()

    def __init__(self, command, **kwargs):
        super().__init__(command, need_sequence=False, **kwargs)


_factory = smpplib.command.factory


def factory(command_name, **kwargs):
    extra = {
        "cancel_sm": CancelSM,
        "replace_sm": ReplaceSM,
        "cancel_sm_resp": HeaderOnlyResp,
        "replace_sm_resp": HeaderOnlyResp,
    }
    if command_name in extra:
        return extra[command_name](command_name, **kwargs)
    return _factory(command_name, **kwargs)


smpplib.command.factory = factory
C.COMMAND_STATES["replace_sm"] = (C.SMPP_CLIENT_STATE_BOUND_TX, C.SMPP_CLIENT_STATE_BOUND_TRX)
C.COMMAND_STATES["replace_sm_resp"] = C.COMMAND_STATES["replace_sm"]


# --- a session that reads PDUs itself -------------------------------------------------
class Session:
    def __init__(self, name, system_id=SYSTEM_ID):
        self.name = name
        self.system_id = system_id
        self.c = smpplib.client.Client(HOST, PORT, timeout=WAIT, allow_unknown_opt_params=True)
        self.receipts = {}  # receipted message_id -> [(stat, message_state)]
        self.receipt_at = {}  # receipted message_id -> when its first receipt was read
        self.server_enquires = 0  # enquire_link sent by smppd and answered
        self.receipt_text = {}  # receipted message_id -> the receipt's text: field
        self.delivered = []  # every deliver_sm: dict(sm, esm, dc, src, dst, at = when answered)
        self.hold_with = None  # a Session that reads while a forwarded deliver_sm is held
        self.held = False

    def bind(self, kind):
        self.c.connect()
        fn = {"tx": self.c.bind_transmitter, "rx": self.c.bind_receiver, "trx": self.c.bind_transceiver}[kind]
        resp = fn(system_id=self.system_id, password=PASSWORD)
        return resp

    def _handle_request(self, pdu):
        if pdu.command == "deliver_sm":
            sm = pdu.short_message or b""
            if not pdu.esm_class & 0x3C and self.hold_with and not self.held:
                # The first forwarded message (no receipt type in esm_class): the
                # sender's bind reads for HOLD s before the answer; its receipt must not
                # come yet. Only the first: this client reads one socket at a time, and
                # a hold per deliver_sm kept the last of smppd's outstanding ones
                # unanswered past response_timeout.
                self.held = True
                self.hold_with.wait_receipts([], HOLD)
            self.delivered.append(dict(sm=sm, esm=pdu.esm_class, dc=pdu.data_coding, src=_s(pdu.source_addr),
                                       dst=_s(pdu.destination_addr)))
            text = sm.decode("ascii", "replace")
            rid = pdu.receipted_message_id
            rid = rid.decode() if isinstance(rid, bytes) else rid
            stat = ""
            if "stat:" in text:
                stat = text.split("stat:")[1].split()[0]
            if rid is None and text.startswith("id:"):
                rid = text[3:].split()[0]
            self.receipts.setdefault(rid, []).append((stat, pdu.message_state, pdu.esm_class))
            self.receipt_at.setdefault(rid, time.monotonic())
            self.receipt_text[rid] = text.split("text:", 1)[1] if "text:" in text else None
            print(f"{self.name}: deliver_sm dc={pdu.data_coding} esm=0x{pdu.esm_class:02x} "
                  f"receipted_message_id={rid} message_state={pdu.message_state} {text!r}",
                  file=sys.stderr, flush=True)
            resp = smpplib.smpp.make_pdu("deliver_sm_resp", client=self.c)
            resp.sequence = pdu.sequence
            self.c.send_pdu(resp)
            self.delivered[-1]["at"] = time.monotonic()
            return True
        if pdu.command == "enquire_link":
            self.server_enquires += 1
            resp = smpplib.smpp.make_pdu("enquire_link_resp", client=self.c)
            resp.sequence = pdu.sequence
            self.c.send_pdu(resp)
            return True
        return False

    def request(self, pdu):
        """Sends pdu and returns its response (handling deliver_sm meanwhile)."""
        self.c.send_pdu(pdu)
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            resp = self.c.read_pdu()
            if self._handle_request(resp):
                continue
            if resp.sequence == pdu.sequence:
                return resp
            if resp.command == "generic_nack":
                return resp
        raise TimeoutError(f"no response to {pdu.command} seq {pdu.sequence}")

    def submit(self, short_message, data_coding=0, esm_class=0, registered_delivery=1, dst=DST, **tlvs):
        pdu = smpplib.smpp.make_pdu(
            "submit_sm",
            client=self.c,
            source_addr_ton=0,
            source_addr_npi=0,
            source_addr=SRC,
            dest_addr_ton=1,
            dest_addr_npi=1,
            destination_addr=dst,
            short_message=short_message,
            data_coding=data_coding,
            esm_class=esm_class,
            registered_delivery=registered_delivery,
            **tlvs,
        )
        resp = self.request(pdu)
        mid = resp.message_id.decode() if isinstance(resp.message_id, bytes) else resp.message_id
        return resp.status, mid

    def pdu(self, name, **kwargs):
        return smpplib.smpp.make_pdu(name, client=self.c, **kwargs)

    def query(self, mid):
        r = self.request(self.pdu("query_sm", message_id=mid, source_addr_ton=0, source_addr_npi=0, source_addr=SRC))
        return r.status, r.message_state, r.final_date

    def wait_receipts(self, ids, seconds):
        """Reads (answering deliver_sm and enquire_link) until every id has a receipt;
        with no ids, for `seconds`."""
        deadline = time.monotonic() + seconds
        self.c._socket.settimeout(0.5)
        try:
            while time.monotonic() < deadline and not (ids and all(i in self.receipts for i in ids)):
                try:
                    pdu = self.c.read_pdu()
                except socket.timeout:
                    continue
                self._handle_request(pdu)
        finally:
            self.c._socket.settimeout(WAIT)
        return [i for i in ids if i not in self.receipts]

    def wait_delivered(self, octets, seconds):
        """Reads (answering) until a deliver_sm carrying each of `octets` came; the missing.
        hold_with's bind reads in turn, so its smppd enquire_links are answered."""
        deadline = time.monotonic() + seconds
        got = lambda: {d["sm"] for d in self.delivered}  # noqa: E731
        while time.monotonic() < deadline and not set(octets) <= got():
            self.c._socket.settimeout(0.5)
            try:
                self._handle_request(self.c.read_pdu())
            except socket.timeout:
                if self.hold_with:
                    self.hold_with.wait_receipts([], 0.1)
            finally:
                self.c._socket.settimeout(WAIT)
        return [o for o in octets if o not in got()]

    def enquire(self):
        return self.request(self.pdu("enquire_link")).status

    def unbind(self):
        r = self.request(self.pdu("unbind"))
        self.c.disconnect()
        return r.status


def _s(v):
    return v.decode() if isinstance(v, bytes) else v


def status_name(s):
    return f"0x{int(s):08X}"


def send_parts(sess, text, encoding, sar):
    """Splits text with smpplib.gsm.make_parts (UDH) or the same without UDHI plus SAR
    TLVs; returns (all ok, [message_ids], detail)."""
    parts, dc, esm = smpplib.gsm.make_parts(text, encoding=encoding, use_udhi=not sar)
    ids, bad = [], []
    ref = random.randint(1, 0xFFFF)
    for i, part in enumerate(parts, start=1):
        tlvs = {}
        if sar:
            tlvs = dict(sar_msg_ref_num=ref, sar_total_segments=len(parts), sar_segment_seqnum=i)
        st, mid = sess.submit(part, data_coding=dc, esm_class=esm, **tlvs)
        if st != 0:
            bad.append(f"segment {i}: {status_name(st)}")
        else:
            ids.append(mid)
    return (not bad and len(parts) > 1), ids, f"{len(parts)} segments, dc={dc}" + ("; " + ", ".join(bad) if bad else "")


def routed(trx):
    """Routed (MO): a receiver of the second account (MO_SYSTEM_ID) takes, as deliver_sm,
    what trx sends to MO_DST (a [[route]] of interop.sh's config): a single-part and a
    UDH message, registered_delivery 1. Each segment must come once with its octets (UDH
    included), esm_class, data_coding and addresses as submitted; the receiver answers
    the first ESME_ROK after HOLD s; each sender's DELIVRD receipt must come after its answer."""
    mo = Session("mo", MO_SYSTEM_ID)
    try:
        mo.bind("rx")
    except Exception as e:  # noqa: BLE001
        result("mo", "FAIL", f"bind_receiver as {MO_SYSTEM_ID}: {e!r}")
        return
    mo.hold_with = trx
    sent, bad = [], []  # sent: (message_id, short_message, esm_class, data_coding)
    sm = smpplib.gsm.gsm_encode(MO_SINGLE)
    st, mid = trx.submit(sm, dst=MO_DST)
    if st == 0:
        sent.append((mid, sm, 0, 0))
        outcome(mid, "DELIVERED", MO_SINGLE, route=f"esme:{MO_SYSTEM_ID}")
    else:
        bad.append(f"single submit_sm: {status_name(st)}")
    parts, dc, esm = smpplib.gsm.make_parts(GSM_LONG, encoding=C.SMPP_ENCODING_DEFAULT, use_udhi=True)
    for i, part in enumerate(parts, start=1):
        st, mid = trx.submit(part, data_coding=dc, esm_class=esm, dst=MO_DST)
        if st != 0:
            bad.append(f"UDH segment {i} submit_sm: {status_name(st)}")
        else:
            sent.append((mid, part, esm, dc))
            if i == 1:
                outcome(mid, "DELIVERED", GSM_LONG, route=f"esme:{MO_SYSTEM_ID}")
    missing = mo.wait_delivered([s[1] for s in sent], WAIT)
    trx.wait_receipts([s[0] for s in sent], WAIT)
    for n, (mid, octets, esm_sent, dc_sent) in enumerate(sent, start=1):
        got = [d for d in mo.delivered if d["sm"] == octets]
        if len(got) != 1:
            bad.append(f"segment {n}: {len(got)} deliver_sm with its octets")
            continue
        d = got[0]
        if (d["esm"], d["dc"], d["src"], d["dst"]) != (esm_sent, dc_sent, SRC, MO_DST):
            bad.append(f"segment {n}: esm_class 0x{d['esm']:02x} data_coding {d['dc']} {d['src']}->{d['dst']}")
        r = trx.receipts.get(mid)
        if not r or r[0][0] != "DELIVRD" or not r[0][2] & 0x04:
            bad.append(f"segment {n}: sender's receipt {r[0] if r else 'missing'}")
        elif trx.receipt_at[mid] < d["at"]:
            bad.append(f"segment {n}: receipt read {d['at'] - trx.receipt_at[mid]:.2f} s before the answer")
    if len(mo.delivered) != len(sent):
        bad.append(f"{len(mo.delivered)} deliver_sm for {len(sent)} segments")
    unbind = mo.unbind()
    if unbind != 0:
        bad.append(f"unbind of the receiver: {status_name(unbind)}")
    if missing or bad:
        result("mo", "FAIL", "; ".join(bad) or f"{len(missing)} segments never delivered")
    else:
        result("mo", "ok", f"{MO_SYSTEM_ID} (RX) took {len(sent)} deliver_sm (single + {len(parts)}-part UDH): "
                           f"octets, UDH, esm_class, data_coding, addresses as sent; answered ESME_ROK after "
                           f"{HOLD:g} s, then {len(sent)}/{len(sent)} receipts stat:DELIVRD on the sender")


def main():
    enquire_ok, unbind_ok = [], []

    # Phase A: a transmitter and a receiver of one account.
    tx, rx = Session("tx"), Session("rx")
    try:
        tx.bind("tx")
        result("bind_tx", "ok")
    except Exception as e:  # noqa: BLE001
        result("bind_tx", "FAIL", repr(e))
        tx = None
    try:
        rx.bind("rx")
        result("bind_rx", "ok")
    except Exception as e:  # noqa: BLE001
        result("bind_rx", "FAIL", repr(e))
        rx = None
    if tx and rx:
        st, mid = tx.submit(smpplib.gsm.gsm_encode(GSM_SINGLE))
        if st == 0:
            outcome(mid, "DELIVERED", GSM_SINGLE)
            missing = rx.wait_receipts([mid], WAIT)
            if missing:
                result("dlr_rx", "FAIL", f"no receipt on the RX bind for {mid}")
            else:
                stat, ms, esm = rx.receipts[mid][0]
                ok = stat == "DELIVRD" and ms == 2 and esm & 0x04
                result("dlr_rx", "ok" if ok else "FAIL", f"stat:{stat} message_state={ms} esm_class=0x{esm:02x}")
        else:
            result("dlr_rx", "FAIL", f"submit_sm on TX: {status_name(st)}")
    for s in (tx, rx):
        if s:
            enquire_ok.append(s.enquire() == 0)
            unbind_ok.append(s.unbind() == 0)

    # Phase B: one transceiver does the rest.
    trx = Session("trx")
    try:
        trx.bind("trx")
        result("bind_trx", "ok")
    except Exception as e:  # noqa: BLE001
        result("bind_trx", "FAIL", repr(e))
        return
    want_receipts = []

    st, mid = trx.submit(smpplib.gsm.gsm_encode(GSM_SINGLE))
    if st == 0 and mid:
        result("submit_single", "ok", f"message_id {mid}")
        outcome(mid, "DELIVERED", GSM_SINGLE)
        want_receipts.append(mid)
        single = mid
    else:
        result("submit_single", "FAIL", status_name(st))
        single = None

    for feature, text, enc, sar in (
        ("udh_gsm", GSM_LONG, C.SMPP_ENCODING_DEFAULT, False),
        ("udh_ucs2", UCS2_LONG, C.SMPP_ENCODING_ISO10646, False),
        ("sar_gsm", GSM_LONG, C.SMPP_ENCODING_DEFAULT, True),
        ("sar_ucs2", UCS2_LONG, C.SMPP_ENCODING_ISO10646, True),
    ):
        ok, ids, detail = send_parts(trx, text, enc, sar)
        result(feature, "ok" if ok else "FAIL", detail)
        if ids:
            outcome(ids[0], "DELIVERED", text)
            want_receipts += ids

    # query_sm / cancel_sm on a pending message: the first of two UDH segments.
    detail, ok = [], True
    st, qstate, fdate = trx.query(single) if single else (None, None, None)
    detail.append(f"delivered: status {st} state {qstate} final_date {fdate!r}")
    ok &= st == 0 and qstate == 2
    udh = bytes([5, 0, 3, random.randint(0, 255), 2, 1])
    st, pend = trx.submit(udh + smpplib.gsm.gsm_encode("to be cancelled"), esm_class=0x40)
    cancel_detail, cancel_ok = [], st == 0
    if st == 0:
        st, qstate, _ = trx.query(pend)
        detail.append(f"pending: status {st} state {qstate}")
        ok &= st == 0 and qstate == 1
        r = trx.request(trx.pdu("cancel_sm", service_type="", message_id=pend, source_addr_ton=0,
                                source_addr_npi=0, source_addr=SRC, dest_addr_ton=1, dest_addr_npi=1,
                                destination_addr=DST))
        cancel_detail.append(f"pending: {status_name(r.status)}")
        cancel_ok &= r.status == 0 and r.command == "cancel_sm_resp"
        st, qstate, _ = trx.query(pend)
        detail.append(f"cancelled: status {st} state {qstate}")
        ok &= st == 0 and qstate == 4  # DELETED
        r = trx.request(trx.pdu("cancel_sm", service_type="", message_id=pend, source_addr_ton=0,
                                source_addr_npi=0, source_addr=SRC, dest_addr_ton=1, dest_addr_npi=1,
                                destination_addr=DST))
        cancel_detail.append(f"again: {status_name(r.status)}")
        cancel_ok &= r.status == 0x11
        missing = trx.wait_receipts([pend], WAIT)
        stat = trx.receipts.get(pend, [("none", None, 0)])[0]
        cancel_detail.append(f"receipt stat:{stat[0]} message_state={stat[1]}")
        cancel_ok &= not missing and stat[0] == "DELETED"
        outcome(pend, "CANCELLED", None)
    else:
        cancel_detail.append(f"submit of the pending segment: {status_name(st)}")
    st, qstate, _ = trx.query("ffffffffffffffffffff")
    detail.append(f"unknown id: {status_name(st)}")
    ok &= st == 0x0C
    result("query_sm", "ok" if ok else "FAIL", "; ".join(detail))
    result("cancel_sm", "ok" if cancel_ok else "FAIL", "; ".join(cancel_detail))

    # replace_sm: segment 1 of 2 pending, replaced, then segment 2 completes the message.
    ref = random.randint(0, 255)
    udh1, udh2 = bytes([5, 0, 3, ref, 2, 1]), bytes([5, 0, 3, ref, 2, 2])
    old, new, tail = "original first part ", "REPLACED first part ", "and the second part"
    rdetail, rok = [], True
    st, r1 = trx.submit(udh1 + smpplib.gsm.gsm_encode(old), esm_class=0x40)
    rok &= st == 0
    if st == 0:
        # validity_period relative 30 min (the account default is 5 min): the outcome's
        # deadline must move to replace time + 30 min.
        replaced_at = time.time()
        r = trx.request(trx.pdu("replace_sm", message_id=r1, source_addr_ton=0, source_addr_npi=0,
                                source_addr=SRC, schedule_delivery_time="",
                                validity_period="000000003000000R",
                                registered_delivery=1, sm_default_msg_id=0,
                                short_message=udh1 + smpplib.gsm.gsm_encode(new)))
        rdetail.append(f"pending (new text, validity +30 min relative): {status_name(r.status)}")
        rok &= r.status == 0 and r.command == "replace_sm_resp"
        st, r2 = trx.submit(udh2 + smpplib.gsm.gsm_encode(tail), esm_class=0x40)
        rok &= st == 0
        if st == 0:
            want_receipts += [r1, r2]
            outcome(r1, "DELIVERED", new + tail, replaced_at + 1800)
        r = trx.request(trx.pdu("replace_sm", message_id=r1, source_addr_ton=0, source_addr_npi=0,
                                source_addr=SRC, schedule_delivery_time="", validity_period="",
                                registered_delivery=1, sm_default_msg_id=0,
                                short_message=udh1 + smpplib.gsm.gsm_encode(new)))
        rdetail.append(f"delivered: {status_name(r.status)}")
        rok &= r.status == 0x13
    else:
        rdetail.append(f"submit: {status_name(st)}")
    result("replace_sm", "ok" if rok else "FAIL", "; ".join(rdetail) + "; text and deadline checked in MongoDB")

    missing = trx.wait_receipts(want_receipts, WAIT)
    bad = [m for m in want_receipts if m in trx.receipts and trx.receipts[m][0][0] != "DELIVRD"]
    if missing or bad:
        result("dlr_trx", "FAIL", f"{len(missing)} of {len(want_receipts)} receipts missing; not DELIVRD: {bad}")
    else:
        result("dlr_trx", "ok", f"{len(want_receipts)}/{len(want_receipts)} segment receipts, stat:DELIVRD")
    # Appendix B: text: holds the first 20 characters of the message; every text sent
    # here is non-empty, so no receipt's text: may be.
    empty = [m for m in want_receipts if trx.receipt_text.get(m) == ""]
    result("dlr_text", "FAIL" if empty else "ok",
           f"{len(empty)} of {len(want_receipts)} receipts with an empty text: ({', '.join(empty)})"
           if empty else f"{len(want_receipts)}/{len(want_receipts)} receipts with a text:")

    try:
        routed(trx)
    except Exception as e:  # noqa: BLE001
        traceback.print_exc()
        result("mo", "FAIL", repr(e))

    # Idle past smppd's enquire_link_interval (1 s in interop.sh's config): smppd's
    # enquire_link must be answered within its response_timeout (2 s) or it closes.
    trx.wait_receipts([], IDLE)
    enquire_ok.append(trx.enquire() == 0)
    unbind_ok.append(trx.unbind() == 0)
    ok = all(enquire_ok) and len(enquire_ok) == 3 and trx.server_enquires > 0
    result("enquire_link", "ok" if ok else "FAIL",
           f"ESME to smppd: {sum(enquire_ok)}/3 enquire_link_resp ROK; smppd to ESME after "
           f"{IDLE:g} s idle: {trx.server_enquires} answered, bind still up")
    result("unbind", "ok" if all(unbind_ok) and len(unbind_ok) == 3 else "FAIL",
           f"{sum(unbind_ok)}/3 unbind_resp ROK")


if __name__ == "__main__":
    try:
        main()
    except Exception:  # noqa: BLE001
        traceback.print_exc()
        print(f"RESULT\t_crash\tFAIL\t{traceback.format_exc().splitlines()[-1]}", flush=True)
        sys.exit(1)
