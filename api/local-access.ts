/**
 * How the `roost` command on this machine reaches a running Roost that holds the embedded data
 * folder: an admin API token in the folder (0600, in a 0700 folder: readable by whoever may read the
 * database anyway), made at each start, and the API address in the folder's lock (lib/db/data-dir-lock.ts):
 * over HTTPS with the fingerprints of the certificates it serves, kept current across reloads, which
 * the CLI pins (cli/local-api.ts).
 */
import { X509Certificate } from 'node:crypto';
import { closeSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import { recordApiAddress } from '../lib/db/data-dir-lock.js';
import type { Db } from '../lib/db/index.js';
import type { TlsCredentials } from '../broker/tls.js';
import { createApiToken } from './tokens.js';

export const LOCAL_TOKEN_FILE = 'roost-cli.token';
const LOCAL_TOKEN_NAME = 'roost-cli (this machine)';

/** The URL a client on this machine uses for an API bound to `host` (a wildcard is reached on loopback). */
export function localApiUrl(host: string, port: number, https = false): string {
  const reach = host === '0.0.0.0' || host === '' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return `${https ? 'https' : 'http'}://${reach.includes(':') ? `[${reach}]` : reach}:${port}`;
}

/** SHA-256 fingerprints (as a TLS peer certificate shows them) of the leaf of each served chain. */
function fingerprintsOf(cert: string | Buffer | Array<string | Buffer> | undefined): string[] {
  return [cert ?? []].flat().map((pem) => new X509Certificate(pem).fingerprint256);
}

/**
 * Makes a fresh local token (the previous start's is revoked) and records the API address, with
 * `https` the credentials of an HTTPS API (their certificates are recorded again at each reload);
 * returns the undo.
 */
export async function openLocalAccess(db: Db, dataDir: string, apiUrl: string, https?: TlsCredentials): Promise<() => Promise<void>> {
  if (dataDir.startsWith('memory://')) return async () => {}; // no folder, no other process can open it
  const file = path.join(dataDir, LOCAL_TOKEN_FILE);
  await db.query('DELETE FROM api_tokens WHERE name = $1', [LOCAL_TOKEN_NAME]);
  const { id, token } = await createApiToken(db, LOCAL_TOKEN_NAME, 'admin');
  const temp = `${file}.${process.pid}`;
  const fd = openSync(temp, 'w', 0o600);
  try {
    writeSync(fd, token + '\n');
  } finally {
    closeSync(fd);
  }
  renameSync(temp, file);
  recordApiAddress(dataDir, apiUrl, https && fingerprintsOf(https.serverOptions().cert));
  const unfollow = https?.onReload((options) => recordApiAddress(dataDir, apiUrl, fingerprintsOf(options.cert)));
  return async () => {
    unfollow?.();
    rmSync(file, { force: true });
    await db.query('DELETE FROM api_tokens WHERE id = $1', [id]);
  };
}

/** The token a running Roost left for this machine's CLI, if any. */
export function readLocalToken(dataDir: string): string | undefined {
  try {
    return readFileSync(path.join(dataDir, LOCAL_TOKEN_FILE), 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}
