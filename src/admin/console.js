// smppd web console: polls the admin API of the node that served it.
// Everything from the server goes into the page through textContent (no HTML).
"use strict";

const REFRESH_MS = Number(new URLSearchParams(location.search).get("refresh") || 2000);
const HISTORY = 60; // samples kept for the rates chart
const COLORS = ["#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df", "#0a7ea4", "#bf3989", "#57606a"];

const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem("smppd-token") || "";
let me = null; // {node, role, token}
let timer = null;
let lastStats = null; // previous /api/stats, for rates
const series = new Map(); // account -> [{t, submits, receipts}]

async function api(method, path) {
  const r = await fetch(path, { method, headers: { Authorization: "Bearer " + token }, cache: "no-store" });
  let body = null;
  try { body = await r.json(); } catch (_) { /* not JSON */ }
  if (!r.ok) {
    const e = new Error((body && body.error) || r.statusText);
    e.status = r.status;
    throw e;
  }
  return body;
}

function showError(text) { $("error").textContent = text || ""; }

function cell(tr, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  tr.appendChild(td);
  return td;
}

async function login(t) {
  token = t;
  try {
    me = await api("GET", "/api/whoami");
  } catch (e) {
    me = null;
    sessionStorage.removeItem("smppd-token");
    showError(e.status === 401 ? "That token is not valid." : "Cannot reach the admin API: " + e.message);
    $("login-form").hidden = false;
    $("console").hidden = true;
    return;
  }
  sessionStorage.setItem("smppd-token", token);
  $("token").value = "";
  showError("");
  $("login-form").hidden = true;
  $("console").hidden = false;
  $("logout").hidden = false;
  $("node").textContent = "node " + me.node;
  $("who").textContent = me.token + " (" + me.role + ")";
  refresh();
}

function logout() {
  clearTimeout(timer);
  token = "";
  me = null;
  lastStats = null;
  series.clear();
  sessionStorage.removeItem("smppd-token");
  $("token").value = "";
  $("console").hidden = true;
  $("logout").hidden = true;
  $("login-form").hidden = false;
  $("who").textContent = "";
}

async function refresh() {
  clearTimeout(timer);
  try {
    const [binds, stats] = await Promise.all([api("GET", "/api/binds"), api("GET", "/api/stats")]);
    renderBinds(binds);
    renderStats(stats);
    showError("");
  } catch (e) {
    if (e.status === 401) { logout(); showError("The token was refused (401)."); return; }
    showError("Refresh failed: " + e.message);
  }
  timer = setTimeout(refresh, REFRESH_MS);
}

function renderBinds(reply) {
  const tbody = $("binds").querySelector("tbody");
  tbody.replaceChildren();
  for (const b of reply.binds) {
    const tr = document.createElement("tr");
    tr.dataset.id = b.id;
    tr.dataset.node = b.node;
    tr.dataset.systemId = b.system_id;
    cell(tr, b.node);
    cell(tr, String(b.id), "num");
    cell(tr, b.system_id, "system-id");
    cell(tr, b.bind_type);
    cell(tr, b.peer);
    cell(tr, b.tls ? "yes" : "no");
    cell(tr, (b.interface_version >> 4).toString(16) + "." + (b.interface_version & 15).toString(16));
    cell(tr, new Date(b.bound_since).toISOString().replace(".000", ""));
    cell(tr, b.window_in_use + "/" + b.window, "num");
    cell(tr, String(b.submits_ok), "num");
    cell(tr, String(b.submits_failed), "num");
    cell(tr, String(b.receipts_delivered), "num");
    const action = cell(tr, b.unbinding ? "unbinding…" : "");
    if (!b.unbinding && me && me.role === "admin" && b.node === reply.node) {
      const button = document.createElement("button");
      button.className = "unbind";
      button.textContent = "Unbind";
      button.addEventListener("click", () => unbind(b));
      action.appendChild(button);
    }
    tbody.appendChild(tr);
  }
  const others = reply.nodes.length - 1;
  $("binds-note").textContent =
    (others > 0 ? "(this node and " + others + " other node" + (others > 1 ? "s" : "") + ")" : "") +
    (reply.cluster_error ? " other nodes unavailable: " + reply.cluster_error : "");
}

async function unbind(b) {
  if (!confirm("Unbind " + b.system_id + " (bind " + b.id + " from " + b.peer + ")?")) return;
  try {
    await api("POST", "/api/binds/" + encodeURIComponent(b.id) + "/unbind");
  } catch (e) {
    showError("Unbind failed: " + e.message);
  }
  refresh();
}

function renderStats(s) {
  const num = (v) => (v === undefined || v === null ? "?" : String(v));
  $("pending").textContent = num(s.pending_messages);
  $("outbox").textContent = num(s.outcome_backlog);
  const queued = s.accounts.reduce((n, a) => n + (a.receipt_queue || 0), 0);
  $("receipts").textContent = s.redis_error ? "?" : String(queued);
  $("expiry").textContent = s.expiry_subscribed ? "subscribed" : "DOWN";
  $("expiry").className = s.expiry_subscribed ? "ok" : "bad";
  const t = Date.parse(s.at);
  if (lastStats) {
    const dt = (t - Date.parse(lastStats.at)) / 1000;
    for (const a of s.accounts) {
      const before = lastStats.accounts.find((x) => x.system_id === a.system_id);
      if (!before || dt <= 0) continue;
      const submits = (a.submits_ok + a.submits_failed - before.submits_ok - before.submits_failed) / dt;
      const receipts = (a.receipts_delivered - before.receipts_delivered) / dt;
      const list = series.get(a.system_id) || [];
      list.push({ t, submits: Math.max(0, submits), receipts: Math.max(0, receipts) });
      while (list.length > HISTORY) list.shift();
      series.set(a.system_id, list);
    }
  }
  lastStats = s;
  drawRates();
}

function drawRates() {
  const canvas = $("rates");
  const g = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height, pad = 30;
  g.clearRect(0, 0, w, h);
  let max = 1;
  for (const list of series.values()) for (const p of list) max = Math.max(max, p.submits, p.receipts);
  g.strokeStyle = "#d8dde2";
  g.fillStyle = "#66707a";
  g.font = "11px sans-serif";
  for (let i = 0; i <= 4; i++) {
    const y = h - pad + ((pad * 2 - h) * i) / 4;
    g.beginPath(); g.moveTo(pad, y); g.lineTo(w - 5, y); g.stroke();
    g.fillText((max * i / 4).toFixed(max < 4 ? 1 : 0), 2, y + 4);
  }
  const legend = $("rates-legend");
  legend.replaceChildren();
  let k = 0;
  for (const [account, list] of series) {
    const color = COLORS[k++ % COLORS.length];
    for (const [field, dash] of [["submits", []], ["receipts", [4, 3]]]) {
      g.strokeStyle = color;
      g.setLineDash(dash);
      g.beginPath();
      list.forEach((p, i) => {
        const x = pad + ((w - pad - 5) * (i + HISTORY - list.length)) / (HISTORY - 1);
        const y = h - pad - ((h - pad * 2) * p[field]) / max;
        if (i === 0) g.moveTo(x, y); else g.lineTo(x, y);
      });
      g.stroke();
    }
    g.setLineDash([]);
    const item = document.createElement("span");
    const swatch = document.createElement("i");
    swatch.style.background = color;
    item.appendChild(swatch);
    item.appendChild(document.createTextNode(account + " (solid: submits, dashed: receipts)"));
    legend.appendChild(item);
  }
}

async function lookup(id) {
  $("message-state").textContent = "…";
  $("message").hidden = true;
  try {
    const m = await api("GET", "/api/messages/" + encodeURIComponent(id));
    $("message-state").textContent = m.message_id + ": " + m.state + (m.final ? "" : " (not in MongoDB yet, or unknown)");
    $("message").textContent = JSON.stringify(m, null, 2);
    $("message").hidden = false;
  } catch (e) {
    $("message-state").textContent = "Lookup failed: " + e.message;
  }
}

$("login").addEventListener("submit", (ev) => { ev.preventDefault(); login($("token").value.trim()); });
$("logout").addEventListener("click", logout);
$("lookup").addEventListener("submit", (ev) => { ev.preventDefault(); lookup($("message-id").value.trim()); });
if (token) login(token);
