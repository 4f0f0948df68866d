/**
 * The zero-config start (issue 21), like Mosquitto 2 with no listener configured: with no address
 * set, Roost listens on 127.0.0.1 only and lets anonymous clients read and write every topic but
 * $SYS; once an address is set, anonymous clients are refused again.
 */
import { readFileSync } from 'node:fs';
import type { MqttClient } from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS } from '../helpers/db.js';
import { collect, connectClient, startTestRoost, type TestRoost } from '../helpers/roost.js';

/** An empty variable counts as unset (lib/config.ts): the helper's 127.0.0.1 addresses are dropped. */
const NO_ADDRESS = { ROOST_HOST: '', ROOST_API_HOST: '' };
const ANONYMOUS = { username: undefined, password: undefined };

/** The local addresses of the sockets listening on `port`, read from the kernel's tables. */
function listeningAddresses(port: number): string[] {
  const addresses: string[] = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const [, local, , state] = line.trim().split(/\s+/);
      if (state !== '0A' || !local) continue; // 0A: LISTEN
      const [hex, portHex] = local.split(':');
      if (parseInt(portHex, 16) !== port) continue;
      addresses.push(hex.length === 8 ? hexToIpv4(hex) : hex === '0'.repeat(32) ? '::' : `ipv6:${hex}`);
    }
  }
  return addresses;
}

/** /proc/net/tcp writes an IPv4 address as one little-endian 32-bit hex number. */
function hexToIpv4(hex: string): string {
  return [6, 4, 2, 0].map((i) => parseInt(hex.slice(i, i + 2), 16)).join('.');
}

/** The CONNACK return code of a refused CONNECT. */
async function refusedCode(t: TestRoost): Promise<number | undefined> {
  try {
    const client = await connectClient(t, 'mqtt', ANONYMOUS);
    await client.endAsync();
    return 0;
  } catch (err) {
    return (err as { code?: number }).code;
  }
}

describe.each(BACKENDS)('loopback-only mode with no address configured (%s)', (backend) => {
  let t: TestRoost;
  const open: MqttClient[] = [];

  beforeAll(async () => {
    t = await startTestRoost(backend, { env: NO_ADDRESS });
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((c) => c.endAsync(true)));
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('binds the MQTT, WebSocket and API listeners to 127.0.0.1 only', () => {
    expect(t.roost.ports.mqtt).toBeGreaterThan(0);
    for (const name of ['mqtt', 'ws', 'api'] as const) {
      expect(listeningAddresses(t.roost.ports[name]!), name).toEqual(['127.0.0.1']);
    }
  });

  it('lets an anonymous client subscribe and publish on an ordinary topic', async () => {
    const sub = await connectClient(t, 'mqtt', { ...ANONYMOUS, clientId: 'anon-sub' });
    open.push(sub);
    const pub = await connectClient(t, 'mqtt', { ...ANONYMOUS, clientId: 'anon-pub' });
    open.push(pub);
    const [grant] = await sub.subscribeAsync('sensors/#', { qos: 1 });
    expect(grant.qos).toBe(1);
    const got = collect(sub, 1);
    await pub.publishAsync('sensors/piano-7/humidity', '{"rh":41.5}', { qos: 1 });
    expect((await got).map((m) => [m.topic, m.payload.toString()])).toEqual([['sensors/piano-7/humidity', '{"rh":41.5}']]);
  });

  it('refuses an anonymous client reading or writing $SYS', async () => {
    const anon = await connectClient(t, 'mqtt', { ...ANONYMOUS, clientId: 'anon-sys' });
    open.push(anon);
    // MQTT.js rejects a SUBACK 0x80; the packet it carries says what was granted.
    const sysGrant = await anon.subscribeAsync('$SYS/#', { qos: 0 }).then(
      ([grant]) => grant.qos,
      (err: { packet?: { granted?: number[] } }) => err.packet?.granted?.[0],
    );
    expect(sysGrant).toBe(128);
    // A superuser sees $SYS; what the anonymous client writes there must not reach it.
    const admin = await connectClient(t, 'mqtt', { clientId: 'sys-watcher' });
    open.push(admin);
    await admin.subscribeAsync('$SYS/fake/#', { qos: 1 });
    const got = collect(admin, 1, 1500);
    await anon.publishAsync('$SYS/fake/uptime', 'forged', { qos: 1 });
    expect(await got).toEqual([]);
  });
});

/** These tests start their own Roost; a loaded CI machine is 3× slower. */
const START_TEST_MS = 90_000;

describe('anonymous clients once an address is configured', () => {
  let t: TestRoost | undefined;
  afterEach(async () => {
    await t?.stop();
    t = undefined;
  });

  it('refuses them with CONNACK 5 when ROOST_HOST is set', async () => {
    t = await startTestRoost('pglite', { env: { ROOST_HOST: '127.0.0.1', ROOST_API_HOST: '' } });
    expect(await refusedCode(t)).toBe(5);
  }, START_TEST_MS);

  it('refuses them with CONNACK 5 when only ROOST_API_HOST is set', async () => {
    t = await startTestRoost('pglite', { env: { ROOST_HOST: '', ROOST_API_HOST: '127.0.0.1' } });
    expect(await refusedCode(t)).toBe(5);
  }, START_TEST_MS);
});
