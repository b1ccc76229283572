// The agent's JSON API (docs/API.md). Every URL is relative, so the
// dashboard also works behind a reverse proxy under a path prefix.
import { emit } from './bus.js';

const TOKEN_KEY = 'netmeter.token';

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function token() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) || '';
  } catch {
    return '';
  }
}

export function setToken(t) {
  try {
    if (t) sessionStorage.setItem(TOKEN_KEY, t);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    /* storage disabled: the token is lost on reload */
  }
}

export function headers(extra = {}) {
  const h = { Accept: 'application/json', ...extra };
  const t = token();
  if (t) h.Authorization = `Bearer ${t}`;
  return h;
}

/** url builds api/v1/<path>?<params>, leaving out empty parameters. */
export function url(path, params = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v != null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return `api/v1/${path}${s ? `?${s}` : ''}`;
}

/** get fetches one endpoint; errors are ApiError with the server's message. */
export async function get(path, params, { signal } = {}) {
  let res;
  try {
    res = await fetch(url(path, params), { headers: headers(), signal, cache: 'no-store' });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'the agent is not reachable');
  }
  if (!res.ok) {
    let msg = `${res.status} ${res.statusText}`;
    try {
      const j = await res.json();
      if (j && j.error) msg = j.error;
    } catch {
      /* not JSON */
    }
    if (res.status === 401) emit('auth-required');
    throw new ApiError(res.status, msg);
  }
  return res.json();
}

/** unavailable says whether an error means the feature is off (no eBPF engine, no history store). */
export const unavailable = (e) => e instanceof ApiError && (e.status === 503 || e.status === 404);
