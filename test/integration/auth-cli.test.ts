import path from 'node:path';
import bcrypt from 'bcrypt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getDevice, listRules } from '../../auth/admin.js';
import { isAuthError } from '../../auth/errors.js';
import { PATTERN_ROLE } from '../../auth/import.js';
import { loadDevice, loadRole } from '../../auth/store.js';
import { AuthUsageError, runAuthCommand } from '../../cli/auth.js';
import { loadConfig } from '../../lib/config.js';
import { migrate } from '../../lib/db/migrate.js';
import { BACKENDS, openTestDb, type TestDb } from '../helpers/db.js';

const fixtures = path.resolve('test/fixtures/mosquitto');
const config = loadConfig({ ROOST_BCRYPT_COST: '4' });

describe.each(BACKENDS)('roost auth commands on %s', (backend) => {
  let t: TestDb;
  let lines: string[];
  const run = async (...args: string[]) => {
    lines = [];
    return runAuthCommand(args, { db: t.db, config, out: (line) => lines.push(line) });
  };

  beforeAll(async () => {
    t = await openTestDb(backend);
    await migrate(t.db);
  });
  afterAll(async () => t?.cleanup());

  it('imports the real deployment files: every user becomes a device with its Mosquitto hash and rules', async () => {
    expect(await run('import-mosquitto', '--passwd', path.join(fixtures, 'passwd'), '--acl', path.join(fixtures, 'acl'))).toBe(true);
    expect(lines[0]).toBe('devices created: 4 (admin, sentient_api_prod, paragon_devices, legacy_sensor)');
    expect(lines).toContain('rules added: 6, already present: 0');
    const devices = await loadDevice(t.db, 'paragon_devices');
    expect(devices?.passwordHash?.startsWith('$7$')).toBe(true);
    expect(devices?.rules.map((r) => `${r.access} ${r.pattern}`)).toEqual([
      'read paragon/+/commands/#',
      'write paragon/+/sensors/#',
      'write paragon/+/status/#',
      'write paragon/+/events/#',
    ]);
    expect((await getDevice(t.db, 'legacy_sensor')).passwordKind).toBe('mosquitto');
  });

  it('adds nothing when the same files are imported again', async () => {
    await run('import-mosquitto', '--passwd', path.join(fixtures, 'passwd'), '--acl', path.join(fixtures, 'acl'));
    expect(lines[0]).toBe('devices created: 0');
    expect(lines).toContain('rules added: 0, already present: 6');
    expect(await listRules(t.db, { device: 'admin' })).toHaveLength(1);
  });

  it('imports anonymous topic lines into the anonymous role and pattern lines into a role every device gets', async () => {
    await run('import-mosquitto', '--passwd', path.join(fixtures, 'passwd'), '--acl', path.join(fixtures, 'acl-features'));
    expect((await loadRole(t.db, config.ROOST_ANONYMOUS_ROLE))?.rules.map((r) => `${r.access} ${r.pattern}`)).toEqual(['read public/#', 'readwrite weather/now']);
    const legacy = await loadDevice(t.db, 'legacy_sensor');
    expect(legacy?.rules.filter((r) => r.source === `role:${PATTERN_ROLE}`).map((r) => r.pattern)).toEqual(['devices/%u/state', 'devices/%c/commands/#']);
    expect(legacy?.rules.find((r) => r.pattern === 'legacy/secret/#')).toMatchObject({ effect: 'deny', access: 'readwrite' });
  });

  it('adds a device with a generated password shown once, stored as bcrypt', async () => {
    await run('device', 'add', 'pump-1', '--role', PATTERN_ROLE, '--client-id', '%u-*', '--name', 'Pump one');
    expect(lines[0]).toBe('device pump-1 added');
    const password = lines[1].replace('password (shown once): ', '');
    expect(password.length).toBeGreaterThanOrEqual(20);
    const record = await loadDevice(t.db, 'pump-1');
    expect(await bcrypt.compare(password, record!.passwordHash!)).toBe(true);
    expect(record?.clientIdPattern).toBe('%u-*');
    expect((await getDevice(t.db, 'pump-1')).roles).toEqual([PATTERN_ROLE]);
  });

  it('changes a password, disables, enables and lists devices', async () => {
    await run('device', 'passwd', 'pump-1', '--password', 'n3w-secret');
    expect(await bcrypt.compare('n3w-secret', (await loadDevice(t.db, 'pump-1'))!.passwordHash!)).toBe(true);
    await run('device', 'disable', 'pump-1');
    expect((await getDevice(t.db, 'pump-1')).enabled).toBe(false);
    await run('device', 'list');
    expect(lines.find((l) => l.startsWith('pump-1\t'))).toContain('disabled password:bcrypt');
    await run('device', 'enable', 'pump-1');
    expect((await getDevice(t.db, 'pump-1')).enabled).toBe(true);
  });

  it('adds, lists and removes rules and roles', async () => {
    await run('role', 'add', 'services', '--description', 'backend services');
    await run('role', 'assign', 'services', 'pump-1');
    await run('rule', 'add', '--role', 'services', '--access', 'read', 'svc/#');
    const id = /^rule (\d+) added/.exec(lines[0])?.[1];
    expect(id).toBeDefined();
    await run('rule', 'add', '--device', 'pump-1', '--access', 'write', '--deny', 'svc/locked');
    expect(lines[0]).toMatch(/deny write svc\/locked for device pump-1/);
    await run('rule', 'list', '--role', 'services');
    expect(lines).toEqual([`${id}\trole:services\tallow\tread\tsvc/#`]);
    await run('rule', 'remove', id!);
    expect(await listRules(t.db, { role: 'services' })).toEqual([]);
    await run('role', 'list');
    expect(lines.find((l) => l.startsWith('services\t'))).toBe('services\tdevices:1\trules:0\tbackend services');
  });

  it('deletes a device, and explains bad command lines', async () => {
    await run('device', 'delete', 'pump-1');
    expect(await loadDevice(t.db, 'pump-1')).toBeUndefined();
    await expect(run('device', 'delete', 'pump-1')).rejects.toSatisfy((e) => isAuthError(e, 'ROOST_ERR_DEVICE_NOT_FOUND'));
    await expect(run('rule', 'add', '--device', 'admin', 'x/#')).rejects.toBeInstanceOf(AuthUsageError);
    await expect(run('device', 'add', 'x', '--bogus')).rejects.toThrow(/--bogus/);
    await expect(run('import-mosquitto', '--passwd', '/nonexistent')).rejects.toThrow(/cannot read password file \/nonexistent: ENOENT/);
    expect(await run('start')).toBe(false);
  });
});
