// The console's calls to civicmap's own API: same origin, the session cookie sent by the browser
// (HttpOnly: this code never sees it), and on every write the session's CSRF token, kept in
// memory only (never in localStorage, never in a URL; GET /api/v1/session gives it back after a
// reload).

export interface Me {
  token_id: number;
  name: string;
  role: 'admin' | 'moderator' | 'planner';
  session: boolean;
  csrf_token: string | null;
  expires_at: string | null;
  idle_timeout_seconds: number;
}

export interface Problem {
  status: number;
  detail: string;
  errors?: { field: string; detail: string }[];
}

export class ApiError extends Error {
  constructor(public problem: Problem) {
    super(problem.detail);
  }
}

let csrf: string | null = null;
/** Called when the server says the session is over (401): the console goes back to sign-in. */
let onSignedOut: () => void = () => {};

export function setCsrf(token: string | null): void {
  csrf = token;
}

export function whenSignedOut(f: () => void): void {
  onSignedOut = f;
}

/**
 * `asStaff`: on a read of a public route that answers staff more (the aggregates' breakdown by a
 * non-public field), send the CSRF token too, which is how the server tells the console's session
 * from a citizen's browser (the cookie alone is not enough there: see auth::optional_staff).
 */
export async function call<T>(method: string, path: string, body?: unknown, contentType = 'application/json', asStaff = false): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  if ((method !== 'GET' || asStaff) && csrf) headers['X-CSRF-Token'] = csrf;
  let payload: BodyInit | undefined;
  if (body !== undefined) {
    headers['Content-Type'] = contentType;
    payload = typeof body === 'string' ? body : JSON.stringify(body);
  }
  const res = await fetch(path, { method, headers, body: payload, credentials: 'same-origin', cache: 'no-store' });
  const text = await res.text();
  let data: unknown = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = text;
  }
  if (!res.ok) {
    const problem: Problem =
      data && typeof data === 'object' && 'detail' in data ? (data as Problem) : { status: res.status, detail: `HTTP ${res.status}` };
    if (res.status === 401 && path !== '/api/v1/session') onSignedOut();
    throw new ApiError(problem);
  }
  return data as T;
}

export async function signIn(token: string): Promise<Me> {
  const me = await call<Me>('POST', '/api/v1/session', { token });
  setCsrf(me.csrf_token);
  return me;
}

export async function whoAmI(): Promise<Me | null> {
  try {
    const me = await call<Me>('GET', '/api/v1/session');
    setCsrf(me.csrf_token);
    return me;
  } catch {
    return null;
  }
}

export async function signOut(): Promise<void> {
  try {
    await call('DELETE', '/api/v1/session');
  } finally {
    setCsrf(null);
  }
}
