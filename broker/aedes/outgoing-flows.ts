/**
 * Notes what Roost wrote under each packet identifier (broker/protocol/flows.ts decides what an
 * acknowledgement may be), from mqtt-packet's writeToStream, which every writer of a packet uses.
 */
import { OutgoingFlows } from '../protocol/flows.js';
import { refuseKeepAliveAsMosquitto } from './keep-alive-limit.js';
import { withTopicAlias } from './outgoing-topic-aliases.js';
import { problemInformationAllowed } from './problem-information.js';

/** A packet as mqtt-packet writes it (the fields read here). */
interface WrittenPacket {
  cmd: string;
  qos?: number;
  messageId?: number;
  reasonCode?: number;
}

/** MQTT 5 reason 0x87: what Aedes 2 answers any authorizePublish error of a v5 client with. */
const NOT_AUTHORIZED = 0x87;
/** Per connection: packet identifier → the reason its PUBACK/PUBREC is to carry instead of 0x87. */
const ackReasons = new WeakMap<object, Map<number, number>>();

/**
 * The reason code the next PUBACK/PUBREC for `messageId` on this connection carries, where Aedes 2
 * writes 0x87 for every refused v5 PUBLISH (lib/handlers/publish.js authorizePublish): 0x97 quota
 * exceeded, 0x99 payload format invalid.
 */
export function setAckReason(conn: object, messageId: number, reasonCode: number): void {
  let reasons = ackReasons.get(conn);
  if (!reasons) ackReasons.set(conn, (reasons = new Map()));
  reasons.set(messageId, reasonCode);
}

type WriteToStream = (packet: WrittenPacket, stream: object, opts?: unknown) => boolean;
export type { WrittenPacket };

const flowsOf = new WeakMap<object, OutgoingFlows>();
/** mqtt-packet, once its writeToStream is wrapped: a waiting PUBLISH is written through the wrapper. */
let mqttPacketRef: { writeToStream: WriteToStream } | undefined;
let tracking = false;

/**
 * Notes every QoS 1/2 PUBLISH and PUBREL written through mqtt-packet (Aedes's write.js and Roost's
 * own writers both use its writeToStream) on the flows of the connection it is written to.
 */
export function trackOutgoingFlows(mqttPacket: { writeToStream: WriteToStream }): void {
  if (tracking) return;
  tracking = true;
  mqttPacketRef = mqttPacket;
  const writeToStream = mqttPacket.writeToStream;
  const generate = (mqttPacket as unknown as { generate(packet: object, opts?: object): Buffer }).generate;
  mqttPacket.writeToStream = function writeToStreamNoted(packet, stream, opts) {
    /** Bytes the PUBLISH may still grow under the client's Maximum Packet Size (a topic alias adds some). */
    let room = Infinity;
    if (packet.cmd === 'publish') {
      const limit = packetLimits.get(stream);
      if (limit) {
        room = limit.max - generate(packet as never, opts as never).length;
        // MQTT-3.1.2-24: a packet over the client's Maximum Packet Size is not sent; Roost behaves as if it had been.
        if (room < 0) {
          limit.discard(packet);
          return true;
        }
      }
    }
    if (packet.cmd === 'publish' && (packet.qos ?? 0) > 0) {
      publishWatchers.get(stream)?.(packet);
      const window = windows.get(stream);
      // MQTT-3.3.4-7: beyond the client's Receive Maximum a QoS 1/2 PUBLISH waits (after any already waiting).
      if (window && !window.releasing && (window.waiting.length > 0 || window.flows.inFlight >= window.max)) {
        window.waiting.push([packet, opts]);
        window.heldBytes += heldSize(packet);
        // Past the bound the writer is told to wait for 'drain' (Aedes's resumed queue stops reading
        // the session store); limitInFlight's release emits it once the held bytes are under the bound.
        if (window.heldBytes < window.maxHeldBytes) return true;
        window.blocked = true;
        return false;
      }
    }
    if (packet.cmd === 'publish' ? (packet.qos ?? 0) > 0 : packet.cmd === 'pubrel') flowsOf.get(stream)?.sent(packet);
    else if (packet.cmd === 'connack') {
      refuseKeepAliveAsMosquitto(packet);
      // Aedes 2 says "no shared subscriptions" in every v5 CONNACK (connect.js connackProperties); absent, the property says yes.
      const properties = (packet as { properties?: { sharedSubscriptionAvailable?: boolean } }).properties;
      if (properties && sharedSubscriptionsOffered) delete properties.sharedSubscriptionAvailable;
    } else if (packet.cmd === 'puback' || packet.cmd === 'pubrec' || packet.cmd === 'pubcomp') {
      if (packet.cmd !== 'pubcomp' && packet.reasonCode === NOT_AUTHORIZED) {
        const reasons = ackReasons.get(stream);
        const reason = reasons?.get(packet.messageId!);
        if (reason !== undefined) {
          reasons!.delete(packet.messageId!);
          packet.reasonCode = reason;
        }
      }
      // An inbound QoS 1/2 flow ends with its PUBACK, its PUBCOMP, or a PUBREC refusing it (0x80 and above).
      if (packet.cmd !== 'pubrec' || (packet.reasonCode ?? 0) >= 0x80) inbound.get(stream)?.delete(packet.messageId!);
    }
    // MQTT 5 only (a 3.1.1 packet has neither topic aliases nor properties): written last, as it goes out.
    if ((opts as { protocolVersion?: number } | undefined)?.protocolVersion === 5) {
      packet = packet.cmd === 'publish' ? withTopicAlias(packet, stream, room) : problemInformationAllowed(packet, stream);
    }
    return writeToStream(packet, stream, opts);
  };
  // mqtt-packet's own setting on the function (writeToStream.cacheNumbers) stays reachable.
  Object.defineProperty(mqttPacket.writeToStream, 'cacheNumbers', Object.getOwnPropertyDescriptor(writeToStream, 'cacheNumbers') ?? { value: true });
}

/** Per connection: the client's MQTT 5 Maximum Packet Size, and what to do with a PUBLISH over it. */
const packetLimits = new WeakMap<object, { max: number; discard(packet: WrittenPacket): void }>();

/**
 * From now on a PUBLISH to this connection larger than `max` bytes (the client's Maximum Packet
 * Size, 3.1.2.11.4) is not written; `discard` is told (a QoS 1/2 one is to leave the session's queue).
 */
export function limitOutgoingPackets(conn: object, max: number, discard: (packet: WrittenPacket) => void): void {
  packetLimits.set(conn, { max, discard });
}

/** What a held PUBLISH counts for in the bound: client-limits.ts counts a written one the same way. */
function heldSize(packet: WrittenPacket): number {
  const p = packet as WrittenPacket & { payload?: { length: number }; topic?: string };
  return (p.payload?.length ?? 0) + (p.topic?.length ?? 0) + 8;
}

/** Per connection: the client's MQTT 5 Receive Maximum and the QoS 1/2 PUBLISHes waiting for a slot. */
interface Window {
  max: number;
  flows: OutgoingFlows;
  waiting: Array<[WrittenPacket, unknown]>;
  heldBytes: number;
  maxHeldBytes: number;
  /** A writer was told to wait for 'drain'. */
  blocked: boolean;
  releasing: boolean;
}
const windows = new WeakMap<object, Window>();

/**
 * Bytes of PUBLISHes held back by the client's Receive Maximum on this connection: memory the
 * client holds as surely as bytes its socket has not taken, so client-limits.ts counts both against
 * ROOST_MAX_CLIENT_BUFFER_BYTES (a live QoS 1/2 delivery over it disconnects the client; a
 * persistent session keeps the message queued).
 */
export function heldBytes(conn: object): number {
  return windows.get(conn)?.heldBytes ?? 0;
}

/**
 * From now on at most `max` QoS 1/2 PUBLISHes are unacknowledged towards this connection (the
 * client's Receive Maximum, MQTT-3.3.4-7): the next wait, in order, and go out as PUBACKs and
 * PUBCOMPs come in. For Aedes they are written (its write callback runs); a persistent session's
 * copy stays in its queue, so one lost with the connection is sent again on resume. Live deliveries
 * and the queue a resumed session is sent at CONNECT alike: both are written through here. Held
 * bytes are bounded by `maxHeldBytes`: past it the writer is answered false, as a full socket
 * answers, and waits for 'drain'.
 */
export function limitInFlight(conn: object, max: number, maxHeldBytes: number): void {
  const flows = flowsOf.get(conn);
  if (!flows) return;
  const window: Window = { max, flows, waiting: [], heldBytes: 0, maxHeldBytes, blocked: false, releasing: false };
  windows.set(conn, window);
  flows.onSettled = () => {
    if (window.releasing || (conn as { destroyed?: boolean }).destroyed === true) return;
    window.releasing = true; // the one taken from the front is written, not queued again behind the rest
    try {
      while (window.waiting.length > 0 && flows.inFlight < max) {
        const [packet, opts] = window.waiting.shift()!;
        window.heldBytes -= heldSize(packet);
        // Written through the wrapper (noted in the flows; one over the Maximum Packet Size discarded).
        mqttPacketRef!.writeToStream(packet, conn, opts);
      }
    } finally {
      window.releasing = false;
    }
    if (window.blocked && window.heldBytes < window.maxHeldBytes) {
      window.blocked = false;
      (conn as { emit(event: 'drain'): void }).emit('drain');
    }
  };
}

/** Per connection: the identifiers of the client's QoS 1/2 PUBLISHes not yet acknowledged to the end. */
const inbound = new WeakMap<object, Set<number>>();

/**
 * Notes an inbound QoS 1/2 PUBLISH of an MQTT 5 client on its connection; false when that makes more
 * unacknowledged than `receiveMaximum` (MQTT-3.3.4-9: the client sent over the Receive Maximum Roost
 * gave it). A resent identifier still in flight is not a new one.
 */
export function noteInboundPublish(conn: object, messageId: number, receiveMaximum: number): boolean {
  let ids = inbound.get(conn);
  if (!ids) inbound.set(conn, (ids = new Set()));
  ids.add(messageId);
  return ids.size <= receiveMaximum;
}

/** Per connection: told of each QoS 1/2 PUBLISH Roost writes to it (or holds for its Receive Maximum). */
const publishWatchers = new WeakMap<object, (packet: WrittenPacket) => void>();
let sharedSubscriptionsOffered = false;

/** From now on v5 CONNACKs offer shared subscriptions (shared-subscriptions.ts serves them). */
export function offerSharedSubscriptions(): void {
  sharedSubscriptionsOffered = true;
}

/**
 * Watches what this connection is sent and what it takes: `written` for each QoS 1/2 PUBLISH (with the
 * packet identifier it goes under), `received` when the client's PUBACK or PUBREC for one comes in.
 */
export function watchDeliveries(conn: object, watch: { written(packet: WrittenPacket): void; received(messageId: number): void }): void {
  publishWatchers.set(conn, watch.written);
  const flows = flowsOf.get(conn);
  if (flows) flows.onReceived = watch.received;
}

/** The flows of one connection, noted from its first write on. */
export function flowsOfConnection(conn: object): OutgoingFlows {
  const flows = new OutgoingFlows();
  flowsOf.set(conn, flows);
  return flows;
}

