// The dashboard against a server probing a far agent on the namespace
// testbed (run by tests/e2e/dashboard_testbed_test.sh, inside the server's
// namespace): the page must show the injected delay exactly as the /v1 API
// reports it, in the overview and over one target's hour of history, and
// the screenshots show a network that is not loopback.
//
//   TESTBED_URL=http://127.0.0.1:PORT TESTBED_TARGET=agent TESTBED_DELAY_MS=20 \
//   node --test dashboard_testbed.mjs
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { formatMs } from '../../server/web/shape.js';

const require = createRequire(path.join(process.env.LATENCY_TOOLS_DIR || '/opt/latency-tools', 'node_modules', 'x'));
const { chromium } = require('playwright-core');

const URL = process.env.TESTBED_URL;
const TARGET = process.env.TESTBED_TARGET || 'agent';
const DELAY_MS = Number(process.env.TESTBED_DELAY_MS);
const SHOTS = process.env.SCREENSHOT_DIR || path.resolve('build/artifacts/screenshots');
// Above the injected delay: the veth, the kernel and the prober add well
// under a millisecond; a loaded 2-core machine a few more.
const SLACK_MS = 5;
let browser;

after(async () => { if (browser) await browser.close(); });

async function api(p) {
  const res = await fetch(`${URL}${p}`);
  assert.equal(res.status, 200, `${p}: ${res.status}`);
  return res.json();
}

function nearDelay(ms, what) {
  assert.ok(ms >= DELAY_MS && ms < DELAY_MS + SLACK_MS, `${what}: ${ms} ms at ${DELAY_MS} ms injected`);
}

test('overview and one target over 1h show the injected delay as /v1 reports it', async () => {
  assert.ok(URL && DELAY_MS > 0, 'TESTBED_URL and TESTBED_DELAY_MS must be set');
  mkdirSync(SHOTS, { recursive: true });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = await browser.newPage({ viewport: { width: 1400, height: 720 } });
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  const seen = new Map();
  page.on('response', async (r) => {
    if (/\/v1\/targets\/[^/]+\/stats/.test(r.url())) seen.set('stats', await r.json().catch(() => null));
  });

  await page.goto(`${URL}/`);
  await page.waitForSelector('body[data-overview-ready="1"]');
  await page.waitForFunction(() => document.querySelectorAll('td[data-col="grpcP50"]:not([data-value=""])').length === 1);
  const cells = await page.$$eval(`#targets tbody tr[data-target="${TARGET}"] td[data-col]`,
    (tds) => Object.fromEntries(tds.map((td) => [td.dataset.col, { text: td.textContent, value: Number(td.dataset.value) }])));
  const stats = seen.get('stats');
  for (const [col, kind] of [['icmpP50', 'PROBE_KIND_ICMP'], ['grpcP50', 'PROBE_KIND_GRPC']]) {
    const probe = stats.probes.find((p) => p.kind === kind);
    // Exactly what the page fetched, formatted; and the delay it shows.
    assert.equal(cells[col].text, formatMs(probe.p50_ms), col);
    nearDelay(cells[col].value, `overview ${col}`);
    // What the API says now agrees (the median barely moves in a second).
    const now = (await api(`/v1/targets/${TARGET}/stats?window=5m`)).probes.find((p) => p.kind === kind);
    nearDelay(now.p50_ms, `API ${kind} p50`);
    assert.ok(Math.abs(cells[col].value - now.p50_ms) < 1, `${col}: page ${cells[col].value} vs API ${now.p50_ms}`);
  }
  await page.screenshot({ path: path.join(SHOTS, 'overview-testbed.png') });

  await page.goto(`${URL}/#/target/${TARGET}`);
  await page.waitForFunction(() => /^(history|live|watch):/.test(document.body.dataset.chartReady || ''));
  const ready = await page.evaluate(() => document.body.dataset.chartReady);
  assert.match(ready, /^history:\d+$/, 'the stored minutes are charted');
  const end = new Date();
  const q = new URLSearchParams({ kind: 'icmp', start: new Date(end - 3600e3).toISOString(), end: end.toISOString(), step: '60s' });
  const served = (await api(`/v1/targets/${TARGET}/history?${q}`)).points.filter((p) => p.sent > 0);
  assert.ok(served.length >= 1, 'a stored minute');
  const plotted = await page.evaluate(() => Number(document.body.dataset.chartLastP50));
  assert.equal(plotted, served[served.length - 1].p50_ms);
  nearDelay(plotted, 'charted ICMP median of the newest stored minute');
  const card = Number(await page.textContent('.card[data-kind="ICMP"] [data-field="last"]'));
  nearDelay(card, 'ICMP card, last RTT');
  // The live tail moves the chart every probe.
  const points = Number(ready.split(':')[1]);
  await page.waitForFunction((n) => Number(document.body.dataset.chartReady.split(':')[1]) >= n, points + 4, { timeout: 25000 });
  await page.screenshot({ path: path.join(SHOTS, 'target-1h-testbed.png') });
  assert.deepEqual(errors, []);
  console.log(`testbed at ${DELAY_MS} ms: overview ICMP p50 ${cells.icmpP50.text}, gRPC p50 ${cells.grpcP50.text}; chart ${ready}, newest minute p50 ${plotted} ms`);
});
