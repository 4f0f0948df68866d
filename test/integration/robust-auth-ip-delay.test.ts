/**
 * Issue 22 #9: 60 failed logins with random usernames from one IP blocked a right password from that
 * IP (a whole fleet behind a load balancer) for 60 s. The per-IP rule now delays instead: the
 * guesses are slowed, and a device with the right password, not in the credential cache, gets in.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDevice } from '../../auth/admin.js';
import { startTestRoost, type TestRoost } from '../helpers/roost.js';
import { connack, connectBytes } from '../protocol/bytes.js';
import { uniqueId } from '../protocol/suite.js';

/** One CONNECT from 127.0.0.3; resolves the CONNACK bytes (or 'closed') and how long it took. */
async function login(port: number, username: string, password: string): Promise<{ answer: Buffer | 'closed'; ms: number }> {
  const socket = net.connect({ port, host: '127.0.0.1', localAddress: '127.0.0.3' });
  socket.on('error', () => {});
  try {
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    const started = Date.now();
    socket.write(connectBytes({ clientId: uniqueId('ip-delay'), username, password: Buffer.from(password) }));
    const answer = await new Promise<Buffer | 'closed'>((resolve) => {
      socket.once('data', (chunk: Buffer) => resolve(chunk.subarray(0, 4)));
      socket.once('close', () => resolve('closed'));
    });
    return { answer, ms: Date.now() - started };
  } finally {
    socket.destroy();
  }
}

describe('failed logins from one IP', () => {
  let t: TestRoost;
  beforeAll(async () => {
    t = await startTestRoost('postgres');
  });
  afterAll(async () => t?.stop());

  it('slow down 60 guesses at random usernames but let a right password from the same IP in', async () => {
    const port = t.roost.ports.mqtt!;
    const guesses = await Promise.all(Array.from({ length: 60 }, () => login(port, `guess-${uniqueId('u')}`, 'wrong')));
    // Each is refused: bad credentials, or, once its wait in the IP's line would pass the bound, throttled.
    const codes = guesses.map(({ answer }) => answer[3]);
    expect(guesses.every(({ answer }) => answer.length === 4 && answer.subarray(0, 3).equals(connack(0, 0).subarray(0, 3)))).toBe(true);
    expect(codes.filter((c) => c !== 4 && c !== 5)).toEqual([]);
    expect(codes.filter((c) => c === 4).length).toBeGreaterThanOrEqual(15);

    // The IP is now past its delay threshold: a further guess waits (the cap is 2 s; first answers were at bcrypt speed).
    const slowed = await login(port, `guess-${uniqueId('u')}`, 'wrong');
    expect(slowed.answer).toEqual(connack(0, 4));
    expect(slowed.ms).toBeGreaterThanOrEqual(1500);

    const username = uniqueId('fleet-device');
    await createDevice(t.roost.db, { username, passwordHash: await t.roost.auth.authenticator.hasher.hash('right-password') });
    const device = await login(port, username, 'right-password');
    expect(device.answer).toEqual(connack(0, 0));
    expect(device.ms).toBeLessThan(10_000);
  });
});
