/**
 * Server-Sent Event streams follow access as it changes (issue 22 #6): a device disabled, an API
 * token revoked or a browser token deleted while its stream is open stops receiving at once, and
 * a browser token (username browser:<id>) can open a stream at all.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, connectClient, startTestRoost, type TestRoost } from '../helpers/roost.js';

let t: TestRoost;
beforeAll(async () => {
  t = await startTestRoost('postgres');
});
afterAll(async () => t?.stop());

interface OpenStream {
  status: number;
  text: () => string;
  /** Resolves when the server ends the stream. */
  ended: Promise<void>;
  close: () => void;
}

async function openStream(path: string, authorization: string): Promise<OpenStream> {
  const controller = new AbortController();
  const res = await fetch(`http://127.0.0.1:${t.roost.ports.api}${path}`, { headers: { authorization }, signal: controller.signal });
  let text = '';
  const ended = (async () => {
    if (!res.body) return;
    const reader = res.body.getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        text += Buffer.from(value).toString();
      }
    } catch {
      // aborted by the test
    }
  })();
  return { status: res.status, text: () => text, ended, close: () => controller.abort() };
}

const basic = (username: string, password: string) => 'Basic ' + Buffer.from(`${username}:${password}`).toString('base64');
const within = (p: Promise<void>, ms: number) => Promise.race([p.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function publish(topic: string, payload: string) {
  const pub = await connectClient(t, 'mqtt');
  try {
    await pub.publishAsync(topic, JSON.stringify({ m: payload }), { qos: 1 });
  } finally {
    await pub.endAsync();
  }
}

describe('an open stream loses access when its credential does', () => {
  it('a device disabled while its live stream is open gets nothing published after, and the stream ends', async () => {
    await api(t, 'POST', '/api/devices', { username: 'tap-1', password: 'tap-1-password' });
    await api(t, 'POST', '/api/rules', { device: 'tap-1', pattern: 'tap/#', access: 'read' });
    const stream = await openStream('/api/stream/live?filter=tap/%23', basic('tap-1', 'tap-1-password'));
    try {
      expect(stream.status).toBe(200);
      await sleep(200);
      await publish('tap/a', 'before');
      await sleep(300);
      expect(stream.text()).toContain('before');
      expect((await api(t, 'PATCH', '/api/devices/tap-1', { enabled: false })).status).toBe(200);
      await sleep(500);
      await publish('tap/a', 'after-disable');
      expect(await within(stream.ended, 6000)).toBe(true);
      expect(stream.text()).not.toContain('after-disable');
    } finally {
      stream.close();
    }
  });

  it('a revoked API token\'s stored-message stream ends and shows nothing stored after the revocation', async () => {
    const created = await api(t, 'POST', '/api/tokens', { name: 'soon-revoked', role: 'viewer' });
    expect(created.status).toBe(201);
    const stream = await openStream('/api/messages/stream?filter=vault/%23', `Bearer ${created.body.token}`);
    try {
      expect(stream.status).toBe(200);
      await sleep(200);
      expect((await api(t, 'DELETE', `/api/tokens/${created.body.id}`)).status).toBe(204);
      await sleep(500);
      await publish('vault/b', 'after-revoke');
      expect(await within(stream.ended, 6000)).toBe(true);
      expect(stream.text()).not.toContain('after-revoke');
    } finally {
      stream.close();
    }
  });
});

describe('browser tokens on SSE', () => {
  it('a browser token opens a live stream with its filters, and deleting the token ends it', async () => {
    const minted = await api(t, 'POST', '/api/browser-tokens', { filters: ['wall/#'], ttl_s: 600 });
    expect(minted.status).toBe(201);
    const stream = await openStream('/api/stream/live?filter=wall/%23', basic(minted.body.username, minted.body.token));
    try {
      expect(stream.status).toBe(200);
      await sleep(200);
      await publish('wall/clock', 'tick');
      await sleep(300);
      expect(stream.text()).toContain('tick');
      const id = minted.body.username.slice('browser:'.length);
      expect((await api(t, 'DELETE', `/api/browser-tokens/${id}`)).status).toBe(204);
      expect(await within(stream.ended, 6000)).toBe(true);
    } finally {
      stream.close();
    }
  });
});
