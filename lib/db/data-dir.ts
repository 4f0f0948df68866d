/**
 * The embedded database's folder is for its owner only, as PostgreSQL's own data directory is
 * (0700, files 0600): it holds password hashes and webhook secrets, in the tables and in the WAL.
 */
import { chmodSync, lstatSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

/** Bits for group and others; none of them may stay set. */
const GROUP_OTHER = 0o077;

export class DataDirUnsafeError extends Error {
  readonly code = 'ROOST_ERR_DATA_DIR_UNSAFE';
}

function ownerOnly(dir: string): void {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isSymbolicLink()) continue; // chmod would change its target, which is not ours to change
    const mode = lstatSync(full).mode & 0o7777;
    if (mode & GROUP_OTHER) chmodSync(full, mode & ~GROUP_OTHER);
    if (entry.isDirectory()) ownerOnly(full);
  }
}

/**
 * Creates the folder 0700, or checks an existing one: refused when another user owns it or may
 * write in it (what is inside may have been changed), else every mode in it is made owner-only.
 */
export function prepareDataDir(dataDir: string): void {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const stat = statSync(dataDir);
  const mode = stat.mode & 0o7777;
  if (process.getuid && stat.uid !== process.getuid()) {
    throw new DataDirUnsafeError(`${dataDir} belongs to user ${stat.uid}, not to the user running Roost (${process.getuid()})`);
  }
  if (mode & 0o022) {
    throw new DataDirUnsafeError(`${dataDir} is writable by other users (mode ${mode.toString(8).padStart(4, '0')}); check what is in it, then chmod 700 it`);
  }
  if (mode & GROUP_OTHER) chmodSync(dataDir, mode & ~GROUP_OTHER);
  ownerOnly(dataDir);
}
