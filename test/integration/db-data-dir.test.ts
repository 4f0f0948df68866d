/**
 * The embedded database's folder is its owner's only: it holds password hashes and webhook
 * secrets (also in the WAL). Created 0700 with files 0600, an old folder's loose modes are fixed at
 * start, and a folder other users can write is refused: what is in it may have been changed.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, lstatSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openDb } from '../../lib/db/index.js';

const tmp: string[] = [];
afterEach(() => {
  for (const dir of tmp.splice(0)) rmSync(dir, { recursive: true, force: true });
});
function freshParent(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'roost-modes-'));
  tmp.push(dir);
  return dir;
}

/** Every path under dir (dir included) with its permission bits. */
function modes(dir: string): Array<[string, number]> {
  const found: Array<[string, number]> = [[dir, lstatSync(dir).mode & 0o777]];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) found.push(...modes(full));
    else found.push([full, lstatSync(full).mode & 0o777]);
  }
  return found;
}
const openToOthers = (dir: string) => modes(dir).filter(([, mode]) => (mode & 0o077) !== 0);

async function writeSomething(dataDir: string): Promise<void> {
  const db = await openDb({ dataDir });
  try {
    await db.query('CREATE TABLE IF NOT EXISTS secrets (v text)');
    await db.query("INSERT INTO secrets VALUES ('whsec_example')");
  } finally {
    await db.close();
  }
}

describe('the embedded data folder', () => {
  it('is created 0700 with every file in it readable and writable by its owner only', async () => {
    const dataDir = path.join(freshParent(), 'data');
    await writeSomething(dataDir);
    expect(lstatSync(dataDir).mode & 0o777).toBe(0o700);
    expect(modes(dataDir).length).toBeGreaterThan(100);
    expect(openToOthers(dataDir)).toEqual([]);
  });

  it('of an earlier version, with its files 0666, is made owner-only at start and keeps its data', async () => {
    const dataDir = path.join(freshParent(), 'data');
    await writeSomething(dataDir);
    for (const [file] of modes(dataDir)) chmodSync(file, lstatSync(file).isDirectory() ? 0o755 : 0o666);
    expect(openToOthers(dataDir).length).toBeGreaterThan(100);

    const db = await openDb({ dataDir });
    try {
      expect(openToOthers(dataDir)).toEqual([]);
      expect((await db.query<{ v: string }>('SELECT v FROM secrets')).rows).toEqual([{ v: 'whsec_example' }]);
    } finally {
      await db.close();
    }
  });

  it('is refused with one line when other users may write in it', async () => {
    const dataDir = path.join(freshParent(), 'data');
    await writeSomething(dataDir);
    chmodSync(dataDir, 0o777);
    await expect(openDb({ dataDir })).rejects.toThrow(`${dataDir} is writable by other users (mode 0777)`);
    const res = spawnSync('node', [path.resolve('dist/cli/cli.js'), 'migrate'], { env: { PATH: process.env.PATH, ROOST_DATA_DIR: dataDir }, encoding: 'utf8', timeout: 60_000 });
    expect(res.status).toBe(2);
    expect(res.stderr.trim().split('\n')).toEqual([`roost: ROOST_DATA_DIR: ${dataDir} is writable by other users (mode 0777); check what is in it, then chmod 700 it`]);
    expect(lstatSync(dataDir).mode & 0o777).toBe(0o777); // left as it was, for its owner to look at
  });
});
