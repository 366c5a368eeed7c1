// The REST API and the session. The API token the person typed is kept in memory only (to ask
// for a new JWT before the current one expires); the JWT is in sessionStorage so a reload of
// the tab keeps the session until it expires. Never localStorage: nothing outlives the tab.

const KEY = "agenthub.session";
const REFRESH_MARGIN_MS = 60_000;

export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code || "error";
    this.details = error.details || null;
  }
}

let apiToken = null;
let session = JSON.parse(sessionStorage.getItem(KEY) || "null"); // {token, expiresAt, agent}
let refreshTimer = null;
const listeners = new Set();

export const me = () => (session ? session.agent : null);
export const jwt = () => (session ? session.token : null);
export const isAdmin = () => Boolean(session && session.agent.role === "admin");
export const onSession = (fn) => listeners.add(fn);

function store(next) {
  session = next;
  if (next) sessionStorage.setItem(KEY, JSON.stringify(next));
  else sessionStorage.removeItem(KEY);
  schedule();
  listeners.forEach((fn) => fn(session));
}

function schedule() {
  clearTimeout(refreshTimer);
  if (!session) return;
  const left = Date.parse(session.expiresAt) - Date.now();
  if (left <= 0) return store(null);
  // Without the API token (the tab was reloaded) there is no way to refresh: the session
  // simply ends at its expiry and the sign-in form comes back.
  // A minute before expiry; halfway for a short-lived session (JWT_TTL_SECONDS under 2 min).
  const early = left > 2 * REFRESH_MARGIN_MS ? left - REFRESH_MARGIN_MS : left / 2;
  const wait = apiToken ? Math.max(early, 1000) : left;
  refreshTimer = setTimeout(() => (apiToken ? refresh().catch(() => store(null)) : store(null)), wait);
}

async function exchange(token) {
  const res = await fetch("/api/v1/sessions", {
    method: "POST",
    headers: { Authorization: `Bearer ${token}` },
  });
  const body = await res.json().catch(() => null);
  if (!res.ok) throw new ApiError(res.status, body);
  return { token: body.token, expiresAt: body.expiresAt, agent: body.agent };
}

export async function signIn(token) {
  const next = await exchange(token.trim());
  apiToken = token.trim();
  store(next);
}

export async function refresh() {
  const next = await exchange(apiToken);
  store(next);
  return next;
}

export function signOut() {
  apiToken = null;
  store(null);
}

export async function call(method, path, body) {
  if (!session) throw new ApiError(401, { error: { message: "signed out" } });
  const headers = { Authorization: `Bearer ${session.token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(`/api/v1${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status === 204) return null;
  const data = await res.json().catch(() => null);
  if (res.status === 401) store(null); // revoked, disabled or expired: back to sign-in
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

export const get = (path) => call("GET", path);
export const post = (path, body = {}) => call("POST", path, body);

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : "";
}

schedule();
