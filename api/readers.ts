/**
 * Who reads a stream of messages (live SSE, stored-message stream): an API token reads everything;
 * a device's username and password (HTTP Basic), or a browser token (`browser:<id>` and the token),
 * read what their rules let them read over MQTT. A stream follows its reader's access while it is
 * open (issue 22 #6): re-checked on every auth change and every STREAM_RECHECK_MS, it ends when
 * the device is disabled or deleted, its password changes, or the token is revoked or expires.
 */
import type { FastifyRequest } from 'fastify';
import { compileSubject, type CompiledSubject } from '../auth/acl.js';
import { BROWSER_USERNAME_PREFIX, clientIdPrefixOfUsername, findBrowserToken } from '../auth/browser-tokens.js';
import { isAuthError } from '../auth/errors.js';
import { loadDevice } from '../auth/store.js';
import { bearerToken, principalFromToken } from './auth.js';
import { ApiErrors } from './errors.js';

/** Re-check access at least this often, for changes no notification announces (expiry, another database). */
export const STREAM_RECHECK_MS = 2000;

export type ReadScope = CompiledSubject | 'all';

export interface StreamReader {
  scope: ReadScope;
  /** Reads the credential again from the database: its scope now, or undefined when access is gone. */
  recheck(): Promise<ReadScope | undefined>;
}

/**
 * "user:password" of a Basic header. RFC 7617 user-ids hold no colon, but a browser token's
 * username is `browser:<id>`, so its id is taken back from the password side.
 */
function splitBasic(text: string): { username: string; password: string } {
  const colon = text.indexOf(':');
  const username = text.slice(0, colon);
  const password = text.slice(colon + 1);
  const browser = `${username}:` === BROWSER_USERNAME_PREFIX ? /^(\d+):([^]*)$/.exec(password) : null;
  return browser ? { username: BROWSER_USERNAME_PREFIX + browser[1], password: browser[2] } : { username, password };
}

export async function readerOf(req: FastifyRequest): Promise<StreamReader> {
  const { db, authenticator } = req.server.roost;
  const token = bearerToken(req);
  if (token) {
    if (!(await principalFromToken(db, token))) throw new ApiErrors.unauthorized();
    return { scope: 'all', recheck: async () => ((await principalFromToken(db, token)) ? 'all' : undefined) };
  }
  const basic = /^Basic\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
  if (!basic || !authenticator) throw new ApiErrors.unauthorized();
  const { username, password } = splitBasic(Buffer.from(basic, 'base64').toString('utf8'));
  // A browser token logs in only under its client id prefix (issue 22 #5).
  const clientId = `${clientIdPrefixOfUsername(username) ?? ''}sse:${username}`;
  const subject = (superuser: boolean, rules: Parameters<typeof compileSubject>[0]['rules']) => compileSubject({ username, clientId, superuser, rules });
  let result;
  try {
    result = await authenticator.login({ username, password, clientId, ip: req.ip });
  } catch (e) {
    if (isAuthError(e)) throw new ApiErrors.unauthorized();
    throw e;
  }
  const scope = subject(result.superuser, result.rules);
  if (result.kind !== 'device') return { scope, recheck: async () => scope };
  if (result.via === 'browser-token') {
    return {
      scope,
      recheck: async () => {
        const live = await findBrowserToken(db, password);
        return live && live.username === username ? subject(false, live.rules) : undefined;
      },
    };
  }
  const hashAtLogin = result.device.passwordHash;
  return {
    scope,
    recheck: async () => {
      const device = await loadDevice(db, username);
      if (!device || !device.enabled || device.passwordHash !== hashAtLogin) return undefined;
      return subject(device.superuser, device.rules);
    },
  };
}

/**
 * Re-checks `reader` on every auth change and every STREAM_RECHECK_MS while a stream is open:
 * `changed` gets the new scope (rules may have changed), `lost` is called once when access is gone.
 * A failed check (database unreachable) keeps the last scope and tries again. Returns the stop function.
 */
export function followAccess(req: FastifyRequest, reader: StreamReader, on: { changed(scope: ReadScope): void; lost(): void }): () => void {
  let stopped = false;
  let running: Promise<void> | undefined;
  let again = false;
  const check = (): void => {
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    running = reader
      .recheck()
      .then((scope) => {
        if (stopped) return;
        if (scope) return on.changed(scope);
        stop();
        on.lost();
      })
      .catch((err: unknown) => req.log.warn({ err: (err as Error).message }, 'stream access re-check failed; kept the last answer'))
      .finally(() => {
        running = undefined;
        if (again) {
          again = false;
          check();
        }
      });
  };
  const timer = setInterval(check, STREAM_RECHECK_MS);
  const unsubscribe = req.server.authChanges.subscribe(check);
  function stop(): void {
    stopped = true;
    clearInterval(timer);
    unsubscribe();
  }
  return stop;
}
