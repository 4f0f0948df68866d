/**
 * MQTT 3.1.1 CONNECT rules, over raw TCP and WebSocket: exact CONNACK bytes or a close within 1 s,
 * then a well-behaved client is still served. (Rules 1-4 of issue 9.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestRoost } from '../helpers/roost.js';
import { PINGREQ, PINGRESP, connack, connect5Bytes, connectBytes, subscribeBytes } from '../protocol/bytes.js';
import { ADMIN_LOGIN, RAW_TRANSPORTS, connackFor, connectOk, connectRaw, disconnect, expectClosedSilently, expectServed, open, startGuardedRoost, uniqueId } from '../protocol/suite.js';

let t: TestRoost;
beforeAll(async () => {
  t = await startGuardedRoost();
});
afterAll(async () => t?.stop());

describe.each(RAW_TRANSPORTS)('CONNECT over %s', (transport) => {
  describe('Session Present', () => {
    it('MQTT-3.2.2-2: a resumed clean-session-0 session with no subscription gets Session Present 1', async () => {
      const clientId = uniqueId('resume-empty');
      await disconnect(await connectOk(t, transport, { clientId, clean: false }));
      expect(await connackFor(t, transport, { clientId, clean: false })).toEqual(connack(1, 0));
      await expectServed(t, transport);
    });

    it('MQTT-3.2.2-2: a resumed session with subscriptions gets Session Present 1', async () => {
      const clientId = uniqueId('resume-subs');
      const first = await connectOk(t, transport, { clientId, clean: false });
      first.send(subscribeBytes(1, [['resume/a', 1]]));
      expect((await first.next()).bytes).toEqual(Buffer.from([0x90, 0x03, 0x00, 0x01, 0x01]));
      first.end();
      expect(await first.closedWithin(1000)).toBe(true);
      expect(await connackFor(t, transport, { clientId, clean: false })).toEqual(connack(1, 0));
    });

    it('MQTT-3.2.2-1, MQTT-3.2.2-3: clean session 1 gets 0 and ends the stored session; the next clean-session-0 connect is new', async () => {
      const clientId = uniqueId('clean-ends');
      await disconnect(await connectOk(t, transport, { clientId, clean: false })); // new session: 0 (MQTT-3.2.2-3)
      await disconnect(await connectOk(t, transport, { clientId, clean: true })); // MQTT-3.2.2-1
      expect(await connackFor(t, transport, { clientId, clean: false })).toEqual(connack(0, 0));
      await expectServed(t, transport);
    });

    it('MQTT-3.2.2-2: taking over a connected clean-session-0 client resumes its session', async () => {
      const clientId = uniqueId('takeover');
      const first = await connectOk(t, transport, { clientId, clean: false });
      expect(await connackFor(t, transport, { clientId, clean: false })).toEqual(connack(1, 0));
      expect(await first.closedWithin(1000)).toBe(true); // MQTT-3.1.4-2
    });
  });

  describe('Client Identifier', () => {
    it('MQTT-3.1.3-6, MQTT-3.1.3-7: zero-length identifiers with clean session 1 each get their own server-assigned identifier', async () => {
      const a = await connectOk(t, transport, { clientId: '', clean: true });
      const b = await connectOk(t, transport, { clientId: '', clean: true });
      // Had both been given the same identifier, b would have closed a (MQTT-3.1.4-2).
      for (const c of [a, b]) {
        c.send(PINGREQ);
        expect((await c.next()).bytes).toEqual(PINGRESP);
      }
      a.end();
      b.end();
      await expectServed(t, transport);
    });

    it('MQTT-3.1.3-8: a zero-length identifier with clean session 0 gets CONNACK 0x02, then the close', async () => {
      const { client, connackBytes } = await connectRaw(t, transport, { clientId: '', clean: false });
      expect(connackBytes).toEqual(connack(0, 2));
      expect(await client.closedWithin(1000)).toBe(true);
      await expectServed(t, transport);
    });

    it.each([
      ['empty', ''],
      ['24 characters', 'x'.repeat(24)],
    ])('MQTT-3.1.3-9 (MQTT 3.1): a protocol level 3 client with a %s identifier gets CONNACK 0x02, then the close', async (_what, clientId) => {
      const { client, connackBytes } = await connectRaw(t, transport, { protocolName: 'MQIsdp', level: 3, clientId });
      expect(connackBytes).toEqual(connack(0, 2));
      expect(await client.closedWithin(1000)).toBe(true);
      await expectServed(t, transport);
    });

    it('MQTT 3.1: a protocol level 3 client with a 23-character identifier is accepted', async () => {
      const client = await connectOk(t, transport, { protocolName: 'MQIsdp', level: 3, clientId: uniqueId('v31').padEnd(23, 'x').slice(0, 23) });
      client.end();
    });
  });

  describe('Protocol Level', () => {
    it.each([
      ['level 2', 'MQTT', 2],
      ['level 6', 'MQTT', 6],
      ['level 3 under the name MQTT', 'MQTT', 3],
      ['level 4 under the name MQIsdp', 'MQIsdp', 4],
    ])('MQTT-3.1.2-2: %s gets CONNACK 0x01, then the close', async (_what, protocolName, level) => {
      const client = await open(t, transport);
      client.send(connectBytes({ protocolName, level, clientId: uniqueId('level') }));
      expect((await client.next()).bytes).toEqual(connack(0, 1));
      expect(await client.closedWithin(1000)).toBe(true);
      await expectServed(t, transport);
    });

    it('MQTT 5 (3.1.2.2): level 5 under the name MQTT is accepted with an MQTT 5 CONNACK: Session Present 0, reason 0x00, then its properties', async () => {
      const client = await open(t, transport);
      client.send(connect5Bytes({ ...ADMIN_LOGIN, clientId: uniqueId('v5') }));
      const { bytes, packet } = await client.next();
      expect([bytes[0], bytes[2], bytes[3]]).toEqual([0x20, 0x00, 0x00]);
      // A 3.1.1 CONNACK is 4 bytes; a v5 one has a properties length after the reason code.
      expect(bytes[1]).toBeGreaterThanOrEqual(3);
      expect(packet).toMatchObject({ cmd: 'connack', reasonCode: 0, sessionPresent: false });
      client.end();
    });
  });

  describe('CONNECT flags', () => {
    it('MQTT-3.1.2-3: the reserved flag set closes the connection without CONNACK', async () => {
      await expectClosedSilently(await open(t, transport), connectBytes({ clientId: uniqueId('reserved'), flags: 0x03 }));
      await expectServed(t, transport);
    });

    it('MQTT-3.1.2-22: a password without the user name flag closes the connection', async () => {
      const bytes = connectBytes({ clientId: uniqueId('pw'), password: Buffer.from('secret') });
      expect(bytes[9]).toBe(0x42);
      await expectClosedSilently(await open(t, transport), bytes);
      await expectServed(t, transport);
    });

    it.each([
      ['MQTT-3.1.2-13', 'will QoS 1 without the will flag', 0x0a],
      ['MQTT-3.1.2-15', 'will retain without the will flag', 0x22],
      ['MQTT-3.1.2-11', 'will QoS 2 and retain without the will flag', 0x32],
    ])('%s: %s closes the connection', async (_statement, _what, flags) => {
      await expectClosedSilently(await open(t, transport), connectBytes({ clientId: uniqueId('flags'), flags }));
      await expectServed(t, transport);
    });

    it('MQTT-3.1.2-14: will QoS 3 closes the connection', async () => {
      const bytes = connectBytes({ clientId: uniqueId('willqos3'), will: { topic: 'w/t', qos: 3 } });
      expect(bytes[9]).toBe(0x1e);
      await expectClosedSilently(await open(t, transport), bytes);
      await expectServed(t, transport);
    });

    it.each([
      ['zero-length', ''],
      ['wildcard', 'will/#'],
    ])('MQTT-4.7.3-1, MQTT-3.1.2-9: a %s will topic closes the connection', async (_what, topic) => {
      await expectClosedSilently(await open(t, transport), connectBytes({ clientId: uniqueId('willtopic'), will: { topic } }));
      await expectServed(t, transport);
    });
  });
});
