// The console's JSON API client: the session cookie goes with every call, and the session's CSRF token
// with every state-changing one.
let csrf = null;

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

export function setCsrf(token) { csrf = token; }

// A GET started before the session is known (the first page's data, in parallel with the session check);
// taken once by the page that wants it, or dropped on a log-in.
const early = new Map();
export function prefetch(path) {
  early.set(path, fetch('/console/api/' + path, { credentials: 'same-origin', headers: { Accept: 'application/json' } })
    .then((response) => (response.ok ? response.json() : null), () => null));
}
export function takePrefetched(path) {
  const promise = early.get(path);
  early.delete(path);
  return promise || Promise.resolve(null);
}

export async function api(path, { method = 'GET', body, query } = {}) {
  const url = new URL('/console/api/' + path, location.origin);
  for (const [key, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== '') url.searchParams.set(key, value);
  }
  const headers = { Accept: 'application/json' };
  if (method !== 'GET') {
    headers['Content-Type'] = 'application/json';
    if (csrf) headers['X-CSRF-Token'] = csrf;
  }
  const response = await fetch(url, {
    method, headers, credentials: 'same-origin', body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  try { data = await response.json(); } catch { data = null; }
  if (!response.ok) {
    if (response.status === 401 && path !== 'login') window.dispatchEvent(new CustomEvent('console:logged-out'));
    throw new ApiError(response.status, data);
  }
  return data;
}
