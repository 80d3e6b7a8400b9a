// The HTTP API client and the session.
//
// The access token lives only in the `accessToken` variable of this module: it is never written
// to any browser storage or cookie, and it is gone when the page is closed or reloaded. The
// refresh token is an HttpOnly cookie (Path=/api/v1/auth) that this code cannot read; on load
// `restore()` exchanges it for a new access token, and a timer does so again shortly before the
// access token expires.

/** An error answer of the API (`{"error": {"code", "message"}}`) or a network failure. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

let accessToken = null;
let refreshTimer = null;
let refreshInFlight = null;
const listeners = new Set();

/** Calls `listener(signedIn, reason)` whenever the session starts or ends. */
export function onSessionChange(listener) {
  listeners.add(listener);
}

export function isSignedIn() {
  return accessToken !== null;
}

function setSession(token, expiresIn) {
  const wasSignedIn = accessToken !== null;
  accessToken = token;
  scheduleRefresh(expiresIn);
  if (!wasSignedIn) listeners.forEach((listener) => listener(true, null));
}

/** Forgets the access token (the cookie is the server's business). */
export function endSession(reason = null) {
  const wasSignedIn = accessToken !== null;
  accessToken = null;
  if (refreshTimer !== null) clearTimeout(refreshTimer);
  refreshTimer = null;
  if (wasSignedIn) listeners.forEach((listener) => listener(false, reason));
}

// Refresh a minute before expiry (or at 80 % of a short lifetime), never in under two seconds.
function scheduleRefresh(expiresIn) {
  if (refreshTimer !== null) clearTimeout(refreshTimer);
  const seconds = Number(expiresIn) > 0 ? Number(expiresIn) : 900;
  const lead = Math.min(60, seconds * 0.2);
  const delayMs = Math.max(2, seconds - lead) * 1000;
  refreshTimer = setTimeout(() => {
    refreshTimer = null;
    refresh().catch((error) => {
      // Offline for a moment: try again soon (the token may still be valid). Otherwise the
      // sign-in is over (revoked, expired, or the account is gone).
      if (error instanceof ApiError && error.status === 0) scheduleRefresh(lead + 15);
      else endSession('Your session has ended. Please sign in again.');
    });
  }, delayMs);
}

async function parseError(response) {
  let code = 'http_' + response.status;
  let message = response.statusText || 'Request failed';
  try {
    const body = await response.json();
    if (body && body.error) {
      code = body.error.code || code;
      message = body.error.message || message;
    }
  } catch {
    // Not JSON (e.g. a proxy's error page): keep the status line.
  }
  if (response.status === 429) {
    const retry = response.headers.get('retry-after');
    if (retry) message += ` (try again in ${retry} s)`;
  }
  return new ApiError(response.status, code, message);
}

async function send(method, path, body, withToken) {
  const headers = { accept: 'application/json' };
  if (withToken && accessToken !== null) headers.authorization = 'Bearer ' + accessToken;
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
  if (body !== undefined) {
    headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  try {
    return await fetch(path, init);
  } catch {
    throw new ApiError(0, 'network_error', 'The server could not be reached. Check your connection and try again.');
  }
}

// One refresh at a time, also across tabs of this site (Web Locks), so two tabs never present
// the same rotating cookie twice (which the server treats as token theft).
async function refreshOnce() {
  const run = async () => {
    const response = await send('POST', '/api/v1/auth/refresh', undefined, false);
    if (!response.ok) throw await parseError(response);
    const body = await response.json();
    setSession(body.access_token, body.expires_in);
    return true;
  };
  if (navigator.locks && navigator.locks.request) {
    return navigator.locks.request('interviewcraft-refresh', run);
  }
  return run();
}

/** Exchanges the refresh cookie for a new access token. Rejects with an ApiError. */
export function refresh() {
  if (refreshInFlight === null) {
    refreshInFlight = refreshOnce().finally(() => {
      refreshInFlight = null;
    });
  }
  return refreshInFlight;
}

/** On page load: resumes the session of the refresh cookie, if there is one. */
export async function restore() {
  try {
    await refresh();
    return true;
  } catch (error) {
    if (error instanceof ApiError && error.status === 0) throw error;
    return false;
  }
}

/**
 * Calls the API and returns the parsed JSON body (or null for an empty one). With a session, an
 * expired access token is refreshed once and the call repeated.
 */
export async function request(method, path, body, { raw = false } = {}) {
  let response = await send(method, path, body, true);
  if (response.status === 401 && accessToken !== null) {
    try {
      await refresh();
    } catch {
      endSession('Your session has ended. Please sign in again.');
      throw await parseError(response);
    }
    response = await send(method, path, body, true);
  }
  if (!response.ok) {
    const error = await parseError(response);
    if (response.status === 401 && accessToken !== null) {
      endSession('Your session has ended. Please sign in again.');
    }
    throw error;
  }
  if (raw) return response;
  if (response.status === 204) return null;
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

export async function register(email, password, ageConfirmed, displayName) {
  const body = { email, password, age_confirmed: ageConfirmed };
  if (displayName) body.display_name = displayName;
  const response = await send('POST', '/api/v1/auth/register', body, false);
  if (!response.ok) throw await parseError(response);
  return response.json();
}

export async function login(email, password) {
  const response = await send('POST', '/api/v1/auth/login', { email, password }, false);
  if (!response.ok) throw await parseError(response);
  const body = await response.json();
  setSession(body.access_token, body.expires_in);
}

/** Revokes the session on the server (clearing the cookie) and forgets the token. */
export async function logout() {
  try {
    await send('POST', '/api/v1/auth/logout', undefined, false);
  } catch {
    // Offline: the token is forgotten anyway; the cookie expires on its own.
  }
  endSession(null);
}
