/**
 * The broker's authentication and authorization steps (broker/core.ts), on top of auth/ (which knows
 * nothing of the broker).
 *
 *   connect     CONNECT → auth/login.ts; CONNACK 4 for a bad username or password (the same for
 *               both), 5 for a disabled device, a client id off its pattern, anonymous refused;
 *               3 when too many password checks wait; 2 for a browser token off its client id prefix.
 *   takeover    CONNACK 2 for a client id another username holds (client-id-holders.ts).
 *   mayPublish  sync, per PUBLISH: write access on the exact topic (rules cached at CONNECT).
 *   subscribe   per filter: a refused filter gets 0x80, the others are still granted.
 *   mayRead     per delivered message: read access on its topic (a partial deny holds).
 *
 * Live changes: every Roost process LISTENs on AUTH_CHANNEL; a change reloads the rules of the
 * affected connected clients, and a disabled or deleted device is disconnected.
 */
import type { Connection } from './core.js';
import type { BrokerAuth } from './broker.js';
import { DISCONNECT_REASON, closeWithReason, keepsSession, remoteAddressOf, tlsSocketOf, whenClosed } from './aedes/connection.js';
import type { Config } from '../lib/config.js';
import type { Db } from '../lib/db/index.js';
import type { Logger } from '../lib/log.js';
import { clientIdAllowed, compileSubject, decidePublish, decideRead, decideSubscribe, type CompiledSubject } from '../auth/acl.js';
import { certificateUsername } from '../auth/certificates.js';
import { AuthError } from '../auth/errors.js';
import { Authenticator, type LoginResult } from '../auth/login.js';
import { AUTH_CHANNEL, loadDeviceById, parseAuthChange, type AuthChange, type DeviceRecord } from '../auth/store.js';
import { BROWSER_USERNAME_PREFIX, browserTokenIsLive } from '../auth/browser-tokens.js';
import { ClientIdHolders, type Username } from './client-id-holders.js';

export interface AuthHooks extends BrokerAuth {
  /** The login machinery (caches, throttle, hasher), for the API's ACL check and the benchmarks. */
  readonly authenticator: Authenticator;
  close(): Promise<void>;
}

export interface AuthHooksOptions {
  db: Db;
  config: Config;
  log: Logger;
  /** Records a successful login (last_seen) in a batch; absent: one UPDATE per login. */
  recordLogin?: (device: { username: string }) => void;
}

/** The longest delay setTimeout takes (about 24.8 days); a later time is reached in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Runs `fn` at `at` (at once if that has passed); cancel() stops it. */
function endAt(at: Date, fn: () => void): { cancel(): void } {
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    const wait = at.getTime() - Date.now();
    if (wait <= 0) return fn();
    timer = setTimeout(arm, Math.min(wait, MAX_TIMER_MS));
    timer.unref();
  };
  arm();
  return { cancel: () => clearTimeout(timer) };
}

/** One authenticated connection. */
interface Session {
  client: Connection;
  device?: { id: string; username: string };
  roleIds: string[];
  superuser: boolean;
  subject: CompiledSubject;
  /** Set when the device was disabled or deleted: nothing more is allowed while it closes. */
  revoked: boolean;
}

/** How long to gather change notifications before acting on them (a bulk import sends many). */
const CHANGE_BATCH_MS = 20;

const refusal = (err: AuthError) => ({ refuse: (err.returnCode ?? 5) as 2 | 3 | 4 | 5, reason: err.message, reasonCode: err.reasonCode });

export async function createAuthHooks(opts: AuthHooksOptions): Promise<AuthHooks> {
  const { db, config, log } = opts;
  const authenticator = new Authenticator({
    db,
    bcryptCost: config.ROOST_BCRYPT_COST,
    bcryptConcurrency: config.ROOST_BCRYPT_CONCURRENCY,
    bcryptQueue: config.ROOST_BCRYPT_QUEUE,
    allowAnonymous: config.ROOST_ALLOW_ANONYMOUS,
    anonymousRole: config.ROOST_ANONYMOUS_ROLE,
    loopbackOnly: config.loopbackOnly,
    certificatePasswordRequired: config.ROOST_TLS_CERT_PASSWORD_REQUIRED,
    failuresBeforeDelay: config.ROOST_AUTH_FAILURES_BEFORE_DELAY,
    failuresBeforeBlock: config.ROOST_AUTH_FAILURES_BEFORE_BLOCK,
    cooldownMs: config.ROOST_AUTH_COOLDOWN_MS,
    pendingPerIp: config.ROOST_AUTH_PENDING_PER_IP,
    onBackgroundError: (err, what) => log.error({ err }, `${what} failed`),
    recordLogin: opts.recordLogin,
  });

  const sessions = new WeakMap<Connection, Session>();
  /** Live sessions by device id; anonymous ones under ANONYMOUS. */
  const live = new Map<string, Set<Session>>();
  const ANONYMOUS = '';
  // Live-change state: devices whose sessions need their rules reloaded, gathered for a moment.
  const changedDevices = new Set<string>();
  let anonymousChanged = false;
  let timer: NodeJS.Timeout | undefined;
  let applying: Promise<void> = Promise.resolve();
  let closed = false;
  let changeSeq = 0;

  function register(client: Connection, result: LoginResult): Session {
    const session: Session =
      result.kind === 'device'
        ? {
            client,
            device: { id: result.device.id, username: result.username },
            roleIds: result.device.roleIds,
            superuser: result.superuser,
            subject: compileSubject({ username: result.username, clientId: client.id, superuser: result.superuser, rules: result.rules }),
            revoked: false,
          }
        : {
            client,
            roleIds: [],
            superuser: false,
            subject: compileSubject({ clientId: client.id, superuser: false, rules: result.rules }),
            revoked: false,
          };
    sessions.set(client, session);
    const key = session.device?.id ?? ANONYMOUS;
    let set = live.get(key);
    if (!set) live.set(key, (set = new Set()));
    set.add(session);
    const expiry = result.kind === 'device' && result.expiresAt ? endAt(result.expiresAt, () => revoke(session, 'browser token expired')) : undefined;
    whenClosed(client, () => {
      expiry?.cancel();
      set.delete(session);
      if (set.size === 0 && live.get(key) === set) live.delete(key);
    });
    return session;
  }

  const connect: AuthHooks['connect'] = (client, { username, password }, next) => {
    const ip = remoteAddressOf(client);
    const tlsSocket = tlsSocketOf(client);
    const certificateName =
      tlsSocket?.authorized === true
        ? certificateUsername(tlsSocket.getPeerCertificate(), config.ROOST_TLS_CERT_USERNAME_FIELD)
        : undefined;
    const shownName = username || certificateName;
    const seqAtStart = changeSeq;
    authenticator
      .login({ username, password, clientId: client.id, ip, certificateName, isGone: () => client.closed })
      .then((result) => {
        if (client.closed) return next({ refuse: 5, reason: 'connection closed during login' });
        const session = register(client, result);
        // A change announced while this login read the device may not be in what it read.
        if (changeSeq !== seqAtStart) {
          if (session.device) changedDevices.add(session.device.id);
          else anonymousChanged = true;
          scheduleApply();
        }
        log.debug({ ip, username: shownName, clientId: client.id, via: result.kind === 'device' ? result.via : 'anonymous' }, 'client authenticated');
        next();
      })
      .catch((err: unknown) => {
        if (err instanceof AuthError) {
          log.warn({ ip, username: shownName, clientId: client.id, reason: err.code, detail: err.detail }, 'connection refused');
          return next(refusal(err));
        }
        log.error({ ip, username: shownName, clientId: client.id, err }, 'authentication failed: server error');
        next({ refuse: 3, reason: 'Server unavailable' });
      });
  };

  // --- client ids: who may take one over (issue 22 #5) ---------------------------------------

  const holders = new ClientIdHolders({
    db,
    log,
    exists: async (username) =>
      username.startsWith(BROWSER_USERNAME_PREFIX) ? browserTokenIsLive(db, username) : (await authenticator.devices.get(username)) !== null,
  });
  /** What takeover found stored for an accepted connection's client id, so accepted() writes only a change. */
  const storedOwner = new WeakMap<Connection, Username | undefined>();
  const usernameOf = (client: Connection): Username => sessions.get(client)?.device?.username ?? null;

  const takeover: AuthHooks['takeover'] = (client, holder, next) => {
    const session = sessions.get(client);
    if (config.ROOST_CLIENT_ID_TAKEOVER === 'any' || !session) return next();
    const username = usernameOf(client);
    const online = holder && holder !== client && !holder.closed ? { username: usernameOf(holder), clean: !keepsSession(holder) } : undefined;
    holders.decide(client.id, username, online).then((verdict) => {
      if (verdict.allowed) {
        storedOwner.set(client, verdict.stored);
        return next();
      }
      if (session.superuser) {
        log.info({ clientId: client.id, username, holder: verdict.holder }, 'superuser takes over a client id another username holds');
        storedOwner.set(client, verdict.holder);
        return next();
      }
      log.warn({ ip: remoteAddressOf(client), clientId: client.id, username, holder: verdict.holder, reason: 'ROOST_ERR_CLIENT_ID_TAKEN' }, 'connection refused');
      next(refusal(new AuthError('ROOST_ERR_CLIENT_ID_TAKEN')));
    }, (err: Error) => next({ refuse: 3, reason: err.message }));
  };

  const accepted: AuthHooks['accepted'] = (client) => {
    if (config.ROOST_CLIENT_ID_TAKEOVER === 'any' || !sessions.has(client)) return;
    holders.accepted(client.id, usernameOf(client), !keepsSession(client), storedOwner.get(client));
  };

  const mayPublish: AuthHooks['mayPublish'] = (client, message) => {
    const session = sessions.get(client);
    if (!session || session.revoked) return false;
    return decidePublish(session.subject, message.topic).allowed;
  };

  const subscribe: AuthHooks['subscribe'] = (client, sub, next) => {
    const session = sessions.get(client);
    const decision = session && !session.revoked ? decideSubscribe(session.subject, sub.share?.filter ?? sub.topic) : undefined;
    if (!decision?.allowed) {
      log.info({ clientId: client.id, username: session?.device?.username, topic: sub.topic, reason: decision?.reason ?? 'no session' }, 'subscription refused');
      // MQTT-3.9.3: this filter alone gets 0x80.
      return next('refuse');
    }
    if (decision.partialDeny) {
      log.debug({ clientId: client.id, topic: sub.topic, deny: decision.partialDeny.pattern }, 'subscription partly denied: checked per message');
    }
    next();
  };

  const mayRead: AuthHooks['mayRead'] = (client, message) => {
    const session = sessions.get(client);
    if (!session || session.revoked) return false;
    return decideRead(session.subject, message.topic).allowed;
  };

  const deviceOf = (client: Connection) => sessions.get(client)?.device;

  const ownerMayPublish: AuthHooks['ownerMayPublish'] = async (owner, message) => {
    if (owner.username === null) {
      if (!config.ROOST_ALLOW_ANONYMOUS && !config.loopbackOnly) return false;
      const role = await authenticator.anonymousRole();
      return decidePublish(compileSubject({ clientId: owner.clientId, superuser: false, rules: role?.rules ?? [] }), message.topic).allowed;
    }
    const device = await authenticator.devices.get(owner.username);
    if (!device?.enabled || !clientIdAllowed(device.clientIdPattern, owner.clientId, device.username)) return false;
    const subject = compileSubject({ username: device.username, clientId: owner.clientId, superuser: device.superuser, rules: device.rules });
    return decidePublish(subject, message.topic).allowed;
  };

  // --- live changes -------------------------------------------------------------------------

  function scheduleApply(delayMs = CHANGE_BATCH_MS): void {
    if (timer || closed || (changedDevices.size === 0 && !anonymousChanged)) return;
    timer = setTimeout(() => {
      timer = undefined;
      applying = applying.then(applyChanges);
    }, delayMs);
  }

  function onChange(change: AuthChange): void {
    changeSeq++;
    if (change.kind === 'device') {
      const username = change.username ?? authenticator.devices.usernameOf(change.id);
      authenticator.devices.invalidateDevice(change.id);
      if (username !== undefined) {
        authenticator.devices.invalidateUsername(username);
        authenticator.credentials.forget(username);
      }
      if (live.has(change.id)) changedDevices.add(change.id);
    } else {
      authenticator.devices.invalidateRole(change.id);
      authenticator.forgetAnonymousRole();
      if (live.has(ANONYMOUS)) anonymousChanged = true;
      for (const [deviceId, set] of live) {
        for (const s of set) if (s.roleIds.includes(change.id)) changedDevices.add(deviceId);
      }
    }
    scheduleApply();
  }

  function revoke(session: Session, reason: string): void {
    session.revoked = true;
    log.info({ clientId: session.client.id, username: session.device?.username, reason }, 'disconnecting client: access revoked');
    closeWithReason(session.client, DISCONNECT_REASON.administrativeAction);
  }

  /** Never rejects: what could not be read (database down) is tried again a second later. */
  async function applyChanges(): Promise<void> {
    const deviceIds = [...changedDevices];
    changedDevices.clear();
    for (const id of deviceIds) {
      const set = live.get(id);
      if (!set || set.size === 0) continue;
      let device: DeviceRecord | undefined;
      try {
        device = await loadDeviceById(db, id);
      } catch (err) {
        log.error({ err, deviceId: id }, 'cannot reload a changed device; retrying');
        changedDevices.add(id);
        continue;
      }
      for (const session of [...set]) {
        if (!device) revoke(session, 'device deleted');
        else if (!device.enabled) revoke(session, 'device disabled');
        else if (device.username !== session.device?.username) revoke(session, 'device renamed');
        else if (!clientIdAllowed(device.clientIdPattern, session.client.id, device.username)) revoke(session, 'client id no longer allowed');
        else {
          session.roleIds = device.roleIds;
          session.superuser = device.superuser;
          session.subject = compileSubject({ username: device.username, clientId: session.client.id, superuser: device.superuser, rules: device.rules });
        }
      }
    }
    if (anonymousChanged) {
      anonymousChanged = false;
      try {
        const role = await authenticator.anonymousRole();
        for (const session of live.get(ANONYMOUS) ?? []) {
          session.subject = compileSubject({ clientId: session.client.id, superuser: false, rules: role?.rules ?? [] });
        }
      } catch (err) {
        log.error({ err }, 'cannot reload the anonymous role; retrying');
        anonymousChanged = true;
      }
    }
    scheduleApply(1000);
  }

  /** Changes announced while the broker was not listening are unknown: reload everything live. */
  function onListenResumed(): void {
    log.warn('auth notifications were interrupted; reloading cached devices and live sessions');
    authenticator.devices.clear();
    authenticator.forgetAnonymousRole();
    for (const deviceId of live.keys()) {
      if (deviceId === ANONYMOUS) anonymousChanged = true;
      else changedDevices.add(deviceId);
    }
    scheduleApply();
  }

  const unlisten = await db.listen(
    AUTH_CHANNEL,
    (payload) => {
      const change = parseAuthChange(payload);
      if (change) onChange(change);
    },
    onListenResumed,
  );

  return {
    connect,
    takeover,
    accepted,
    subscribe,
    mayPublish,
    ownerMayPublish,
    mayRead,
    deviceOf,
    authenticator,
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      await unlisten();
      await applying;
    },
  };
}
