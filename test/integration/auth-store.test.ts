import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  addRule,
  assignRole,
  createDevice,
  createRole,
  deleteDevice,
  deleteRole,
  getDevice,
  listDevices,
  listRoles,
  listRules,
  removeRule,
  setEnabled,
  setPasswordHash,
  unassignRole,
  updateDevice,
} from '../../auth/admin.js';
import { isAuthError } from '../../auth/errors.js';
import { AUTH_CHANNEL, loadDevice, loadRole, parseAuthChange, touchLastSeen, upgradePasswordHash, type AuthChange } from '../../auth/store.js';
import { migrate } from '../../lib/db/migrate.js';
import { BACKENDS, openTestDb, type TestDb } from '../helpers/db.js';

/** Records every change announced on the auth channel. */
async function recordChanges(t: TestDb) {
  const seen: AuthChange[] = [];
  const stop = await t.db.listen(AUTH_CHANNEL, (payload) => {
    const change = parseAuthChange(payload);
    if (change) seen.push(change);
  });
  return {
    seen,
    stop,
    /** Waits (at most `ms`) until a change matching `predicate` arrived. */
    async waitFor(predicate: (c: AuthChange) => boolean, ms = 3000): Promise<AuthChange | undefined> {
      const deadline = Date.now() + ms;
      while (Date.now() < deadline) {
        const found = seen.find(predicate);
        if (found) return found;
        await new Promise((r) => setTimeout(r, 10));
      }
      return undefined;
    },
  };
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

describe.each(BACKENDS)('auth store on %s', (backend) => {
  let t: TestDb;
  let changes: Awaited<ReturnType<typeof recordChanges>>;

  beforeAll(async () => {
    t = await openTestDb(backend);
    await migrate(t.db);
    changes = await recordChanges(t);
  });
  afterAll(async () => {
    await changes?.stop();
    await t?.cleanup();
  });

  it('creates a device, refuses a second with the same username, and announces the creation', async () => {
    const device = await createDevice(t.db, { username: 'sensor-1', passwordHash: '$2b$04$' + 'a'.repeat(53), name: 'Hall sensor', attributes: { floor: 2 } });
    expect(device).toMatchObject({ username: 'sensor-1', enabled: true, superuser: false, name: 'Hall sensor', attributes: { floor: 2 }, passwordKind: 'bcrypt', roles: [] });
    expect(await changes.waitFor((c) => c.kind === 'device' && c.id === device.id)).toMatchObject({ username: 'sensor-1' });
    const err = await rejection(createDevice(t.db, { username: 'sensor-1' }));
    expect(isAuthError(err, 'ROOST_ERR_DEVICE_EXISTS')).toBe(true);
  });

  it('announces disabling, password changes and deletion, but not last_seen updates', async () => {
    const d = await createDevice(t.db, { username: 'sensor-2' });
    await changes.waitFor((c) => c.kind === 'device' && c.id === d.id);
    changes.seen.length = 0;
    await touchLastSeen(t.db, d.id);
    await updateDevice(t.db, 'sensor-2', { name: 'renamed label', attributes: { a: 1 } });
    expect(await changes.waitFor(() => true, 300)).toBeUndefined();
    expect((await getDevice(t.db, 'sensor-2')).lastSeen).toBeInstanceOf(Date);

    await setEnabled(t.db, 'sensor-2', false);
    expect(await changes.waitFor((c) => c.kind === 'device' && c.id === d.id)).toBeDefined();
    expect((await getDevice(t.db, 'sensor-2')).enabled).toBe(false);
    changes.seen.length = 0;
    await setPasswordHash(t.db, 'sensor-2', '$7$101$abc$def');
    expect(await changes.waitFor((c) => c.kind === 'device' && c.id === d.id)).toBeDefined();
    expect((await getDevice(t.db, 'sensor-2')).passwordKind).toBe('mosquitto');
    changes.seen.length = 0;
    await deleteDevice(t.db, 'sensor-2');
    expect(await changes.waitFor((c) => c.kind === 'device' && c.id === d.id)).toMatchObject({ username: 'sensor-2' });
    expect(isAuthError(await rejection(getDevice(t.db, 'sensor-2')), 'ROOST_ERR_DEVICE_NOT_FOUND')).toBe(true);
    expect(isAuthError(await rejection(deleteDevice(t.db, 'sensor-2')), 'ROOST_ERR_DEVICE_NOT_FOUND')).toBe(true);
  });

  it("loads a device with its own rules and its roles' rules, naming where each comes from", async () => {
    await createDevice(t.db, { username: 'pump-7', clientIdPattern: '%u-*' });
    await createRole(t.db, 'paragon_devices', 'shared device rules');
    await addRule(t.db, { role: 'paragon_devices', pattern: 'paragon/+/commands/#', access: 'read' });
    await addRule(t.db, { device: 'pump-7', pattern: 'pumps/%u/#', access: 'readwrite' });
    await addRule(t.db, { device: 'pump-7', pattern: 'pumps/%u/secret', access: 'read', effect: 'deny' });
    await assignRole(t.db, 'pump-7', 'paragon_devices');
    await assignRole(t.db, 'pump-7', 'paragon_devices'); // twice is a no-op

    const record = await loadDevice(t.db, 'pump-7');
    expect(record?.clientIdPattern).toBe('%u-*');
    expect(record?.rules.map((r) => [r.source, r.effect, r.access, r.pattern])).toEqual(
      expect.arrayContaining([
        ['role:paragon_devices', 'allow', 'read', 'paragon/+/commands/#'],
        ['device', 'allow', 'readwrite', 'pumps/%u/#'],
        ['device', 'deny', 'read', 'pumps/%u/secret'],
      ]),
    );
    expect(record?.rules).toHaveLength(3);
    expect(record?.roleIds).toHaveLength(1);
    expect((await getDevice(t.db, 'pump-7')).roles).toEqual(['paragon_devices']);
    expect(await loadDevice(t.db, 'nobody')).toBeUndefined();
  });

  it("announces a role's rule change under the role, so every device holding it is refreshed", async () => {
    const role = (await listRoles(t.db)).find((r) => r.name === 'paragon_devices')!;
    expect(role).toMatchObject({ devices: 1, rules: 1 });
    changes.seen.length = 0;
    const rule = await addRule(t.db, { role: 'paragon_devices', pattern: 'paragon/+/status/#', access: 'write' });
    expect(await changes.waitFor((c) => c.kind === 'role' && c.id === role.id)).toBeDefined();
    expect(rule).toMatchObject({ role: 'paragon_devices', device: null, pattern: 'paragon/+/status/#', access: 'write', effect: 'allow' });
    changes.seen.length = 0;
    await removeRule(t.db, rule.id);
    expect(await changes.waitFor((c) => c.kind === 'role' && c.id === role.id)).toBeDefined();
    expect(isAuthError(await rejection(removeRule(t.db, rule.id)), 'ROOST_ERR_RULE_NOT_FOUND')).toBe(true);
    expect((await loadRole(t.db, 'paragon_devices'))?.rules.map((r) => r.pattern)).toEqual(['paragon/+/commands/#']);
  });

  it('announces role assignment under the device, and role deletion takes its rules away', async () => {
    const pump = await getDevice(t.db, 'pump-7');
    changes.seen.length = 0;
    expect(await unassignRole(t.db, 'pump-7', 'paragon_devices')).toBe(true);
    expect(await changes.waitFor((c) => c.kind === 'device' && c.id === pump.id)).toBeDefined();
    await assignRole(t.db, 'pump-7', 'paragon_devices');
    await deleteRole(t.db, 'paragon_devices');
    const record = await loadDevice(t.db, 'pump-7');
    expect(record?.rules.every((r) => r.source === 'device')).toBe(true);
    expect(record?.roleIds).toEqual([]);
  });

  it('refuses an invalid pattern, a rule with no owner, and an unknown role', async () => {
    expect(isAuthError(await rejection(addRule(t.db, { device: 'pump-7', pattern: 'a/#/b', access: 'read' })), 'ROOST_ERR_INVALID_PATTERN')).toBe(true);
    expect(isAuthError(await rejection(addRule(t.db, { pattern: 'a', access: 'read' })), 'ROOST_ERR_INVALID_RULE')).toBe(true);
    expect(isAuthError(await rejection(assignRole(t.db, 'pump-7', 'no-such-role')), 'ROOST_ERR_ROLE_NOT_FOUND')).toBe(true);
    expect((await listRules(t.db, { device: 'pump-7' })).map((r) => r.pattern)).toEqual(['pumps/%u/#', 'pumps/%u/secret']);
  });

  it('upgrades a password hash only while it is still the one that was verified', async () => {
    const d = await createDevice(t.db, { username: 'legacy', passwordHash: '$6$old$hash' });
    expect(await upgradePasswordHash(t.db, d.id, '$6$other$hash', '$2b$new')).toBe(false);
    expect(await upgradePasswordHash(t.db, d.id, '$6$old$hash', '$2b$04$' + 'b'.repeat(53))).toBe(true);
    expect((await getDevice(t.db, 'legacy')).passwordKind).toBe('bcrypt');
    expect((await listDevices(t.db)).map((x) => x.username)).toEqual(['legacy', 'pump-7', 'sensor-1']);
  });
});
