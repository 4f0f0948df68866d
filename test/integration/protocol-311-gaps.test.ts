/**
 * MQTT 3.1.1 statements a conformance suite found broken, each by raw bytes over TCP and WebSocket:
 * empty topic levels in retained messages and offline queues, DUP on redelivery, and the MQTT 3.1
 * CONNACK on every session store (the SQL persistence on PGlite and PostgreSQL, and Redis);
 * acknowledgements of another flow and CONNECT payloads that contradict their flags on one.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { TestRoost } from '../helpers/roost.js';
import { ackBytes, connack, connectBytes, frame, mqttString, publishBytes, subscribeBytes } from '../protocol/bytes.js';
import type { RawClient } from '../protocol/raw-client.js';
import { RAW_TRANSPORTS, connackFor, connectOk, connectRaw, disconnect, expectServed, open, startGuardedRoost, uniqueId } from '../protocol/suite.js';
import { EMPTY_LEVEL_CASES, TOPIC_CASES } from '../protocol/topic-cases.js';

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Drops the connection as a client that vanished would (no DISCONNECT), and lets the broker see it. */
async function vanish(client: RawClient): Promise<void> {
  client.end();
  await client.closedWithin(1000);
  await pause(150);
}

/** Subscribes one client per filter of the shared table, publishes every topic, and checks who got what. */
async function expectLiveRouterAgrees(t: TestRoost): Promise<void> {
  const cases = TOPIC_CASES.filter(([, topic]) => !topic.startsWith('$'));
  const filters = [...new Set(cases.map(([filter]) => filter))];
  const prefix = `live-${process.pid}`;
  const clients: RawClient[] = [];
  try {
    // One after the other: the first CONNECT puts the device's password in the credential cache.
    for (const _ of filters) clients.push(await connectOk(t, 'mqtt', { clientId: uniqueId('router') }));
    // Each filter and topic under a prefix of its own level, so that no other test's traffic reaches them.
    const under = (s: string) => `${prefix}/${s}`;
    clients.forEach((c, i) => c.send(subscribeBytes(1, [[under(filters[i]), 0]])));
    await Promise.all(clients.map((c) => c.next(5000)));
    const pub = await connectOk(t, 'mqtt', { clientId: uniqueId('router-pub') });
    for (const topic of new Set(cases.map(([, topic]) => topic))) pub.send(publishBytes(under(topic), 'x'));
    await pause(500);
    for (const [i, c] of clients.entries()) {
      const got = c.pending.map((r) => (r.packet as { topic: string }).topic.slice(prefix.length + 1)).sort();
      // A filter also gets the topics of other cases that it matches; its own cases say yes or no.
      for (const [f, topic, matches] of cases) if (f === filters[i]) expect(got.includes(topic), `${f} ~ ${JSON.stringify(topic)}`).toBe(matches);
    }
    pub.end();
  } finally {
    for (const c of clients) c.end();
  }
}

const STORES: Array<[string, () => Promise<TestRoost>]> = [
  ['the embedded database', () => startGuardedRoost('pglite')],
  ['PostgreSQL', () => startGuardedRoost('postgres')],
  // Database 7 of the run's Redis: retained messages and sessions of this file are seen by no other.
  ['Redis', () => startGuardedRoost('pglite', { env: { REDIS_URL: `${inject('redisUrl')}/7` } })],
];

describe.each(STORES)('sessions and retained messages in %s', (_store, start) => {
  let t: TestRoost;
  beforeAll(async () => {
    t = await start();
  });
  afterAll(async () => t?.stop());

  it('MQTT-4.7.1-3: the live router delivers every topic of the shared matching table to exactly the filters that match it', async () => {
    await expectLiveRouterAgrees(t);
  });

  describe.each(RAW_TRANSPORTS)('over %s', (transport) => {
    it.each(EMPTY_LEVEL_CASES.map(([filter, topic]) => [filter, topic]))(
      'MQTT-3.3.1-6, MQTT-4.7.1-3: a new subscription to %s gets the message retained on %s',
      async (filter, topic) => {
        const pub = await connectOk(t, transport, { clientId: uniqueId('retain-pub') });
        pub.send(publishBytes(topic, 'kept', { qos: 1, retain: true, messageId: 1 }));
        expect((await pub.next()).packet.cmd).toBe('puback');
        const sub = await connectOk(t, transport, { clientId: uniqueId('retain-sub') });
        try {
          sub.send(subscribeBytes(1, [[filter, 0]]));
          const got = await sub.drain(400);
          expect(got[0].bytes).toEqual(Buffer.from([0x90, 0x03, 0x00, 0x01, 0x00]));
          // RETAIN=1, QoS 0, the topic and payload as published.
          expect(got.slice(1).map((r) => r.bytes)).toEqual([publishBytes(topic, 'kept', { retain: true })]);
        } finally {
          pub.send(publishBytes(topic, Buffer.alloc(0), { retain: true })); // clears it for the next transport
          await pause(50);
          pub.end();
          sub.end();
        }
      },
    );

    it.each(EMPTY_LEVEL_CASES.map(([filter, topic]) => [filter, topic]))(
      'MQTT-3.1.2-5, MQTT-4.7.1-3: a persistent session subscribed to %s gets the QoS 1 message published on %s while it was away',
      async (filter, topic) => {
        const clientId = uniqueId('queue');
        const first = await connectOk(t, transport, { clientId, clean: false });
        first.send(subscribeBytes(1, [[filter, 1]]));
        expect((await first.next()).bytes).toEqual(Buffer.from([0x90, 0x03, 0x00, 0x01, 0x01]));
        await disconnect(first);

        const pub = await connectOk(t, transport, { clientId: uniqueId('queue-pub') });
        pub.send(publishBytes(topic, 'while away', { qos: 1, messageId: 7 }));
        expect((await pub.next()).packet.cmd).toBe('puback');
        pub.end();

        const { client: again, connackBytes } = await connectRaw(t, transport, { clientId, clean: false });
        try {
          expect(connackBytes).toEqual(connack(1, 0));
          const got = await again.next();
          expect(got.packet).toMatchObject({ cmd: 'publish', topic, qos: 1, dup: false });
          expect(got.packet.payload?.toString()).toBe('while away');
          again.send(ackBytes(0x40, (got.packet as { messageId: number }).messageId));
        } finally {
          again.end();
        }
      },
    );

    it('MQTT-3.3.1-1: a QoS 1 or 2 PUBLISH sent again after a clean-session-0 reconnect has DUP=1, one queued while away DUP=0, and an unanswered PUBREL is sent again', async () => {
      const clientId = uniqueId('dup');
      const topic = `dup/${clientId}`;
      const sub = await connectOk(t, transport, { clientId, clean: false });
      sub.send(subscribeBytes(1, [[`${topic}/+`, 2]]));
      await sub.next();
      const pub = await connectOk(t, transport, { clientId: uniqueId('dup-pub') });
      try {
        pub.send(publishBytes(`${topic}/q1`, 'sent once', { qos: 1, messageId: 1 }));
        const q1 = await sub.next();
        expect(q1.bytes[0]).toBe(0x32); // QoS 1, DUP=0: first delivery
        pub.send(publishBytes(`${topic}/q2`, 'sent once', { qos: 2, messageId: 2 }));
        const q2 = (await pub.drain(300)).find((r) => r.packet.cmd === 'pubrec');
        expect(q2).toBeDefined();
        pub.send(ackBytes(0x62, 2));
        const q2out = await sub.next();
        expect(q2out.bytes[0]).toBe(0x34); // QoS 2, DUP=0
        pub.send(publishBytes(`${topic}/rel`, 'released', { qos: 2, messageId: 3 }));
        await pub.drain(200);
        pub.send(ackBytes(0x62, 3));
        const rel = await sub.next();
        const relId = (rel.packet as { messageId: number }).messageId;
        sub.send(ackBytes(0x50, relId)); // PUBREC: the broker answers PUBREL, left unanswered
        expect((await sub.next()).bytes).toEqual(ackBytes(0x62, relId));
        await vanish(sub);

        pub.send(publishBytes(`${topic}/later`, 'queued while away', { qos: 1, messageId: 4 }));
        await pub.drain(200);
        const { client: again, connackBytes } = await connectRaw(t, transport, { clientId, clean: false });
        try {
          expect(connackBytes).toEqual(connack(1, 0));
          const resent = [await again.next(), await again.next(), await again.next(), await again.next()];
          const byTopic = (suffix: string) => resent.find((r) => (r.packet as { topic?: string }).topic === `${topic}/${suffix}`);
          // The same bytes as the first delivery (same identifier), but for DUP=1 (0x3a: QoS 1, DUP).
          const q1again = Buffer.from(q1.bytes);
          q1again[0] = 0x3a;
          expect(byTopic('q1')?.bytes).toEqual(q1again);
          expect(byTopic('q2')?.bytes[0]).toBe(0x3c); // QoS 2, DUP=1
          expect(byTopic('later')?.bytes[0]).toBe(0x32); // never sent before: DUP=0
          expect(resent.find((r) => r.packet.cmd === 'pubrel')?.bytes).toEqual(ackBytes(0x62, relId));
          for (const r of resent) {
            const id = (r.packet as { messageId: number }).messageId;
            if (r.packet.cmd === 'pubrel') again.send(ackBytes(0x70, id));
            else if ((r.packet as { qos: number }).qos === 1) again.send(ackBytes(0x40, id));
            else again.send(ackBytes(0x50, id));
          }
          await again.drain(200);
        } finally {
          again.end();
        }
      } finally {
        pub.end();
      }
    });

    it('a topic of 200 levels (ROOST_MAX_TOPIC_LEVELS by default) is retained and matched by a 200-level filter; a 201-level filter gets SUBACK 0x80, a 201-level PUBLISH closes', async () => {
      const first = uniqueId('deep');
      const topic = [first, ...Array(199).fill('x')].join('/');
      const filter = [first, ...Array(198).fill('+'), '#'].join('/');
      const pub = await connectOk(t, transport, { clientId: uniqueId('deep-pub') });
      const sub = await connectOk(t, transport, { clientId: uniqueId('deep-sub') });
      try {
        pub.send(publishBytes(topic, 'deep', { qos: 1, retain: true, messageId: 1 }));
        expect((await pub.next()).packet.cmd).toBe('puback');
        sub.send(subscribeBytes(1, [[filter, 1], [`${filter.slice(0, -1)}+/#`, 1]]));
        expect((await sub.next()).bytes).toEqual(Buffer.from([0x90, 0x04, 0x00, 0x01, 0x01, 0x80]));
        const got = await sub.next();
        expect(got.packet).toMatchObject({ cmd: 'publish', topic, retain: true });
        sub.send(ackBytes(0x40, (got.packet as { messageId: number }).messageId));
        pub.send(publishBytes(`${topic}/y`, 'too deep'));
        expect(await pub.closedWithin(1000)).toBe(true);
        expect(await sub.closedWithin(200)).toBe(false);
      } finally {
        const cleaner = await connectOk(t, transport, { clientId: uniqueId('deep-clean') });
        cleaner.send(publishBytes(topic, Buffer.alloc(0), { retain: true }));
        await pause(50);
        cleaner.end();
        pub.end();
        sub.end();
      }
    });

    it('MQTT 3.1 (protocol level 3): the CONNACK of a resumed session has no Session Present flag; 3.1.1 gets 1', async () => {
      const clientId = uniqueId('v31');
      const v31 = { clientId, clean: false, protocolName: 'MQIsdp', level: 3 };
      const first = await connectOk(t, transport, v31);
      first.send(subscribeBytes(1, [['v31/+', 1]]));
      await first.next();
      await disconnect(first);
      expect(await connackFor(t, transport, v31)).toEqual(Buffer.from([0x20, 0x02, 0x00, 0x00]));
      await pause(100);
      expect(await connackFor(t, transport, { clientId, clean: false })).toEqual(connack(1, 0));
    });
  });
});

describe('MQTT 3.1.1 flow and CONNECT rules on one store', () => {
  let t: TestRoost;
  beforeAll(async () => {
    t = await startGuardedRoost('pglite');
  });
  afterAll(async () => t?.stop());

  describe.each(RAW_TRANSPORTS)('over %s', (transport) => {
    /** A subscriber and one message delivered to it at `qos`; returns the subscriber and the message's identifier. */
    async function delivered(qos: 1 | 2): Promise<{ sub: RawClient; id: number }> {
      const topic = `flow/${uniqueId(transport)}`;
      const sub = await connectOk(t, transport, { clientId: uniqueId('flow-sub') });
      sub.send(subscribeBytes(1, [[topic, qos]]));
      await sub.next();
      const pub = await connectOk(t, transport, { clientId: uniqueId('flow-pub') });
      pub.send(publishBytes(topic, 'x', { qos, messageId: 1 }));
      await pub.next(); // PUBACK or PUBREC
      if (qos === 2) pub.send(ackBytes(0x62, 1));
      await pause(50);
      pub.end();
      const got = await sub.next();
      expect(got.packet).toMatchObject({ cmd: 'publish', qos });
      return { sub, id: (got.packet as { messageId: number }).messageId };
    }

    it.each([
      ['a QoS 1 PUBLISH', 'PUBREC', 1, 0x50],
      ['a QoS 1 PUBLISH', 'PUBCOMP', 1, 0x70],
      ['a QoS 2 PUBLISH', 'PUBACK', 2, 0x40],
      ['a QoS 2 PUBLISH', 'PUBCOMP', 2, 0x70],
    ] as const)('MQTT-4.3.2-2, MQTT-4.3.3-2, MQTT-4.8.0-1: a client answering %s with %s is disconnected, and gets no PUBREL', async (_what, _ack, qos, first) => {
      const { sub, id } = await delivered(qos);
      sub.send(ackBytes(first, id));
      expect(await sub.closedWithin(1000)).toBe(true);
      expect(sub.pending.map((r) => r.packet.cmd)).toEqual([]);
    });

    it('MQTT-4.3.3-2, MQTT-4.8.0-1: a client answering a PUBREL with PUBACK is disconnected', async () => {
      const { sub, id } = await delivered(2);
      sub.send(ackBytes(0x50, id));
      expect((await sub.next()).bytes).toEqual(ackBytes(0x62, id));
      sub.send(ackBytes(0x40, id));
      expect(await sub.closedWithin(1000)).toBe(true);
    });

    it('MQTT-4.3.2, MQTT-4.3.3: the right acknowledgements keep the connection, and a second message flows', async () => {
      const { sub, id } = await delivered(2);
      try {
        sub.send(ackBytes(0x50, id));
        expect((await sub.next()).bytes).toEqual(ackBytes(0x62, id));
        sub.send(ackBytes(0x70, id));
        expect(await sub.closedWithin(300)).toBe(false);
        await expectServed(t, transport);
      } finally {
        sub.end();
      }
    });

    it('MQTT-3.1.2-18, -19: a CONNECT holding a user name while its user name flag is 0 is closed without CONNACK', async () => {
      const client = await open(t, transport);
      const good = connectBytes({ clientId: uniqueId('leftover') });
      // The same CONNECT with a user name string appended to its payload; the flags still say none.
      const body = Buffer.concat([good.subarray(2), mqttString('intruder')]);
      client.send(frame(0x10, body));
      expect(await client.closedWithin(1000)).toBe(true);
      expect(client.pending.map((r) => r.bytes.toString('hex'))).toEqual([]);
      await expectServed(t, transport);
    });
  });

});
