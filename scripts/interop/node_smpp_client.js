#!/usr/bin/env node
// The interop scenario (docs/interop-matrix.md) driven by the node `smpp` package (npm).
// Prints RESULT / OUTCOME lines like smpplib_client.py. The package has no
// segmentation: the script encodes the text with the package's own GSM 03.38 / UCS2
// encoders (smpp.encodings), cuts the octets (153 / 134 per part) and hands each part
// to the package as {udh, message} or with its sar_* TLVs; short texts go through the
// package's data_coding-driven encoding. Routed (MO): a receiver of SMPP_MO_SYSTEM_ID
// (same password), which a route of interop.sh's config hands what is sent to SMPP_MO_DST.
'use strict';
const smpp = require('smpp');

const HOST = process.env.SMPP_HOST || '127.0.0.1';
const PORT = Number(process.env.SMPP_PORT || 2775);
const SYSTEM_ID = process.env.SMPP_SYSTEM_ID || 'test';
const PASSWORD = process.env.SMPP_PASSWORD || 'secret';
const WAIT = Number(process.env.SMPP_WAIT || 20) * 1000;
const IDLE = Number(process.env.SMPP_IDLE || 3.5) * 1000;
const SRC = '12345';
const DST = '447700900001';
const MO_SYSTEM_ID = process.env.SMPP_MO_SYSTEM_ID || `${SYSTEM_ID}mo`;
const MO_DST = process.env.SMPP_MO_DST || '999700900001';
// The receiver holds each forwarded deliver_sm this long before its deliver_sm_resp:
// the sender's receipt must come after the answer.
const HOLD = Number(process.env.SMPP_HOLD || 0.3) * 1000;

const GSM_SINGLE = 'Hello from node-smpp @£$¥ interop';
const MO_SINGLE = 'Routed from node-smpp @£$¥ {€} to another ESME';
// Long texts cut by octets after encoding (153 GSM septets / 134 UCS2 octets per part):
// a GSM escape (€ = 1B 65) straddles parts 1 and 2, a UTF-16 surrogate pair (😀)
// parts 1 and 2, so smppd must join the user data before decoding it.
const GSM_BASE = 'node-smpp GSM-7 long text @£$¥èé Ä Ö '.repeat(12);
const GSM_LONG = GSM_BASE.slice(0, 152) + '€ {braces} [x] ~^|\\ ' + GSM_BASE.slice(152, 380);
const UCS_BASE = 'Привет, мир! 你好 node-smpp UCS2 '.repeat(6);
const UCS2_LONG = UCS_BASE.slice(0, 66) + '😀' + UCS_BASE.slice(66, 168);

function result(feature, status, detail) {
  process.stdout.write(`RESULT\t${feature}\t${status}\t${detail || ''}\n`);
}
function outcome(mid, state, text, deadline, route) {
  const hex = text == null ? '-' : Buffer.from(text, 'utf8').toString('hex');
  process.stdout.write(`OUTCOME\t${mid}\t${state}\t${hex}\t${deadline || ''}\t${route || ''}\n`);
}
const hex8 = (n) => '0x' + (n >>> 0).toString(16).toUpperCase().padStart(8, '0');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

class Session {
  constructor(name, systemId) {
    this.name = name;
    this.systemId = systemId || SYSTEM_ID;
    this.receipts = new Map(); // receipted message_id -> [{stat, state, esm}]
    this.receiptAt = new Map(); // receipted message_id -> when its first receipt came (ms)
    this.delivered = []; // every deliver_sm: {udh (header octets or null), message (decoded), esm, dc, src, dst, at (answered, ms)}
    this.hold = 0; // ms a forwarded deliver_sm (no receipt type in esm_class) is held before its answer
    this.serverEnquires = 0; // enquire_link sent by smppd and answered
  }

  async connect() {
    this.s = smpp.connect({ url: `smpp://${HOST}:${PORT}`, auto_enquire_link_period: 0 });
    this.s.on('error', (e) => process.stderr.write(`${this.name}: socket error ${e}\n`));
    this.s.on('deliver_sm', (pdu) => {
      const sm = pdu.short_message;
      const text = typeof sm === 'string' ? sm : Buffer.isBuffer(sm) ? sm.toString('latin1') : (sm && sm.message) || '';
      let rid = pdu.receipted_message_id;
      if (!rid && text.startsWith('id:')) rid = text.slice(3).split(' ')[0];
      const m = /stat:(\S+)/.exec(text);
      const list = this.receipts.get(rid) || [];
      const t = text.indexOf('text:');
      list.push({ stat: m ? m[1] : '', state: pdu.message_state, esm: pdu.esm_class, text: t >= 0 ? text.slice(t + 5) : null });
      this.receipts.set(rid, list);
      if (!this.receiptAt.has(rid)) this.receiptAt.set(rid, performance.now());
      // The package splits a UDHI short_message into its information elements and the
      // decoded text: the header octets are rebuilt from the elements.
      const udh = sm && sm.udh ? Buffer.concat([Buffer.from([sm.udh.reduce((n, e) => n + e.length, 0)]), ...sm.udh]) : null;
      const entry = { udh, message: text, esm: pdu.esm_class, dc: pdu.data_coding, src: pdu.source_addr, dst: pdu.destination_addr, at: null };
      this.delivered.push(entry);
      process.stderr.write(`${this.name}: deliver_sm dc=${pdu.data_coding} esm=0x${pdu.esm_class.toString(16)} receipted_message_id=${rid} message_state=${pdu.message_state} ${udh ? `udh=${udh.toString('hex')} ` : ''}${JSON.stringify(text)}\n`);
      const answer = () => {
        this.s.send(pdu.response());
        entry.at = performance.now();
      };
      if (this.hold && !(pdu.esm_class & 0x3c)) setTimeout(answer, this.hold);
      else answer();
    });
    this.s.on('enquire_link', (pdu) => {
      this.serverEnquires++;
      this.s.send(pdu.response());
    });
    this.closed = false;
    this.s.on('close', () => {
      this.closed = true;
    });
    await new Promise((resolve, reject) => {
      this.s.once('connect', resolve);
      this.s.once('error', reject);
    });
  }

  call(cmd, params) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no response to ${cmd}`)), WAIT);
      this.s[cmd](params || {}, (pdu) => {
        clearTimeout(timer);
        resolve(pdu);
      });
    });
  }

  async bind(kind) {
    await this.connect();
    const pdu = await this.call(`bind_${kind}`, { system_id: this.systemId, password: PASSWORD });
    if (pdu.command_status !== 0) throw new Error(`bind_${kind}_resp ${hex8(pdu.command_status)}`);
    return pdu;
  }

  async submit(shortMessage, opts) {
    const pdu = await this.call('submit_sm', {
      source_addr_ton: 0,
      source_addr_npi: 0,
      source_addr: SRC,
      dest_addr_ton: 1,
      dest_addr_npi: 1,
      destination_addr: DST,
      registered_delivery: 1,
      data_coding: 0,
      esm_class: 0,
      short_message: shortMessage,
      ...(opts || {}),
    });
    return [pdu.command_status, pdu.message_id];
  }

  async query(mid) {
    const pdu = await this.call('query_sm', { message_id: mid, source_addr_ton: 0, source_addr_npi: 0, source_addr: SRC });
    return [pdu.command_status, pdu.message_state, pdu.final_date];
  }

  async waitReceipts(ids, ms) {
    const end = Date.now() + ms;
    while (Date.now() < end && !ids.every((i) => this.receipts.has(i))) await sleep(100);
    return ids.filter((i) => !this.receipts.has(i));
  }

  async enquire() {
    return (await this.call('enquire_link')).command_status;
  }

  async unbind() {
    const pdu = await this.call('unbind');
    this.s.close();
    return pdu.command_status;
  }
}

// Encodes text with the package's GSM 03.38 or UCS2 encoder and cuts the octets.
function chunks(text, ucs2) {
  const data = (ucs2 ? smpp.encodings.UCS2 : smpp.encodings.ASCII).encode(text);
  const size = ucs2 ? 134 : 153;
  const out = [];
  for (let i = 0; i < data.length; i += size) out.push(data.subarray(i, i + size));
  return out;
}

async function sendParts(sess, text, ucs2, sar) {
  const parts = chunks(text, ucs2);
  const ref = 1 + Math.floor(Math.random() * 0xfffe);
  const ids = [];
  const bad = [];
  for (let i = 0; i < parts.length; i++) {
    const opts = { data_coding: ucs2 ? 8 : 0 };
    let sm;
    if (sar) {
      Object.assign(opts, { sar_msg_ref_num: ref, sar_total_segments: parts.length, sar_segment_seqnum: i + 1 });
      sm = { message: parts[i] };
    } else {
      sm = { udh: Buffer.from([5, 0, 3, ref & 0xff, parts.length, i + 1]), message: parts[i] };
    }
    const [st, mid] = await sess.submit(sm, opts);
    if (st !== 0) bad.push(`segment ${i + 1}: ${hex8(st)}`);
    else ids.push(mid);
  }
  return [bad.length === 0 && parts.length > 1, ids, `${parts.length} segments, dc=${ucs2 ? 8 : 0}` + (bad.length ? '; ' + bad.join(', ') : '')];
}

// Routed (MO): a receiver of the second account (MO_SYSTEM_ID) takes, as deliver_sm,
// what trx sends to MO_DST (a [[route]] of interop.sh's config): a single-part and a
// UDH message, registered_delivery 1. Each segment must come once with its UDH, text
// (the package's decoding of the octets sent), esm_class, data_coding and addresses as
// submitted; the receiver answers ESME_ROK after HOLD ms; the sender's DELIVRD receipt
// must come after that answer.
async function routed(trx) {
  const mo = new Session('mo', MO_SYSTEM_ID);
  try {
    await mo.bind('receiver');
  } catch (e) {
    result('mo', 'FAIL', `bind_receiver as ${MO_SYSTEM_ID}: ${e}`);
    return;
  }
  mo.hold = HOLD;
  const route = `esme:${MO_SYSTEM_ID}`;
  const sent = []; // {mid, udh, message, esm}
  const bad = [];
  let [st, mid] = await trx.submit({ message: MO_SINGLE }, { destination_addr: MO_DST });
  if (st === 0) {
    sent.push({ mid, udh: null, message: MO_SINGLE, esm: 0 });
    outcome(mid, 'DELIVERED', MO_SINGLE, '', route);
  } else bad.push(`single submit_sm: ${hex8(st)}`);
  const parts = chunks(GSM_LONG, false);
  const ref = Math.floor(Math.random() * 256);
  for (let i = 0; i < parts.length; i++) {
    const udh = Buffer.from([5, 0, 3, ref, parts.length, i + 1]);
    [st, mid] = await trx.submit({ udh, message: parts[i] }, { destination_addr: MO_DST });
    if (st !== 0) bad.push(`UDH segment ${i + 1} submit_sm: ${hex8(st)}`);
    else {
      sent.push({ mid, udh, message: smpp.encodings.ASCII.decode(parts[i]), esm: 0x40 });
      if (i === 0) outcome(mid, 'DELIVERED', GSM_LONG, '', route);
    }
  }
  const matches = (x) => mo.delivered.filter((d) => d.message === x.message && (x.udh ? !!d.udh && d.udh.equals(x.udh) : !d.udh));
  const end = Date.now() + WAIT;
  while (Date.now() < end && !sent.every((x) => matches(x).some((d) => d.at !== null))) await sleep(100);
  await trx.waitReceipts(sent.map((x) => x.mid), WAIT);
  sent.forEach((x, i) => {
    const got = matches(x);
    if (got.length !== 1) {
      bad.push(`segment ${i + 1}: ${got.length} deliver_sm with its UDH and text`);
      return;
    }
    const d = got[0];
    if (d.esm !== x.esm || d.dc !== 0 || d.src !== SRC || d.dst !== MO_DST) {
      bad.push(`segment ${i + 1}: esm_class 0x${d.esm.toString(16)} data_coding ${d.dc} ${d.src}->${d.dst}`);
    }
    const r = (trx.receipts.get(x.mid) || [])[0];
    if (!r || r.stat !== 'DELIVRD' || !(r.esm & 0x04)) bad.push(`segment ${i + 1}: sender's receipt ${r ? `stat:${r.stat}` : 'missing'}`);
    else if (d.at === null || trx.receiptAt.get(x.mid) < d.at) bad.push(`segment ${i + 1}: receipt before the answer`);
  });
  if (mo.delivered.length !== sent.length) bad.push(`${mo.delivered.length} deliver_sm for ${sent.length} segments`);
  const ub = await mo.unbind();
  if (ub !== 0) bad.push(`unbind of the receiver: ${hex8(ub)}`);
  if (bad.length) result('mo', 'FAIL', bad.join('; '));
  else {
    result(
      'mo',
      'ok',
      `${MO_SYSTEM_ID} (RX) took ${sent.length} deliver_sm (single + ${parts.length}-part UDH): UDH, text, esm_class, data_coding, addresses as sent; answered ESME_ROK after ${HOLD / 1000} s, then ${sent.length}/${sent.length} receipts stat:DELIVRD on the sender`,
    );
  }
}

async function main() {
  const enquireOk = [];
  const unbindOk = [];

  // Phase A: a transmitter and a receiver of one account.
  let tx = new Session('tx');
  let rx = new Session('rx');
  try {
    await tx.bind('transmitter');
    result('bind_tx', 'ok');
  } catch (e) {
    result('bind_tx', 'FAIL', String(e));
    tx = null;
  }
  try {
    await rx.bind('receiver');
    result('bind_rx', 'ok');
  } catch (e) {
    result('bind_rx', 'FAIL', String(e));
    rx = null;
  }
  if (tx && rx) {
    const [st, mid] = await tx.submit({ message: GSM_SINGLE });
    if (st === 0) {
      outcome(mid, 'DELIVERED', GSM_SINGLE);
      const missing = await rx.waitReceipts([mid], WAIT);
      if (missing.length) result('dlr_rx', 'FAIL', `no receipt on the RX bind for ${mid}`);
      else {
        const r = rx.receipts.get(mid)[0];
        const ok = r.stat === 'DELIVRD' && r.state === 2 && (r.esm & 0x04) !== 0;
        result('dlr_rx', ok ? 'ok' : 'FAIL', `stat:${r.stat} message_state=${r.state} esm_class=0x${r.esm.toString(16)}`);
      }
    } else result('dlr_rx', 'FAIL', `submit_sm on TX: ${hex8(st)}`);
  }
  for (const s of [tx, rx]) {
    if (!s) continue;
    enquireOk.push((await s.enquire()) === 0);
    unbindOk.push((await s.unbind()) === 0);
  }

  // Phase B: one transceiver does the rest.
  const trx = new Session('trx');
  try {
    await trx.bind('transceiver');
    result('bind_trx', 'ok');
  } catch (e) {
    result('bind_trx', 'FAIL', String(e));
    return;
  }
  let want = [];
  let single = null;
  {
    const [st, mid] = await trx.submit({ message: GSM_SINGLE });
    if (st === 0 && mid) {
      result('submit_single', 'ok', `message_id ${mid}`);
      outcome(mid, 'DELIVERED', GSM_SINGLE);
      want.push(mid);
      single = mid;
    } else result('submit_single', 'FAIL', hex8(st));
  }
  for (const [feature, text, ucs2, sar] of [
    ['udh_gsm', GSM_LONG, false, false],
    ['udh_ucs2', UCS2_LONG, true, false],
    ['sar_gsm', GSM_LONG, false, true],
    ['sar_ucs2', UCS2_LONG, true, true],
  ]) {
    const [ok, ids, detail] = await sendParts(trx, text, ucs2, sar);
    result(feature, ok ? 'ok' : 'FAIL', detail);
    if (ids.length) {
      outcome(ids[0], 'DELIVERED', text);
      want = want.concat(ids);
    }
  }

  // query_sm / cancel_sm on a pending message: the first of two UDH segments.
  const qd = [];
  let qok = true;
  if (single) {
    const [st, state, fdate] = await trx.query(single);
    qd.push(`delivered: status ${st} state ${state} final_date ${fdate instanceof Date ? fdate.toISOString() : fdate}`);
    qok = qok && st === 0 && state === 2 && !!fdate;
  } else qok = false;
  const cd = [];
  let cok = true;
  {
    const udh = Buffer.from([5, 0, 3, Math.floor(Math.random() * 256), 2, 1]);
    const [st, pend] = await trx.submit({ udh, message: 'to be cancelled' });
    if (st === 0) {
      let [qs, state] = await trx.query(pend);
      qd.push(`pending: status ${qs} state ${state}`);
      qok = qok && qs === 0 && state === 1;
      const cancel = { service_type: '', message_id: pend, source_addr_ton: 0, source_addr_npi: 0, source_addr: SRC, dest_addr_ton: 1, dest_addr_npi: 1, destination_addr: DST };
      let r = await trx.call('cancel_sm', cancel);
      cd.push(`pending: ${hex8(r.command_status)}`);
      cok = cok && r.command_status === 0 && r.command === 'cancel_sm_resp';
      [qs, state] = await trx.query(pend);
      qd.push(`cancelled: status ${qs} state ${state}`);
      qok = qok && qs === 0 && state === 4;
      r = await trx.call('cancel_sm', cancel);
      cd.push(`again: ${hex8(r.command_status)}`);
      cok = cok && r.command_status === 0x11;
      const missing = await trx.waitReceipts([pend], WAIT);
      const rc = (trx.receipts.get(pend) || [{ stat: 'none' }])[0];
      cd.push(`receipt stat:${rc.stat} message_state=${rc.state}`);
      cok = cok && !missing.length && rc.stat === 'DELETED';
      outcome(pend, 'CANCELLED', null);
    } else {
      cok = false;
      cd.push(`submit of the pending segment: ${hex8(st)}`);
    }
    const [us] = await trx.query('ffffffffffffffffffff');
    qd.push(`unknown id: ${hex8(us)}`);
    qok = qok && us === 0x0c;
  }
  result('query_sm', qok ? 'ok' : 'FAIL', qd.join('; '));
  result('cancel_sm', cok ? 'ok' : 'FAIL', cd.join('; '));

  // replace_sm: segment 1 of 2 pending, replaced, then segment 2 completes the message.
  {
    const ref = Math.floor(Math.random() * 256);
    const udh1 = Buffer.from([5, 0, 3, ref, 2, 1]);
    const udh2 = Buffer.from([5, 0, 3, ref, 2, 2]);
    const [oldT, newT, tail] = ['original first part ', 'REPLACED first part ', 'and the second part'];
    const rd = [];
    let rok = true;
    const [st, r1] = await trx.submit({ udh: udh1, message: oldT });
    rok = rok && st === 0;
    if (st === 0) {
      // validity_period as a Date 30 min ahead: the package writes the absolute form
      // (YYMMDDhhmmsst00+, UTC); the outcome's deadline must move to it.
      const until = new Date(Date.now() + 30 * 60 * 1000);
      const replace = { message_id: r1, source_addr_ton: 0, source_addr_npi: 0, source_addr: SRC, validity_period: until, registered_delivery: 1, short_message: { udh: udh1, message: newT } };
      let r = await trx.call('replace_sm', replace);
      rd.push(`pending (new text, validity ${until.toISOString()} absolute): ${hex8(r.command_status)}`);
      rok = rok && r.command_status === 0 && r.command === 'replace_sm_resp';
      const [st2, r2] = await trx.submit({ udh: udh2, message: tail });
      rok = rok && st2 === 0;
      if (st2 === 0) {
        want = want.concat([r1, r2]);
        outcome(r1, 'DELIVERED', newT + tail, Math.floor(until.getTime() / 1000));
      }
      r = await trx.call('replace_sm', replace);
      rd.push(`delivered: ${hex8(r.command_status)}`);
      rok = rok && r.command_status === 0x13;
    } else rd.push(`submit: ${hex8(st)}`);
    result('replace_sm', rok ? 'ok' : 'FAIL', rd.join('; ') + '; text and deadline checked in MongoDB');
  }

  const missing = await trx.waitReceipts(want, WAIT);
  const bad = want.filter((m) => trx.receipts.has(m) && trx.receipts.get(m)[0].stat !== 'DELIVRD');
  if (missing.length || bad.length) result('dlr_trx', 'FAIL', `${missing.length} of ${want.length} receipts missing; not DELIVRD: ${bad}`);
  else result('dlr_trx', 'ok', `${want.length}/${want.length} segment receipts, stat:DELIVRD`);
  // Appendix B: text: holds the first 20 characters of the message; every text sent
  // here is non-empty, so no receipt's text: may be.
  const empty = want.filter((m) => trx.receipts.has(m) && trx.receipts.get(m)[0].text === '');
  result(
    'dlr_text',
    empty.length ? 'FAIL' : 'ok',
    empty.length ? `${empty.length} of ${want.length} receipts with an empty text: (${empty.join(', ')})` : `${want.length}/${want.length} receipts with a text:`,
  );

  await routed(trx);

  // Idle past smppd's enquire_link_interval (1 s in interop.sh's config): smppd's
  // enquire_link must be answered within its response_timeout (2 s) or it closes.
  await sleep(IDLE);
  const up = !trx.closed;
  enquireOk.push((await trx.enquire()) === 0);
  unbindOk.push((await trx.unbind()) === 0);
  const n = (a) => a.filter(Boolean).length;
  result(
    'enquire_link',
    n(enquireOk) === 3 && trx.serverEnquires > 0 && up ? 'ok' : 'FAIL',
    `ESME to smppd: ${n(enquireOk)}/3 enquire_link_resp ROK; smppd to ESME after ${IDLE / 1000} s idle: ${trx.serverEnquires} answered, bind ${up ? 'still up' : 'closed'}`,
  );
  result('unbind', n(unbindOk) === 3 ? 'ok' : 'FAIL', `${n(unbindOk)}/3 unbind_resp ROK`);
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`${e && e.stack ? e.stack : e}\n`);
    process.stdout.write(`RESULT\t_crash\tFAIL\t${String(e).split('\n')[0]}\n`);
    process.exit(1);
  },
);
