/**
 * Security review, issue 22 #1: a will is a publish made later, so it is checked when the CONNECT
 * carries it. Device `lim` may write only `lim/#`; it tries to leave wills on another device's
 * command topic, on $SYS and on an over-long topic, over TCP and WebSocket. Each CONNECT is refused
 * with CONNACK 5 (not authorized) and nothing reaches a subscriber, the retained store or the
 * messages table. A will on its own topic is accepted, and published, retained and stored with its
 * username when the connection drops.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import { api, connectClient, startTestRoost, until, type TestRoost } from '../helpers/roost.js';
import { connectBytes } from '../protocol/bytes.js';
import { RawClient, type RawTransport } from '../protocol/raw-client.js';

describe('wills of a restricted device', () => {
  let t: TestRoost;
  let password: string;
  let watcher: MqttClient;
  const seen: string[] = [];
  let n = 0;

  beforeAll(async () => {
    t = await startTestRoost('postgres', { env: { ROOST_MAX_TOPIC_LENGTH: '128' } });
    const created = await api(t, 'POST', '/api/devices', { username: 'lim' });
    expect(created.status, created.text).toBe(201);
    password = created.body.password;
    expect((await api(t, 'POST', '/api/rules', { device: 'lim', pattern: 'lim/#', access: 'readwrite' })).status).toBe(201);
    watcher = await connectClient(t, 'mqtt', { clientId: 'will-watcher' });
    await watcher.subscribeAsync(['#', '$SYS/roost/#'], { qos: 1 });
    watcher.on('message', (topic) => !topic.startsWith('$SYS/roost/') && seen.push(topic));
  });
  afterAll(async () => {
    await watcher?.endAsync();
    await t?.stop();
  });

  async function connectWithWill(transport: RawTransport, topic: string): Promise<{ client: RawClient; returnCode: number }> {
    const client = await RawClient.open(transport, t.roost.ports[transport]!);
    client.send(connectBytes({ clientId: `lim-${++n}`, username: 'lim', password: Buffer.from(password), will: { topic, payload: Buffer.from('open'), qos: 1, retain: true } }));
    const { packet } = await client.next();
    expect(packet).toMatchObject({ cmd: 'connack' });
    return { client, returnCode: (packet as { returnCode: number }).returnCode };
  }

  const forbidden: Array<[string, string]> = [
    ["another device's command topic", 'victim/cmd'],
    ['a $SYS topic', '$SYS/roost/fake'],
    ['a topic over the length limit', `lim/${'x'.repeat(200)}`],
  ];

  for (const transport of ['mqtt', 'ws'] as const) {
    for (const [what, topic] of forbidden) {
      it(`a will on ${what} gets CONNACK 5 over ${transport}, and is never published, retained or stored`, async () => {
        const { client, returnCode } = await connectWithWill(transport, topic);
        expect(returnCode).toBe(5);
        expect(await client.closedWithin(2000)).toBe(true);
        await new Promise((r) => setTimeout(r, 300));
        expect(seen).not.toContain(topic);
        const retained = await api(t, 'GET', `/api/retained/message?topic=${encodeURIComponent(topic)}`);
        expect(retained.status).toBe(404);
        const stored = await t.roost.db.query<{ n: string }>('SELECT count(*) AS n FROM messages WHERE topic = $1', [topic]);
        expect(Number(stored.rows[0].n)).toBe(0);
      });
    }

    it(`a will on its own topic is accepted over ${transport}, then published, retained and stored as lim's when the connection drops`, async () => {
      const topic = `lim/status/${transport}`;
      const { client, returnCode } = await connectWithWill(transport, topic);
      expect(returnCode).toBe(0);
      client.end(); // the socket closes without DISCONNECT: the will goes out (MQTT-3.1.2-8)
      expect(await until(() => seen.includes(topic), 5000)).toBe(true);
      const retained = await api(t, 'GET', `/api/retained/message?topic=${encodeURIComponent(topic)}`);
      expect(retained.status).toBe(200);
      expect(await until(async () => (await t.roost.db.query('SELECT 1 FROM messages WHERE topic = $1', [topic])).rows.length === 1, 5000)).toBe(true);
      const row = await t.roost.db.query<{ username: string | null }>('SELECT username FROM messages WHERE topic = $1', [topic]);
      expect(row.rows[0].username).toBe('lim');
    });
  }
});
