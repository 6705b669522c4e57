// driftd's live page: reads the daemon's JSON API and draws, per model, its
// versions (incumbent, candidate), the latest windows, drift per feature over
// time, caption-quality trends and the rules' decisions with their deliveries.
// No external assets: plain DOM and SVG.
"use strict";

const WINDOWS = 48;
const DECISIONS = 20;
const REFRESH_MS = 10000;
const SVG_NS = "http://www.w3.org/2000/svg";
// Tests whose score is a p-value: drift when it is below the threshold.
const P_VALUE_METHODS = new Set(["ks", "chi_square"]);

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") e.textContent = v;
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const kid of kids.flat()) {
    if (kid === null || kid === undefined || kid === false) continue;
    e.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return e;
}

function svg(tag, attrs, ...kids) {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== null && v !== undefined) e.setAttribute(k, String(v));
  }
  for (const kid of kids.flat()) {
    if (kid === null || kid === undefined) continue;
    e.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return e;
}

function isNum(v) {
  return typeof v === "number" && Number.isFinite(v);
}

function num(v, digits = 3) {
  if (!isNum(v)) return "–";
  if (v !== 0 && Math.abs(v) < 10 ** -digits) return v.toExponential(1);
  return v.toFixed(digits);
}

function pct(v, digits = 1) {
  return isNum(v) ? (100 * v).toFixed(digits) + " %" : "–";
}

function count(v) {
  return isNum(v) ? v.toLocaleString("en-US") : "–";
}

// RFC 3339 (UTC) as "2026-11-24 01:05:00".
function when(t) {
  return typeof t === "string" ? t.replace("T", " ").slice(0, 19) : "–";
}

function badge(text, kind) {
  return el("span", { class: "badge " + kind, text });
}

// A read token (http.read_token_env) comes in the page's fragment,
// `/#token=...`, which the browser never sends to the server.
const TOKEN = new URLSearchParams(location.hash.slice(1)).get("token");

async function getJSON(path) {
  const headers = { accept: "application/json" };
  if (TOKEN) headers.authorization = "Bearer " + TOKEN;
  const r = await fetch(path, { cache: "no-store", headers });
  if (!r.ok) throw new Error(path + " answered HTTP " + r.status);
  return r.json();
}

// How close a feature's test is to its threshold: 1 is the threshold, above
// 1 is past it.
function severity(f) {
  if (!isNum(f.score) || !isNum(f.threshold)) return 0;
  if (P_VALUE_METHODS.has(f.method)) {
    return f.threshold / Math.max(f.score, 1e-12);
  }
  return f.threshold > 0 ? f.score / f.threshold : 0;
}

function heatColor(f) {
  if (f.drift) return "#c0392b";
  const s = Math.max(0, Math.min(1, severity(f)));
  // From pale green (far from the threshold) to amber (near it).
  const a = [226, 240, 230];
  const b = [242, 193, 78];
  const c = a.map((x, i) => Math.round(x + (b[i] - x) * s));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

// The optional parts of a window report (null when off or absent).
function classifierOf(w) {
  return (w.learned && w.learned.classifier) || null;
}

function aucOf(w) {
  const c = classifierOf(w);
  return c ? c.auc : null;
}

function predictedOf(w) {
  return w.estimator ? w.estimator.predicted_mean : null;
}

function windowLabel(w) {
  return `${w.model_version} #${w.window.index} (${when(w.window.start)} to ${when(w.window.end).slice(11)} UTC)`;
}

// Features × windows, oldest window on the left.
function driftHeatmap(windows) {
  const names = [];
  for (const w of windows) {
    for (const f of w.drift.features) if (!names.includes(f.name)) names.push(f.name);
  }
  if (names.length === 0) return el("p", { class: "muted empty", text: "No features yet." });
  const left = 150;
  const cell = Math.max(8, Math.min(22, Math.floor(760 / windows.length)));
  const rowH = 17;
  const top = 4;
  const width = Math.max(left + cell * windows.length + 4, left + 260);
  const height = top + rowH * names.length + 22;
  const root = svg("svg", {
    width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": "drift per feature over time", class: "heatmap",
  });
  names.forEach((name, r) => {
    root.append(svg("text", { x: left - 6, y: top + r * rowH + 12, "text-anchor": "end", class: "label" }, name));
  });
  windows.forEach((w, c) => {
    const byName = new Map(w.drift.features.map((f) => [f.name, f]));
    names.forEach((name, r) => {
      const f = byName.get(name);
      const x = left + c * cell;
      const y = top + r * rowH;
      if (!f) {
        root.append(svg("rect", { x, y, width: cell - 1, height: rowH - 1, fill: "#f0f0f0" }));
        return;
      }
      const tip = `${name}, ${windowLabel(w)}\n${f.method} ${num(f.score, 4)} (threshold ${num(f.threshold, 4)})` +
        `${f.drift ? " drift" : ""}\n${count(f.current_count)} values, ${count(f.missing ? f.missing.current : null)} missing`;
      root.append(svg("rect", {
        x, y, width: cell - 1, height: rowH - 1, fill: heatColor(f),
        "data-feature": name, "data-drift": f.drift ? "true" : "false", class: "cell",
      }, svg("title", {}, tip)));
    });
  });
  const y = top + rowH * names.length + 14;
  const first = when(windows[0].window.end);
  const last = when(windows[windows.length - 1].window.end);
  if (cell * windows.length >= 260) {
    root.append(svg("text", { x: left, y }, first));
    root.append(svg("text", { x: left + cell * windows.length, y, "text-anchor": "end" }, last));
  } else {
    // Too narrow for a label at each end.
    root.append(svg("text", { x: left, y }, windows.length > 1 ? `${first} to ${last.slice(11)}` : first));
  }
  const legend = el("div", { class: "legend" },
    el("span", {}, el("span", { class: "swatch heat-far" }), "far from threshold"),
    el("span", {}, el("span", { class: "swatch heat-near" }), "at threshold"),
    el("span", {}, el("span", { class: "swatch heat-drift" }), "drift"),
    el("span", { class: "muted", text: "window end, UTC; hover a cell for the test" }));
  return el("div", {}, el("div", { class: "scroll" }, root), legend);
}

// Series colours; app.css has the same ones as .c0 to .c5 for legends (the
// page's Content-Security-Policy allows no inline style).
const PALETTE = ["#2f5d8a", "#c0392b", "#2e7d4f", "#b7791f", "#7b4fa0", "#5f6b76"];

// One small line chart: `series` of {name, values (null for gaps)} over
// `windows` (oldest first).
function lineChart(title, windows, series, opts = {}) {
  const w = 360;
  const h = 150;
  const pad = { l: 46, r: 8, t: 8, b: 22 };
  const all = series.flatMap((s) => s.values.filter(isNum));
  const box = el("div", { class: "chart" }, el("h4", { text: title }));
  if (all.length === 0) {
    box.append(el("p", { class: "muted empty", text: "No values yet." }));
    return box;
  }
  let lo = opts.min !== undefined ? Math.min(opts.min, ...all) : Math.min(...all);
  let hi = Math.max(...all, opts.atLeast !== undefined ? opts.atLeast : -Infinity);
  if (hi - lo < 1e-9) { hi += 0.5; lo -= opts.min === 0 && lo === 0 ? 0 : 0.5; }
  const n = windows.length;
  const xOf = (i) => pad.l + (n === 1 ? (w - pad.l - pad.r) / 2 : (i * (w - pad.l - pad.r)) / (n - 1));
  const yOf = (v) => pad.t + (1 - (v - lo) / (hi - lo)) * (h - pad.t - pad.b);
  const fmt = opts.percent ? (v) => (100 * v).toFixed(Math.abs(hi - lo) < 0.05 ? 1 : 0) + "%" : (v) => num(v, 2);
  const root = svg("svg", { width: w, height: h, viewBox: `0 0 ${w} ${h}`, role: "img", "aria-label": title });
  for (let k = 0; k <= 3; k++) {
    const v = lo + ((hi - lo) * k) / 3;
    const y = yOf(v);
    root.append(svg("line", { x1: pad.l, x2: w - pad.r, y1: y, y2: y, stroke: "#e3e7eb" }));
    root.append(svg("text", { x: pad.l - 4, y: y + 4, "text-anchor": "end" }, fmt(v)));
  }
  if (isNum(opts.threshold)) {
    const y = yOf(opts.threshold);
    if (y >= pad.t && y <= h - pad.b) {
      root.append(svg("line", { x1: pad.l, x2: w - pad.r, y1: y, y2: y, stroke: "#c0392b", "stroke-dasharray": "4 3" }));
    }
  }
  series.forEach((s, k) => {
    const color = PALETTE[k % PALETTE.length];
    let d = "";
    let pen = false;
    s.values.forEach((v, i) => {
      if (!isNum(v)) { pen = false; return; }
      d += `${pen ? "L" : "M"}${xOf(i).toFixed(1)},${yOf(v).toFixed(1)}`;
      pen = true;
    });
    if (d) root.append(svg("path", { d, fill: "none", stroke: color, "stroke-width": 1.6, class: "series" }));
    s.values.forEach((v, i) => {
      if (!isNum(v)) return;
      root.append(svg("circle", { cx: xOf(i), cy: yOf(v), r: 2.2, fill: color },
        svg("title", {}, `${s.name}: ${opts.percent ? pct(v, 2) : num(v, 4)}\n${windowLabel(windows[i])}`)));
    });
  });
  root.append(svg("text", { x: pad.l, y: h - 6 }, when(windows[0].window.end).slice(5)));
  root.append(svg("text", { x: w - pad.r, y: h - 6, "text-anchor": "end" }, when(windows[n - 1].window.end).slice(5)));
  box.append(root);
  if (series.length > 1 || opts.threshold !== undefined) {
    box.append(el("div", { class: "legend" },
      series.map((s, k) => el("span", {},
        el("span", { class: `swatch c${k % PALETTE.length}` }), s.name)),
      isNum(opts.threshold) ? el("span", { class: "muted", text: "dashed: " + opts.thresholdName }) : null));
  }
  return box;
}

function versionsTable(m) {
  const rules = m.rules || {};
  const role = (v) => {
    if (rules.candidate && rules.candidate.version === v) return badge("candidate", "info");
    if (rules.incumbent === v) return badge("incumbent", "ok");
    if (rules.previous === v) return badge("previous", "muted");
    return null;
  };
  const rows = m.versions.map((v) => el("tr", { "data-version": v.model_version },
    el("td", {}, v.model_version, " ", role(v.model_version)),
    el("td", { text: v.baseline === "learning" ? `learning (${count(v.learned_events)} events)` : v.baseline }),
    el("td", { class: "num", text: count(v.events) }),
    el("td", { class: "num", text: count(v.open_windows) }),
    el("td", { text: when(v.newest_event_time) })));
  const table = el("table", { class: "versions" },
    el("thead", {}, el("tr", {}, el("th", { text: "version" }), el("th", { text: "baseline" }),
      el("th", { class: "num", text: "events" }), el("th", { class: "num", text: "open windows" }),
      el("th", { text: "newest event (UTC)" }))),
    el("tbody", {}, rows));
  const notes = [];
  if (rules.candidate) {
    const c = rules.candidate;
    notes.push(el("p", { class: "candidate" }, badge("candidate", "info"), ` ${c.version} registered ${when(c.registered_at)} UTC against incumbent `,
      el("strong", { text: rules.incumbent || "–" }),
      `: ${c.windows_judged} of ${c.windows_needed === null ? "?" : c.windows_needed} windows judged.`));
  }
  if (rules.retrain_in_flight) {
    notes.push(el("p", {}, badge("retrain in flight", "warn"),
      ` until ${when(rules.retrain_in_flight_until)} UTC (event time), waiting for CI to register a candidate.`));
  }
  if (isNum(rules.probation_windows)) {
    notes.push(el("p", {}, badge("probation", "warn"), ` ${rules.probation_windows} windows judged since the redeploy.`));
  }
  return el("div", {}, table, notes);
}

// A window's data-quality flags as "feature check" strings (none for
// windows stored before the checks existed).
function qualityFlags(w) {
  const dq = w.data_quality;
  if (!dq) return [];
  const flags = [];
  for (const f of dq.features || []) {
    for (const c of f.flagged || []) flags.push(`${f.name} ${c.replace(/_/g, " ")}`);
  }
  if (dq.new_features && dq.new_features.flagged) {
    flags.push(`new features: ${(dq.new_features.names || []).join(", ")}`);
  }
  return flags;
}

// What the latest window's data-quality checks found, feature by feature.
function dataQualityPanel(w) {
  const dq = w && w.data_quality;
  if (!dq) return null;
  const share = (v, ref) => isNum(v) ? `${pct(v)}${isNum(ref) ? ` (reference ${pct(ref, 2)})` : ""}` : "";
  const rows = (dq.features || []).map((f) => el("tr", { class: f.flagged.length ? "drift" : null, "data-feature": f.name },
    el("td", {}, f.name, f.absent ? badge("absent", f.flagged.includes("absent") ? "bad" : "muted") : null),
    el("td", { class: "num", text: share(f.missing_rate, f.reference_missing_rate) }),
    el("td", { class: "num", text: pct(f.wrong_type_share) }),
    el("td", { class: "num", text: share(f.unseen_share, f.reference_unseen_share) }),
    el("td", { class: "num", text: share(f.out_of_range_share, f.reference_out_of_range_share) }),
    el("td", {}, f.flagged.map((c) => badge(c.replace(/_/g, " "), "bad")))));
  const nf = dq.new_features || {};
  return el("div", { class: "data-quality" },
    el("h3", {}, "Data quality, last window ", dq.issues ? badge(`${dq.issues} flagged`, "bad") : badge("clean", "ok")),
    el("div", { class: "scroll" }, el("table", { class: "quality" },
      el("thead", {}, el("tr", {}, el("th", { text: "feature" }), el("th", { class: "num", text: "missing" }),
        el("th", { class: "num", text: "wrong type" }), el("th", { class: "num", text: "unseen categories" }),
        el("th", { class: "num", text: "out of range" }), el("th", { text: "flagged" }))),
      el("tbody", {}, rows))),
    nf.events ? el("p", { class: nf.flagged ? "new-features" : "muted new-features" },
      `Features the baseline lacks, in ${pct(nf.share)} of events: ${(nf.names || []).join(", ")}${nf.other ? ` and others (${count(nf.other)} more occurrences)` : ""}`) : null);
}

function latestWindows(windows) {
  const newest = windows.slice(-10).reverse();
  const hasLearned = newest.some((w) => isNum(aucOf(w)));
  const hasEstimator = newest.some((w) => isNum(predictedOf(w)));
  const rows = newest.map((w) => {
    const ds = w.drift.dataset;
    const drifted = w.drift.features.filter((f) => f.drift).map((f) => f.name);
    const flags = qualityFlags(w);
    return el("tr", { class: ds.drift ? "drift" : null },
      el("td", { text: when(w.window.end) }),
      el("td", { text: w.model_version }),
      el("td", { class: "num", text: count(w.signals.events) }),
      el("td", {}, `${ds.drifted}/${ds.total} `, ds.drift ? badge("drift", "bad") : null,
        drifted.length ? el("div", { class: "muted", text: drifted.join(", ") }) : null),
      el("td", {}, flags.length ? badge(`${flags.length}`, "bad") : "0",
        flags.length ? el("div", { class: "muted", text: flags.join(", ") }) : null),
      el("td", { class: "num", text: pct(w.signals.error_rate) }),
      el("td", { class: "num", text: num(w.signals.latency_ms_p90, 0) }),
      el("td", { class: "num", text: pct(w.captions.boilerplate_prefix_rate) }),
      el("td", { class: "num", text: pct(w.captions.empty_rate) }),
      hasLearned ? el("td", { class: "num" }, num(aucOf(w), 3),
        w.learned && w.learned.drift ? badge("drift", "bad") : null) : null,
      hasEstimator ? el("td", { class: "num", text: num(predictedOf(w), 2) }) : null);
  });
  return el("div", { class: "scroll" }, el("table", { class: "windows" },
    el("thead", {}, el("tr", {},
      el("th", { text: "window end (UTC)" }), el("th", { text: "version" }), el("th", { class: "num", text: "events" }),
      el("th", { text: "drifted features" }), el("th", { text: "data quality" }), el("th", { class: "num", text: "errors" }),
      el("th", { class: "num", text: "p90 latency ms" }), el("th", { class: "num", text: "boilerplate" }),
      el("th", { class: "num", text: "empty" }),
      hasLearned ? el("th", { class: "num", text: "classifier AUC" }) : null,
      hasEstimator ? el("th", { class: "num", text: "predicted quality" }) : null)),
    el("tbody", {}, rows)));
}

function qualityCharts(windows) {
  const pick = (f) => windows.map((w) => { const v = f(w); return isNum(v) ? v : null; });
  const charts = [
    lineChart("Dataset drift share", windows, [{ name: "drifted features", values: pick((w) => w.drift.dataset.share) }],
      { percent: true, min: 0, atLeast: 0.3 }),
    lineChart("Caption defects", windows, [
      { name: "boilerplate prefix", values: pick((w) => w.captions.boilerplate_prefix_rate) },
      { name: "empty", values: pick((w) => w.captions.empty_rate) },
      { name: "ends with stopword", values: pick((w) => w.captions.ends_with_stopword_rate) },
    ], { percent: true, min: 0 }),
    lineChart("Caption diversity", windows, [
      { name: "type-token ratio", values: pick((w) => w.captions.type_token_ratio_mean) },
      { name: "duplicate share", values: pick((w) => w.captions.duplicate_caption_share) },
    ], { min: 0 }),
    lineChart("Serving errors", windows, [{ name: "error rate", values: pick((w) => w.signals.error_rate) }],
      { percent: true, min: 0 }),
  ];
  if (windows.some((w) => isNum(predictedOf(w)))) {
    charts.push(lineChart("Predicted caption quality (estimator)", windows,
      [{ name: "mean predicted rating", values: pick(predictedOf) }]));
  }
  if (windows.some((w) => isNum(aucOf(w)))) {
    // Drift is judged by the AUC's permutation p-value; a threshold above
    // 0.5 is a floor the AUC must reach as well.
    const t = windows.map((w) => (classifierOf(w) || {}).threshold).find(isNum);
    charts.push(lineChart("Domain classifier AUC", windows,
      [{ name: "AUC", values: pick(aucOf) }],
      { threshold: t > 0.5 ? t : undefined, thresholdName: "AUC floor", atLeast: 0.6 }));
  }
  return el("div", { class: "grid" }, charts);
}

function deliveryCell(d) {
  const list = d.deliveries || [];
  if (list.length === 0) return el("td", { class: "muted", text: d.delivery || "none" });
  return el("td", {}, list.map((x) => el("div", {},
    badge(x.state, x.state === "delivered" ? "ok" : x.state === "dead" || x.state === "unknown" ? "bad" : "warn"),
    ` ${x.target}`, el("span", { class: "muted", text: ` ${x.attempts} attempt${x.attempts === 1 ? "" : "s"}${isNum(x.last_status) ? ", HTTP " + x.last_status : ""}` }))));
}

function decisionsTable(decisions) {
  if (decisions.length === 0) {
    return el("p", { class: "muted empty", text: "No decisions yet: no rule has held in a closed window." });
  }
  const rows = decisions.map((d) => {
    const x = d.decision || {};
    const fired = x.outcome === "fired";
    return el("tr", { "data-outcome": x.outcome },
      el("td", { text: when(x.window_end) }),
      el("td", { text: x.rule }),
      el("td", { text: x.action }),
      el("td", {}, badge(x.outcome || "?", fired ? "warn" : "muted")),
      el("td", { text: x.reason }),
      deliveryCell(d));
  });
  return el("div", { class: "scroll" }, el("table", { class: "decisions" },
    el("thead", {}, el("tr", {}, el("th", { text: "window end (UTC)" }), el("th", { text: "rule" }),
      el("th", { text: "action" }), el("th", { text: "outcome" }), el("th", { text: "reason" }),
      el("th", { text: "deliveries" }))),
    el("tbody", {}, rows)));
}

function estimatorPanel(est) {
  if (!est) return null;
  const cur = (est.versions || []).find((v) => v.version === est.current);
  return el("div", {}, el("h3", { text: "Caption-quality estimator" }),
    el("p", {}, cur
      ? `Version ${cur.version}: validation RMSE ${num(cur.validation_rmse, 3)} on held-out ratings, trained on ${count(cur.training_samples)}; `
      : "No version yet; ",
    `${count(est.labelled)} rated captions kept, ${count((est.versions || []).length)} versions trained.`));
}

function modelSection(m, page, windows, decisions) {
  const id = "model-" + m.model.replace(/[^A-Za-z0-9_-]/g, "_");
  const status = m.silent ? badge("silent", "bad") : badge("receiving", "ok");
  const latest = windows.length ? windows[windows.length - 1] : null;
  const drift = latest && latest.drift.dataset.drift ? badge("dataset drift", "bad") : null;
  const dq = latest && qualityFlags(latest).length ? badge("data quality", "bad") : null;
  const s = el("section", { class: "model", id, "data-model": m.model },
    el("h2", {}, m.model, status, drift, dq,
      el("span", { class: "muted", text: `last event ${num(m.seconds_since_last_event, 0)} s ago` })),
    el("h3", { text: "Versions" }), versionsTable(m));
  if (windows.length === 0) {
    s.append(el("p", { class: "muted empty", text: "No closed window yet (a baseline is being learned or the first window is open)." }));
  } else {
    s.append(el("h3", { text: "Latest windows" }), latestWindows(windows));
    const dqPanel = dataQualityPanel(latest);
    if (dqPanel) s.append(dqPanel);
    s.append(
      el("h3", { text: `Drift per feature, last ${windows.length} window${windows.length === 1 ? "" : "s"}` }), driftHeatmap(windows),
      el("h3", { text: "Quality trends" }), qualityCharts(windows));
  }
  s.append(el("h3", { text: "Decisions and deliveries" }), decisionsTable(decisions));
  const est = estimatorPanel(page && page.estimator);
  if (est) s.append(est);
  return s;
}

// A model whose data could not be read or drawn: its name and why.
function failedSection(m, e) {
  return el("section", { class: "model", "data-model": m.model, "data-failed": "true" },
    el("h2", {}, m.model, badge("cannot show", "bad")),
    el("p", { class: "error", text: "cannot read this model from the API: " + (e && e.message ? e.message : String(e)) }));
}

let busy = false;

async function refresh() {
  if (busy) return;
  busy = true;
  const status = document.getElementById("status");
  try {
    const all = await getJSON("/api/v1/models");
    const models = all.models || [];
    // Each model is read and drawn on its own: one that cannot be read (or
    // drawn) shows its error and leaves the others as they are. Names go in
    // query parameters, never in the path, whatever they hold.
    const sections = await Promise.all(models.map(async (m) => {
      const name = encodeURIComponent(m.model);
      try {
        const [page, windows, decisions] = await Promise.all([
          getJSON(`/api/v1/model?model=${name}`),
          getJSON(`/api/v1/windows?model=${name}&limit=${WINDOWS}`),
          getJSON(`/api/v1/decisions?model=${name}&limit=${DECISIONS}`),
        ]);
        // The API lists windows newest first; the charts read oldest first.
        windows.sort((a, b) => (a.window.end < b.window.end ? -1 : a.window.end > b.window.end ? 1 : 0));
        return modelSection(m, page, windows, decisions);
      } catch (e) {
        return failedSection(m, e);
      }
    }));
    // Anchors stay distinct whatever the names: `a.b` and `a/b` would
    // otherwise both become `a_b`.
    sections.forEach((s, i) => { s.id = `model-${i}-` + s.dataset.model.replace(/[^A-Za-z0-9_-]/g, "_").slice(0, 64); });
    const main = document.getElementById("models");
    const tabs = document.getElementById("tabs");
    if (sections.length === 0) {
      main.replaceChildren(el("p", { class: "muted empty", text: "No model has sent events yet." }));
    } else {
      main.replaceChildren(...sections);
    }
    tabs.replaceChildren(...sections.map((s) => el("a", { href: "#" + s.id, text: s.dataset.model })));
    status.textContent = `${models.length} model${models.length === 1 ? "" : "s"} · updated ${new Date().toISOString().slice(11, 19)} UTC`;
    status.className = "muted";
    document.body.dataset.loaded = "true";
  } catch (e) {
    status.textContent = "cannot read the API: " + (e && e.message ? e.message : e);
    status.className = "error";
  } finally {
    busy = false;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  refresh();
  setInterval(() => {
    if (document.getElementById("auto").checked && !document.hidden) refresh();
  }, REFRESH_MS);
});
