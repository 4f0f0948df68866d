/**
 * The MQTT 5 properties of a PUBLISH, stored with it (schema/011_message_properties.sql) and given
 * back by every reader of stored messages: history, latest, pull, the SSE stream and webhooks.
 * Real MQTT.js clients (protocolVersion 5 and 4) publish at QoS 1, so a message's row is committed
 * when its PUBACK arrives. Also: the user_property history filter, and payload_json as the
 * publisher declares it (Payload Format Indicator 1 + a JSON content type) instead of as guessed.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { IClientPublishOptions, MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS, type BackendName } from '../helpers/db.js';
import { api, connectClient, startTestRoost, until, type TestRoost } from '../helpers/roost.js';

type Properties = NonNullable<IClientPublishOptions['properties']>;

/** What a PUBLISH with every stored property carries, and what the API must give back for it. */
const PUBLISHED: Properties = {
  payloadFormatIndicator: true,
  contentType: 'application/json',
  responseTopic: 'props/reply/hall-b',
  correlationData: Buffer.from([0, 1, 2, 0xff]),
  messageExpiryInterval: 3600,
  // MQTT.js sends the pairs in this order: site, zone (twice: a repeated key), kéy.
  userProperties: { site: 'hall-b', zone: ['1', '2'], kéy: 'välue' },
};
const STORED = {
  content_type: 'application/json',
  payload_format: 1,
  user_properties: [['site', 'hall-b'], ['zone', '1'], ['zone', '2'], ['kéy', 'välue']],
  response_topic: 'props/reply/hall-b',
  correlation_data: Buffer.from([0, 1, 2, 0xff]).toString('base64'),
  message_expiry_interval: 3600,
};
const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

interface StoredMessage {
  id: string;
  topic: string;
  encoding: 'json' | 'base64';
  payload: unknown;
  properties: Record<string, unknown> | null;
}

/** The stored messages of one topic, oldest first. */
async function history(t: TestRoost, topic: string): Promise<StoredMessage[]> {
  const res = await api(t, 'GET', `/api/messages?filter=${encodeURIComponent(topic)}`);
  expect(res.status).toBe(200);
  return (res.body.items as StoredMessage[]).reverse();
}

/** The stored message a topic holds (exactly one). */
async function onlyMessage(t: TestRoost, topic: string): Promise<StoredMessage> {
  const items = await history(t, topic);
  expect(items).toHaveLength(1);
  return items[0];
}

/** The first `count` message events of the SSE stream after `afterId`. */
async function streamed(t: TestRoost, filter: string, afterId: string, count: number): Promise<StoredMessage[]> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), 10_000);
  const events: StoredMessage[] = [];
  try {
    const url = `http://127.0.0.1:${t.roost.ports.api}/api/messages/stream?filter=${encodeURIComponent(filter)}&after_id=${afterId}`;
    const res = await fetch(url, { headers: { authorization: `Bearer ${t.apiToken}` }, signal: ac.signal });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    let text = '';
    while (events.length < count) {
      const { value, done } = await reader.read();
      if (done) break;
      text += Buffer.from(value).toString();
      let end: number;
      while ((end = text.indexOf('\n\n')) !== -1) {
        const data = text.slice(0, end).split('\n').find((line) => line.startsWith('data: '));
        text = text.slice(end + 2);
        if (data) events.push(JSON.parse(data.slice('data: '.length)) as StoredMessage);
      }
    }
  } catch (err) {
    if ((err as Error).name !== 'AbortError') throw err;
  } finally {
    clearTimeout(timer);
    ac.abort();
  }
  return events;
}

/** A webhook receiver on loopback that keeps every event it is sent. */
class Receiver {
  events: Array<{ type: string; data: Record<string, unknown> }> = [];
  private server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      this.events.push(...(JSON.parse(Buffer.concat(chunks).toString('utf8')) as { events: Receiver['events'] }).events);
      res.writeHead(200).end();
    });
  });

  async start(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return (this.server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

describe.each(BACKENDS)('stored MQTT 5 properties (%s)', (backend: BackendName) => {
  let t: TestRoost;
  let v5: MqttClient;
  let v4: MqttClient;
  const receiver = new Receiver();
  let receiverPort = 0;
  beforeAll(async () => {
    // The receiver listens on loopback, which webhooks may reach only when listed.
    t = await startTestRoost(backend, { env: { ROOST_WEBHOOK_MAX_BACKOFF_MS: '1000', ROOST_WEBHOOK_ALLOWED_TARGETS: '127.0.0.1' } });
    receiverPort = await receiver.start();
    v5 = await connectClient(t, 'mqtt', { protocolVersion: 5, clientId: 'props-v5' });
    v4 = await connectClient(t, 'mqtt', { protocolVersion: 4, clientId: 'props-v4' });
  });
  afterAll(async () => {
    await v5?.endAsync();
    await v4?.endAsync();
    await t?.stop();
    await receiver.stop();
  });

  it('history, latest, pull and the stream give back exactly the properties published, user properties in order with a repeated key; 3.1.1 and property-less v5 messages have none', async () => {
    const before = await api(t, 'GET', '/api/messages?limit=1');
    const afterId: string = before.body.items[0]?.id ?? '0';
    await v5.publishAsync('props/all/full', '{"t":21.5}', { qos: 1, properties: PUBLISHED });
    await v5.publishAsync('props/all/bare5', 'no properties', { qos: 1 });
    await v4.publishAsync('props/all/v311', 'three one one', { qos: 1 });
    // A Four Byte Integer beyond 2^31 - 1 (136 years) is kept as sent.
    await v5.publishAsync('props/all/longest', 'x', { qos: 1, properties: { messageExpiryInterval: 4_294_967_295 } });

    const full = await onlyMessage(t, 'props/all/full');
    expect(full).toMatchObject({ encoding: 'json', payload: { t: 21.5 } });
    expect(full.properties).toEqual(STORED); // arrays compared in order: the user properties' order too
    expect((await onlyMessage(t, 'props/all/bare5')).properties).toBeNull();
    expect((await onlyMessage(t, 'props/all/v311')).properties).toBeNull();
    expect((await onlyMessage(t, 'props/all/longest')).properties).toEqual({ message_expiry_interval: 4_294_967_295 });

    let latest: StoredMessage | undefined;
    await until(async () => {
      latest = (await api(t, 'GET', '/api/messages/latest?filter=props/all/full')).body.items?.[0];
      return latest !== undefined;
    }, 5000);
    expect(latest?.properties).toEqual(STORED);

    const pulled = await api(t, 'GET', `/api/messages/pull?filter=props/all/%2B&after_id=${afterId}`);
    expect(pulled.status).toBe(200);
    const byTopic = Object.fromEntries((pulled.body.items as StoredMessage[]).map((m) => [m.topic, m.properties]));
    expect(byTopic).toEqual({
      'props/all/full': STORED,
      'props/all/bare5': null,
      'props/all/v311': null,
      'props/all/longest': { message_expiry_interval: 4_294_967_295 },
    });

    const events = await streamed(t, 'props/all/+', afterId, 4);
    expect(Object.fromEntries(events.map((m) => [m.topic, m.properties]))).toEqual(byTopic);
  });

  it('a v5 will is stored with its will properties when its connection drops without DISCONNECT', async () => {
    const client = await connectClient(t, 'mqtt', {
      protocolVersion: 5,
      clientId: 'props-will',
      will: {
        topic: 'props/will/gone',
        payload: Buffer.from('{"online":false}'),
        qos: 1,
        retain: false,
        properties: { willDelayInterval: 0, contentType: 'application/json', payloadFormatIndicator: true, userProperties: { reason: 'lost' } },
      },
    });
    client.stream.destroy(); // no DISCONNECT: the will goes out (MQTT-3.1.2-8)
    let stored: StoredMessage[] = [];
    await until(async () => (stored = await history(t, 'props/will/gone')).length > 0, 10_000);
    expect(stored).toHaveLength(1);
    expect(stored[0]).toMatchObject({ encoding: 'json', payload: { online: false } });
    expect(stored[0].properties).toEqual({ content_type: 'application/json', payload_format: 1, user_properties: [['reason', 'lost']] });
    client.end(true);
  });

  it('a burst of v5 and 3.1.1 publishes, written in shared batches, keeps each message its own properties', async () => {
    // Sent without waiting for each PUBACK: they reach the store writer together.
    await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        i % 2 === 0
          ? v5.publishAsync(`props/burst/${i}`, String(i), { qos: 1, properties: { userProperties: { n: String(i) } } })
          : v4.publishAsync(`props/burst/${i}`, String(i), { qos: 1 }),
      ),
    );
    const res = await api(t, 'GET', '/api/messages?filter=props/burst/%2B');
    expect(res.body.items).toHaveLength(40);
    for (const m of res.body.items as StoredMessage[]) {
      const i = Number(m.topic.split('/')[2]);
      expect(m.properties, m.topic).toEqual(i % 2 === 0 ? { user_properties: [['n', String(i)]] } : null);
    }
  });

  it('user_property=key:value returns only the messages carrying that exact pair, newest first', async () => {
    const publish = (topic: string, userProperties?: Record<string, string | string[]>) =>
      v5.publishAsync(topic, topic, { qos: 1, ...(userProperties ? { properties: { userProperties } } : {}) });
    await publish('props/filter/a', { site: 'hall-c' });
    await publish('props/filter/b', { site: 'hall-a' });
    await publish('props/filter/c', { 'hall-c': 'site' }); // the same two strings, as key and value the other way round
    await publish('props/filter/d', { zone: '1', site: ['x', 'hall-c'] }); // the pair as the second of a repeated key
    await publish('props/filter/e', { site: 'hall-c:annex' }); // a value with a colon
    await publish('props/filter/f', { site: 'hall-c', other: 'y' });
    await publish('props/filter/g'); // no properties
    await v4.publishAsync('props/filter/h', 'site:hall-c', { qos: 1 });
    await publish('props/other/i', { site: 'hall-c' });

    const topics = async (query: string) => {
      const res = await api(t, 'GET', `/api/messages?${query}`);
      expect(res.status).toBe(200);
      return (res.body.items as StoredMessage[]).map((m) => m.topic);
    };
    expect(await topics('filter=props/filter/%2B&user_property=site:hall-c')).toEqual(['props/filter/f', 'props/filter/d', 'props/filter/a']);
    expect(await topics('user_property=site%3Ahall-c')).toEqual(['props/other/i', 'props/filter/f', 'props/filter/d', 'props/filter/a']);
    expect(await topics('user_property=site:hall-c:annex')).toEqual(['props/filter/e']);
    expect(await topics('user_property=hall-c:site')).toEqual(['props/filter/c']);
    expect(await topics('user_property=site:x')).toEqual(['props/filter/d']);
    expect(await topics('user_property=site:hall')).toEqual([]);
    // Paging through a user_property filter: the cursor keeps to it.
    const first = await api(t, 'GET', '/api/messages?user_property=site:hall-c&limit=3');
    expect(first.body.items.map((m: StoredMessage) => m.topic)).toEqual(['props/other/i', 'props/filter/f', 'props/filter/d']);
    const second = await api(t, 'GET', `/api/messages?user_property=site:hall-c&limit=3&cursor=${first.body.next_cursor}`);
    expect(second.body.items.map((m: StoredMessage) => m.topic)).toEqual(['props/filter/a']);

    for (const bad of ['site', 'site%00:x', 'site:%00']) {
      const res = await api(t, 'GET', `/api/messages?user_property=${bad}`);
      expect(res.status).toBe(400);
      expect(res.body.code).toBe('ROOST_ERR_BAD_REQUEST');
    }
  });

  it('a payload declared UTF-8 application/json is stored as JSON without guessing, even after a byte order mark the guess refuses; text/plain and undeclared payloads are guessed as before', async () => {
    const bomJson = Buffer.concat([BOM, Buffer.from('{"reading":7}')]);
    const declared = (contentType: string): Properties => ({ payloadFormatIndicator: true, contentType });
    await v5.publishAsync('props/json/declared', bomJson, { qos: 1, properties: declared('application/json') });
    await v5.publishAsync('props/json/charset', bomJson, { qos: 1, properties: declared('Application/JSON; charset="UTF-8"') });
    await v5.publishAsync('props/json/suffix', bomJson, { qos: 1, properties: declared('application/vnd.roost.reading+json') });
    await v5.publishAsync('props/json/number', '42', { qos: 1, properties: declared('application/json') });
    await v5.publishAsync('props/json/string', '"42"', { qos: 1, properties: declared('application/json') });
    // The same bytes, not declared JSON: today's guess, which a byte order mark defeats.
    await v4.publishAsync('props/json/v311', bomJson, { qos: 1 });
    await v5.publishAsync('props/json/text', bomJson, { qos: 1, properties: declared('text/plain') });
    await v5.publishAsync('props/json/bytes', bomJson, { qos: 1, properties: { contentType: 'application/json' } });
    await v5.publishAsync('props/json/latin1', bomJson, { qos: 1, properties: declared('application/json; charset=iso-8859-1') });
    // Declared text/plain, but JSON: still guessed JSON, as before.
    await v5.publishAsync('props/json/looks', '{"looks":"json"}', { qos: 1, properties: declared('text/plain') });

    for (const topic of ['props/json/declared', 'props/json/charset', 'props/json/suffix']) {
      expect(await onlyMessage(t, topic), topic).toMatchObject({ encoding: 'json', payload: { reading: 7 } });
    }
    expect(await onlyMessage(t, 'props/json/number')).toMatchObject({ encoding: 'json', payload: 42 });
    expect(await onlyMessage(t, 'props/json/string')).toMatchObject({ encoding: 'json', payload: '42' });
    for (const topic of ['props/json/v311', 'props/json/text', 'props/json/bytes', 'props/json/latin1']) {
      expect(await onlyMessage(t, topic), topic).toMatchObject({ encoding: 'base64', payload: bomJson.toString('base64') });
    }
    expect(await onlyMessage(t, 'props/json/looks')).toMatchObject({ encoding: 'json', payload: { looks: 'json' }, properties: { content_type: 'text/plain', payload_format: 1 } });
    // The payload column keeps the bytes as published, the mark included.
    const raw = await t.roost.db.query<{ payload: Buffer }>("SELECT payload FROM messages WHERE topic = 'props/json/declared'");
    expect(raw.rows[0].payload.equals(bomJson)).toBe(true);
  });

  it('a payload declared application/json that is not JSON is acknowledged and stored as bytes with its properties', async () => {
    const declared: Properties = { payloadFormatIndicator: true, contentType: 'application/json', userProperties: { why: 'broken' } };
    const cases: Array<[string, Buffer]> = [
      ['props/broken/truncated', Buffer.from('{"reading":')],
      ['props/broken/nul', Buffer.from('"\\u0000"')], // JSON, but jsonb cannot hold U+0000
      ['props/broken/empty', Buffer.alloc(0)],
    ];
    // publishAsync rejects on a PUBACK reason code of 0x80 or more: resolving is acceptance. (A payload
    // declared UTF-8 that is not is refused with 0x99: test/integration/mqtt5-clients.test.ts.)
    for (const [topic, payload] of cases) await v5.publishAsync(topic, payload, { qos: 1, properties: declared });
    for (const [topic, payload] of cases) {
      const stored = await onlyMessage(t, topic);
      expect(stored, topic).toMatchObject({ encoding: 'base64', payload: payload.toString('base64') });
      expect(stored.properties, topic).toEqual({ content_type: 'application/json', payload_format: 1, user_properties: [['why', 'broken']] });
    }
    expect(v5.connected).toBe(true);
  });

  it('a webhook message.publish event carries the same properties object as the API', async () => {
    const created = await api(t, 'POST', '/api/webhooks', {
      name: 'props',
      url: `http://127.0.0.1:${receiverPort}/hook`,
      events: ['message.publish'],
      topic_filter: 'props/hook/#',
      batch_wait_ms: 0,
    });
    expect(created.status).toBe(201);
    // The hook is loaded on the broker's next round (200 ms) after the change's NOTIFY.
    await new Promise((r) => setTimeout(r, 1000));
    await v5.publishAsync('props/hook/full', '{"t":21.5}', { qos: 1, properties: PUBLISHED });
    await v4.publishAsync('props/hook/v311', 'plain', { qos: 1 });
    const ofTopic = (topic: string) => receiver.events.find((e) => e.type === 'message.publish' && e.data.topic === topic);
    expect(await until(() => ofTopic('props/hook/full') !== undefined && ofTopic('props/hook/v311') !== undefined, 10_000)).toBe(true);

    const full = ofTopic('props/hook/full')!.data;
    expect(full.properties).toEqual(STORED);
    expect(full.properties).toEqual((await onlyMessage(t, 'props/hook/full')).properties);
    expect(ofTopic('props/hook/v311')!.data).toHaveProperty('properties', null);
  });
});
