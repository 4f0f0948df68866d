/**
 * A data command for an embedded folder that a running Roost holds: sent to that process's API
 * (POST /api/commands) with the token it left in the folder, so the change is made by the one process
 * that may open the database, and the broker applies it at once.
 */
import { readLocalToken } from '../api/local-access.js';
import type { LockHolder } from '../lib/db/data-dir-lock.js';
import { filesNamedIn } from './commands.js';

/** The folder is held by a process that cannot take the command: the one line the user sees. */
export class HolderUnreachableError extends Error {
  readonly code = 'ROOST_ERR_DATA_DIR_LOCKED';
}

/** The running process refused the command (a usage mistake, a refused change): its code and message. */
export class CommandRefusedError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Imports of a large fleet hash nothing but may write many rows: generous. */
const TIMEOUT_MS = 120_000;

export async function runInHolder(dataDir: string, holder: LockHolder, args: string[], out: (line: string) => void): Promise<void> {
  const held = `${dataDir} is in use by process ${holder.pid}`;
  const token = readLocalToken(dataDir);
  if (!holder.api || !token) {
    throw new HolderUnreachableError(`${held}, which takes no commands (its API is off, or it is still starting); stop it, or retry`);
  }
  let res: Response;
  try {
    res = await fetch(`${holder.api}/api/commands`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ args, files: filesNamedIn(args) }),
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
  } catch (err) {
    const reason = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).name;
    throw new HolderUnreachableError(`${held}, which does not answer at ${holder.api} (${reason})`);
  }
  const body = (await res.json().catch(() => ({}))) as { output?: string[]; code?: string; message?: string };
  if (res.status === 400) throw new CommandRefusedError(body.code ?? 'ROOST_ERR_USAGE', body.message ?? 'refused');
  if (!res.ok) throw new HolderUnreachableError(`${held}, which answered ${res.status} (${body.message ?? 'no reason given'})`);
  for (const line of body.output ?? []) out(line);
}
