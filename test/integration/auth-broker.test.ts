/**
 * The real deployment's Mosquitto files imported into Roost, then every allowed and refused
 * CONNECT, PUBLISH and SUBSCRIBE checked from live MQTT.js clients over real sockets.
 */
import net from 'node:net';
import path from 'node:path';
import bcrypt from 'bcrypt';
import { MqttClient, type IClientOptions } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addRule, createDevice, createRole, setEnabled, setPasswordHash, updateDevice } from '../../auth/admin.js';
import { loadDevice } from '../../auth/store.js';
import { runAuthCommand } from '../../cli/auth.js';
import { loadConfig } from '../../lib/config.js';
import { BACKENDS } from '../helpers/db.js';
import { collect, startTestRoost, type TestRoost } from '../helpers/roost.js';

const fixtures = path.resolve('test/fixtures/mosquitto');
const PASSWORDS = { admin: 'admin-test-pw', sentient_api_prod: 'api-test-pw', paragon_devices: 'devices-test-pw', legacy_sensor: 'legacy-test-pw' };
type User = keyof typeof PASSWORDS;

interface Attempt {
  client?: MqttClient;
  /** CONNACK return code of a refused CONNECT (-1: closed without one). */
  code?: number;
  ms: number;
}

/** One CONNECT from `localAddress` (any 127.x address on Linux loopback); resolves on CONNACK. */
function attempt(t: TestRoost, opts: IClientOptions, localAddress = '127.0.0.1'): Promise<Attempt> {
  const port = t.roost.ports.mqtt!;
  const started = performance.now();
  const client = new MqttClient(() => net.createConnection({ port, host: '127.0.0.1', localAddress }), {
    protocolVersion: 4,
    reconnectPeriod: 0,
    connectTimeout: 15_000,
    ...opts,
  });
  return new Promise((resolve) => {
    const ms = () => performance.now() - started;
    client.once('connect', () => resolve({ client, ms: ms() }));
    client.once('error', (err) => {
      client.end(true);
      resolve({ code: (err as Error & { code?: number }).code, ms: ms() });
    });
    client.once('close', () => resolve({ code: -1, ms: ms() }));
  });
}

async function login(t: TestRoost, user: User, clientId: string): Promise<MqttClient> {
  const a = await attempt(t, { username: user, password: PASSWORDS[user], clientId });
  if (!a.client) throw new Error(`${user} was refused with CONNACK ${a.code}`);
  return a.client;
}

/** Retries `probe` every 50 ms until `done` holds or `ms` pass (change notifications are asynchronous). */
async function eventually<T>(probe: () => Promise<T>, done: (value: T) => boolean, ms = 5000): Promise<T> {
  const deadline = performance.now() + ms;
  for (;;) {
    const value = await probe();
    if (done(value) || performance.now() > deadline) return value;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The CONNACK code of one login attempt (0 = accepted; the client is closed again). */
async function connackOf(t: TestRoost, opts: IClientOptions): Promise<number> {
  const a = await attempt(t, opts);
  await a.client?.endAsync(true);
  return a.client ? 0 : (a.code ?? -1);
}

/** SUBSCRIBE at QoS 1 and return the SUBACK's granted codes (128 = refused; MQTT.js then reports an error). */
function granted(client: MqttClient, ...filters: string[]): Promise<number[]> {
  return new Promise((resolve, reject) => {
    client.subscribe(Object.fromEntries(filters.map((f) => [f, { qos: 1 as const }])), (err, _subs, packet) => {
      const suback = packet as { granted?: number[] } | undefined;
      if (suback?.granted) resolve(suback.granted);
      else reject(err ?? new Error('no SUBACK'));
    });
  });
}

describe.each(BACKENDS)('auth in the broker (%s)', (backend) => {
  let t: TestRoost;
  const open: MqttClient[] = [];
  const keep = (c: MqttClient) => (open.push(c), c);

  beforeAll(async () => {
    t = await startTestRoost(backend, { env: { ROOST_BCRYPT_COST: '4' } });
    const ran = await runAuthCommand(['import-mosquitto', '--passwd', path.join(fixtures, 'passwd'), '--acl', path.join(fixtures, 'acl')], {
      db: t.roost.db,
      config: loadConfig(t.env),
      out: () => {},
    });
    expect(ran).toBe(true);
  });
  afterAll(async () => {
    await Promise.all(open.map((c) => c.endAsync(true).catch(() => {})));
    await t?.stop();
  });

  it('accepts each imported user with its Mosquitto password and upgrades the $7$ hash to bcrypt on first login', async () => {
    expect((await loadDevice(t.roost.db, 'admin'))?.passwordHash?.startsWith('$7$')).toBe(true);
    keep(await login(t, 'admin', 'admin-1'));
    let hash: string | null | undefined;
    for (let i = 0; i < 100 && !hash?.startsWith('$2'); i++) {
      await new Promise((r) => setTimeout(r, 30));
      hash = (await loadDevice(t.roost.db, 'admin'))?.passwordHash;
    }
    expect(hash).toMatch(/^\$2b\$04\$/);
    // The same password now verifies against bcrypt; a wrong one still does not.
    keep(await login(t, 'admin', 'admin-2'));
    expect((await attempt(t, { username: 'admin', password: 'admin-test-pW', clientId: 'admin-3' })).code).toBe(4);
  });

  it('gives a wrong password and an unknown username the same answer: 4, bad username or password', async () => {
    // A bcrypt hash (what every device ends up with) as well as a Mosquitto one: the right password gets in, a wrong one does not.
    await createDevice(t.roost.db, { username: 'bcrypt_dev', passwordHash: await bcrypt.hash('bcrypt-pw', 4) });
    expect(await connackOf(t, { username: 'bcrypt_dev', password: 'bcrypt-pw', clientId: 'x0' })).toBe(0);
    expect((await attempt(t, { username: 'bcrypt_dev', password: 'bcrypt-pW', clientId: 'x0' })).code).toBe(4);
    expect((await attempt(t, { username: 'sentient_api_prod', password: 'wrong', clientId: 'x1' })).code).toBe(4);
    expect((await attempt(t, { username: 'nobody', password: 'api-test-pw', clientId: 'x2' })).code).toBe(4);
    expect((await attempt(t, { username: 'sentient_api_prod', clientId: 'x3' })).code).toBe(4);
  });

  it('refuses anonymous clients with 5, not authorized', async () => {
    expect((await attempt(t, { clientId: 'anon' })).code).toBe(5);
  });

  it('refuses a disabled device and a client id off its pattern with 5, after checking the password', async () => {
    await setEnabled(t.roost.db, 'legacy_sensor', false);
    expect((await attempt(t, { username: 'legacy_sensor', password: PASSWORDS.legacy_sensor, clientId: 'l1' })).code).toBe(5);
    expect((await attempt(t, { username: 'legacy_sensor', password: 'wrong', clientId: 'l1' })).code).toBe(4);
    await setEnabled(t.roost.db, 'legacy_sensor', true);
    const legacy = { username: 'legacy_sensor', password: PASSWORDS.legacy_sensor };
    expect(await eventually(() => connackOf(t, { ...legacy, clientId: 'l2' }), (code) => code === 0)).toBe(0);
    await updateDevice(t.roost.db, 'legacy_sensor', { clientIdPattern: '%u-*' });
    expect(await eventually(() => connackOf(t, { ...legacy, clientId: 'other' }), (code) => code === 5)).toBe(5);
    keep(await login(t, 'legacy_sensor', 'legacy_sensor-7'));
  });

  it('lets paragon_devices subscribe to paragon/+/commands/# but rejects subscribe paragon/# with 0x80, in the same SUBSCRIBE', async () => {
    const dev = keep(await login(t, 'paragon_devices', 'pd-sub'));
    expect(await granted(dev, 'paragon/d1/commands/#', 'paragon/#', 'paragon/d1/sensors/#', 'paragon/+/commands/reboot')).toEqual([1, 128, 128, 1]);
  });

  it('delivers what the ACL allows between the API service and a device, and nothing it refuses', async () => {
    const api = keep(await login(t, 'sentient_api_prod', 'api-1'));
    const dev = keep(await login(t, 'paragon_devices', 'pd-1'));
    expect(await granted(api, 'paragon/#', 'other/#', '#')).toEqual([1, 128, 128]);
    expect(await granted(dev, 'paragon/d1/commands/#')).toEqual([1]);

    // Device → API: sensors/status/events are writable; commands (read-only) and other trees are not.
    const atApi = collect(api, 3, 5000);
    await dev.publishAsync('paragon/d1/commands/spoof', 'refused', { qos: 1 }); // acked but dropped
    await dev.publishAsync('elsewhere/x', 'refused', { qos: 0 });
    await dev.publishAsync('paragon/d1/sensors/temp', '21.5', { qos: 1 });
    await dev.publishAsync('paragon/d1/status/online', '1', { qos: 0 });
    await dev.publishAsync('paragon/d1/events/boot', 'ok', { qos: 2 });
    expect((await atApi).map((m) => m.topic)).toEqual(['paragon/d1/sensors/temp', 'paragon/d1/status/online', 'paragon/d1/events/boot']);

    // API → device: commands arrive; the API cannot publish outside paragon/.
    const atDev = collect(dev, 1, 5000);
    await api.publishAsync('other/x', 'refused', { qos: 1 });
    await api.publishAsync('paragon/d1/commands/reboot', 'now', { qos: 1 });
    expect((await atDev).map((m) => [m.topic, m.payload.toString()])).toEqual([['paragon/d1/commands/reboot', 'now']]);
  });

  it('lets admin (readwrite #) read and write everywhere but never publish to $SYS', async () => {
    const admin = keep(await login(t, 'admin', 'admin-rw'));
    expect(await granted(admin, '#', 'paragon/#')).toEqual([1, 1]);
    // `#` does not reach $-topics (MQTT-4.7.2-1): a superuser watches $SYS instead.
    await createDevice(t.roost.db, { username: 'root', passwordHash: await bcrypt.hash('root-pw', 4), superuser: true });
    const root = keep((await attempt(t, { username: 'root', password: 'root-pw', clientId: 'root-1' })).client!);
    expect(await granted(root, '$SYS/fake', 'anything/#')).toEqual([1, 1]);
    const got = collect(root, 1, 5000);
    await admin.publishAsync('$SYS/fake', 'refused', { qos: 1 });
    await admin.publishAsync('anything/at/all', 'a', { qos: 1 });
    expect((await got).map((m) => m.topic)).toEqual(['anything/at/all']);
  });

  it('applies a deny rule added while connected to messages forwarded under an already granted wildcard', async () => {
    const api = keep(await login(t, 'sentient_api_prod', 'api-2'));
    const admin = keep(await login(t, 'admin', 'admin-pub'));
    expect(await granted(api, 'paragon/#')).toEqual([1]);
    await addRule(t.roost.db, { device: 'sentient_api_prod', pattern: 'paragon/+/secret/#', access: 'read', effect: 'deny' });
    // The connection's rules are reloaded once the change notification arrives: a subscribe shows it.
    expect(await eventually(() => granted(api, 'paragon/d2/secret/#'), (g) => g[0] === 128)).toEqual([128]);
    const got = collect(api, 1, 5000);
    await admin.publishAsync('paragon/d1/secret/key', 'hidden', { qos: 1 });
    await admin.publishAsync('paragon/d1/sensors/t', 'visible', { qos: 1 });
    expect((await got).map((m) => m.topic)).toEqual(['paragon/d1/sensors/t']);
  });

  it('disconnects a device within 1 s of it being disabled, and refuses it afterwards', async () => {
    const dev = keep(await login(t, 'legacy_sensor', 'legacy_sensor-kick'));
    const closed = new Promise<number>((resolve) => dev.once('close', () => resolve(performance.now())));
    const started = performance.now();
    await setEnabled(t.roost.db, 'legacy_sensor', false);
    const at = await Promise.race([closed, new Promise<number>((r) => setTimeout(() => r(Number.POSITIVE_INFINITY), 3000))]);
    expect(at - started).toBeLessThan(1000);
    expect((await attempt(t, { username: 'legacy_sensor', password: PASSWORDS.legacy_sensor, clientId: 'legacy_sensor-8' })).code).toBe(5);
  });
});

describe.each(BACKENDS)('brute-force throttle (%s)', (backend) => {
  let t: TestRoost;

  beforeAll(async () => {
    t = await startTestRoost(backend, {
      env: { ROOST_BCRYPT_COST: '8', ROOST_AUTH_FAILURES_BEFORE_DELAY: '4', ROOST_AUTH_FAILURES_BEFORE_BLOCK: '8', ROOST_AUTH_COOLDOWN_MS: '60000' },
    });
    await createDevice(t.roost.db, { username: 'gate-1', passwordHash: await bcrypt.hash('gate-pw', 8) });
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('slows then refuses 200 wrong passwords from one IP while the device still connects from another IP', async () => {
    const started = performance.now();
    const answers: Attempt[] = [];
    let legit: Promise<Attempt> | undefined;
    for (let i = 0; i < 200; i++) {
      // Halfway through the attack, the real device connects from another address.
      if (i === 100) legit = attempt(t, { username: 'gate-1', password: 'gate-pw', clientId: 'gate-1-real' }, '127.0.0.2');
      answers.push(await attempt(t, { username: 'gate-1', password: `guess-${i}`, clientId: `attacker-${i}` }));
    }
    const elapsed = performance.now() - started;
    const checked = answers.filter((a) => a.code === 4);
    const refused = answers.filter((a) => a.code === 5);
    // Only failuresBeforeBlock guesses reach a password check; 4 of them waited 100+200+400+800 ms.
    expect(checked).toHaveLength(8);
    expect(refused).toHaveLength(192);
    expect(elapsed).toBeGreaterThanOrEqual(1500);
    expect(Math.max(...checked.map((a) => a.ms))).toBeGreaterThanOrEqual(800);
    const real = await legit!;
    expect(real.client).toBeDefined();
    expect(real.ms).toBeLessThan(1000);
    await real.client!.endAsync();
    // The block is on this username from this IP: another guess is refused at once...
    expect((await attempt(t, { username: 'gate-1', password: 'guess-x', clientId: 'gate-1-b' })).code).toBe(5);
    // ...but a password this process already verified is never throttled (a guesser cannot
    // produce it), so the real device is not locked out even behind the attacker's address.
    const known = await attempt(t, { username: 'gate-1', password: 'gate-pw', clientId: 'gate-1-c' });
    expect(known.client).toBeDefined();
    await known.client!.endAsync();
    console.info(`200 wrong passwords took ${Math.round(elapsed)} ms; the device from 127.0.0.2 connected in ${Math.round(real.ms)} ms`);
  });
});

describe('credential cache across two Roost processes on one PostgreSQL database', () => {
  let a: TestRoost;
  let b: TestRoost;

  beforeAll(async () => {
    a = await startTestRoost('postgres', { env: { ROOST_BCRYPT_COST: '4' } });
    b = await startTestRoost('postgres', { databaseUrl: a.env.DATABASE_URL, env: { ROOST_BCRYPT_COST: '4' } });
    await createDevice(a.roost.db, { username: 'twin', passwordHash: await bcrypt.hash('old-pw', 4) });
  });
  afterAll(async () => {
    await b?.stop();
    await a?.stop();
  });

  it('refuses the old password in the second process right after the first changes it', async () => {
    // Warm process B's device and credential caches.
    for (let i = 0; i < 2; i++) {
      const warm = await attempt(b, { username: 'twin', password: 'old-pw', clientId: `twin-${i}` });
      expect(warm.client).toBeDefined();
      await warm.client!.endAsync();
    }
    const changed = performance.now();
    await setPasswordHash(a.roost.db, 'twin', await bcrypt.hash('new-pw', 4));
    let old: Attempt | undefined;
    for (let i = 0; i < 20; i++) {
      old = await attempt(b, { username: 'twin', password: 'old-pw', clientId: `twin-old-${i}` });
      if (old.code === 4) break;
      await old.client?.endAsync();
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(old?.code).toBe(4);
    expect(performance.now() - changed).toBeLessThan(2000);
    const fresh = await attempt(b, { username: 'twin', password: 'new-pw', clientId: 'twin-new' });
    expect(fresh.client).toBeDefined();
    await fresh.client!.endAsync();
  });
});

describe('anonymous clients when ROOST_ALLOW_ANONYMOUS is on', () => {
  let t: TestRoost;

  beforeAll(async () => {
    t = await startTestRoost('pglite', { env: { ROOST_ALLOW_ANONYMOUS: 'true', ROOST_ANONYMOUS_ROLE: 'guests' } });
    await createRole(t.roost.db, 'guests');
    await addRule(t.roost.db, { role: 'guests', pattern: 'public/#', access: 'read' });
  });
  afterAll(async () => {
    await t?.stop();
  });

  it("get the anonymous role's rules, and a rule added to the role applies to them at once", async () => {
    const anon = (await attempt(t, { clientId: 'guest-1' })).client!;
    expect(anon).toBeDefined();
    expect(await granted(anon, 'public/#', 'private/#')).toEqual([1, 128]);
    const got = collect(anon, 1, 5000);
    await anon.publishAsync('public/news', 'refused: read only', { qos: 1 });
    await addRule(t.roost.db, { role: 'guests', pattern: 'public/guestbook', access: 'write' });
    // Publish until the reloaded rules let it through (refused ones are dropped, not queued).
    const poll = setInterval(() => anon.publish('public/guestbook', 'hello', { qos: 0 }), 100);
    const msgs = await got;
    clearInterval(poll);
    expect(msgs.map((m) => [m.topic, m.payload.toString()])).toEqual([['public/guestbook', 'hello']]);
    await anon.endAsync();
  });
});
