/** The Roost HTTP API with the dashboard's bearer token; errors carry the API's message. */
export type Role = 'admin' | 'viewer';

export interface Session {
  token: string;
  role: Role;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

let session: Session | undefined;
let onUnauthorized = () => {};

export function setSession(s: Session | undefined, unauthorized?: () => void): void {
  session = s;
  if (unauthorized) onUnauthorized = unauthorized;
}

export function currentSession(): Session | undefined {
  return session;
}

export const isAdmin = () => session?.role === 'admin';

export async function call<T = any>(method: string, url: string, body?: unknown, token = session?.token): Promise<T> {
  const res = await fetch(url, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  const json = text ? JSON.parse(text) : undefined;
  if (!res.ok) {
    if (res.status === 401 && token === session?.token) onUnauthorized();
    throw new ApiError(res.status, json?.code ?? 'ERROR', json?.message ?? res.statusText);
  }
  return json as T;
}

/** Which role a token has: admins may list API tokens, viewers are refused with 403. */
export async function roleOf(token: string): Promise<Role> {
  try {
    await call('GET', '/api/tokens?limit=1', undefined, token);
    return 'admin';
  } catch (e) {
    if (e instanceof ApiError && e.status === 403) return 'viewer';
    throw e;
  }
}

export const qs = (params: Record<string, string | number | undefined | null>) =>
  Object.entries(params)
    .filter(([, v]) => v !== undefined && v !== null && v !== '')
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`)
    .join('&');
