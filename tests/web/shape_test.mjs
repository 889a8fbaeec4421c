// Unit tests of the dashboard's data shaping (server/web/shape.js):
//   node --test tests/web/shape_test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  overviewRow, statsColumns, filterRows, sortRows, pageOf, formatMs, formatAge, formatPercent,
  stepFor, historyColumns, statusChanges, LiveSeries, lossMarkers, SseParser, pushSample,
} from '../../server/web/shape.js';

// Shapes as /v1/targets and /v1/targets/NAME/stats return them.
const target = (name, status, icmp, grpc) => ({
  name, host: `${name}.example`, status,
  probes: [
    { kind: 'PROBE_KIND_ICMP', status, last_rtt_ms: icmp, age_ms: 300 },
    { kind: 'PROBE_KIND_GRPC', status, last_rtt_ms: grpc, last_network_rtt_ms: grpc == null ? null : grpc - 0.1, age_ms: 120 },
  ],
});
const stats = (icmpP50, grpcP50, loss) => ({
  window: '5m',
  probes: [
    { kind: 'PROBE_KIND_ICMP', p50_ms: icmpP50, p99_ms: icmpP50 * 2, loss_percent: loss, last_ms: icmpP50 },
    { kind: 'PROBE_KIND_GRPC', p50_ms: grpcP50, p99_ms: null, loss_percent: 0, last_ms: grpcP50 },
  ],
});

test('overviewRow takes last RTTs and the youngest age; absent stays null', () => {
  const row = overviewRow(target('a', 'ok', 0.5, null), null);
  assert.equal(row.icmpLast, 0.5);
  assert.equal(row.grpcLast, null);
  assert.equal(row.netLast, null);
  assert.equal(row.ageMs, 120);
  assert.equal(row.icmpP50, null);
  const withStats = overviewRow(target('a', 'ok', 0.5, 1.5), stats(0.4, 1.2, 2.5));
  assert.equal(withStats.netLast, 1.4);
  assert.deepEqual([withStats.icmpP50, withStats.icmpP99, withStats.grpcP50, withStats.grpcP99, withStats.loss],
    [0.4, 0.8, 1.2, null, 2.5]);
});

test('statsColumns reports the worst loss of the two kinds and ignores unknown kinds', () => {
  const s = stats(1, 2, 0);
  s.probes[1].loss_percent = 7;
  s.probes.push({ kind: 'PROBE_KIND_UNSPECIFIED', loss_percent: 99 });
  assert.equal(statsColumns(s).loss, 7);
  assert.equal(statsColumns({ probes: [] }).loss, null);
});

test('filterRows matches name or host substrings and whole statuses', () => {
  const rows = ['edge-1', 'edge-2', 'core'].map((n, i) => overviewRow(target(n, i ? 'ok' : 'down', 1, 1)));
  assert.deepEqual(filterRows(rows, 'EDGE').map((r) => r.name), ['edge-1', 'edge-2']);
  assert.deepEqual(filterRows(rows, 'core.example').map((r) => r.name), ['core']);
  assert.deepEqual(filterRows(rows, 'down').map((r) => r.name), ['edge-1']);
  assert.equal(filterRows(rows, '  ').length, 3);
});

test('sortRows: numbers both ways with nulls last, status worst first, ties by name', () => {
  const rows = [
    overviewRow(target('b', 'ok', 2, 1)), overviewRow(target('a', 'ok', null, 1)),
    overviewRow(target('c', 'down', 1, 1)), overviewRow(target('d', 'stale', 2, 1)),
  ];
  assert.deepEqual(sortRows(rows, 'icmpLast').map((r) => r.name), ['c', 'b', 'd', 'a']);
  assert.deepEqual(sortRows(rows, 'icmpLast', true).map((r) => r.name), ['b', 'd', 'c', 'a']);
  assert.deepEqual(sortRows(rows, 'status').map((r) => r.name), ['c', 'd', 'a', 'b']);
  assert.deepEqual(sortRows(rows, 'name', true).map((r) => r.name), ['d', 'c', 'b', 'a']);
  assert.equal(rows[0].name, 'b', 'sortRows does not sort in place');
});

test('pageOf clamps the page and counts pages of 1,000 rows', () => {
  const rows = Array.from({ length: 1000 }, (_, i) => i);
  assert.deepEqual(pageOf(rows, 0, 50).rows.slice(0, 2), [0, 1]);
  assert.equal(pageOf(rows, 0, 50).pages, 20);
  assert.equal(pageOf(rows, 99, 50).page, 19);
  assert.deepEqual(pageOf(rows, 99, 50).rows.at(-1), 999);
  assert.equal(pageOf(rows, -3, 50).page, 0);
  assert.deepEqual(pageOf([], 0, 50), { page: 0, pages: 1, rows: [] });
});

test('formatting: three significant digits, absent as a dash, never 0', () => {
  assert.equal(formatMs(null), '—');
  assert.equal(formatMs(undefined), '—');
  assert.equal(formatMs(0.01234), '0.012');
  assert.equal(formatMs(1.234), '1.23');
  assert.equal(formatMs(12.34), '12.3');
  assert.equal(formatMs(123.4), '123');
  assert.equal(formatAge(850), '850 ms');
  assert.equal(formatAge(12000), '12 s');
  assert.equal(formatAge(180000), '3 min');
  assert.equal(formatAge(null), '—');
  assert.equal(formatPercent(0), '0%');
  assert.equal(formatPercent(0.5), '0.50%');
  assert.equal(formatPercent(12.34), '12.3%');
  assert.equal(formatPercent(null), '—');
});

test('stepFor asks for about one point per pixel, in whole minutes', () => {
  assert.equal(stepFor(3600, 1200), 60);
  assert.equal(stepFor(86400, 1200), 120);
  assert.equal(stepFor(30 * 86400, 1200), 2160);
  assert.equal(stepFor(3600, 0), 3600);
});

test('historyColumns keeps gaps as null and parses RFC 3339 times', () => {
  const cols = historyColumns([
    { time: '2026-12-04T00:00:00Z', p1_ms: 1, p10_ms: 2, p50_ms: 3, p90_ms: 4, p99_ms: 5, loss_percent: 0, status: 'ok', network_p50_ms: 2.5 },
    { start_time: '2026-12-04T00:01:00Z', p50_ms: null, loss_percent: 100, status: 'down' },
  ]);
  assert.deepEqual(cols.t, [Date.UTC(2026, 11, 4) / 1000, Date.UTC(2026, 11, 4, 0, 1) / 1000]);
  assert.deepEqual(cols.p50, [3, null]);
  assert.deepEqual(cols.p1, [1, null]);
  assert.deepEqual(cols.net, [2.5, null]);
  assert.deepEqual(lossMarkers(cols.loss, 9), [null, 9]);
  assert.deepEqual(historyColumns(undefined).t, []);
  // A point with nothing stored has status "" in JSON: no status, no change.
  const gaps = historyColumns([
    { time: '2026-12-04T00:00:00Z', sent: 60, status: 'ok' },
    { time: '2026-12-04T00:01:00Z', sent: 0, status: '' },
    { time: '2026-12-04T00:02:00Z', sent: 60, status: 'ok' },
  ]);
  assert.deepEqual(gaps.status, ['ok', null, 'ok']);
  assert.deepEqual(statusChanges(gaps.status), []);
});

test('statusChanges marks transitions and skips unknown points', () => {
  assert.deepEqual(statusChanges(['ok', 'ok', null, 'down', 'down', 'ok']),
    [{ index: 3, from: 'ok', to: 'down' }, { index: 5, from: 'down', to: 'ok' }]);
  assert.deepEqual(statusChanges([]), []);
});

test('LiveSeries appends one point per new poll time and stays bounded', () => {
  const live = new LiveSeries(3);
  const s = (icmp, loss, status) => ({
    target: { status, probes: [{ kind: 'PROBE_KIND_GRPC', last_network_rtt_ms: 0.7 }] },
    probes: [
      { kind: 'PROBE_KIND_ICMP', last_ms: icmp, p50_ms: icmp, p99_ms: icmp * 3, loss_percent: loss },
      { kind: 'PROBE_KIND_GRPC', last_ms: 1, loss_percent: 0 },
    ],
  });
  assert.ok(live.push(10, s(0.5, 0, 'ok')));
  assert.equal(live.push(10, s(0.6, 0, 'ok')), false, 'same time: no second point');
  live.push(11, s(0.6, 5, 'degraded'));
  live.push(12, s(0.7, 0, 'ok'));
  live.push(13, s(0.8, 0, 'ok'));
  assert.deepEqual(live.cols.t, [11, 12, 13]);
  assert.deepEqual(live.cols.icmp, [0.6, 0.7, 0.8]);
  assert.deepEqual(live.cols.loss, [5, 0, 0]);
  assert.deepEqual(live.cols.net, [0.7, 0.7, 0.7]);
  assert.deepEqual(live.cols.status, ['degraded', 'ok', 'ok']);
  assert.ok(live.push(14, { probes: [] }));
  assert.equal(live.cols.icmp.at(-1), null, 'no ICMP stats: a gap, not 0');
});

test('SseParser: events split anywhere, CRLF, comments, multi-line data', () => {
  const p = new SseParser();
  const text = ': keep-alive\r\nevent: sample\r\ndata: {"a":\r\ndata: 1}\r\n\r\ndata: plain\n\n';
  const events = [];
  for (const ch of text) events.push(...p.feed(ch));  // one character at a time
  assert.deepEqual(events, [{ event: 'sample', data: '{"a":\n1}' }, { event: 'message', data: 'plain' }]);
  assert.deepEqual(new SseParser().feed('event: sample\n\n'), [], 'no data: no event');
  assert.deepEqual(new SseParser().feed('data:x\n\n'), [{ event: 'message', data: 'x' }]);
});

test('pushSample puts each Watch sample in its kind column; a failure is loss, not 0', () => {
  const live = new LiveSeries(10);
  const sample = (kind, sec, result, rtt, net) => ({
    sample: { target: 'a', kind, scheduled_time: `2026-12-04T00:00:0${sec}Z`, result, rtt_ms: rtt, network_rtt_ms: net },
  });
  assert.ok(pushSample(live, sample('PROBE_KIND_ICMP', 1, 'SAMPLE_RESULT_OK', 0.2)));
  assert.ok(pushSample(live, sample('PROBE_KIND_GRPC', 1, 'SAMPLE_RESULT_OK', 1.1, 0.9)));
  assert.ok(pushSample(live, sample('PROBE_KIND_GRPC', 2, 'SAMPLE_RESULT_TIMEOUT')));
  assert.equal(pushSample(live, sample('PROBE_KIND_ICMP', 0, 'SAMPLE_RESULT_OK', 0.3)), false, 'out of order');
  assert.equal(pushSample(live, { sample: { scheduled_time: 'garbage' } }), false);
  // A bare Sample (no WatchResponse wrapper) is accepted too.
  assert.ok(pushSample(live, sample('PROBE_KIND_ICMP', 3, 'SAMPLE_RESULT_OK', 0.25).sample));
  const base = Date.UTC(2026, 11, 4) / 1000;
  assert.deepEqual(live.cols.t, [base + 1, base + 1, base + 2, base + 3]);
  assert.deepEqual(live.cols.icmp, [0.2, null, null, 0.25]);
  assert.deepEqual(live.cols.grpc, [null, 1.1, null, null]);
  assert.deepEqual(live.cols.net, [null, 0.9, null, null]);
  assert.deepEqual(live.cols.loss, [0, 0, 100, 0]);
});
