/**
 * 2,000 concurrent attackers, each from its own loopback address, guess the password of a real
 * device. None gets in, the bcrypt queue stays bounded (the surplus is told "server unavailable",
 * CONNACK 3), and the real device — already verified once — reconnects at once from its own
 * address in the middle of the flood.
 */
import net from 'node:net';
import mqttPacket from 'mqtt-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, connectClient, startTestRoost, type TestRoost } from '../helpers/roost.js';

/** Sends a CONNECT from `localAddress`; resolves with the CONNACK return code, or 'closed'. */
function guess(port: number, localAddress: string, password: string, ms = 20_000): Promise<number | 'closed'> {
  return new Promise((resolve) => {
    const socket = net.createConnection({ port, host: '127.0.0.1', localAddress });
    const timer = setTimeout(() => done('closed'), ms);
    let answered = false;
    function done(v: number | 'closed') {
      if (answered) return;
      answered = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(v);
    }
    socket.on('connect', () => {
      socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: `atk-${localAddress}`, keepalive: 30, username: 'real-1', password: Buffer.from(password) }));
    });
    socket.on('data', (buf: Buffer) => {
      // CONNACK: 0x20 0x02 <flags> <return code>
      if (buf[0] === 0x20 && buf.length >= 4) done(buf[3]);
    });
    socket.on('error', () => done('closed'));
    socket.on('close', () => done('closed'));
  });
}

describe('failed-login defence under 2,000 concurrent attackers', () => {
  let t: TestRoost;
  beforeAll(async () => {
    t = await startTestRoost('postgres', { env: { ROOST_BCRYPT_COST: '8', ROOST_BCRYPT_QUEUE: '500' } });
    expect((await api(t, 'POST', '/api/devices', { username: 'real-1', password: 'the-real-password' })).status).toBe(201);
  });
  afterAll(async () => t?.stop());

  it('lets none in, bounds the password work, and the real device still connects at once', async () => {
    // The real device has logged in before (its password is in the verified-credential cache).
    const first = await connectClient(t, 'mqtt', { username: 'real-1', password: 'the-real-password', clientId: 'real-1' });
    await first.endAsync();

    const port = t.roost.ports.mqtt!;
    const addresses = Array.from({ length: 2000 }, (_, i) => `127.1.${(i >> 8) + 1}.${(i & 255) || 1}`);
    const started = Date.now();
    const flood = Promise.all(addresses.map((a, i) => guess(port, a, `guess-${i}`)));

    await new Promise((r) => setTimeout(r, 300));
    const t0 = Date.now();
    const real = await connectClient(t, 'mqtt', { username: 'real-1', password: 'the-real-password', clientId: 'real-1-again' });
    const realMs = Date.now() - t0;
    await real.endAsync();

    const answers = await flood;
    const codes = new Map<string, number>();
    for (const a of answers) codes.set(String(a), (codes.get(String(a)) ?? 0) + 1);
    console.info(`flood of 2,000 took ${Date.now() - started} ms; answers ${JSON.stringify(Object.fromEntries(codes))}; the real device connected in ${realMs} ms`);
    expect(codes.get('0') ?? 0).toBe(0); // nobody got in
    // Queued behind the flood it would wait for the 500 compares ahead of it (cost 8, ~13 ms each,
    // over 3 s on two cores); 1.5 s leaves room for a loaded machine (1,071 ms was seen once in CI).
    expect(realMs).toBeLessThan(1500);
    // Bounded work: beyond the wait queue the surplus is refused as "server unavailable" at once.
    expect((codes.get('4') ?? 0) + (codes.get('3') ?? 0) + (codes.get('5') ?? 0)).toBe(2000);
    expect(codes.get('3') ?? 0).toBeGreaterThan(0);
  }, 90_000);
});
