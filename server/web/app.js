// The dashboard's DOM side: overview table and per-target chart. Data
// shaping lives in shape.js, API calls in api.js.
import uPlot from './uPlot.esm.js';
import * as api from './api.js';
import {
  overviewRow, statsColumns, filterRows, sortRows, pageOf, formatMs, formatAge,
  formatPercent, RANGES, stepFor, historyColumns, statusChanges, LiveSeries, lossMarkers,
  SseParser, pushSample,
} from './shape.js';

const PAGE_SIZE = 50;
const $ = (id) => document.getElementById(id);
const state = { rows: [], stats: new Map(), sort: 'status', desc: false, page: 0, timer: null };

function show(section) {
  for (const id of ['login', 'overview', 'detail']) $(id).hidden = id !== section;
}

function el(tag, attrs = {}, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text != null) e.textContent = text;
  return e;
}

async function guarded(fn) {
  try {
    await fn();
  } catch (err) {
    if (err instanceof api.AuthNeeded) {
      stop();
      $('login-error').textContent = api.token() ? 'The server rejected this token.' : '';
      api.clearToken();
      show('login');
      $('token').focus();
      return;
    }
    $('updated').textContent = `error: ${err.message}`;
    $('updated').className = 'error';
  }
}

function stop() {
  clearInterval(state.timer);
  state.timer = null;
  if (detail.abort) detail.abort.abort();
  detail.abort = null;
}

// ---- overview --------------------------------------------------------------

async function refreshOverview() {
  const targets = await api.listAllTargets();
  state.rows = targets.map((t) => overviewRow(t, null));
  // Percentiles and loss come from GetTargetStats, fetched for the visible
  // page only, so 1,000 targets cost 1 ListTargets call + 50 stats calls.
  const visible = pageOf(view(), state.page, PAGE_SIZE).rows.map((r) => r.name);
  await pool(visible, 6, async (name) => {
    state.stats.set(name, statsColumns(await api.targetStats(name, '5m')));
  });
  renderOverview();
  const counts = {};
  for (const r of state.rows) counts[r.status] = (counts[r.status] || 0) + 1;
  const summary = $('summary');
  summary.replaceChildren(...Object.entries(counts).sort().map(([s, n]) => {
    const span = el('span');
    span.append(el('i', { class: `dot s-${s}` }), `${n} ${s}`);
    return span;
  }));
  $('updated').className = 'muted';
  $('updated').textContent = `updated ${new Date().toLocaleTimeString()}`;
  document.body.dataset.overviewReady = String(state.rows.length);
}

async function pool(items, width, fn) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]).catch(() => {});
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
}

function view() {
  const rows = state.rows.map((r) => Object.assign({}, r, state.stats.get(r.name) || {}));
  return sortRows(filterRows(rows, $('filter').value), state.sort, state.desc);
}

const COLUMNS = [
  ['icmpLast', formatMs], ['icmpP50', formatMs], ['icmpP99', formatMs],
  ['grpcLast', formatMs], ['grpcP50', formatMs], ['grpcP99', formatMs],
  ['netLast', formatMs], ['loss', formatPercent], ['ageMs', formatAge],
];

function renderOverview() {
  const all = view();
  const { page, pages, rows } = pageOf(all, state.page, PAGE_SIZE);
  state.page = page;
  $('count').textContent = `${all.length} of ${state.rows.length} targets`;
  $('page').textContent = `page ${page + 1} / ${pages}`;
  const body = $('targets').tBodies[0];
  body.replaceChildren(...rows.map((r) => {
    const tr = el('tr', { 'data-target': r.name });
    const status = el('td');
    status.append(el('i', { class: `dot s-${r.status}` }), r.status);
    const name = el('td', {}, r.name);
    if (r.host && r.host !== r.name) name.append(el('span', { class: 'muted' }, `  ${r.host}`));
    tr.append(status, name);
    for (const [key, fmt] of COLUMNS) {
      tr.append(el('td', { class: 'num', 'data-col': key, 'data-value': r[key] ?? '' }, fmt(r[key])));
    }
    tr.addEventListener('click', () => { location.hash = `#/target/${encodeURIComponent(r.name)}`; });
    return tr;
  }));
  for (const th of $('targets').tHead.rows[0].cells) {
    th.classList.toggle('sorted', th.dataset.key === state.sort);
    th.classList.toggle('desc', th.dataset.key === state.sort && state.desc);
  }
}

// ---- per target ------------------------------------------------------------

const detail = { name: null, range: '1h', plot: null, live: null, custom: null, abort: null };

function chartWidth() { return Math.max(400, $('chart-icmp').clientWidth - 16); }

function makePlot(title, data, opts) {
  if (detail.plot) detail.plot.destroy();
  const axisStyle = { stroke: '#7d8894', grid: { stroke: '#26303b' }, ticks: { stroke: '#26303b' } };
  detail.plot = new uPlot({
    title,
    width: chartWidth(),
    height: 380,
    scales: { x: { time: true, range: opts.xRange }, // Log scale: loopback ICMP (µs) and a slow gRPC path (100s of ms) both
    // stay readable, and one outlier does not flatten the rest.
    ms: { distr: 3, log: 10 } },
    axes: [axisStyle, { ...axisStyle, scale: 'ms', label: 'ms', size: 60 }],
    series: opts.series,
    bands: opts.bands || [],
    hooks: { draw: [(u) => drawStatusChanges(u, opts.changes || [])] },
  }, data, $('chart-icmp'));
}

function drawStatusChanges(u, changes) {
  const ctx = u.ctx;
  ctx.save();
  for (const c of changes) {
    const x = Math.round(u.valToPos(u.data[0][c.index], 'x', true));
    ctx.strokeStyle = c.to === 'ok' ? '#3fb950' : c.to === 'down' ? '#f85149' : '#d29922';
    ctx.setLineDash([4, 4]);
    ctx.beginPath();
    ctx.moveTo(x, u.bbox.top);
    ctx.lineTo(x, u.bbox.top + u.bbox.height);
    ctx.stroke();
    ctx.fillStyle = ctx.strokeStyle;
    ctx.fillText(c.to, x + 4, u.bbox.top + 12);
  }
  ctx.restore();
}

const line = (label, stroke, width = 1.5, dash) => ({ label, stroke, width, dash, spanGaps: true, scale: 'ms', value: (u, v) => formatMs(v) });
const hidden = (label) => ({ label, stroke: 'transparent', scale: 'ms', width: 0, points: { show: false }, value: (u, v) => formatMs(v) });
const lossSeries = () => ({
  label: 'loss', scale: 'ms', stroke: '#f85149', width: 0, paths: () => null,
  points: { show: true, size: 7, fill: '#f85149', stroke: '#f85149' },
  value: (u, v, si, i) => (v == null ? '—' : 'lost'),
});

async function showHistory(startS, endS) {
  const step = stepFor(endS - startS, chartWidth());
  // A kind the target does not probe answers 404: no points of that kind.
  const orNone = (p) => p.catch((err) => {
    if (err instanceof api.AuthNeeded || !/ probe$/.test(err.message)) throw err;
    return { points: [] };
  });
  const [icmp, grpc] = await Promise.all([
    orNone(api.history(detail.name, 'icmp', startS, endS, step)),
    orNone(api.history(detail.name, 'grpc', startS, endS, step)),
  ]);
  // A server that has stored nothing for this target yet: the live tail.
  if (![...(icmp.points || []), ...(grpc.points || [])].some((pt) => pt.sent > 0)) {
    const err = new Error('no stored history yet');
    err.noHistory = true;
    throw err;
  }
  const h = historyColumns(icmp.points);
  const g = historyColumns(grpc.points);
  const gByT = new Map(g.t.map((t, i) => [t, i]));
  const gAt = (col) => h.t.map((t) => (gByT.has(t) ? g[col][gByT.get(t)] : null));
  const top = Math.max(0, ...h.p99.filter((v) => v != null));
  makePlot(`${detail.name} — ICMP percentiles, gRPC and network RTT (step ${step} s)`, [
    h.t, h.p1, h.p10, h.p90, h.p99, h.p50, gAt('p50'), gAt('net'), lossMarkers(h.loss, top * 1.05),
  ], {
    series: [{}, hidden('ICMP p1'), hidden('ICMP p10'), hidden('ICMP p90'), hidden('ICMP p99'),
      line('ICMP p50', '#58a6ff', 2), line('gRPC p50', '#f0883e'), line('network p50', '#56d4bc', 1.5, [6, 4]), lossSeries()],
    bands: [
      { series: [4, 1], fill: 'rgba(88,166,255,0.12)' },
      { series: [3, 2], fill: 'rgba(88,166,255,0.25)' },
    ],
    changes: statusChanges(h.status),
  });
  $('chart-note').textContent = 'history: band p1–p99 (light) and p10–p90 (dark) around the ICMP median; red dots mark minutes with loss; dashed lines mark status changes; then every probe live from /v1/watch';
  // The newest plotted ICMP median, for tests that compare it with /v1.
  const p50s = h.p50.filter((v) => v != null);
  document.body.dataset.chartLastP50 = p50s.length ? String(p50s[p50s.length - 1]) : '';
  document.body.dataset.chartReady = `history:${h.t.length}`;
  if (!detail.custom) tailHistory(detail.plot.data.map((c) => Array.from(c)), top * 1.05);
}

// The history chart's live tail: each probe from /v1/watch appended at its
// scheduled time (ICMP into the median line, gRPC and network into theirs,
// a lost probe as a loss dot), so the chart moves every probe without
// polling; a stream that ends (the server reloaded) is opened again.
function tailHistory(data, lossY) {
  detail.abort = new AbortController();
  const signal = detail.abort.signal;
  const onSample = (m) => {
    const s = m.sample || m;
    const t = Date.parse(s.scheduled_time) / 1000;
    if (!Number.isFinite(t) || (data[0].length && t < data[0][data[0].length - 1])) return;
    const ok = s.result === 'SAMPLE_RESULT_OK';
    const icmp = s.kind === 'PROBE_KIND_ICMP';
    const row = [t, null, null, null, null, icmp && ok ? s.rtt_ms ?? null : null,
      !icmp && ok ? s.rtt_ms ?? null : null, !icmp && ok ? s.network_rtt_ms ?? null : null, ok ? null : lossY];
    row.forEach((v, i) => data[i].push(v));
    if (data[0].length > 20000) data.forEach((c) => c.shift());
    detail.plot.setData(data);
    document.body.dataset.chartReady = `history:${data[0].length}`;
  };
  const open = () => api.watch(detail.name, onSample, signal, SseParser)
    .then(() => { if (!signal.aborted) setTimeout(open, 1000); })
    .catch((err) => {
      if (err.name === 'AbortError' || err instanceof api.AuthNeeded) return;
      $('chart-note').textContent += ` (live tail stopped: ${err.message})`;
    });
  open();
}

function drawLive(mode) {
  const c = detail.live.cols;
  const top = Math.max(0, ...c.p99.filter((v) => v != null), ...c.grpc.filter((v) => v != null));
  const data = [c.t, c.p99, c.p50, c.icmp, c.grpc, c.net, lossMarkers(c.loss, top * 1.05)];
  if (!detail.plot || detail.plot.series.length !== data.length) {
    makePlot(`${detail.name} — live`, data, {
      series: [{}, hidden('ICMP p99 1m'), line('ICMP p50 1m', 'rgba(88,166,255,0.6)', 1),
        line('ICMP last', '#58a6ff', 2), line('gRPC last', '#f0883e', 2), line('network last', '#56d4bc', 1.5, [6, 4]), lossSeries()],
      bands: [{ series: [1, 2], fill: 'rgba(88,166,255,0.15)' }],
      // At least the last minute, so the tail grows from the right.
      xRange: (u, min, max) => [Math.min(min, max - 60), max],
      changes: statusChanges(c.status),
    });
  } else {
    detail.plot.setData(data);
  }
  document.body.dataset.chartReady = `${mode}:${c.t.length}`;
}

// The live tail: the server's /v1/watch event stream (a point per probe)
// when it has one, else GetTargetStats polled every second.
function showLive(why) {
  detail.why = why;
  detail.live = new LiveSeries(3600);
  detail.abort = new AbortController();
  const cards = () => guarded(async () => renderCards(await api.targetStats(detail.name, '1m')));
  state.timer = setInterval(cards, 5000);
  $('chart-note').textContent = `live tail from /v1/watch (${detail.why || 'no history'}): every probe as it completes; red dots mark lost probes`;
  const signal = detail.abort.signal;
  const open = () => api.watch(detail.name, (m) => { if (pushSample(detail.live, m)) drawLive('watch'); }, signal, SseParser)
    .then(() => { if (!signal.aborted) setTimeout(open, 1000); })  // a reload ended it
    .catch((err) => {
      if (err.name === 'AbortError') return;
      if (err instanceof api.AuthNeeded) return guarded(() => { throw err; });
      if (![404, 405, 415, 501].includes(err.status) || detail.live.cols.t.length) {
        $('chart-note').textContent = `live tail stopped: ${err.message}`;
        return;
      }
      clearInterval(state.timer);
      showPolling();
    });
  open();
}

function showPolling() {
  $('chart-note').textContent = `live (${detail.why || 'no history'}; no watch stream on this server): last RTT each poll, ICMP 1-minute p50–p99 band; red dots mark polls with loss in the last minute`;
  const tick = () => guarded(async () => {
    const stats = await api.targetStats(detail.name, '1m');
    renderCards(stats);
    if (detail.live.push(Date.now() / 1000, stats)) drawLive('live');
  });
  tick();
  state.timer = setInterval(tick, 1000);
}

function renderCards(stats) {
  const t = stats.target || {};
  $('detail-status').textContent = t.status || 'unknown';
  $('detail-status').className = `badge s-${t.status || 'unknown'}`;
  const cards = [];
  for (const p of stats.probes || []) {
    const kind = p.kind === 'PROBE_KIND_ICMP' ? 'ICMP' : 'gRPC';
    const card = el('div', { class: 'card', 'data-kind': kind });
    card.append(el('div', { class: 'label' }, `${kind} last · p50 · p99 (${stats.window})`));
    const v = el('div', { class: 'value' });
    v.append(el('span', { 'data-field': 'last' }, formatMs(p.last_ms)), ' ',
      el('small', {}, `${formatMs(p.p50_ms)} · ${formatMs(p.p99_ms)} ms`));
    card.append(v, el('div', { class: 'muted' }, `loss ${formatPercent(p.loss_percent)} · ${p.status}`));
    cards.push(card);
  }
  $('detail-cards').replaceChildren(...cards);
}

async function openTarget(name) {
  detail.name = name;
  $('detail-name').textContent = name;
  show('detail');
  if (detail.plot) { detail.plot.destroy(); detail.plot = null; }
  delete document.body.dataset.chartReady;
  renderRanges();
  await guarded(async () => renderCards(await api.targetStats(name, '5m')));
  const endS = detail.custom ? detail.custom[1] : Date.now() / 1000;
  const startS = detail.custom ? detail.custom[0] : endS - RANGES[detail.range];
  try {
    await showHistory(startS, endS);
  } catch (err) {
    if (err instanceof api.AuthNeeded) return guarded(() => { throw err; });
    // No history here (an older server, history off or degraded, nothing
    // stored yet): the live tail instead; an unknown target is an error.
    if (err.status === 404 && /target/i.test(err.message)) throw err;
    showLive(err.noHistory ? 'no stored history yet' : `no history (${err.message})`);
  }
}

function renderRanges() {
  const box = $('ranges');
  box.replaceChildren(...Object.keys(RANGES).map((r) => {
    const b = el('button', { type: 'button', class: !detail.custom && r === detail.range ? 'active' : '' }, r);
    b.addEventListener('click', () => { detail.range = r; detail.custom = null; route(); });
    return b;
  }));
}

// ---- wiring ----------------------------------------------------------------

function route() {
  stop();
  const m = location.hash.match(/^#\/target\/(.+)$/);
  if (m) {
    guarded(() => openTarget(decodeURIComponent(m[1])));
    return;
  }
  show('overview');
  guarded(refreshOverview);
  state.timer = setInterval(() => guarded(refreshOverview), 5000);
}

function wire() {
  $('login-form').addEventListener('submit', (e) => {
    e.preventDefault();
    api.setToken($('token').value);
    $('token').value = '';
    route();
  });
  $('filter').addEventListener('input', () => { state.page = 0; renderOverview(); });
  $('prev').addEventListener('click', () => { state.page--; guarded(refreshOverview); });
  $('next').addEventListener('click', () => { state.page++; guarded(refreshOverview); });
  for (const th of $('targets').tHead.rows[0].cells) {
    th.addEventListener('click', () => {
      if (state.sort === th.dataset.key) state.desc = !state.desc;
      else { state.sort = th.dataset.key; state.desc = false; }
      renderOverview();
    });
  }
  $('custom-apply').addEventListener('click', () => {
    const s = Date.parse($('custom-start').value) / 1000;
    const e = Date.parse($('custom-end').value) / 1000;
    if (s < e) { detail.custom = [s, e]; route(); }
  });
  window.addEventListener('hashchange', route);
  window.addEventListener('resize', () => detail.plot && detail.plot.setSize({ width: chartWidth(), height: 380 }));
  route();
}

wire();
