import type { PacketIds } from '../protocol/packet-ids.js';

/**
 * Puts a PacketIds behind Aedes's `client._nextId`: QoSPacket reads it (peek) for a new packet's
 * identifier, then assigns to it (`_nextId++`, or 1 after 65535) to advance, which here takes the id.
 */
export function replaceAedesPacketIds(client: object, ids: PacketIds): void {
  Object.defineProperty(client, '_nextId', {
    configurable: true,
    get: () => ids.peek(),
    set: () => {
      ids.take();
    },
  });
}
