// Lifeboat dashboard: reads the admin API (viewer routes, and /audit when the caller may)
// and draws the recovery-point timeline, RPO compliance, 3-2-1, storage and cost, DR
// drills, recent failures and the audit trail. No framework, no build step.
//
// config.json beside this file says where the API is:
//   {"api": "v1"}                                      same origin (the local stack)
//   {"api": "https://<id>.execute-api.<region>.amazonaws.com/v1", "region": "<region>"}
// With a region, requests are signed with SigV4 (the API takes AWS_IAM only) using
// temporary credentials the user pastes; they stay in sessionStorage.
"use strict";

const TIMELINE_DAYS = 7;
const MAX_POINT_PAGES = 10;
const SVG = "http://www.w3.org/2000/svg";

// ---------------------------------------------------------------- formatting

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c ?? "")));
  return e;
}

function duration(secs) {
  if (secs === null || secs === undefined) return "–";
  if (secs < 120) return `${secs} s`;
  if (secs < 7200) return `${Math.round(secs / 60)} min`;
  if (secs < 172800) return `${(secs / 3600).toFixed(1)} h`;
  return `${(secs / 86400).toFixed(1)} d`;
}

function bytes(n) {
  const units = ["B", "KB", "MB", "GB", "TB", "PB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

function usd(micro) {
  return `$${(micro / 1e6).toFixed(2)}`;
}

function when(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  return `${d.toISOString().slice(0, 16).replace("T", " ")} UTC`;
}

function rate(r) {
  if (!r || r.rate_bp === null || r.rate_bp === undefined) return "–";
  return `${(r.rate_bp / 100).toFixed(1)} % (${r.succeeded}/${r.succeeded + r.failed})`;
}

function badge(text, kind) {
  return el("span", { class: `badge ${kind}` }, text);
}

// ---------------------------------------------------------------- SigV4 (AWS only)

const enc = new TextEncoder();

async function sha256Hex(data) {
  const d = await crypto.subtle.digest("SHA-256", typeof data === "string" ? enc.encode(data) : data);
  return [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function hmac(key, data) {
  const k = await crypto.subtle.importKey("raw", typeof key === "string" ? enc.encode(key) : key,
    { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return new Uint8Array(await crypto.subtle.sign("HMAC", k, enc.encode(data)));
}

function rfc3986(s) {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

// Signs a GET for API Gateway (service execute-api) as SigV4 specifies; returns headers.
async function sigv4(url, region, creds, now = new Date(), service = "execute-api") {
  const u = new URL(url);
  const amzDate = now.toISOString().replace(/[:-]|\.\d{3}/g, "");
  const day = amzDate.slice(0, 8);
  const query = [...u.searchParams.entries()]
    .map(([k, v]) => [rfc3986(k), rfc3986(v)])
    .sort((a, b) => (a[0] === b[0] ? (a[1] < b[1] ? -1 : 1) : a[0] < b[0] ? -1 : 1))
    .map(([k, v]) => `${k}=${v}`)
    .join("&");
  const path = u.pathname.split("/").map((s) => rfc3986(decodeURIComponent(s))).join("/");
  const headers = { host: u.host, "x-amz-date": amzDate };
  if (creds.sessionToken) headers["x-amz-security-token"] = creds.sessionToken;
  const names = Object.keys(headers).sort();
  const canonical = ["GET", path, query, names.map((n) => `${n}:${headers[n]}\n`).join(""), names.join(";"),
    await sha256Hex("")].join("\n");
  const scope = `${day}/${region}/${service}/aws4_request`;
  const toSign = ["AWS4-HMAC-SHA256", amzDate, scope, await sha256Hex(canonical)].join("\n");
  let key = await hmac(`AWS4${creds.secretAccessKey}`, day);
  for (const part of [region, service, "aws4_request"]) key = await hmac(key, part);
  const signature = [...(await hmac(key, toSign))].map((b) => b.toString(16).padStart(2, "0")).join("");
  const out = {
    "x-amz-date": amzDate,
    authorization: `AWS4-HMAC-SHA256 Credential=${creds.accessKeyId}/${scope}, SignedHeaders=${names.join(";")}, Signature=${signature}`,
  };
  if (creds.sessionToken) out["x-amz-security-token"] = creds.sessionToken;
  return out;
}

// ---------------------------------------------------------------- API

class Api {
  constructor(config) {
    this.base = new URL(config.api.replace(/\/?$/, "/"), document.baseURI);
    this.region = config.region || null;
  }

  credentials() {
    const raw = sessionStorage.getItem("lifeboat-credentials");
    return raw ? JSON.parse(raw) : null;
  }

  async get(route, params = {}) {
    const url = new URL(route.replace(/^\//, ""), this.base);
    for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
    let headers = { accept: "application/json" };
    if (this.region) {
      const creds = this.credentials();
      if (!creds) throw new NeedsCredentials();
      headers = { ...headers, ...(await sigv4(url.href, this.region, creds)) };
    }
    const reply = await fetch(url, { headers });
    const body = await reply.json().catch(() => null);
    if (!reply.ok) {
      const why = body && (body.detail || body.title) ? `${body.title}: ${body.detail || ""}` : reply.statusText;
      const err = new Error(`GET ${route}: ${reply.status} ${why}`);
      err.status = reply.status;
      throw err;
    }
    return body;
  }
}

class NeedsCredentials extends Error {}

// ---------------------------------------------------------------- rendering

function summary(compliance, metrics, plans) {
  const s = compliance.summary;
  const drills = plans.items.filter((p) => p.last_drill);
  const drillsOk = drills.filter((p) => p.last_drill.status === "succeeded"
    && p.last_drill.measurement && p.last_drill.measurement.rto_met !== false && p.last_drill.measurement.rpo_met !== false);
  const cards = [
    ["Resources protected", s.resources, `${s.locations} locations`, "neutral"],
    ["RPO met", `${s.rpo_met}/${s.locations}`, `${s.rpo_unverified} unverified · ${s.rpo_breached} breached`,
      s.rpo_breached > 0 ? "bad" : s.rpo_unverified > 0 ? "warn" : "good"],
    ["3-2-1 complete", `${s.three_two_one_full}/${s.resources}`, "copies, media, off-site, immutable",
      s.three_two_one_full === s.resources ? "good" : "warn"],
    ["Backup success", rate(s.backups), `since ${when(compliance.period.from)}`,
      s.backups.failed > 0 ? "warn" : "good"],
    ["Estimated storage cost", metrics.storage.total_usd ? `$${metrics.storage.total_usd}` : "–",
      `${bytes(metrics.storage.bytes)} stored`, "neutral"],
    ["DR drills on target", `${drillsOk.length}/${drills.length}`, `${plans.total} plans`,
      drillsOk.length === drills.length ? "good" : "bad"],
  ];
  const root = document.getElementById("summary");
  root.replaceChildren(...cards.map(([title, value, sub, kind]) =>
    el("div", { class: `card ${kind}` }, el("div", { class: "card-title" }, title),
      el("div", { class: "card-value" }, value), el("div", { class: "card-sub" }, sub))));
}

function pointClass(p) {
  if (p.status === "failed") return "failed";
  if (p.status === "expiring" || p.status === "expired") return "expired";
  if (p.status === "pending" || p.status === "copying") return "pending";
  return p.verified_at ? "verified" : "available";
}

function timeline(resources, points, now) {
  const root = document.getElementById("timeline");
  // The window: from the oldest point fetched (at most TIMELINE_DAYS back, at least 6 h)
  // to now, with a margin so the newest points are not on the edge.
  const oldest = Math.min(...points.map((p) => Date.parse(p.created_at)), now.getTime());
  const span = Math.min(TIMELINE_DAYS * 86400e3, Math.max(6 * 3600e3, (now.getTime() - oldest) * 1.1));
  const to = now.getTime() + span * 0.03;
  const from = now.getTime() - span;
  const hours = span / 3600e3;
  document.getElementById("timeline-range").textContent =
    `(last ${hours < 48 ? `${Math.round(hours)} hours` : `${Math.round(hours / 24)} days`}, ${points.length} points)`;
  const byArn = new Map();
  for (const p of points) {
    const arn = p.resource.arn;
    if (!byArn.has(arn)) byArn.set(arn, []);
    byArn.get(arn).push(p);
  }
  const lanes = resources.map((r) => ({ arn: r.arn, id: r.id, kind: r.kind, region: r.region, policy: r.policy }));
  for (const [arn, ps] of byArn) {
    if (!lanes.some((l) => l.arn === arn)) {
      const r = ps[0].resource;
      lanes.push({ arn, id: r.id, kind: r.kind, region: r.region, policy: ps[0].policy });
    }
  }
  if (lanes.length === 0) {
    root.replaceChildren(el("p", { class: "muted" }, "No protected resources yet."));
    return;
  }
  const width = 1000;
  const label = 270;
  const lane = 34;
  const height = lanes.length * lane + 24;
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("class", "timeline");
  const x = (t) => label + ((t - from) / (to - from)) * (width - label - 10);
  // Grid: at most 8 ticks on round hours or days.
  const step = [3600e3, 3 * 3600e3, 6 * 3600e3, 12 * 3600e3, 86400e3].find((st) => span / st <= 8) || 86400e3;
  for (let t = Math.ceil(from / step) * step; t <= to; t += step) {
    const line = document.createElementNS(SVG, "line");
    line.setAttribute("x1", x(t)); line.setAttribute("x2", x(t));
    line.setAttribute("y1", 0); line.setAttribute("y2", height - 20);
    line.setAttribute("class", "grid");
    svg.append(line);
    const text = document.createElementNS(SVG, "text");
    text.setAttribute("x", x(t)); text.setAttribute("y", height - 6);
    text.setAttribute("class", "tick");
    const iso = new Date(t).toISOString();
    text.textContent = step < 86400e3 ? `${iso.slice(5, 10)} ${iso.slice(11, 16)}` : iso.slice(5, 10);
    svg.append(text);
  }
  lanes.forEach((l, i) => {
    const y = i * lane;
    const g = document.createElementNS(SVG, "g");
    g.setAttribute("class", "lane");
    g.setAttribute("data-resource", l.id);
    const name = document.createElementNS(SVG, "text");
    name.setAttribute("x", 4); name.setAttribute("y", y + 20);
    name.setAttribute("class", "lane-label");
    const full = `${l.id} (${l.kind}, ${l.policy})`;
    name.textContent = full.length > 40 ? `${full.slice(0, 39)}…` : full;
    const nameTip = document.createElementNS(SVG, "title");
    nameTip.textContent = `${full}\n${l.arn}`;
    name.append(nameTip);
    g.append(name);
    const bg = document.createElementNS(SVG, "rect");
    bg.setAttribute("x", label); bg.setAttribute("y", y + 3);
    bg.setAttribute("width", width - label - 10); bg.setAttribute("height", lane - 6);
    bg.setAttribute("class", i % 2 ? "lane-bg odd" : "lane-bg");
    g.append(bg);
    for (const p of byArn.get(l.arn) || []) {
      const t = Date.parse(p.created_at);
      if (t < from || t > to) continue;
      const home = p.location === l.region;
      const c = document.createElementNS(SVG, "circle");
      c.setAttribute("cx", x(t));
      c.setAttribute("cy", y + (home ? 12 : 24));
      c.setAttribute("r", 5);
      c.setAttribute("class", `rp ${pointClass(p)}`);
      c.setAttribute("data-id", p.id);
      const tip = document.createElementNS(SVG, "title");
      tip.textContent = `${p.id}\n${p.status}${p.verified_at ? ", verified" : ""} · ${p.location}\n${when(p.created_at)}`;
      c.append(tip);
      g.append(c);
    }
    svg.append(g);
  });
  root.replaceChildren(svg);
}

// A location's newest judged restore test: the measured restore time is the RTO evidence.
function restoreTest(t) {
  if (!t) return "none";
  const took = t.restore_secs === null || t.restore_secs === undefined ? "" : ` in ${duration(t.restore_secs)}`;
  return t.passed ? badge(`restored${took}`, "good") : badge("failed", "bad");
}

function complianceTable(compliance) {
  const body = document.querySelector("#compliance tbody");
  const rows = [];
  for (const r of compliance.resources) {
    r.rpo.forEach((loc, i) => {
      const state = { met: "good", unverified: "warn", breached: "bad" }[loc.state] || "neutral";
      const cells = [
        el("td", {}, i === 0 ? r.resource_id : ""),
        el("td", {}, i === 0 ? r.policy : ""),
        el("td", {}, loc.location),
        el("td", {}, duration(loc.target_secs)),
        el("td", {}, loc.verified_age_secs === null ? "none" : `${duration(loc.verified_age_secs)} ago`),
        el("td", {}, restoreTest(loc.restore_test)),
        el("td", {}, badge(loc.state, state)),
        el("td", {}, i === 0 ? rate(r.backups) : ""),
        el("td", {}, i === 0 ? badge(`${r.three_two_one.score}/4${r.three_two_one.immutable ? " +1" : ""}`,
          r.three_two_one.score === 4 ? "good" : "warn") : ""),
        el("td", { class: "missing" }, i === 0 ? r.three_two_one.missing.join("; ") : ""),
      ];
      rows.push(el("tr", { "data-resource": r.resource_id }, ...cells));
    });
  }
  body.replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colSpan: 10, class: "muted" }, "No resources."))]));
}

function storageTable(metrics) {
  const e = metrics.storage;
  const body = document.querySelector("#storage tbody");
  body.replaceChildren(...e.tiers.map((t) => el("tr", {},
    el("td", {}, t.region), el("td", {}, t.tier), el("td", { class: "num" }, t.items),
    el("td", { class: "num" }, bytes(t.bytes)), el("td", { class: "num" }, bytes(t.billable_bytes)),
    el("td", { class: "num" }, t.priced ? usd(t.total_micro_usd) : "no price"))));
  document.querySelector("#storage tfoot").replaceChildren(el("tr", {},
    el("th", { colSpan: 3 }, `${metrics.recovery_points.total} recovery points`
      + (e.unsized_points ? ` (${e.unsized_points} without a recorded size)` : "")),
    el("th", { class: "num" }, bytes(e.bytes)), el("th", {}, ""),
    el("th", { class: "num" }, usd(e.total_micro_usd))));
}

function drillsTable(plans) {
  const body = document.querySelector("#drills tbody");
  if (plans.items.length === 0) {
    body.replaceChildren(el("tr", {}, el("td", { colSpan: 7, class: "muted" }, "No DR plans.")));
    return;
  }
  body.replaceChildren(...plans.items.map((p) => {
    const d = p.last_drill;
    const m = d && d.measurement;
    const target = (v, t, met) => (v === null || v === undefined ? "–"
      : el("span", { class: met === false ? "bad-text" : "" }, `${duration(v)} / ${duration(t)}`));
    return el("tr", { "data-plan": p.name },
      el("td", {}, p.name, p.valid ? "" : badge("invalid", "bad")),
      el("td", {}, p.valid ? `${p.source_region} → ${p.dr_region}` : (p.problems || []).join("; ")),
      el("td", {}, d ? when(d.triggered_at) : "never"),
      el("td", {}, d ? badge(d.status, d.status === "succeeded" ? "good" : d.status === "running" ? "neutral" : "bad") : ""),
      el("td", {}, m ? target(m.rto_secs, m.rto_target_secs, m.rto_met) : "–"),
      el("td", {}, m ? target(m.rpo_secs, m.rpo_target_secs, m.rpo_met) : "–"),
      el("td", {}, p.active_side));
  }));
}

function failuresTable(metrics) {
  const body = document.querySelector("#failures tbody");
  const items = metrics.failures.items;
  body.replaceChildren(...(items.length ? items.map((f) => el("tr", {},
    el("td", {}, when(f.at)), el("td", {}, f.id), el("td", {}, f.step),
    el("td", {}, `${f.code}: ${f.message}`)))
    : [el("tr", {}, el("td", { colSpan: 4, class: "muted" }, `No failures since ${when(metrics.failures.since)}.`))]));
}

function alertsTable(alerts) {
  const body = document.querySelector("#alerts tbody");
  const kind = { critical: "bad", high: "bad", warning: "warn", info: "neutral" };
  body.replaceChildren(...(alerts.items.length ? alerts.items.map((a) => el("tr", { "data-type": a.type },
    el("td", {}, when(a.sent_at)), el("td", {}, badge(a.severity, kind[a.severity] || "neutral")),
    el("td", {}, a.type), el("td", {}, a.summary)))
    : [el("tr", {}, el("td", { colSpan: 4, class: "muted" }, `No alerts since ${when(alerts.since)}.`))]));
}

function auditTable(audit) {
  const body = document.querySelector("#audit tbody");
  if (audit === null) {
    body.replaceChildren(el("tr", {}, el("td", { colSpan: 4, class: "muted" }, "The audit trail needs the admin role.")));
    return;
  }
  const items = audit.items.slice(0, 15);
  body.replaceChildren(...(items.length ? items.map((a) => el("tr", {},
    el("td", {}, when(a.at)), el("td", {}, a.principal.split("/").slice(-1)[0]),
    el("td", {}, `${a.method} ${a.path}`), el("td", {}, a.status ?? a.phase)))
    : [el("tr", {}, el("td", { colSpan: 4, class: "muted" }, "No audit records."))]));
}

// ---------------------------------------------------------------- loading

async function allPoints(api, now) {
  const from = new Date(now.getTime() - TIMELINE_DAYS * 86400e3).toISOString();
  const out = [];
  let cursor = null;
  for (let page = 0; page < MAX_POINT_PAGES; page += 1) {
    const params = { from, limit: "200" };
    if (cursor) params.cursor = cursor;
    const reply = await api.get("recovery-points", params);
    out.push(...reply.items);
    cursor = reply.nextCursor;
    if (!cursor) break;
  }
  return out;
}

function showError(message) {
  const box = document.getElementById("errors");
  box.hidden = false;
  box.append(el("p", {}, message));
}

async function load() {
  const config = await fetch("config.json", { cache: "no-store" }).then((r) => r.json());
  const api = new Api(config);
  document.getElementById("api-base").textContent = api.base.href;
  const now = new Date();
  try {
    const [resources, compliance, metrics, plans, alerts, points] = await Promise.all([
      api.get("resources"), api.get("compliance"), api.get("metrics"), api.get("dr/plans"),
      api.get("alerts", { since: "7days", limit: "20" }), allPoints(api, now),
    ]);
    const audit = await api.get("audit", { limit: "15" }).catch((e) => {
      if (e.status === 403) return null;
      throw e;
    });
    summary(compliance, metrics, plans);
    timeline(resources.items, points, now);
    complianceTable(compliance);
    storageTable(metrics);
    drillsTable(plans);
    alertsTable(alerts);
    failuresTable(metrics);
    auditTable(audit);
    document.getElementById("as-of").textContent = `As of ${when(compliance.generated_at)}`;
    document.body.dataset.state = "ready";
  } catch (e) {
    if (e instanceof NeedsCredentials) {
      document.getElementById("credentials").hidden = false;
      document.getElementById("as-of").textContent = "Sign in to read the admin API.";
      document.body.dataset.state = "credentials";
      return;
    }
    showError(e.message);
    document.body.dataset.state = "error";
  }
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("credentials-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const f = new FormData(ev.target);
    sessionStorage.setItem("lifeboat-credentials", JSON.stringify({
      accessKeyId: f.get("accessKeyId"), secretAccessKey: f.get("secretAccessKey"),
      sessionToken: f.get("sessionToken") || undefined,
    }));
    document.getElementById("credentials").hidden = true;
    load();
  });
  load();
});

// For the browser test: the signer against AWS's published SigV4 example.
window.lifeboatSigv4 = sigv4;
