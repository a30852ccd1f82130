// votescore dashboard: plain JavaScript, no build step. Charts are plotly.js.
// Everything read from the server is put on the page with textContent, never as HTML.
"use strict";

const SCORES = ["support", "turnout", "donor", "engagement"];
const COLORS = { support: "#2f5bea", turnout: "#1a8f4c", donor: "#c98a12", engagement: "#8b3fc4" };
const BUCKET_LABELS = Array.from({ length: 10 }, (_, i) => `${i * 10 + 1}-${i * 10 + 10}`);
const FEED_KEEP = 60;
const SUMMARY_EVERY_MS = 2000;
const LAG_EVERY_MS = 5000;
const PLOT_CONFIG = { displayModeBar: false, responsive: true };

const state = { feedCount: 0, rates: [], lastStats: null, summaryQueued: false };

const $ = (selector) => document.querySelector(selector);

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const cell of cells) {
    const td = document.createElement("td");
    if (cell instanceof Node) td.appendChild(cell); else td.textContent = cell ?? "–";
    tr.appendChild(td);
  }
  return tr;
}

function voterLink(id) {
  const a = el("a", id, "voter");
  a.href = `#voter=${encodeURIComponent(id)}`;
  a.addEventListener("click", (event) => { event.preventDefault(); lookUp(id); });
  return a;
}

function clock(ms) {
  return ms ? new Date(Number(ms)).toLocaleTimeString([], { hour12: false }) : "–";
}

async function getJSON(url, options) {
  const response = await fetch(url, options);
  const body = await response.json();
  if (!response.ok) throw Object.assign(new Error(body.error || response.statusText), { body });
  return body;
}

// --- Score distributions, precincts, throughput -------------------------------------

async function refreshSummary() {
  const summary = await getJSON("/api/summary");
  drawHistograms(summary.histograms);
  fillPrecincts(summary.precincts);
  trackThroughput(summary.stats, summary.now);
  const model = summary.stats.model || {};
  $("#model").textContent = model.version ? `model v${model.version}` : "model –";
}

function drawHistograms(histograms) {
  for (const score of SCORES) {
    const counts = histograms[score];
    const node = document.getElementById(`hist-${score}`);
    // Tests and curious operators can read exactly what is drawn.
    node.dataset.counts = JSON.stringify(counts);
    Plotly.react(node, [{
      type: "bar", x: BUCKET_LABELS, y: counts, marker: { color: COLORS[score] },
      hovertemplate: "%{x}: %{y} voters<extra></extra>",
    }], {
      title: { text: score, font: { size: 13 } },
      margin: { l: 40, r: 10, t: 30, b: 40 }, bargap: 0.05,
      xaxis: { tickangle: -45, tickfont: { size: 9 } }, yaxis: { rangemode: "tozero" },
    }, PLOT_CONFIG);
  }
  const scored = histograms.support.reduce((a, b) => a + b, 0);
  $("#scored-count").textContent = `${scored} voters scored`;
}

function fillPrecincts(precincts) {
  const body = $("#precincts tbody");
  body.replaceChildren(...precincts.map((p) =>
    row([p.precinct, p.voters, ...SCORES.map((s) => p[s])])));

  const select = $("#segment select[name=precinct]");
  const known = new Set([...select.options].map((o) => o.value));
  for (const p of precincts) {
    if (!known.has(p.precinct)) select.appendChild(new Option(p.precinct, p.precinct));
  }
}

function trackThroughput(stats, now) {
  const last = state.lastStats;
  state.lastStats = { added: stats.changes_added, now };
  if (!last || now <= last.now) return;

  const rate = (stats.changes_added - last.added) / (now - last.now);
  state.rates.push({ t: new Date(now * 1000), rate });
  state.rates = state.rates.slice(-90);
  $("#throughput-now").textContent = `${rate.toFixed(1)} score changes/s`;
  Plotly.react("throughput", [{
    type: "scatter", mode: "lines", x: state.rates.map((r) => r.t),
    y: state.rates.map((r) => r.rate), line: { color: COLORS.support },
  }], {
    margin: { l: 40, r: 10, t: 10, b: 30 }, yaxis: { rangemode: "tozero", title: "changes/s" },
  }, PLOT_CONFIG);
}

// Many changes in a burst cause one redraw, not one per change.
function queueSummary() {
  if (state.summaryQueued) return;
  state.summaryQueued = true;
  setTimeout(() => { state.summaryQueued = false; refreshSummary().catch(console.error); }, 300);
}

// --- Live feed --------------------------------------------------------------------

// A filter narrows the list to one voter or one event, so a re-scoring sweep that
// changes thousands of voters does not push the changes being watched out of view.
function wanted(change) {
  const filter = $("#feed-filter").value.trim();
  return !filter || change.voter === filter || (change.cause || "").includes(filter);
}

function showChange(change) {
  state.feedCount += 1;
  $("#feed-count").textContent = `${state.feedCount} changes`;
  if (!wanted(change)) return;

  const li = el("li");
  Object.assign(li.dataset, { voter: change.voter, score: change.score, cause: change.cause });
  const moved = change.old === null ? "new" : (change.new > change.old ? "up" : "down");
  li.append(
    el("span", clock(change.ts), "time"),
    voterLink(change.voter),
    el("span", change.score, "score"),
    el("span", `${change.old ?? "–"} → ${change.new}`, moved),
    el("span", change.cause, "cause"),
  );
  const feed = $("#feed");
  feed.prepend(li);
  while (feed.children.length > FEED_KEEP) feed.lastChild.remove();
}

async function startFeed() {
  const recent = await getJSON("/api/changes");
  recent.changes.forEach(showChange);
  const after = recent.changes.length ? recent.changes[recent.changes.length - 1].id : "$";

  const source = new EventSource(`/api/feed?after=${encodeURIComponent(after)}`);
  const status = $("#feed-status");
  source.onopen = () => { status.className = "dot on"; };
  source.onerror = () => { status.className = "dot off"; };
  source.addEventListener("change", (event) => {
    showChange(JSON.parse(event.data));
    queueSummary();
  });
}

// --- Consumer lag -----------------------------------------------------------------

async function refreshLag() {
  const lag = await getJSON("/api/lag");
  $("#lag-error").textContent = lag.error ? `Kafka: ${lag.error}` : "";
  $("#lag tbody").replaceChildren(...lag.rows.map((r) =>
    row([r.topic, r.partition, r.committed, r.end, r.lag])));
  const total = lag.rows.reduce((sum, r) => sum + (r.lag || 0), 0);
  $("#lag-total").textContent = lag.rows.length ? `${total} records behind` : "no consumer yet";
}

// --- Top targets and export -------------------------------------------------------

function segmentQuery() {
  const form = new FormData($("#segment"));
  const query = new URLSearchParams();
  for (const [name, value] of form) if (value !== "") query.set(name, value);
  return query;
}

async function refreshTargets() {
  const result = await getJSON(`/api/targets?${segmentQuery()}`);
  $("#targets tbody").replaceChildren(...result.targets.map((t) =>
    row([voterLink(t.voter), t.precinct, t.score, `${t.low}–${t.high}`, t.evidence])));
}

async function exportSegment() {
  const notice = $("#export-result");
  const operator = $("#operator").value.trim();
  const headers = operator ? { "X-Votescore-Operator": operator } : {};
  const response = await fetch(`/api/export?${segmentQuery()}`, { headers });
  notice.hidden = false;
  if (!response.ok) {
    const body = await response.json();
    notice.className = "notice refused";
    notice.textContent = `Export refused: ${body.error}`;
    return;
  }
  const csv = await response.text();
  const rows = csv.trim().split("\n").length - 1;
  notice.className = "notice ok";
  notice.textContent = `Exported ${rows} voters (recorded in the export audit).`;
  const link = el("a");
  link.href = URL.createObjectURL(new Blob([csv], { type: "text/csv" }));
  link.download = `targets-${new Date().toISOString().slice(0, 19)}.csv`;
  link.click();
}

// --- Voter lookup -----------------------------------------------------------------

async function lookUp(voterId) {
  const panel = $("#voter-panel");
  panel.hidden = false;
  $("#voter-title").textContent = voterId;
  $("#voter-error").textContent = "";
  try {
    const voter = await getJSON(`/api/voter/${encodeURIComponent(voterId)}`);
    drawVoter(voter);
  } catch (error) {
    $("#voter-error").textContent = error.message;
  }
  panel.scrollIntoView({ behavior: "smooth" });
}

function drawVoter(voter) {
  $("#voter-title").textContent = `${voter.voter} · precinct ${voter.precinct ?? "–"}`;
  const scores = SCORES.map((s) => voter.scores[s]);
  Plotly.react("voter-scores", [{
    type: "bar", orientation: "h", y: SCORES, x: scores.map((s) => s.value),
    marker: { color: SCORES.map((s) => COLORS[s]) },
    error_x: {
      type: "data", symmetric: false,
      array: scores.map((s) => (s.high ?? s.value) - s.value),
      arrayminus: scores.map((s) => s.value - (s.low ?? s.value)),
    },
    text: scores.map((s) => `${s.value} (${s.low}–${s.high}, n=${s.n ?? 0})`),
    textposition: "none", hovertemplate: "%{y}: %{text}<extra></extra>",
  }], {
    title: { text: "now, with 80% interval", font: { size: 12 } },
    margin: { l: 80, r: 10, t: 30, b: 30 }, xaxis: { range: [0, 100] },
    yaxis: { autorange: "reversed" },
  }, PLOT_CONFIG);

  const history = voter.history.filter((h) => h && h.scores);
  Plotly.react("voter-history", SCORES.map((s) => ({
    type: "scatter", mode: "lines+markers", name: s, line: { color: COLORS[s], shape: "hv" },
    x: history.map((h) => new Date(Number(h.ts))), y: history.map((h) => h.scores[s]),
    text: history.map((h) => h.event), hovertemplate: `${s} %{y} after %{text}<extra></extra>`,
  })), {
    title: { text: "how the scores moved", font: { size: 12 } },
    margin: { l: 40, r: 10, t: 30, b: 30 }, yaxis: { range: [0, 100] },
  }, PLOT_CONFIG);

  $("#voter-explain").textContent = explanation(voter);
  $("#voter-evidence tbody").replaceChildren(...voter.evidence.map((item) => {
    const c = item.contribution || {};
    return row([item.event, c.ts ?? "–", c.type ?? "–", contribution(c)]);
  }));
}

// Evidence records say, per score, how much the event counted for and against.
function contribution(record) {
  if (!record.evidence) return typeof record === "string" ? record : JSON.stringify(record);
  return Object.entries(record.evidence)
    .map(([score, [yes, no]]) => `${score} +${amount(yes)} for, +${amount(no)} against`)
    .join("; ");
}

function amount(x) {
  return Number(x).toFixed(2).replace(/\.?0+$/, "");
}

// One line per score: the events that moved it most, in points, biggest first.
function explanation(voter) {
  if (voter.explain) {
    return typeof voter.explain === "string" ? voter.explain : JSON.stringify(voter.explain, null, 1);
  }
  const lines = Object.entries(voter.moved_by || {}).map(([score, events]) =>
    `${score}: ` + events.map((e) =>
      `${e.points >= 0 ? "+" : "−"}${amount(Math.abs(e.points))} pts by ${e.type ?? "event"} ${e.event}`,
    ).join(" · "));
  return lines.length ? lines.join("\n") : "No evidence yet: the scores are the population model's.";
}

// --- Start ------------------------------------------------------------------------

function every(ms, task) {
  const run = () => task().catch(console.error);
  run();
  setInterval(run, ms);
}

window.addEventListener("DOMContentLoaded", () => {
  $("#segment").addEventListener("submit", (event) => {
    event.preventDefault();
    refreshTargets().catch(console.error);
  });
  $("#export").addEventListener("click", () => exportSegment().catch(console.error));
  $("#lookup-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const id = $("#lookup-id").value.trim();
    if (id) lookUp(id);
  });
  $("#voter-close").addEventListener("click", () => { $("#voter-panel").hidden = true; });

  every(SUMMARY_EVERY_MS, refreshSummary);
  every(LAG_EVERY_MS, refreshLag);
  refreshTargets().catch(console.error);
  startFeed().catch(console.error);
});
