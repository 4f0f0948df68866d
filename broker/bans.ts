/**
 * Enforcing bans on this node. The list lives in the database (bans-store.ts); every change is
 * announced on BANS_CHANNEL, and every node then reloads it and closes the connected clients it now
 * matches. A CONNECT that matches is refused with CONNACK 5 (not authorized; MQTT 5: 0x8A Banned) before its password is
 * checked. The list is also reloaded every `reloadMs`, in case a notification was missed while the
 * database was away; each reload first deletes the flapping bans that have ended.
 */
import type { BrokerCore, ConnectStep, Connection } from './core.js';
import { DISCONNECT_REASON, closeWithReason, ipOf } from './aedes/connection.js';
import type { Db } from '../lib/db/index.js';
import type { Logger } from '../lib/log.js';
import { BanList, type Ban } from './bans-list.js';
import { activeBans, addBan, BANS_CHANNEL, deleteEndedFlappingBans, type NewBan } from './bans-store.js';
import type { Metrics } from './metrics.js';

export interface BansOptions {
  db: Db;
  core: BrokerCore;
  usernameOf(conn: Connection): string | undefined;
  metrics: Metrics;
  log: Logger;
  reloadMs?: number;
}

export interface Bans {
  /** The bans this node enforces now. */
  readonly list: BanList;
  /** Connect step: a banned client id, username or address gets CONNACK 5 before its password is checked. */
  readonly connect: ConnectStep;
  /** Stores a ban (all nodes hear of it) and enforces it here at once, even if the database is away. */
  ban(ban: NewBan): Promise<void>;
  /** Re-reads the list and closes what it matches. */
  reload(): Promise<void>;
  close(): Promise<void>;
}

/** The ban list of this node; its connect step goes before auth's (broker.ts useBans). */
export async function startBans(opts: BansOptions): Promise<Bans> {
  const { db, core, usernameOf, metrics, log } = opts;
  let list = new BanList();
  /** Bans made here and not yet seen in a reload (the database may be away). */
  let local: Ban[] = [];
  let closed = false;
  const lastLogged = new Map<string, number>();

  const subjectOf = (client: Connection) => ({ clientId: client.id, username: usernameOf(client), ip: ipOf(client) });

  function refused(ban: Ban, fields: Record<string, unknown>, action: string): void {
    metrics.bansEnforced.inc({ kind: ban.kind });
    // One line per ban per second: a banned client retrying in a loop must not flood the log.
    const now = Date.now();
    if (now - (lastLogged.get(ban.id) ?? 0) < 1000) return;
    lastLogged.set(ban.id, now);
    if (lastLogged.size > 10_000) lastLogged.clear();
    log.info({ ...fields, ban: { id: ban.id, kind: ban.kind, value: ban.value, reason: ban.reason } }, action);
  }

  const connect: ConnectStep = (client, { username }, next) => {
    const ban = closed ? undefined : list.match({ clientId: client.id, username, ip: ipOf(client) });
    if (!ban) return next();
    refused(ban, { clientId: client.id, username, ip: ipOf(client) }, 'connection refused: banned');
    next({ refuse: 5, reason: 'not authorized: banned', reasonCode: 0x8a });
  };

  function closeMatching(): void {
    for (const client of core.connections()) {
      if (!client.connected) continue;
      const ban = list.match(subjectOf(client));
      if (!ban) continue;
      refused(ban, subjectOf(client), 'disconnecting client: banned');
      closeWithReason(client, DISCONNECT_REASON.administrativeAction);
    }
  }

  function apply(bans: Ban[]): void {
    const ids = new Set(bans.map((b) => b.id));
    const now = Date.now();
    local = local.filter((b) => !ids.has(b.id) && (b.expiresAt === null || b.expiresAt.getTime() > now));
    list = new BanList([...bans, ...local]);
    closeMatching();
  }

  let reloading: Promise<void> = Promise.resolve();
  const reload = () => {
    reloading = reloading.then(async () => {
      if (closed) return;
      try {
        await deleteEndedFlappingBans(db);
        apply(await activeBans(db));
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'cannot reload bans; keeping the current list');
      }
    });
    return reloading;
  };

  const unlisten = await db.listen(BANS_CHANNEL, () => void reload(), () => void reload());
  await reload();
  const timer = setInterval(() => void reload(), opts.reloadMs ?? 60_000);
  timer.unref();

  return {
    get list() {
      return list;
    },
    connect,
    async ban(ban) {
      try {
        const stored = await addBan(db, ban);
        local.push(stored.ban);
      } catch (err) {
        log.warn({ err: (err as Error).message, kind: ban.kind, value: ban.value }, 'cannot store a ban; enforcing it on this node only');
        local.push({ id: `local-${Date.now()}`, kind: ban.kind, value: ban.value, reason: ban.reason ?? '', createdBy: ban.createdBy, createdAt: new Date(), expiresAt: ban.expiresAt ?? null });
      }
      list = new BanList([...list.bans.filter((b) => !local.some((l) => l.id === b.id)), ...local]);
      closeMatching();
    },
    reload,
    async close() {
      closed = true;
      clearInterval(timer);
      await unlisten();
      await reloading;
    },
  };
}
