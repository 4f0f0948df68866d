/**
 * MQTT 3.1.1 rules after CONNECT, over raw TCP and WebSocket: empty SUBSCRIBE/UNSUBSCRIBE, packet
 * identifiers, retained ordering on one connection and `$`-topics. (Rules 6-9 of issue 9.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestRoost } from '../helpers/roost.js';
import { ackBytes, connack, frame, publishBytes, subscribeBytes } from '../protocol/bytes.js';
import type { RawClient, Received } from '../protocol/raw-client.js';
import { RAW_TRANSPORTS, connectOk, connectRaw, expectClosedSilently, expectServed, startGuardedRoost, uniqueId } from '../protocol/suite.js';

let t: TestRoost;
beforeAll(async () => {
  t = await startGuardedRoost();
});
afterAll(async () => t?.stop());

const publishes = (received: Received[]) => received.filter((r) => r.packet.cmd === 'publish');
const messageIdOf = (r: Received) => (r.packet as { messageId: number }).messageId;

async function subscribed(client: RawClient, messageId: number, filter: string, qos: number): Promise<void> {
  client.send(subscribeBytes(messageId, [[filter, qos]]));
  expect((await client.next()).bytes).toEqual(Buffer.from([0x90, 0x03, messageId >> 8, messageId & 0xff, qos]));
}

describe.each(RAW_TRANSPORTS)('after CONNECT over %s', (transport) => {
  describe('SUBSCRIBE and UNSUBSCRIBE without a topic filter', () => {
    it('MQTT-3.8.3-3: a SUBSCRIBE with no topic filter closes the connection without SUBACK', async () => {
      const client = await connectOk(t, transport, { clientId: uniqueId('empty-sub') });
      await expectClosedSilently(client, Buffer.from([0x82, 0x02, 0x00, 0x01]));
      await expectServed(t, transport);
    });

    it('MQTT-3.10.3-2: an UNSUBSCRIBE with no topic filter closes the connection without UNSUBACK', async () => {
      const client = await connectOk(t, transport, { clientId: uniqueId('empty-unsub') });
      await expectClosedSilently(client, Buffer.from([0xa2, 0x02, 0x00, 0x01]));
      await expectServed(t, transport);
    });

    it.each([
      ['SUBSCRIBE', subscribeBytes(0, [['a/b', 0]])],
      ['UNSUBSCRIBE', frame(0xa2, Buffer.from([0, 0, 0, 3, 0x61, 0x2f, 0x62]))],
      ['QoS 1 PUBLISH', publishBytes('a/b', 'x', { qos: 1, messageId: 0 })],
      ['QoS 2 PUBLISH', publishBytes('a/b', 'x', { qos: 2, messageId: 0 })],
    ])('MQTT-2.3.1-1: a %s with packet identifier 0 closes the connection', async (_what, bytes) => {
      const client = await connectOk(t, transport, { clientId: uniqueId('id-zero') });
      await expectClosedSilently(client, bytes);
      await expectServed(t, transport);
    });
  });

  describe('retained message published and subscribed on one connection', () => {
    it.each([0, 1, 2])('a QoS %i retained PUBLISH then a matching SUBSCRIBE, in one write, deliver it once with RETAIN=1', async (qos) => {
      const client = await connectOk(t, transport, { clientId: uniqueId('retain-order') });
      // Several rounds: the race Aedes loses depends on timing.
      for (let round = 0; round < 4; round++) {
        const topic = `retain-order/${uniqueId(transport)}/${qos}/${round}`;
        client.send(Buffer.concat([publishBytes(topic, `r${round}`, { qos, retain: true, messageId: 10 + round }), subscribeBytes(100 + round, [[topic.replace(/\/\d+$/, '/+'), 2]])]));
        const got = await client.drain(300);
        const delivered = publishes(got);
        expect(delivered.map((r) => [(r.packet as { topic: string }).topic, r.bytes[0] & 0x01])).toEqual([[topic, 1]]);
        expect(got.map((r) => r.packet.cmd)).toContain('suback');
        for (const r of delivered) {
          const deliveredQos = (r.packet as { qos: number }).qos;
          if (deliveredQos > 0) client.send(ackBytes(deliveredQos === 2 ? 0x50 : 0x40, messageIdOf(r)));
        }
        if (qos === 2) client.send(ackBytes(0x62, 10 + round));
      }
      client.end();
      await expectServed(t, transport);
    });
  });

  describe('outgoing packet identifiers', () => {
    it('MQTT-2.3.1-2: the QoS 1 packets sent to a client are numbered from 1 up', async () => {
      const topic = `ids/${uniqueId(transport)}`;
      const sub = await connectOk(t, transport, { clientId: uniqueId('ids-sub') });
      await subscribed(sub, 1, topic, 1);
      const pub = await connectOk(t, transport, { clientId: uniqueId('ids-pub') });
      for (let i = 1; i <= 4; i++) pub.send(publishBytes(topic, `m${i}`, { qos: 1, messageId: i }));
      const ids: number[] = [];
      while (ids.length < 4) {
        const r = await sub.next();
        if (r.packet.cmd !== 'publish') continue;
        ids.push(messageIdOf(r));
        sub.send(ackBytes(0x40, messageIdOf(r)));
      }
      expect(ids).toEqual([1, 2, 3, 4]);
      sub.end();
      pub.end();
    });

    it('MQTT-2.3.1-4: a resumed session re-sends its unacknowledged identifiers and numbers new packets around them', async () => {
      const clientId = uniqueId('ids-resume');
      const topic = `ids-resume/${uniqueId(transport)}`;
      const first = await connectOk(t, transport, { clientId, clean: false });
      await subscribed(first, 1, topic, 1);
      const pub = await connectOk(t, transport, { clientId: uniqueId('ids-pub') });
      pub.send(publishBytes(topic, 'a', { qos: 1, messageId: 1 }));
      pub.send(publishBytes(topic, 'b', { qos: 1, messageId: 2 }));
      const unacked = publishes([await first.next(), await first.next()]).map(messageIdOf);
      expect(unacked).toEqual([1, 2]);
      first.end(); // gone without PUBACK: 1 and 2 stay in flight
      expect(await first.closedWithin(1000)).toBe(true);
      await new Promise((r) => setTimeout(r, 100));

      const { client: again, connackBytes } = await connectRaw(t, transport, { clientId, clean: false });
      expect(connackBytes).toEqual(connack(1, 0));
      const resent = publishes(await again.drain(300));
      expect(resent.map(messageIdOf).sort()).toEqual([1, 2]);
      pub.send(publishBytes(topic, 'c', { qos: 1, messageId: 3 }));
      const fresh = publishes([await again.next()]);
      expect(fresh.map(messageIdOf)).toEqual([3]);
      for (const id of [1, 2, 3]) again.send(ackBytes(0x40, id));
      again.end();
      pub.end();
    });
  });

  describe('$-topics', () => {
    it('MQTT-4.7.2-1: # and +/… never match a topic starting with $, live, retained or queued; $x/# does', async () => {
      const name = uniqueId(transport).replace(/[^a-z0-9]/gi, '');
      const dollarTopic = `$${name}/x`;
      const hash = await connectOk(t, transport, { clientId: uniqueId('hash') });
      await subscribed(hash, 1, '#', 1);
      const plus = await connectOk(t, transport, { clientId: uniqueId('plus') });
      await subscribed(plus, 1, '+/x', 1);
      const explicit = await connectOk(t, transport, { clientId: uniqueId('explicit') });
      await subscribed(explicit, 1, `$${name}/#`, 1);
      const offlineId = uniqueId('offline-hash');
      const offline = await connectOk(t, transport, { clientId: offlineId, clean: false });
      await subscribed(offline, 1, '#', 1);
      offline.end();
      await offline.closedWithin(1000);
      await Promise.all([hash.drain(100), plus.drain(100)]);

      const pub = await connectOk(t, transport, { clientId: uniqueId('dollar-pub') });
      pub.send(publishBytes(dollarTopic, 'secret', { qos: 1, retain: true, messageId: 1 }));
      expect((await pub.next()).packet).toMatchObject({ cmd: 'puback', messageId: 1 });

      const topicsOf = (rs: Received[]) => publishes(rs).map((r) => (r.packet as { topic: string }).topic);
      expect(topicsOf([await explicit.next()])).toEqual([dollarTopic]);
      expect(topicsOf(await hash.drain(300)).filter((tp) => tp.startsWith('$'))).toEqual([]);
      expect(topicsOf(await plus.drain(0)).filter((tp) => tp.startsWith('$'))).toEqual([]);

      const late = await connectOk(t, transport, { clientId: uniqueId('late') });
      late.send(subscribeBytes(1, [['#', 1], ['+/x', 1]]));
      const lateGot = await late.drain(400);
      expect(lateGot.find((r) => r.packet.cmd === 'suback')?.bytes).toEqual(Buffer.from([0x90, 0x04, 0x00, 0x01, 0x01, 0x01]));
      expect(topicsOf(lateGot).filter((tp) => tp.startsWith('$'))).toEqual([]);

      const { client: back, connackBytes } = await connectRaw(t, transport, { clientId: offlineId, clean: false });
      expect(connackBytes).toEqual(connack(1, 0));
      expect(topicsOf(await back.drain(400)).filter((tp) => tp.startsWith('$'))).toEqual([]);

      pub.send(publishBytes(dollarTopic, Buffer.alloc(0), { retain: true })); // clear the retained message
      for (const c of [hash, plus, explicit, late, back, pub]) c.end();
    });
  });
});
