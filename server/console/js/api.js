// The one way the console talks to brokerd: the public /v1 API on the same
// origin, with the signed-in user's HTTP Basic credentials (kept for the tab's
// life in sessionStorage, never in localStorage or a cookie). Errors are thrown as
// ApiError with the gateway's own code and message, so pages can show them.

const AUTH_KEY = "brokerd.console.auth";

/** An answer other than 2xx, or no answer at all. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** The Authorization header to send, if the user signed in. */
export function authorization() {
  return sessionStorage.getItem(AUTH_KEY);
}

/** Remembers credentials for this tab. */
export function signIn(user, password) {
  const bytes = new TextEncoder().encode(`${user}:${password}`);
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  sessionStorage.setItem(AUTH_KEY, `Basic ${btoa(binary)}`);
}

/** Forgets them. */
export function signOut() {
  sessionStorage.removeItem(AUTH_KEY);
}

/** Path segment, escaped. */
export const seg = (s) => encodeURIComponent(String(s));

/** Query string from an object, skipping null and undefined values. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  const text = q.toString();
  return text ? `?${text}` : "";
}

/** Calls the API; resolves to the parsed JSON body (or null for an empty one). */
export async function api(method, path, body, { signal } = {}) {
  // X-Requested-With: a 401 without a challenge, so the browser shows our login
  // page, not its own password dialog.
  const headers = { Accept: "application/json", "X-Requested-With": "XMLHttpRequest" };
  const auth = authorization();
  if (auth) headers.Authorization = auth;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, { method, headers, signal, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiError(0, "unreachable", `brokerd did not answer ${method} ${path}: ${e.message}`);
  }
  const text = await response.text();
  let json = null;
  if (text) {
    try { json = JSON.parse(text); } catch { json = null; }
  }
  if (!response.ok) {
    const detail = json && json.error;
    const message = detail ? detail.message : `${response.status} ${response.statusText}`;
    const error = new ApiError(response.status, detail ? detail.code : "http_error", `${method} ${path}: ${message}`);
    if (response.status === 401) window.dispatchEvent(new CustomEvent("brokerd:unauthorized"));
    throw error;
  }
  return json;
}

export const get = (path, options) => api("GET", path, undefined, options);
export const post = (path, body, options) => api("POST", path, body ?? {}, options);
export const put = (path, body, options) => api("PUT", path, body ?? {}, options);
export const del = (path, options) => api("DELETE", path, undefined, options);
