/**
 * A data command for an embedded folder that a running Roost holds: sent to that process's API
 * (POST /api/commands) with the token it left in the folder, so the change is made by the one process
 * that may open the database, and the broker applies it at once.
 */
import { readLocalToken } from '../api/local-access.js';
import type { LockHolder } from '../lib/db/data-dir-lock.js';
import { filesNamedIn } from './commands.js';
import { postLocalApi, UnpinnedCertificateError, type LocalApiResponse } from './local-api.js';

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
  let res: LocalApiResponse;
  try {
    res = await postLocalApi(
      `${holder.api}/api/commands`,
      { authorization: `Bearer ${token}` },
      { args, files: filesNamedIn(args) },
      { pins: holder.apiCertificates, timeoutMs: TIMEOUT_MS },
    );
  } catch (err) {
    if (err instanceof UnpinnedCertificateError) throw new HolderUnreachableError(`${held}, but ${err.message} at ${holder.api}; the command was not sent`);
    const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).name;
    throw new HolderUnreachableError(`${held}, which does not answer at ${holder.api} (${reason})`);
  }
  let body: { output?: string[]; code?: string; message?: string } = {};
  try {
    body = JSON.parse(res.body) as typeof body;
  } catch {
    // not Roost's JSON: the status says enough
  }
  if (res.status === 400) throw new CommandRefusedError(body.code ?? 'ROOST_ERR_USAGE', body.message ?? 'refused');
  if (res.status < 200 || res.status >= 300) throw new HolderUnreachableError(`${held}, which answered ${res.status} (${body.message ?? 'no reason given'})`);
  for (const line of body.output ?? []) out(line);
}
