/** Outgoing packet identifiers (broker/protocol/packet-ids.ts, broker/aedes/packet-ids.ts): from 1, wrapping, never one in flight. */
import { Duplex } from 'node:stream';
import v8 from 'node:v8';
import { Aedes } from 'aedes';
import { describe, expect, it } from 'vitest';
import { putPacketIdsBehindAedesClients, replaceAedesPacketIds } from '../../broker/aedes/packet-ids.js';
import { PacketIds } from '../../broker/protocol/packet-ids.js';

describe('PacketIds', () => {
  it('counts up from 1', () => {
    const ids = new PacketIds();
    expect([ids.take(), ids.take(), ids.take()]).toEqual([1, 2, 3]);
  });

  it('wraps from 65535 to 1, skipping identifiers still in flight', () => {
    const ids = new PacketIds();
    for (let i = 1; i <= 65533; i++) ids.take();
    for (let i = 3; i <= 65533; i++) ids.release(i); // 1 and 2 stay in flight
    expect([ids.take(), ids.take(), ids.take(), ids.take()]).toEqual([65534, 65535, 3, 4]);
  });

  it('skips an identifier marked in flight by a resumed session, and reuses it once released', () => {
    const ids = new PacketIds();
    ids.markInFlight(2);
    expect([ids.take(), ids.take()]).toEqual([1, 3]);
    ids.release(2);
    for (let i = 4; i <= 65535; i++) ids.take();
    for (let i = 1; i <= 65535; i++) if (i !== 2) ids.release(i);
    ids.markInFlight(1);
    expect(ids.take()).toBe(2);
  });

  it('reuses the counter when all 65535 are in flight (there is nothing better to send)', () => {
    const ids = new PacketIds();
    for (let i = 1; i <= 65535; i++) ids.take();
    expect(ids.inFlight).toBe(65535);
    expect(ids.take()).toBe(1);
  });

  it("drives an Aedes client's `_nextId` read-then-advance as QoSPacket does it", async () => {
    const client = await aedesClient();
    try {
      const ids = new PacketIds();
      ids.markInFlight(1);
      replaceAedesPacketIds(client, ids);
      const assigned: number[] = [];
      for (let n = 0; n < 3; n++) {
        // lib/qos-packet.js
        assigned.push(client._nextId);
        if (client._nextId >= 65535) client._nextId = 1;
        else client._nextId++;
      }
      expect(assigned).toEqual([2, 3, 4]);
    } finally {
      client.close();
    }
  });

  it('leaves an Aedes client with fast properties (no accessor of its own, not a dictionary)', async () => {
    v8.setFlagsFromString('--allow-natives-syntax');
    const hasFastProperties = new Function('o', 'return %HasFastProperties(o)') as (o: object) => boolean;
    v8.setFlagsFromString('--no-allow-natives-syntax');
    const client = await aedesClient();
    try {
      replaceAedesPacketIds(client, new PacketIds());
      expect(Object.getOwnPropertyDescriptor(client, '_nextId')).toBeUndefined();
      expect(hasFastProperties(client)).toBe(true);
    } finally {
      client.close();
    }
  });

  it('keeps `_nextId` a plain field on a client without PacketIds (a plain Aedes beside Roost)', async () => {
    const client = await aedesClient();
    try {
      client._nextId = 7;
      client._nextId++;
      expect(client._nextId).toBe(8);
    } finally {
      client.close();
    }
  });
});

/** A real Aedes client on an in-memory duplex, made after Roost's accessor is in place (as broker.handle does). */
async function aedesClient(): Promise<{ _nextId: number; close(): void }> {
  putPacketIdsBehindAedesClients();
  const broker = await Aedes.createBroker();
  const conn = new Duplex({ read() {}, write(_chunk, _enc, done) { done(); } });
  const client = broker.handle(conn) as unknown as { _nextId: number; close(): void };
  const close = client.close.bind(client);
  client.close = () => {
    close();
    broker.close();
  };
  return client;
}
