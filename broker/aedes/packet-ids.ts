import type { PacketIds } from '../protocol/packet-ids.js';

const IDS = Symbol('roost.packetIds');
/** Where `_nextId` is kept for a client without Roost's identifiers (a plain Aedes in the same process). */
const PLAIN = Symbol('roost.plainNextId');
interface AedesClientFields {
  [IDS]?: PacketIds;
  [PLAIN]?: number;
}

/** Aedes's Client class: its package exports only the broker, so it is reached by file (pinned by internals.ts). */
const { default: AedesClient } = (await import(new URL('./lib/client.js', import.meta.resolve('aedes')).href)) as { default: { prototype: object } };

/**
 * Puts a PacketIds behind Aedes's `client._nextId`: QoSPacket reads it (peek) for a new packet's
 * identifier, then assigns to it (`_nextId++`, or 1 after 65535) to advance, which here takes the id.
 *
 * The accessor is defined once, on Aedes's Client prototype, before the first client exists: made
 * an accessor on each client instead, `_nextId` (a data field Aedes's constructor sets) put every
 * client object in V8's dictionary mode, about 3 KB more per connection (bench/FINDINGS.md). The
 * constructor's write then goes through the setter, which keeps it as a plain field until the
 * client gets its PacketIds, so a client that never does behaves as in Aedes.
 */
export function putPacketIdsBehindAedesClients(): void {
  if (Object.hasOwn(AedesClient.prototype, '_nextId')) return;
  Object.defineProperty(AedesClient.prototype, '_nextId', {
    configurable: true,
    get(this: AedesClientFields) {
      const ids = this[IDS];
      return ids ? ids.peek() : this[PLAIN];
    },
    set(this: AedesClientFields, value: number) {
      const ids = this[IDS];
      if (ids) ids.take();
      else this[PLAIN] = value;
    },
  });
}

/** From now on `client._nextId` hands out `ids` (putPacketIdsBehindAedesClients ran before the client was made). */
export function replaceAedesPacketIds(client: object, ids: PacketIds): void {
  (client as AedesClientFields)[IDS] = ids;
}
