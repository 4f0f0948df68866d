/**
 * Fixes Aedes 1.2.0 shipped (GHSA-52qw-whmv-87c5: names from the wire kept in objects without a
 * prototype; MQTT-3.1.2-6: a clean session's inbound QoS 2 state ends with it), by raw bytes over TCP
 * and WebSocket on every session store. Aedes 2.0.0-beta.1 branched before them: moving to it
 * (issue 20) must keep this file green. The Redis case also holds session-store.ts's fix of
 * mqemitter-redis. The inbound QoS 2 bound (maxInflightInbound) is held by robust-limits.test.ts.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { TestRoost } from '../helpers/roost.js';
import { ackBytes, publishBytes, subscribeBytes } from '../protocol/bytes.js';
import type { RawClient } from '../protocol/raw-client.js';
import { RAW_TRANSPORTS, connectOk, disconnect, startGuardedRoost, uniqueId } from '../protocol/suite.js';

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

const STORES: Array<[string, () => Promise<TestRoost>]> = [
  ['the embedded database', () => startGuardedRoost('pglite')],
  ['PostgreSQL', () => startGuardedRoost('postgres')],
  ['Redis', () => startGuardedRoost('pglite', { env: { REDIS_URL: `${inject('redisUrl')}/8` } })],
];

/** Subscribes `client` to `filter` at QoS 1 and expects the SUBACK granting it. */
async function subscribe(client: RawClient, filter: string, messageId = 1): Promise<void> {
  client.send(subscribeBytes(messageId, [[filter, 1]]));
  expect((await client.next()).packet).toMatchObject({ cmd: 'suback', messageId, granted: [1] });
}

/** The topics of the PUBLISHes `client` received within `ms`. */
async function topicsReceived(client: RawClient, ms: number): Promise<string[]> {
  await pause(ms);
  return client.pending.filter((r) => r.packet.cmd === 'publish').map((r) => (r.packet as { topic: string }).topic);
}

describe.each(STORES)('names from the wire and clean sessions, in %s', (_store, start) => {
  let t: TestRoost;
  beforeAll(async () => {
    t = await start();
  });
  afterAll(async () => {
    await t?.stop();
  });

  for (const transport of RAW_TRANSPORTS) {
    // GHSA-52qw-whmv-87c5: on a plain object `constructor` is found on the prototype, so the CONNECT
    // was taken for a takeover of a client that is not there, and the filter for one already held.
    it(`a client id and a topic filter named after Object.prototype's fields are ordinary ones over ${transport}`, async () => {
      for (const name of ['constructor', 'toString', 'hasOwnProperty']) {
        const client = await connectOk(t, transport, { clientId: name });
        try {
          await subscribe(client, name);
          client.send(publishBytes(name, 'x', { qos: 1, messageId: 2 }));
          expect(await topicsReceived(client, 500)).toEqual([name]);
        } finally {
          await disconnect(client);
        }
      }
    });

    // MQTT-3.1.2-6: the state of a clean session, its unfinished inbound QoS 2 included, ends with it.
    it(`a clean session's QoS 2 PUBLISH left without PUBREL does not make the next session's same identifier a duplicate over ${transport}`, async () => {
      const clientId = uniqueId('clean-q2');
      const topic = `upstream/clean/${clientId}`;
      const watcher = await connectOk(t, transport, { clientId: uniqueId('clean-q2-watch') });
      try {
        await subscribe(watcher, topic);
        const first = await connectOk(t, transport, { clientId, clean: true });
        first.send(publishBytes(topic, 'first', { qos: 2, messageId: 7 }));
        expect((await first.next()).packet).toMatchObject({ cmd: 'pubrec', messageId: 7 });
        await disconnect(first); // no PUBREL: the flow is left open

        const second = await connectOk(t, transport, { clientId, clean: true });
        second.send(publishBytes(topic, 'second', { qos: 2, messageId: 7 }));
        expect((await second.next()).packet).toMatchObject({ cmd: 'pubrec', messageId: 7 });
        second.send(ackBytes(0x62, 7));
        expect((await second.next()).packet).toMatchObject({ cmd: 'pubcomp', messageId: 7 });
        await disconnect(second);

        await pause(300);
        const payloads = watcher.pending.filter((r) => r.packet.cmd === 'publish').map((r) => String((r.packet as { payload: Buffer }).payload));
        expect(payloads).toEqual(['first', 'second']);
      } finally {
        await disconnect(watcher);
      }
    });
  }
});
