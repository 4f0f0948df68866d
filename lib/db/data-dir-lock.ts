/**
 * One process at a time opens an embedded data folder: two PGlite instances writing the same files
 * corrupt them. The holder writes `roost.lock` (its pid and, once its API listens, the API address);
 * a lock whose process is gone (kill -9, power cut) is stale and taken over.
 */
import { closeSync, linkSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';

export const LOCK_FILE = 'roost.lock';

export interface LockHolder {
  pid: number;
  /** The process's start time (Linux clock ticks since boot), so that a reused pid is not taken for the holder. */
  startTime?: string;
  /** The holder's API base URL, reachable from this machine (e.g. http://127.0.0.1:3000). */
  api?: string;
  /** With an https: API, the SHA-256 fingerprints of the certificates it serves: the CLI trusts no other. */
  apiCertificates?: string[];
}

export class DataDirLockedError extends Error {
  readonly code = 'ROOST_ERR_DATA_DIR_LOCKED';
  constructor(
    readonly dataDir: string,
    readonly holder: LockHolder,
  ) {
    super(`${dataDir} is in use by process ${holder.pid}${holder.api ? ` (Roost, API at ${holder.api})` : ''}`);
  }
}

/** Folders this process holds now: a lock naming our own pid and not in here is a previous life's (pid 1 in a container). */
const heldHere = new Map<string, DataDirLock>();

const lockPathOf = (dataDir: string) => path.join(path.resolve(dataDir), LOCK_FILE);

function startTimeOf(pid: number | 'self'): string | undefined {
  try {
    // Field 22 of /proc/PID/stat; the name (field 2) may hold spaces, so count after its ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

function isAlive(holder: LockHolder, lockPath: string): boolean {
  if (holder.pid <= 0) return false;
  if (holder.pid === process.pid) return heldHere.has(lockPath);
  try {
    process.kill(holder.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const now = startTimeOf(holder.pid);
  return holder.startTime === undefined || now === undefined || now === holder.startTime;
}

function readHolder(lockPath: string): LockHolder | undefined {
  try {
    const parsed = JSON.parse(readFileSync(lockPath, 'utf8')) as LockHolder;
    return Number.isInteger(parsed.pid) && parsed.pid > 0 ? parsed : { pid: 0 };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    return { pid: 0 }; // torn or unreadable: written by a process that died while writing it
  }
}

/** The live process holding the folder, if any. */
export function lockHolder(dataDir: string): LockHolder | undefined {
  const lockPath = lockPathOf(dataDir);
  const holder = readHolder(lockPath);
  return holder && isAlive(holder, lockPath) ? holder : undefined;
}

function writeNew(lockPath: string, holder: LockHolder): boolean {
  let fd: number;
  try {
    fd = openSync(lockPath, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
  try {
    writeSync(fd, JSON.stringify(holder));
  } finally {
    closeSync(fd);
  }
  return true;
}

const sameHolder = (a: LockHolder | undefined, b: LockHolder) => a?.pid === b.pid && a?.startTime === b.startTime;

/**
 * Moves a stale lock aside. Two starters can both find it stale: the one that moves it second may
 * move the first one's fresh lock instead, which it sees and puts back (link never overwrites).
 */
function removeStale(lockPath: string, stale: LockHolder): void {
  const aside = `${lockPath}.stale.${process.pid}`;
  try {
    renameSync(lockPath, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  const moved = readHolder(aside);
  if (!sameHolder(moved, stale)) {
    try {
      linkSync(aside, lockPath);
    } catch {
      // a third process took the folder meanwhile: its lock stands
    }
  }
  unlinkSync(aside);
}

export interface DataDirLock {
  /** Records where this process's API answers (and, over HTTPS, its certificates), for the `roost` command (cli/delegate.ts). */
  recordApi(url: string, certificates?: string[]): void;
  release(): void;
}

/** Takes the folder's lock, or throws DataDirLockedError naming the live holder. */
export function lockDataDir(dataDir: string): DataDirLock {
  const lockPath = lockPathOf(dataDir);
  const mine: LockHolder = { pid: process.pid, startTime: startTimeOf('self') };
  for (let attempt = 0; !writeNew(lockPath, mine); attempt++) {
    const holder = readHolder(lockPath);
    if (holder && isAlive(holder, lockPath)) throw new DataDirLockedError(dataDir, holder);
    if (attempt >= 2) throw new DataDirLockedError(dataDir, holder ?? { pid: 0 });
    if (holder) removeStale(lockPath, holder);
  }
  const ours = () => readHolder(lockPath)?.pid === process.pid && heldHere.get(lockPath) === lock;
  const lock: DataDirLock = {
    recordApi(url, certificates) {
      if (!ours()) return;
      const temp = `${lockPath}.${process.pid}`;
      const fd = openSync(temp, 'w', 0o600);
      try {
        writeSync(fd, JSON.stringify({ ...mine, api: url, ...(certificates ? { apiCertificates: certificates } : {}) }));
      } finally {
        closeSync(fd);
      }
      renameSync(temp, lockPath); // atomic: a reader sees the old or the new content, never half
    },
    release() {
      if (ours()) unlinkSync(lockPath);
      if (heldHere.get(lockPath) === lock) heldHere.delete(lockPath);
    },
  };
  heldHere.set(lockPath, lock);
  return lock;
}

/** Records the API address (and certificates) in the lock this process holds on `dataDir` (none held: nothing to do). */
export function recordApiAddress(dataDir: string, url: string, certificates?: string[]): void {
  heldHere.get(lockPathOf(dataDir))?.recordApi(url, certificates);
}
