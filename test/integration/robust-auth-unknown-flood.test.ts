/**
 * Security review, issue 22 #16 (the CONNECT part): a burst of CONNECTs with unknown usernames
 * from one address filled the bcrypt workers (each unknown name was checked against a dummy hash
 * on the same pool) before a single failure was counted, so a real device's login waited behind
 * all of them. Now an unknown username is answered after a delay as long as a check would take,
 * without a bcrypt compare on the shared pool, and one address has a bounded number of logins in
 * progress (more get CONNACK 3, server unavailable: try again). A real device that is not in the
 * credential cache, connecting from another address during the burst, gets in within a bound.
 */
import net from 'node:net';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectBytes } from '../protocol/bytes.js';
import { api, startTestRoost, type TestRoost } from '../helpers/roost.js';

const BURST = 200;

/** A CONNECT from 127.0.0.1 with username `username`; resolves with the CONNACK return code, or 'closed'. */
function connackFromFlood(port: number, username: string, ms = 30_000): Promise<number | 'closed'> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1', localAddress: '127.0.0.1' });
    const timer = setTimeout(() => done('closed'), ms);
    function done(v: number | 'closed') {
      clearTimeout(timer);
      socket.destroy();
      resolve(v);
    }
    socket.on('connect', () => socket.write(connectBytes({ clientId: `flood-${username}`, username, password: Buffer.from(`guess-${username}`) })));
    socket.once('data', (buf: Buffer) => done(buf[0] === 0x20 && buf.length >= 4 ? buf[3] : 'closed'));
    socket.on('error', () => done('closed'));
    socket.on('close', () => done('closed'));
  });
}

/** MQTT.js over a socket bound to another loopback address than the flood's. */
function connectFrom(localAddress: string, port: number, username: string, password: string): Promise<MqttClient> {
  const client = new mqtt.MqttClient(() => net.connect({ port, host: '127.0.0.1', localAddress }), {
    protocolVersion: 4,
    reconnectPeriod: 0,
    connectTimeout: 20_000,
    clientId: username,
    username,
    password,
  });
  return new Promise((resolve, reject) => {
    client.once('connect', () => resolve(client));
    client.once('error', (err) => {
      client.end(true);
      reject(err);
    });
  });
}

describe('a burst of CONNECTs with unknown usernames from one address', () => {
  let t: TestRoost;
  beforeAll(async () => {
    // A real bcrypt cost: at cost 10 a compare takes ~50-100 ms, so 200 queued ones take seconds.
    t = await startTestRoost('postgres', { env: { ROOST_BCRYPT_COST: '10' } });
    for (const username of ['real-16', 'quiet-16']) {
      const created = await api(t, 'POST', '/api/devices', { username, password: `the-real-password-16` });
      expect(created.status, created.text).toBe(201);
    }
  });
  afterAll(async () => t?.stop());

  it('does not delay a real device logging in from another address, refuses every guess, and runs a bounded number of bcrypt compares for them', async () => {
    // The same login with no burst: what a login costs on this machine now.
    const quietStart = Date.now();
    await (await connectFrom('127.0.0.2', t.roost.ports.mqtt!, 'quiet-16', 'the-real-password-16')).endAsync();
    const quietMs = Date.now() - quietStart;
    const hasher = t.roost.auth.authenticator.hasher;
    const comparesBefore = hasher.unknownUserCompares;
    const port = t.roost.ports.mqtt!;
    const flood = Promise.all(Array.from({ length: BURST }, (_, i) => connackFromFlood(port, `ghost-${i}`)));

    await new Promise((r) => setTimeout(r, 200));
    // Not in the credential cache: its password is checked by bcrypt, on the pool the flood used to fill.
    const started = Date.now();
    const real = await connectFrom('127.0.0.2', port, 'real-16', 'the-real-password-16');
    const realMs = Date.now() - started;
    await real.endAsync();

    const answers = await flood;
    const codes = new Map<string, number>();
    for (const a of answers) codes.set(String(a), (codes.get(String(a)) ?? 0) + 1);
    console.info(`unknown-username burst of ${BURST}: answers ${JSON.stringify(Object.fromEntries(codes))}; the real device connected in ${realMs} ms (${quietMs} ms with no burst)`);
    // Behind 200 compares on 2 workers it would wait ~100 of its own logins (over 20 s was seen);
    // the bound leaves room for a loaded machine and for the burst's sockets and lookups.
    expect(realMs).toBeLessThan(2000 + 2 * quietMs);
    expect(codes.get('0') ?? 0).toBe(0);
    expect((codes.get('3') ?? 0) + (codes.get('4') ?? 0) + (codes.get('5') ?? 0)).toBe(BURST);
    expect(codes.get('4') ?? 0).toBeGreaterThan(0);
    // At most one compare calibrates the delay; the guesses themselves cost no bcrypt work.
    expect(hasher.unknownUserCompares - comparesBefore).toBeLessThanOrEqual(1);
  }, 90_000);
});
