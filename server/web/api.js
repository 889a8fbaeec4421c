// The /v1 API from the page: the bearer token (asked once, kept in
// sessionStorage) goes in the Authorization header, never in a URL.
const TOKEN_KEY = 'latency-token';

export class AuthNeeded extends Error {}

export function token() { return sessionStorage.getItem(TOKEN_KEY); }
export function setToken(t) { sessionStorage.setItem(TOKEN_KEY, t.trim()); }
export function clearToken() { sessionStorage.removeItem(TOKEN_KEY); }

export async function getJson(path) {
  const headers = { Accept: 'application/json' };
  const t = token();
  if (t) headers.Authorization = `Bearer ${t}`;
  const res = await fetch(path, { headers, cache: 'no-store' });
  if (res.status === 401) throw new AuthNeeded(t ? 'token rejected' : 'token required');
  const body = await res.json().catch(() => ({}));
  if (!res.ok) {
    const err = new Error(body.message || `HTTP ${res.status}`);
    err.status = res.status;
    throw err;
  }
  return body;
}

/** Every target, following ListTargets pages. */
export async function listAllTargets() {
  const out = [];
  let pageToken = '';
  do {
    const q = new URLSearchParams({ page_size: '1000' });
    if (pageToken) q.set('page_token', pageToken);
    const page = await getJson(`/v1/targets?${q}`);
    out.push(...(page.targets || []));
    pageToken = page.next_page_token || '';
  } while (pageToken);
  return out;
}

export function targetStats(name, window = '5m') {
  return getJson(`/v1/targets/${encodeURIComponent(name)}/stats?window=${window}`);
}

export function history(name, kind, startS, endS, stepS) {
  const q = new URLSearchParams({
    kind,
    start: new Date(startS * 1000).toISOString(),
    end: new Date(endS * 1000).toISOString(),
    step: `${stepS}s`,
  });
  return getJson(`/v1/targets/${encodeURIComponent(name)}/history?${q}`);
}

/**
 * Server-sent events from GET /v1/watch?target=NAME: one `sample` event per
 * probe, its data the Watch stream's WatchResponse in JSON. Read with fetch
 * (EventSource cannot send an Authorization header). Resolves when the
 * stream ends; rejects with .status set when the server refuses it (404: no
 * such route on this server).
 */
export async function watch(name, onMessage, signal, Parser) {
  const headers = { Accept: 'text/event-stream' };
  const t = token();
  if (t) headers.Authorization = `Bearer ${t}`;
  const res = await fetch(`/v1/watch?target=${encodeURIComponent(name)}`, { headers, signal, cache: 'no-store' });
  if (res.status === 401) throw new AuthNeeded(t ? 'token rejected' : 'token required');
  if (!res.ok || !(res.headers.get('content-type') || '').startsWith('text/event-stream')) {
    const err = new Error(`watch: HTTP ${res.status}`);
    err.status = res.ok ? 415 : res.status;
    throw err;
  }
  const parser = new Parser();
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    for (const ev of parser.feed(value)) {
      if (ev.event === 'sample' || ev.event === 'message') onMessage(JSON.parse(ev.data));
    }
  }
}
