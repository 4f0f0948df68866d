/** Outgoing packet identifiers (broker/protocol/packet-ids.ts, broker/aedes/packet-ids.ts): from 1, wrapping, never one in flight. */
import { describe, expect, it } from 'vitest';
import { replaceAedesPacketIds } from '../../broker/aedes/packet-ids.js';
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

  it("drives Aedes's `_nextId` read-then-advance as QoSPacket does it", () => {
    const client: { _nextId: number } = { _nextId: 4242 };
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
  });
});
