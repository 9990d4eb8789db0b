// The hybridlm dashboard: draws /dashboard/api/* with Chart.js. Text from the log is only ever set as
// textContent, never parsed as HTML.
"use strict";

const COLOURS = { faq: "#2a9d8f", flow: "#8ab17d", slm: "#457b9d", llm: "#e76f51", fallback: "#f4a261",
                  "(none)": "#999" };
const PALETTE = ["#457b9d", "#e76f51", "#2a9d8f", "#f4a261", "#8ab17d", "#9d4edd", "#e9c46a", "#6c757d",
                 "#d62828", "#118ab2"];
const charts = {};
let timer = null;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value !== undefined && value !== null) node.setAttribute(name, value);
  }
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child ?? "")));
  return node;
}

function colour(name, i) { return COLOURS[name] || PALETTE[i % PALETTE.length]; }
function usd(x) { return "$" + Number(x).toFixed(x >= 1 ? 2 : 5); }
function ms(x) { return x === null || x === undefined ? "> 60000" : String(x); }

function filters() {
  const form = new FormData(document.getElementById("filters"));
  const params = new URLSearchParams();
  for (const name of ["window", "key", "profile", "tier", "status"]) {
    const value = form.get(name);
    if (value) params.set(name, value);
  }
  return params;
}

async function api(path, params) {
  const response = await fetch(path + (params ? "?" + params : ""), { credentials: "same-origin" });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error ? body.error.message : response.statusText);
  return body;
}

function label(ts, span) {
  const d = new Date(ts * 1000);
  const pad = (n) => String(n).padStart(2, "0");
  if (span >= 86400) return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  return span >= 3600 ? `${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time}` : time;
}

function draw(id, config) {
  if (charts[id]) charts[id].destroy();
  config.options = Object.assign({ animation: false, responsive: true, maintainAspectRatio: true }, config.options);
  const empty = config.data.datasets.every((d) => !d.data.some((v) => (v && typeof v === "object" ? v.y : v)));
  config.options.plugins = Object.assign({ title: { display: empty, text: "nothing in this window" } },
                                         config.options.plugins);
  charts[id] = new Chart(document.getElementById(id), config);
}

// A vertical line at a value of a linear x axis: the router's threshold over its score histogram.
const thresholdLine = {
  id: "thresholdLine",
  afterDraw(chart, _args, options) {
    if (options.value === undefined) return;
    const x = chart.scales.x.getPixelForValue(options.value);
    const { top, bottom } = chart.chartArea;
    const ctx = chart.ctx;
    ctx.save();
    ctx.strokeStyle = "#b00";
    ctx.setLineDash([5, 4]);
    ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, bottom); ctx.stroke();
    ctx.fillStyle = "#b00";
    ctx.fillText(options.label || "", x + 4, top + 10);
    ctx.restore();
  },
};

function fill(tableId, rows) {
  const body = document.querySelector(`#${tableId} tbody`);
  body.replaceChildren(...rows);
}

function cards(totals) {
  const items = [
    ["requests", "requests", totals.requests], ["errors", "errors", totals.errors],
    ["fallbacks", "fallbacks", totals.fallbacks], ["cost", "cost", usd(totals.cost_usd), totals.cost_usd],
    ["baseline", "all-LLM cost", usd(totals.baseline_cost_usd), totals.baseline_cost_usd],
    ["saved", "saved", usd(totals.saved_usd), totals.saved_usd],
    ["tokens", "tokens in / out", `${totals.prompt_tokens} / ${totals.completion_tokens}`,
     totals.prompt_tokens + totals.completion_tokens],
  ];
  document.getElementById("cards").replaceChildren(...items.map(([id, name, shown, raw]) =>
    el("div", { class: "card", id: `card-${id}`, "data-value": raw ?? shown },
       el("div", { class: "label" }, name), el("div", { class: "value" }, shown))));
}

function bars(id, rows, title) {
  draw(id, {
    type: "bar",
    data: { labels: rows.map((r) => r.value), datasets: [{ label: title, data: rows.map((r) => r.n),
            backgroundColor: rows.map((r, i) => colour(r.value, i)) }] },
    options: { indexAxis: "y", plugins: { legend: { display: false } } },
  });
}

function doughnut(id, rows) {
  draw(id, {
    type: "doughnut",
    data: { labels: rows.map((r) => r.value), datasets: [{ data: rows.map((r) => r.n),
            backgroundColor: rows.map((r, i) => colour(r.value, i)) }] },
    options: { plugins: { legend: { position: "right" } } },
  });
}

function traffic(data, span) {
  const lanes = Object.keys(data.traffic.lanes);
  draw("chart-traffic", {
    type: "bar",
    data: { labels: data.traffic.buckets.map((b) => label(b, span)),
            datasets: lanes.map((lane, i) => ({ label: lane, data: data.traffic.lanes[lane], backgroundColor: colour(lane, i) })) },
    options: { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } } },
  });
  const total = data.totals.requests || 1;
  fill("lanes", Object.entries(data.totals.by_lane).map(([lane, n]) =>
    el("tr", { "data-lane": lane }, el("td", {}, lane), el("td", { class: "n" }, n),
       el("td", {}, `${Math.round((100 * n) / total)}%`))));
}

function cost(data, span) {
  draw("chart-cost", {
    type: "line",
    data: { labels: data.cost.buckets.map((b) => label(b, span)), datasets: [
      { label: "cost", data: data.cost.cost_usd, borderColor: "#e76f51", pointRadius: 0 },
      { label: "all-LLM baseline", data: data.cost.baseline_cost_usd, borderColor: "#999", borderDash: [4, 3], pointRadius: 0 },
      { label: "saved so far", data: data.cost.cumulative_saved_usd, borderColor: "#2a9d8f", yAxisID: "saved", pointRadius: 0 },
    ] },
    options: { scales: { y: { beginAtZero: true, title: { display: true, text: "$ per bucket" } },
                         saved: { position: "right", beginAtZero: true, title: { display: true, text: "$ saved" },
                                  grid: { drawOnChartArea: false } } } },
  });
}

function latency(data) {
  const tiers = Object.keys(data.latency);
  draw("chart-latency", {
    type: "bar",
    data: { labels: tiers, datasets: ["p50", "p90", "p99"].map((p, i) => ({
      label: p, data: tiers.map((t) => data.latency[t][p] ?? 60000), backgroundColor: PALETTE[i] })) },
    options: { scales: { y: { type: "logarithmic", title: { display: true, text: "ms" } } } },
  });
  fill("latency", tiers.map((t) => {
    const l = data.latency[t];
    const first = data.first_token[t];
    return el("tr", { "data-tier": t }, el("td", {}, t), el("td", { class: "n" }, l.n), el("td", {}, ms(l.p50)),
              el("td", {}, ms(l.p90)), el("td", {}, ms(l.p99)), el("td", {}, first ? ms(first.p50) : "-"));
  }));
}

function scores(data) {
  const routed = Object.keys(data.scores);
  draw("chart-scores", {
    type: "bar",
    data: { datasets: routed.map((tier, i) => ({
      label: `routed to ${tier}`, backgroundColor: colour(tier, i), barPercentage: 1, categoryPercentage: 1,
      data: Object.entries(data.scores[tier]).map(([bucket, n]) => ({ x: Number(bucket) + 0.025, y: n })) })) },
    options: { scales: { x: { type: "linear", min: 0, max: 1, stacked: true, title: { display: true, text: "score" } },
                         y: { stacked: true, beginAtZero: true } },
               plugins: { thresholdLine: { value: data.threshold, label: `threshold ${data.threshold}` } } },
    plugins: [thresholdLine],
  });
}

function upstreams(data) {
  const rows = [];
  for (const [tier, state] of Object.entries(data.upstreams)) {
    const members = state.upstreams || [state];
    for (const m of members) {
      rows.push(el("tr", { "data-tier": tier }, el("td", {}, tier), el("td", {}, m.name || m.model || state.model || ""),
                   el("td", { class: m.state === "open" ? "err" : "" }, m.state || state.status || "n/a"),
                   el("td", {}, m.failures ?? "")));
    }
  }
  fill("upstreams", rows);
}

function options(data) {
  for (const [name, field] of [["tier", "tier"], ["profile", "profile"], ["key", "key_id"], ["status", "status"]]) {
    const select = document.getElementById(`f-${name}`);
    const chosen = select.value;
    const values = new Set(data.options[field]);
    if (chosen) values.add(chosen);
    select.replaceChildren(el("option", { value: "" }, "all"),
      ...[...values].sort().map((v) => el("option", { value: v }, v)));
    select.value = chosen;
  }
}

function recent(rows) {
  fill("recent", rows.map((r) => {
    const status = r.status === "ok" ? el("span", {}, "ok")
      : el("span", { class: "err" }, `${r.http_status} ${r.error_code || ""}`);
    const cell = el("td", {}, status);
    if (r.fallback) cell.append(" ", el("span", { class: "fb" }, `fallback: ${r.fallback}`));
    const row = el("tr", { "data-request-id": r.request_id },
      el("td", {}, new Date(r.ts * 1000).toLocaleTimeString()), el("td", {}, r.request_id.slice(-10)),
      el("td", {}, r.profile || ""), el("td", {}, r.tier || ""), el("td", {}, r.score === null ? "" : r.score.toFixed(2)),
      el("td", {}, (r.reason || "").slice(0, 120)), cell, el("td", {}, `${r.prompt_tokens}/${r.completion_tokens}`),
      el("td", {}, usd(r.cost_usd)), el("td", {}, Math.round(r.latency_ms)), el("td", {}, (r.prompt_preview || "").slice(0, 60)));
    row.addEventListener("click", () => openTrace(r.request_id));
    return row;
  }));
}

function facts(pairs) {
  return el("dl", {}, ...Object.entries(pairs).flatMap(([k, v]) =>
    [el("dt", {}, k), el("dd", {}, typeof v === "object" && v !== null ? JSON.stringify(v) : (v ?? ""))]));
}

function table(header, rows) {
  return el("table", {}, el("thead", {}, el("tr", {}, ...header.map((h) => el("th", {}, h)))),
            el("tbody", {}, ...rows.map((r) => el("tr", {}, ...r.map((c) => el("td", {}, c ?? ""))))));
}

async function openTrace(id) {
  const t = await api(`/dashboard/api/requests/${encodeURIComponent(id)}`);
  document.getElementById("trace-title").textContent = `Request ${t.request_id}`;
  const parts = [
    el("h3", {}, "Request"),
    facts({ time: new Date(t.ts * 1000).toLocaleString(), endpoint: t.endpoint, model: t.requested_model,
            profile: t.profile, key: t.key_id, status: `${t.status} (${t.http_status})`, error: t.error_code,
            "latency ms": t.latency_ms.toFixed(1), "first token ms": t.first_token_ms?.toFixed(1),
            prompt: t.prompt_preview }),
    el("h3", {}, "Decision"),
    facts({ router: t.router, score: t.score, threshold: t.threshold, "routed to": t.routed_tier,
            "answered by": t.tier, model: t.model, reason: t.reason, fallback: t.fallback,
            "fallback reason": t.fallback_reason }),
  ];
  if (t.signals) parts.push(el("h3", {}, "Signals"), facts({ ...t.signals.labels, ...t.signals.features }));
  parts.push(el("h3", {}, "Calls"), table(["tier", "model", "tokens in", "tokens out", "cost", "ms", "first token ms"],
    (t.calls || []).map((c) => [c.tier, c.model, c.prompt_tokens, c.completion_tokens, usd(c.cost_usd), c.latency_ms,
                                c.first_token_ms ?? ""])));
  parts.push(el("h3", {}, "Totals"), facts({ "tokens in": t.prompt_tokens, "tokens out": t.completion_tokens,
    cost: usd(t.cost_usd), "all-LLM cost": usd(t.baseline_cost_usd), "tool calls": t.tool_calls }));
  if (t.grounding) parts.push(el("h3", {}, "Checks and corrections"), facts(t.grounding));
  if (t.redactions) parts.push(el("h3", {}, "Personal data redacted"), facts(t.redactions));
  if (t.steps) {
    parts.push(el("h3", {}, "Plan steps"), table(["step", "kind", "worker", "after", "tier", "model", "status",
                                                  "attempts", "tokens", "cost", "ms", "note"],
      t.steps.map((s) => [s.id, s.kind, s.worker, (s.depends_on || []).join(", "), s.tier, s.model,
                          s.status + (s.escalated ? " (escalated)" : ""), s.attempts,
                          `${s.prompt_tokens}/${s.completion_tokens}`, usd(s.cost_usd), s.latency_ms,
                          s.error || s.note])));
  }
  if (t.shadows && t.shadows.length) {
    parts.push(el("h3", {}, "Shadow answers"), table(["request", "tier", "status", "cost"],
      t.shadows.map((s) => [s.request_id, s.tier, s.status, usd(s.cost_usd)])));
  }
  document.getElementById("trace-body").replaceChildren(...parts);
  document.getElementById("trace").showModal();
}

async function refresh() {
  const params = filters();
  const [data, rows] = await Promise.all([api("/dashboard/api/overview", params),
                                           api("/dashboard/api/requests", params)]);
  const span = data.window.span_s;
  document.getElementById("since").textContent =
    `from ${new Date(data.window.since * 1000).toLocaleString()} to ${new Date(data.window.until * 1000).toLocaleString()} ` +
    `(${span / 60} min buckets); router: ${data.router}`;
  document.getElementById("since").dataset.since = data.window.since;
  document.getElementById("since").dataset.until = data.window.until;
  cards(data.totals);
  traffic(data, span);
  cost(data, span);
  latency(data);
  scores(data);
  for (const kind of ["intent", "escalation", "pii", "error"]) bars(`chart-${kind}`, data.facts[kind], kind);
  for (const kind of ["sentiment", "tools", "factcheck"]) doughnut(`chart-${kind}`, data.facts[kind]);
  fill("errors", data.facts.error.map((r) => el("tr", { "data-code": r.value }, el("td", {}, r.value), el("td", {}, r.n))));
  upstreams(data);
  options(data);
  recent(rows.data);
  document.body.dataset.loaded = String(Date.now());
}

function lab(data) {
  const root = document.getElementById("lab");
  document.getElementById("lab-empty").hidden = data.results.length > 0;
  root.replaceChildren();
  data.results.forEach((result, n) => {
    const figure = el("figure", { "data-result": result.name });
    figure.append(el("figcaption", {}, `${result.kind}: ${result.data || result.name}` +
      (result.saved_at ? ` (${new Date(result.saved_at * 1000).toLocaleString()})` : "")));
    root.append(figure);
    if (result.kind === "router") labRouter(figure, result, data.threshold, n);
    if (result.kind === "tools") labTools(figure, result, data.tools_threshold, n);
  });
}

function canvas(figure, id) {
  const c = el("canvas", { id });
  figure.append(c);
  return id;
}

function labRouter(figure, r, threshold, n) {
  if (r.two_model.length) {
    const id = canvas(figure, `lab-curve-${n}`);
    const marked = r.two_model[0].curve.reduce((best, p) =>
      Math.abs(p[2] - threshold) < Math.abs(best[2] - threshold) ? p : best, r.two_model[0].curve[0]);
    draw(id, {
      type: "line",
      data: { datasets: [
        ...r.two_model.map((m, i) => ({ label: `${m.name} (APGR ${m.apgr.toFixed(3)})`, borderColor: PALETTE[i % 10],
          data: m.curve.map((p) => ({ x: 100 * p[0], y: p[1] })), borderDash: ["random", "oracle", "category alone"].includes(m.name) ? [4, 3] : [] })),
        { label: `configured threshold ${threshold}`, type: "scatter", pointRadius: 7, pointStyle: "crossRot",
          borderColor: "#b00", data: [{ x: 100 * marked[0], y: marked[1] }] },
      ] },
      options: { scales: { x: { type: "linear", title: { display: true, text: "calls to the large model (%)" } },
                           y: { title: { display: true, text: "quality" } } } },
    });
    figure.append(table(["router", "APGR", "CPT(50%)", "CPT(80%)"], r.two_model.map((m) =>
      [m.name, m.apgr.toFixed(3), `${(100 * m.cpt50).toFixed(1)}%`, `${(100 * m.cpt80).toFixed(1)}%`])));
  }
  if (r.multi_model.length) {
    const id = canvas(figure, `lab-frontier-${n}`);
    draw(id, {
      type: "line",
      data: { datasets: r.multi_model.map((m, i) => ({ label: `${m.name} (AIQ ${m.aiq.toFixed(3)})`, borderColor: PALETTE[i % 10],
        data: m.points.map((p) => ({ x: 1e6 * p[0], y: p[1] })), showLine: m.points.length > 1 })) },
      options: { scales: { x: { type: "linear", title: { display: true, text: "$ per million prompts" } },
                           y: { title: { display: true, text: "quality" } } } },
    });
    figure.append(table(["router or model", "AIQ"], r.multi_model.map((m) => [m.name, m.aiq.toFixed(3)])));
  }
}

function labTools(figure, r, threshold, n) {
  const names = Object.keys(r.categories || {});
  const routed = r.routed_categories || {};
  const id = canvas(figure, `lab-tools-${n}`);
  draw(id, {
    type: "bar",
    data: { labels: names, datasets: [
      { label: "local accuracy", data: names.map((c) => r.categories[c].accuracy), backgroundColor: PALETTE[0] },
      { label: "kept local", data: names.map((c) => routed[c]?.local_share ?? null), backgroundColor: PALETTE[2] },
      { label: "accuracy of what is kept", data: names.map((c) => routed[c]?.local_accuracy ?? null), backgroundColor: PALETTE[1] },
    ] },
    options: { scales: { y: { min: 0, max: 1 } } },
  });
  figure.append(facts({ model: r.model, items: r.n, "local accuracy": r.accuracy, "verifier threshold": r.threshold ?? threshold,
                        "configured threshold": threshold, "kept local": r.local_share, "accuracy kept": r.local_accuracy }));
}

function show(view) {
  for (const tab of document.querySelectorAll("nav .tab")) tab.classList.toggle("active", tab.dataset.view === view);
  document.getElementById("view-traffic").hidden = view !== "traffic";
  document.getElementById("view-lab").hidden = view !== "lab";
  if (view === "lab") api("/dashboard/api/lab").then(lab);
}

function schedule() {
  clearInterval(timer);
  if (document.getElementById("f-auto").checked) timer = setInterval(refresh, 10000);
}

document.getElementById("filters").addEventListener("change", () => { refresh(); schedule(); });
for (const tab of document.querySelectorAll("nav .tab")) tab.addEventListener("click", () => show(tab.dataset.view));
refresh();
schedule();
