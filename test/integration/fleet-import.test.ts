/**
 * Moving devices over without re-provisioning them: a real PostgreSQL seeded with mosquitto-go-auth
 * tables (bcrypt and PBKDF2 hashes, rw 1-4) and EMQX tables (salted SHA-256, PBKDF2), plus an EMQX
 * users file. Imported devices connect with their old passwords, their hashes become bcrypt at the
 * first login, and go-auth's `rw >= acc` decides what they may publish and subscribe. Dry run,
 * idempotent re-run, and a per-row error with nothing written.
 */
import { createHash, pbkdf2Sync, randomBytes } from 'node:crypto';
import path from 'node:path';
import bcrypt from 'bcrypt';
import type { MqttClient } from 'mqtt';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../lib/config.js';
import { runImportCommand } from '../../cli/import.js';
import { ImportError } from '../../auth/go-auth-import.js';
import { createPostgresDatabase } from '../helpers/db.js';
import { connectClient, startTestRoost, type TestRoost } from '../helpers/roost.js';

/** go-auth's PBKDF2 format: PBKDF2$<alg>$<iterations>$<salt base64>$<key base64>. */
function goAuthPbkdf2(password: string, alg: 'sha256' | 'sha512', iterations = 1000): string {
  const salt = randomBytes(12);
  return `PBKDF2$${alg}$${iterations}$${salt.toString('base64')}$${pbkdf2Sync(password, salt, iterations, 32, alg).toString('base64')}`;
}

const goBcrypt = async (password: string) => (await bcrypt.hash(password, 4)).replace(/^\$2b\$/, '$2a$');

async function login(t: TestRoost, username: string, password: string): Promise<MqttClient | number> {
  try {
    return await connectClient(t, 'mqtt', { username, password, clientId: `${username}-${randomBytes(3).toString('hex')}` });
  } catch (err) {
    return (err as { code?: number }).code ?? -1;
  }
}

async function grants(client: MqttClient, filter: string): Promise<number> {
  try {
    const granted = await client.subscribeAsync(filter, { qos: 0 });
    return granted[0].qos;
  } catch (err) {
    // MQTT.js rejects a SUBACK that refuses the filter (0x80).
    return (err as { packet?: { granted?: number[] } }).packet?.granted?.[0] ?? -1;
  }
}

describe('imports from mosquitto-go-auth and EMQX', () => {
  let t: TestRoost;
  let source: { url: string; drop: () => Promise<void> };
  const lines: string[] = [];
  const run = (args: string[]) => runImportCommand(args, { db: t.roost.db, config: loadConfig(t.env), out: (l) => lines.push(l) });

  beforeAll(async () => {
    t = await startTestRoost('postgres');
    source = await createPostgresDatabase();
    const c = new pg.Client({ connectionString: source.url });
    await c.connect();
    await c.query(`
      CREATE TABLE mqtt_users (id serial PRIMARY KEY, username text NOT NULL UNIQUE, password_hash text NOT NULL, is_admin boolean NOT NULL DEFAULT false, is_active boolean NOT NULL DEFAULT true);
      CREATE TABLE mqtt_acls (id serial PRIMARY KEY, username text NOT NULL, topic text NOT NULL, rw integer NOT NULL);
      CREATE TABLE bad_users (username text, password_hash text);
      CREATE TABLE mqtt_user (id serial PRIMARY KEY, username text UNIQUE, password_hash text, salt text, is_superuser boolean);
      CREATE TABLE mqtt_acl (id serial PRIMARY KEY, username text, permission text, action text, topic text);`);
    const users: Array<[string, string, boolean, boolean]> = [
      ['ga-bcrypt', await goBcrypt('pw-bcrypt'), false, true],
      ['ga-pbkdf2-512', goAuthPbkdf2('pw-512', 'sha512'), false, true],
      ['ga-pbkdf2-256', goAuthPbkdf2('pw-256', 'sha256'), false, true],
      ['ga-admin', await goBcrypt('pw-admin'), true, true],
      ['ga-retired', await goBcrypt('pw-retired'), false, false],
    ];
    for (const u of users) await c.query('INSERT INTO mqtt_users (username, password_hash, is_admin, is_active) VALUES ($1, $2, $3, $4)', u);
    const acls: Array<[string, string, number]> = [
      ['ga-bcrypt', 'plant/%u/#', 4], // subscribe ⇒ also read and write
      ['ga-bcrypt', 'plant/alarms', 2], // write only
      ['ga-bcrypt', 'plant/status', 1], // read only: no subscribe under rw >= acc
      ['ga-pbkdf2-512', 'meters/+/kwh', 3], // readwrite: write, no subscribe
      ['ga-pbkdf2-256', 'meters/#', 4],
      ['ghost', 'x/#', 4], // no such user
    ];
    for (const a of acls) await c.query('INSERT INTO mqtt_acls (username, topic, rw) VALUES ($1, $2, $3)', a);
    await c.query("INSERT INTO bad_users VALUES ('ok-user', $1), ('argon', '$argon2id$v=19$m=4096,t=3,p=1$c2FsdA$aGFzaA'), ('', $1), ('weird', 'plaintext')", [await goBcrypt('x')]);
    const salt = 'a1b2c3d4e5f6';
    await c.query('INSERT INTO mqtt_user (username, password_hash, salt, is_superuser) VALUES ($1, $2, $3, false)', [
      'emqx-meter', createHash('sha256').update(salt + 'emqx-pw').digest('hex'), salt,
    ]);
    await c.query("INSERT INTO mqtt_acl (username, permission, action, topic) VALUES ('emqx-meter', 'allow', 'publish', 'meters/${username}/data'), ('emqx-meter', 'allow', 'subscribe', 'meters/${username}/cmd'), ('emqx-meter', 'deny', 'all', 'meters/secret')");
    await c.end();
  });
  afterAll(async () => {
    await t?.stop();
    await source?.drop();
  });

  it('a dry run reports what it would do and writes nothing', async () => {
    lines.length = 0;
    await run(['import-go-auth', '--from', source.url, '--dry-run']);
    expect(lines[0]).toBe('dry run: nothing was written');
    expect(lines.join('\n')).toMatch(/devices would be created: 5/);
    expect(lines.join('\n')).toMatch(/rules would be added: 4/);
    expect(lines.join('\n')).toMatch(/mqtt_acls row \d+ \(ghost x\/# rw=4\): no such user; skipped/);
    expect(lines.join('\n')).toMatch(/1 ACL row\(s\) with rw < 2/);
    const devices = await t.roost.db.query("SELECT 1 FROM devices WHERE username LIKE 'ga-%'");
    expect(devices.rows).toHaveLength(0);
  });

  it('a bad row stops the import with one line per bad row, and nothing is written', async () => {
    const err = await run(['import-go-auth', '--from', source.url, '--users-table', 'bad_users']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ImportError);
    const problems = (err as ImportError).problems;
    expect(problems).toHaveLength(3);
    expect(problems.join('\n')).toMatch(/\(argon\): argon2id hashes are not supported/);
    expect(problems.join('\n')).toMatch(/\(weird\): unknown password hash format/);
    expect(problems.join('\n')).toMatch(/\(\): .*username/i);
    expect((await t.roost.db.query("SELECT 1 FROM devices WHERE username = 'ok-user'")).rows).toHaveLength(0);
    const badTable = await run(['import-go-auth', '--from', source.url, '--users-table', 'users; DROP TABLE x']).catch((e: unknown) => e);
    expect((badTable as ImportError).problems[0]).toMatch(/letters, digits and _ only/);
  });

  it('imports go-auth users and ACLs; devices connect with their old passwords and get rw >= acc', async () => {
    lines.length = 0;
    await run(['import-go-auth', '--from', source.url]);
    expect(lines.join('\n')).toMatch(/devices created: 5/);
    expect(lines.join('\n')).toMatch(/password hashes: bcrypt 3, emqx 1, mosquitto 1/);

    // rw 4 on plant/%u/#: subscribe and publish there; rw 2: publish only; rw 1: neither.
    const plant = await login(t, 'ga-bcrypt', 'pw-bcrypt');
    expect(typeof plant).toBe('object');
    const p = plant as MqttClient;
    expect(await grants(p, 'plant/ga-bcrypt/#')).toBe(0);
    expect(await grants(p, 'plant/alarms')).toBe(128);
    expect(await grants(p, 'plant/status')).toBe(128);
    const echo = new Promise<string>((resolve) => p.once('message', (topic) => resolve(topic)));
    await p.publishAsync('plant/ga-bcrypt/temp', '21', { qos: 1 });
    expect(await echo).toBe('plant/ga-bcrypt/temp');
    await p.publishAsync('plant/alarms', 'fire', { qos: 1 });
    await p.publishAsync('plant/status', 'ok', { qos: 1 });
    await p.endAsync();
    const stored = await t.roost.db.query<{ topic: string }>("SELECT topic FROM messages WHERE username = 'ga-bcrypt' ORDER BY id");
    expect(stored.rows.map((r) => r.topic)).toEqual(['plant/ga-bcrypt/temp', 'plant/alarms']);

    // go-auth PBKDF2 (sha512 → $7$, sha256 → $pbkdf2$) verify, then become bcrypt.
    const m512 = await login(t, 'ga-pbkdf2-512', 'pw-512');
    expect(await grants(m512 as MqttClient, 'meters/+/kwh')).toBe(128); // rw 3 < 4: no subscribe
    await (m512 as MqttClient).endAsync();
    const m256 = await login(t, 'ga-pbkdf2-256', 'pw-256');
    expect(await grants(m256 as MqttClient, 'meters/#')).toBe(0);
    await (m256 as MqttClient).endAsync();
    expect(await login(t, 'ga-pbkdf2-256', 'wrong')).toBe(4);

    const admin = await login(t, 'ga-admin', 'pw-admin');
    expect(await grants(admin as MqttClient, 'anything/#')).toBe(0);
    await (admin as MqttClient).endAsync();
    expect(await login(t, 'ga-retired', 'pw-retired')).toBe(5);

    const deadline = Date.now() + 5000;
    let kinds: string[] = [];
    while (Date.now() < deadline) {
      const res = await t.roost.db.query<{ h: string }>("SELECT left(password_hash, 3) AS h FROM devices WHERE username IN ('ga-pbkdf2-512', 'ga-pbkdf2-256')");
      kinds = res.rows.map((r) => r.h);
      if (kinds.every((k) => k.startsWith('$2'))) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(kinds).toEqual(['$2b', '$2b']);
    // Upgraded hashes still take the old password.
    const again = await login(t, 'ga-pbkdf2-512', 'pw-512');
    expect(typeof again).toBe('object');
    await (again as MqttClient).endAsync();
  });

  it('running the import again adds nothing', async () => {
    lines.length = 0;
    await run(['import-go-auth', '--from', source.url]);
    expect(lines.join('\n')).toMatch(/devices created: 0/);
    expect(lines.join('\n')).toMatch(/rules added: 0, already present: 4/);
  });

  it('imports EMQX tables (salted SHA-256) and an EMQX users file; passwords work and are upgraded', async () => {
    lines.length = 0;
    await run(['import-emqx', '--from', source.url, '--acl-table', 'mqtt_acl', '--hash', 'sha256', '--salt-position', 'prefix']);
    expect(lines.join('\n')).toMatch(/devices created: 1 \(emqx-meter\)/);
    expect(lines.join('\n')).toMatch(/rules added: 3/);
    const meter = await login(t, 'emqx-meter', 'emqx-pw');
    const m = meter as MqttClient;
    expect(await grants(m, 'meters/emqx-meter/cmd')).toBe(0);
    expect(await grants(m, 'meters/secret')).toBe(128);
    await m.endAsync();
    expect(await login(t, 'emqx-meter', 'not-it')).toBe(4);
    for (let i = 0; i < 50; i++) {
      const h = await t.roost.db.query<{ h: string }>("SELECT password_hash AS h FROM devices WHERE username = 'emqx-meter'");
      if (h.rows[0].h.startsWith('$2b$')) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect((await t.roost.db.query<{ h: string }>("SELECT password_hash AS h FROM devices WHERE username = 'emqx-meter'")).rows[0].h).toMatch(/^\$2b\$/);

    lines.length = 0;
    const file = path.resolve('test/fixtures/fleet/emqx-users-sha256.json');
    await run(['import-emqx', '--file', file, '--hash', 'sha256']);
    expect(lines.join('\n')).toMatch(/devices created: 2/);
    const sensor = await login(t, 'emqx-sensor', 'sensor-pw');
    expect(typeof sensor).toBe('object');
    await (sensor as MqttClient).endAsync();
    const admin = await login(t, 'emqx-admin', 'admin-pw');
    expect(await grants(admin as MqttClient, '#')).toBe(0);
    await (admin as MqttClient).endAsync();

    const wrongSettings = await run(['import-emqx', '--file', file, '--hash', 'sha512']).catch((e: unknown) => e);
    expect(wrongSettings).toBeInstanceOf(ImportError);
  });
});
