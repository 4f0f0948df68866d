/**
 * `roost ban`: bans from the command line, the same as POST/GET/DELETE /api/bans. Every Roost node
 * on the database applies a change at once (NOTIFY).
 *
 *   roost ban add (--client-id ID | --username NAME | --ip ADDRESS[/PREFIX]) [--reason TEXT] [--for 30m|12h|7d | --until ISO-TIME]
 *   roost ban list [--all]
 *   roost ban remove ID
 */
import { parseArgs } from 'node:util';
import { BanValueError, type BanKind } from '../broker/bans-list.js';
import { addBan, listBans, removeBan } from '../broker/bans-store.js';
import { AuthUsageError } from './auth.js';
import type { Db } from '../lib/db/index.js';

export const BAN_COMMANDS = ['ban'] as const;

const USAGE = [
  'roost ban add (--client-id ID | --username NAME | --ip ADDRESS[/PREFIX]) [--reason TEXT] [--for 30m|12h|7d | --until ISO-TIME]',
  'roost ban list [--all]',
  'roost ban remove ID',
].join('\n       ');

const UNITS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "90s", "30m", "12h", "7d" → milliseconds. */
export function parseDuration(text: string): number {
  const m = /^(\d+)([smhd])$/.exec(text.trim());
  if (!m || Number(m[1]) === 0) throw new AuthUsageError(`--for: "${text}" is not a duration like 30m, 12h or 7d`);
  return Number(m[1]) * UNITS[m[2]];
}

export async function runBanCommand(args: string[], ctx: { db: Db; out: (line: string) => void }): Promise<void> {
  const [command, sub, ...rest] = args;
  if (command !== 'ban') throw new AuthUsageError(`usage: ${USAGE}`);
  let parsed;
  try {
    parsed = parseArgs({
      args: rest,
      allowPositionals: true,
      options: {
        'client-id': { type: 'string' },
        username: { type: 'string' },
        ip: { type: 'string' },
        reason: { type: 'string', default: '' },
        for: { type: 'string' },
        until: { type: 'string' },
        all: { type: 'boolean', default: false },
      },
    });
  } catch (err) {
    throw new AuthUsageError(`${(err as Error).message}\nusage: ${USAGE}`);
  }
  const { values, positionals } = parsed;
  switch (sub) {
    case 'add': {
      const given = (['client-id', 'username', 'ip'] as const).filter((k) => values[k] !== undefined);
      if (given.length !== 1 || positionals.length > 0) throw new AuthUsageError(`give exactly one of --client-id, --username, --ip\nusage: ${USAGE}`);
      if (values.for !== undefined && values.until !== undefined) throw new AuthUsageError('give --for or --until, not both');
      let expiresAt: Date | null = null;
      if (values.for !== undefined) expiresAt = new Date(Date.now() + parseDuration(values.for));
      if (values.until !== undefined) {
        expiresAt = new Date(values.until);
        if (Number.isNaN(expiresAt.getTime()) || expiresAt.getTime() <= Date.now()) throw new AuthUsageError(`--until: "${values.until}" is not a time in the future`);
      }
      const kind: BanKind = given[0] === 'client-id' ? 'client_id' : given[0];
      try {
        const { ban, created } = await addBan(ctx.db, { kind, value: values[given[0]]!, reason: values.reason, createdBy: 'cli', expiresAt });
        ctx.out(`${created ? 'banned' : 'ban renewed'}: ${ban.id} ${ban.kind} ${ban.value} ${ban.expiresAt ? `until ${ban.expiresAt.toISOString()}` : 'until removed'}`);
      } catch (err) {
        if (err instanceof BanValueError) throw new AuthUsageError(err.message);
        throw err;
      }
      return;
    }
    case 'list': {
      let afterId: string | undefined;
      for (;;) {
        const bans = await listBans(ctx.db, { afterId, limit: 500, includeExpired: values.all });
        for (const b of bans) {
          const until = b.expiresAt ? b.expiresAt.toISOString() : 'until removed';
          ctx.out(`${b.id}\t${b.kind}\t${b.value}\t${until}\t${b.createdBy}\t${b.reason}`);
        }
        if (bans.length < 500) return;
        afterId = bans[bans.length - 1].id;
      }
    }
    case 'remove': {
      const id = positionals[0];
      if (!id || !/^[0-9]{1,18}$/.test(id)) throw new AuthUsageError(`usage: roost ban remove ID`);
      const removed = await removeBan(ctx.db, id);
      if (!removed) throw new AuthUsageError(`no ban ${id}`);
      ctx.out(`ban ${id} removed (${removed.kind} ${removed.value})`);
      return;
    }
    default:
      throw new AuthUsageError(`usage: ${USAGE}`);
  }
}
