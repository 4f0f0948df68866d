/**
 * The server secret: 32 random bytes in a file outside the database (ROOST_SERVER_SECRET_FILE,
 * default `server-secret` in ROOST_DATA_DIR), created mode 0600 on first use. Provisioning keys
 * are derived from it, so a copy of the database alone cannot sign provisioning requests
 * (issue 22 #13). Every node of a cluster needs the same file; losing it invalidates the keys.
 */
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Config } from '../lib/config.js';

export class ServerSecretError extends Error {
  readonly code = 'ROOST_ERR_SERVER_SECRET';
}

export function serverSecretFile(config: Pick<Config, 'ROOST_SERVER_SECRET_FILE' | 'ROOST_DATA_DIR'>): string {
  return config.ROOST_SERVER_SECRET_FILE ?? path.join(config.ROOST_DATA_DIR, 'server-secret');
}

/** Reads the secret, creating it when the file does not exist; refuses one others may read. */
export function loadServerSecret(file: string): Buffer {
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  try {
    writeFileSync(file, randomBytes(32).toString('hex') + '\n', { flag: 'wx', mode: 0o600 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new ServerSecretError(`cannot create ${file}: ${(err as Error).message}`);
  }
  if ((statSync(file).mode & 0o077) !== 0) throw new ServerSecretError(`${file} is readable by other users: chmod 600 it`);
  const hex = readFileSync(file, 'utf8').trim();
  if (!/^[0-9a-f]{64,}$/i.test(hex)) throw new ServerSecretError(`${file} must hold at least 64 hex digits (32 random bytes)`);
  return Buffer.from(hex, 'hex');
}
