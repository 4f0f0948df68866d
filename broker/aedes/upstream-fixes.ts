/**
 * Fixes Aedes 1.2.0 shipped that Aedes 2.0.0-beta.1 lacks: 2.0 branched from 1.1.2 before them. Each
 * names the 1.2.0 change it restores, so that it can go when an Aedes 2 release has it (check
 * lib/client.js, lib/handlers/publish.js, lib/handlers/pubrel.js and lib/handlers/connect.js there).
 * test/integration/protocol-prototype-names.test.ts and robust-limits.test.ts hold them.
 *
 *   GHSA-52qw-whmv-87c5  broker.clients, broker.brokers, client.subscriptions and client.duplicates are
 *                        keyed by names from the wire: kept in objects without a prototype, so that a
 *                        client id or filter named `constructor` is an ordinary one
 *   maxInflightInbound   at most that many inbound QoS 2 PUBLISHes stored awaiting PUBREL per client;
 *                        one more closes the connection (1.2.0 lib/handlers/publish.js)
 *   MQTT-3.1.2-6         a clean session's inbound QoS 2 state ends with it: cleanIncoming when a clean
 *                        client is registered (after any takeover) and when a 3.1.1 clean client goes
 *   pubrel.js            a failed incomingDelPacket (a duplicate PUBREL losing the race) no longer
 *                        escapes as an unhandled rejection; PUBCOMP is still sent
 * And one of Aedes 2.0.0-beta.1's own:
 *   MQTT-3.1.2-5 (v5)    Clean Start 0 resumes the session with its queued messages even when the new
 *                        Session Expiry Interval is 0: lib/handlers/connect.js emptyQueueFilter drops
 *                        them when client.clean (there: the session ends with the connection) is
 *                        set, so client.clean is off while the queue is sent (until clientReady)
 */
import type { Aedes, Client } from 'aedes';
import { cleanStartOf } from './connection.js';

/** Aedes 1.2.0's default when no limit is given. */
const DEFAULT_MAX_INFLIGHT_INBOUND = 1000;

interface IncomingPersistence {
  incomingStorePacket(client: Client, packet: { messageId?: number }): Promise<unknown>;
  incomingDelPacket(client: Client, packet: { messageId?: number }): Promise<unknown>;
  cleanIncoming?(client: Client): Promise<unknown>;
}

interface BrokerMaps {
  clients: Record<string, Client>;
  brokers: Record<string, unknown>;
  persistence: IncomingPersistence;
}

const withoutPrototype = <T>(from: Record<string, T>): Record<string, T> => Object.assign(Object.create(null) as Record<string, T>, from);

export function restoreAedes12Fixes(broker: Aedes, opts: { maxInflightInbound?: number } = {}): void {
  const internals = broker as unknown as BrokerMaps;
  // GHSA-52qw-whmv-87c5 (1.2.0 aedes.js and lib/client.js).
  internals.clients = withoutPrototype(internals.clients);
  internals.brokers = withoutPrototype(internals.brokers);
  const handle = broker.handle;
  broker.handle = (conn, req) => {
    const client = handle.call(broker, conn, req) as unknown as { subscriptions: object; duplicates: object };
    client.subscriptions = withoutPrototype(client.subscriptions as Record<string, unknown>);
    client.duplicates = withoutPrototype(client.duplicates as Record<string, unknown>);
    return client as unknown as Client;
  };

  const persistence = internals.persistence;
  const limit = opts.maxInflightInbound ?? DEFAULT_MAX_INFLIGHT_INBOUND;
  // The identifiers of each client's inbound QoS 2 PUBLISHes stored and awaiting PUBREL.
  const inbound = new WeakMap<Client, Set<number>>();
  const incomingStorePacket = persistence.incomingStorePacket;
  // Called only for a PUBLISH not already stored, synchronously from the lookup's callback as 1.2.0
  // reserved its slot, so a socket chunk of many PUBLISHes cannot all pass the check.
  persistence.incomingStorePacket = function boundedIncomingStore(this: IncomingPersistence, client, packet) {
    let ids = inbound.get(client);
    if (!ids) inbound.set(client, (ids = new Set()));
    const id = packet.messageId as number;
    if (limit > 0 && !ids.has(id) && ids.size >= limit) {
      return Promise.reject(new Error(`maxInflightInbound exceeded: ${limit} inbound QoS 2 messages already awaiting PUBREL`));
    }
    ids.add(id);
    const stored = ids;
    return incomingStorePacket.call(this, client, packet).catch((err: unknown) => {
      stored.delete(id); // nothing was stored: the slot goes back
      throw err;
    });
  };
  const incomingDelPacket = persistence.incomingDelPacket;
  persistence.incomingDelPacket = function releasingIncomingDel(this: IncomingPersistence, client, packet) {
    return incomingDelPacket.call(this, client, packet).then(
      () => void inbound.get(client)?.delete(packet.messageId as number),
      () => undefined, // still stored: the slot stays taken; PUBCOMP is owed either way
    );
  };

  // MQTT-3.1.2-6 (1.2.0 lib/handlers/connect.js cleanIncoming, lib/client.js close).
  const cleanIncoming = (client: Client) => {
    if (typeof persistence.cleanIncoming !== 'function') return;
    inbound.delete(client);
    Promise.resolve()
      .then(() => persistence.cleanIncoming!(client))
      .catch((err: Error) => (broker as unknown as { emit(e: string, c: Client, err: Error): void }).emit('clientError', client, err));
  };
  const v5 = (client: Client) => (client as unknown as { version?: number }).version === 5;
  const sendingQueue = new WeakSet<Client>();
  broker.on('client', (client) => {
    if (cleanStartOf(client)) cleanIncoming(client);
    else if (v5(client) && client.clean) {
      (client as unknown as { clean: boolean }).clean = false;
      sendingQueue.add(client);
    }
  });
  broker.on('clientReady', (client) => {
    if (sendingQueue.delete(client)) (client as unknown as { clean: boolean }).clean = true;
  });
  broker.on('clientDisconnect', (client) => {
    // A v5 session outlives its connection by its session expiry interval, whatever Clean Start said.
    if (client.clean && (client as unknown as { version?: number }).version !== 5) cleanIncoming(client);
  });
}
