// Data shaping for the dashboard: pure functions, no DOM, no fetch, so
// node's test runner checks them (tests/web/shape_test.mjs).

const STATUS_RANK = { down: 0, stale: 1, degraded: 2, no_permission: 3, unknown: 4, ok: 5 };

/** The probe summary of `kind` ("PROBE_KIND_ICMP"/"PROBE_KIND_GRPC") or null. */
export function probeOf(target, kind) {
  return (target.probes || []).find((p) => p.kind === kind) || null;
}

/** One overview row from a ListTargets TargetSummary (+ optional stats). */
export function overviewRow(target, stats) {
  const icmp = probeOf(target, 'PROBE_KIND_ICMP');
  const grpc = probeOf(target, 'PROBE_KIND_GRPC');
  const row = {
    name: target.name,
    host: target.host || '',
    status: target.status || 'unknown',
    icmpStatus: icmp ? icmp.status : null,
    grpcStatus: grpc ? grpc.status : null,
    icmpLast: icmp && icmp.last_rtt_ms != null ? icmp.last_rtt_ms : null,
    grpcLast: grpc && grpc.last_rtt_ms != null ? grpc.last_rtt_ms : null,
    netLast: grpc && grpc.last_network_rtt_ms != null ? grpc.last_network_rtt_ms : null,
    ageMs: minDefined(icmp && icmp.age_ms, grpc && grpc.age_ms),
    icmpP50: null, icmpP99: null, grpcP50: null, grpcP99: null, loss: null,
  };
  if (stats) Object.assign(row, statsColumns(stats));
  return row;
}

/** p50/p99 per kind and the worst loss from a GetTargetStats response. */
export function statsColumns(stats) {
  const out = { icmpP50: null, icmpP99: null, grpcP50: null, grpcP99: null, loss: null };
  for (const p of stats.probes || []) {
    const prefix = p.kind === 'PROBE_KIND_ICMP' ? 'icmp' : p.kind === 'PROBE_KIND_GRPC' ? 'grpc' : null;
    if (!prefix) continue;
    out[prefix + 'P50'] = p.p50_ms ?? null;
    out[prefix + 'P99'] = p.p99_ms ?? null;
    if (p.loss_percent != null) out.loss = Math.max(out.loss ?? 0, p.loss_percent);
  }
  return out;
}

function minDefined(a, b) {
  if (a == null) return b ?? null;
  if (b == null) return a;
  return Math.min(a, b);
}

/** Rows whose name, host or status contain `text` (case-insensitive). */
export function filterRows(rows, text) {
  const needle = (text || '').trim().toLowerCase();
  if (!needle) return rows;
  return rows.filter((r) =>
    r.name.toLowerCase().includes(needle) || r.host.toLowerCase().includes(needle) ||
    r.status.toLowerCase() === needle);
}

/**
 * Sorted copy by `key`; missing numbers (null) always go last, whatever the
 * direction; status sorts worst first; ties by name.
 */
export function sortRows(rows, key, descending = false) {
  const dir = descending ? -1 : 1;
  const value = (r) => (key === 'status' ? STATUS_RANK[r.status] ?? 6 : r[key]);
  return [...rows].sort((a, b) => {
    const va = value(a), vb = value(b);
    if (va == null && vb != null) return 1;
    if (vb == null && va != null) return -1;
    if (va != null && vb != null && va !== vb) {
      return (typeof va === 'string' ? va.localeCompare(vb) : va - vb) * dir;
    }
    return a.name.localeCompare(b.name);
  });
}

/** Page `page` (0-based) of `size` rows, with the page count. */
export function pageOf(rows, page, size) {
  const pages = Math.max(1, Math.ceil(rows.length / size));
  const p = Math.min(Math.max(0, page), pages - 1);
  return { page: p, pages, rows: rows.slice(p * size, (p + 1) * size) };
}

/** Milliseconds as the table shows them: 3 significant digits, "—" when absent. */
export function formatMs(ms) {
  if (ms == null || Number.isNaN(ms)) return '—';
  if (ms >= 100) return ms.toFixed(0);
  if (ms >= 10) return ms.toFixed(1);
  if (ms >= 1) return ms.toFixed(2);
  return ms.toFixed(3);
}

/** An age in ms as "850 ms", "12 s", "3 min", "2 h". */
export function formatAge(ms) {
  if (ms == null) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 120000) return `${Math.round(ms / 1000)} s`;
  if (ms < 7200000) return `${Math.round(ms / 60000)} min`;
  return `${Math.round(ms / 3600000)} h`;
}

export function formatPercent(p) {
  if (p == null) return '—';
  return p === 0 ? '0%' : p < 1 ? `${p.toFixed(2)}%` : `${p.toFixed(1)}%`;
}

export const RANGES = { '1h': 3600, '24h': 86400, '7d': 7 * 86400, '30d': 30 * 86400 };

/** The history step (seconds) for about one point per pixel, at least 60 s. */
export function stepFor(rangeSeconds, widthPx) {
  const raw = rangeSeconds / Math.max(1, widthPx);
  return Math.max(60, Math.ceil(raw / 60) * 60);
}

/**
 * History points -> uPlot columns. Each point: {time|start_time (RFC 3339),
 * p1_ms,p10_ms,p50_ms,p90_ms,p99_ms, loss_percent, status, network_p50_ms}; a
 * missing value stays null (a gap), never 0.
 */
export function historyColumns(points) {
  const cols = { t: [], p1: [], p10: [], p50: [], p90: [], p99: [], net: [], loss: [], status: [] };
  for (const pt of points || []) {
    const when = pt.time ?? pt.start_time ?? pt.start;
    cols.t.push(Date.parse(when) / 1000);
    cols.p1.push(pt.p1_ms ?? null);
    cols.p10.push(pt.p10_ms ?? null);
    cols.p50.push(pt.p50_ms ?? null);
    cols.p90.push(pt.p90_ms ?? null);
    cols.p99.push(pt.p99_ms ?? null);
    cols.net.push(pt.network_p50_ms ?? null);
    cols.loss.push(pt.loss_percent ?? null);
    cols.status.push(pt.status || null);  // "" (nothing stored) is no status
  }
  return cols;
}

/** Indexes where status differs from the previous known one. */
export function statusChanges(statuses) {
  const out = [];
  let last = null;
  statuses.forEach((s, i) => {
    if (s == null) return;
    if (last != null && s !== last) out.push({ index: i, from: last, to: s });
    last = s;
  });
  return out;
}

/**
 * A bounded live series fed one stats poll at a time: time (s) plus last
 * ICMP, gRPC and network RTT, the ICMP 1-minute p50/p99, loss and status.
 */
export class LiveSeries {
  constructor(limit = 3600) {
    this.limit = limit;
    this.cols = { t: [], icmp: [], grpc: [], net: [], p50: [], p99: [], loss: [], status: [] };
  }

  push(nowSeconds, stats) {
    const icmp = (stats.probes || []).find((p) => p.kind === 'PROBE_KIND_ICMP') || {};
    const grpc = (stats.probes || []).find((p) => p.kind === 'PROBE_KIND_GRPC') || {};
    const grpcSummary = probeOf(stats.target || {}, 'PROBE_KIND_GRPC') || {};
    const c = this.cols;
    if (c.t.length && c.t[c.t.length - 1] >= nowSeconds) return false;
    c.t.push(nowSeconds);
    c.icmp.push(icmp.last_ms ?? null);
    c.grpc.push(grpc.last_ms ?? null);
    c.net.push(grpcSummary.last_network_rtt_ms ?? null);
    c.p50.push(icmp.p50_ms ?? null);
    c.p99.push(icmp.p99_ms ?? null);
    const losses = [icmp.loss_percent, grpc.loss_percent].filter((x) => x != null);
    c.loss.push(losses.length ? Math.max(...losses) : null);
    c.status.push(stats.target ? stats.target.status : null);
    if (c.t.length > this.limit) for (const k of Object.keys(c)) c[k].shift();
    return true;
  }
}

/** Loss markers: y placed at `y` where loss > 0, null elsewhere. */
export function lossMarkers(loss, y) {
  return loss.map((l) => (l != null && l > 0 ? y : null));
}

/**
 * Incremental text/event-stream parser (the SSE wire format): feed() it
 * decoded chunks as they arrive, split anywhere; it returns the events
 * completed so far as {event, data} ("message" when no event field).
 */
export class SseParser {
  constructor() {
    this.buffer = '';
    this.data = [];
    this.event = '';
  }

  feed(chunk) {
    this.buffer += chunk;
    const events = [];
    let nl;
    while ((nl = this.buffer.search(/\r\n|\r|\n/)) >= 0) {
      const lineEnd = this.buffer[nl] === '\r' && this.buffer[nl + 1] === '\n' ? nl + 2 : nl + 1;
      // A lone trailing \r may be the first half of \r\n: wait for more.
      if (this.buffer[nl] === '\r' && nl + 1 === this.buffer.length) break;
      const line = this.buffer.slice(0, nl);
      this.buffer = this.buffer.slice(lineEnd);
      if (line === '') {
        if (this.data.length) events.push({ event: this.event || 'message', data: this.data.join('\n') });
        this.data = [];
        this.event = '';
        continue;
      }
      if (line.startsWith(':')) continue;  // comment / keep-alive
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'data') this.data.push(value);
      else if (field === 'event') this.event = value;
    }
    return events;
  }
}

/**
 * One Watch sample (WatchResponse JSON, {sample: {...}}, or a bare Sample)
 * into a LiveSeries: a point at its scheduled time, in the column of its
 * kind; a failed probe is a loss marker and a gap, never 0.
 */
export function pushSample(live, message) {
  const s = message.sample || message;
  const t = Date.parse(s.scheduled_time) / 1000;
  if (!Number.isFinite(t)) return false;
  const c = live.cols;
  if (c.t.length && t < c.t[c.t.length - 1]) return false;  // out of order
  const ok = s.result === 'SAMPLE_RESULT_OK';
  const icmp = s.kind === 'PROBE_KIND_ICMP';
  c.t.push(t);
  c.icmp.push(icmp && ok ? s.rtt_ms ?? null : null);
  c.grpc.push(!icmp && ok ? s.rtt_ms ?? null : null);
  c.net.push(!icmp && ok ? s.network_rtt_ms ?? null : null);
  c.p50.push(null);
  c.p99.push(null);
  c.loss.push(ok ? 0 : 100);
  c.status.push(null);
  if (c.t.length > live.limit) for (const k of Object.keys(c)) c[k].shift();
  return true;
}
