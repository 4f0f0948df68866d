/**
 * MQTT 3.1.1 where Aedes 1.2 is lenient. Each rule sits where Aedes lets it in, and each correction
 * names the Aedes behaviour it replaces so it can go when Aedes fixes it:
 *
 *   preConnect hook      client identifier, protocol name/level, CONNECT flags, will  ../protocol/connect.ts
 *   wrapped handle():
 *     client's parser    UTF-8 strings, protocol level 0x01, empty SUBSCRIBE/          connection-guards.ts
 *                        UNSUBSCRIBE, packet identifier 0, retained ordering
 *     client._nextId     outgoing packet identifiers from 1, skipping those in flight  packet-ids.ts
 *     client.deliverQoS  retained $-topics kept from # and +/… filters                dollar-topics.ts
 *   persistence methods  $-topics kept out of # queues; resent identifiers in flight  (below)
 *   connackSent event    records a clean-session-0 session, so a resumed one gets      ../protocol/session-markers.ts
 *                        Session Present 1 (set in the CONNACK bytes; 0 for MQTT 3.1)
 *   outgoingStream       a resent PUBLISH carries DUP=1                                 (below)
 *   writeToStream        what each identifier sent is owed; other acks close           outgoing-flows.ts
 */
import { Readable } from 'node:stream';
import type { Aedes, Client } from 'aedes';
import type { Logger } from '../../lib/log.js';
import { connectViolation, refusingConnack } from '../protocol/connect.js';
import { keepDollarTopicsFromWildcards, keepDollarTopicsOutOfWildcardQueues } from './dollar-topics.js';
import { guardConnection, type AedesClientInternals } from './connection-guards.js';
import type { ProtocolViolation } from '../protocol/errors.js';
import { trackOutgoingFlows } from './outgoing-flows.js';
import { PacketIds } from '../protocol/packet-ids.js';
import { putPacketIdsBehindAedesClients, replaceAedesPacketIds } from './packet-ids.js';
import { mqttPacket } from './mqtt-packet.js';
import type { PublishFastLane } from './publish-fast-lane.js';
import { SessionMarkers, type IncomingStore } from '../protocol/session-markers.js';
import { setSessionPresentOnConnack } from './connack.js';
import { CHECKED_VERSIONS } from './internals.js';
import { cleanStartOf } from './connection.js';

export interface ProtocolGuardOptions {
  log: Logger;
  /** Takes the QoS 0 PUBLISHes it can (broker/publish-fast-lane.ts); the rest go to Aedes. */
  publishFastLane?: PublishFastLane;
}

/** The Aedes persistence methods this layer uses (the Aedes types leave `persistence` untyped). */
interface Persistence extends IncomingStore {
  outgoingUpdate(client: Client, packet: { messageId?: number }): Promise<unknown>;
  outgoingStream(client: Client): AsyncIterable<StoredPacket>;
  subscriptionsByTopic(topic: string): Promise<Array<{ topic: string }>>;
}

const guarded = new WeakSet<Aedes>();

export function installProtocolGuards(broker: Aedes, opts: ProtocolGuardOptions): void {
  if (guarded.has(broker)) return;
  // The layer reads Aedes internals (lib/client.js, internals.ts): another version is checked against it first.
  const version = (broker as unknown as { version: string }).version;
  if (version !== CHECKED_VERSIONS.aedes) throw new Error(`broker/aedes/protocol-guards.ts was checked against Aedes ${CHECKED_VERSIONS.aedes}, not ${version}`);
  guarded.add(broker);

  trackOutgoingFlows(mqttPacket as unknown as Parameters<typeof trackOutgoingFlows>[0]);
  const persistence = (broker as unknown as { persistence: Persistence }).persistence;
  const sessions = new SessionMarkers(persistence);
  const resumed = new WeakSet<Client>();
  const packetIds = new WeakMap<Client, PacketIds>();

  const previousPreConnect = broker.preConnect;
  broker.preConnect = (client, packet, callback) => {
    const violation = connectViolation(packet);
    if (violation) return refuse(client, violation, callback);
    if (packet.clean) return previousPreConnect.call(broker, client, packet, callback);
    // MQTT 3.1: the CONNACK's first byte is reserved, 0 even for a resumed session (Aedes sets it).
    const mqtt31 = packet.protocolVersion === 3;
    if (mqtt31) setSessionPresentOnConnack(client.conn, false);
    sessions.exists(packet.clientId).then((exists) => {
      if (exists) {
        resumed.add(client);
        if (!mqtt31) setSessionPresentOnConnack(client.conn);
      }
      previousPreConnect.call(broker, client, packet, callback);
    });
  };

  broker.on('connackSent', (connack, client) => {
    // A v5 CONNACK has a reason code where 3.1.1's has a return code.
    if ((connack.returnCode ?? (connack as { reasonCode?: number }).reasonCode) !== 0) return;
    const recorded = cleanStartOf(client) ? sessions.forget(client.id) : resumed.has(client) ? undefined : sessions.record(client.id);
    recorded?.catch((err: Error) => opts.log.warn({ clientId: client.id, err: err.message }, 'could not record the MQTT session'));
  });

  // MQTT 5: a session ends when its expiry interval has passed since the connection closed (at once for
  // 0, the default). Aedes 2 wipes its subscriptions, will and queue then (aedes.js _wipeSession); the
  // session's record and inbound QoS 2 state go with them.
  const internals = broker as unknown as { _wipeSession(client: Client): void };
  const wipeSession = internals._wipeSession;
  internals._wipeSession = function endSession(this: Aedes, client: Client) {
    sessions.end(client.id).catch((err: Error) => opts.log.warn({ clientId: client.id, err: err.message }, 'could not end the MQTT session'));
    return wipeSession.call(this, client);
  };

  putPacketIdsBehindAedesClients();
  const handle = broker.handle;
  broker.handle = (conn, req) => {
    const client = handle.call(broker, conn, req);
    const ids = new PacketIds();
    packetIds.set(client, ids);
    replaceAedesPacketIds(client, ids);
    guardConnection(client as unknown as AedesClientInternals, ids, opts.publishFastLane);
    keepDollarTopicsFromWildcards(client as unknown as Parameters<typeof keepDollarTopicsFromWildcards>[0]);
    return client;
  };

  keepDollarTopicsOutOfWildcardQueues(persistence);

  // MQTT-3.3.1-1: a PUBLISH sent before and not acknowledged (it has its identifier) goes again with
  // DUP=1; Aedes re-sends it as stored, DUP=0. One queued while the client was away is new: DUP=0.
  const outgoingStream = persistence.outgoingStream;
  persistence.outgoingStream = function markRedelivered(this: Persistence, client) {
    return Readable.from(withDupOnResent(outgoingStream.call(this, client)));
  };

  // A resumed session re-sends its stored packets with their identifiers: those are in flight too.
  const outgoingUpdate = persistence.outgoingUpdate;
  persistence.outgoingUpdate = function markResent(this: Persistence, client, packet) {
    if (packet.messageId !== undefined) packetIds.get(client)?.markInFlight(packet.messageId);
    return outgoingUpdate.call(this, client, packet);
  };
}

interface StoredPacket {
  cmd: string;
  messageId?: number;
  dup?: boolean;
}

async function* withDupOnResent(stored: AsyncIterable<StoredPacket>): AsyncGenerator<StoredPacket> {
  for await (const packet of stored) yield packet.cmd === 'publish' && packet.messageId ? { ...packet, dup: true } : packet;
}

/** CONNACK with the violation's return code when it has one, then Aedes closes the connection. */
function refuse(client: Client, violation: ProtocolViolation, callback: (err: Error | null, ok: boolean) => void): void {
  if (violation.returnCode !== undefined) client.conn.write(refusingConnack(violation.returnCode));
  callback(violation, false);
}
