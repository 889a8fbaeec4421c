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
