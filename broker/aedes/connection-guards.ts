/**
 * The per-connection part of the protocol guards: a thin layer around the mqtt-packet parser Aedes
 * gives each client (lib/client.js), set up by the wrapped `broker.handle` for every listener.
 *   - every UTF-8 string the parser reads is checked before a packet is built (MQTT-1.5.3-1, -2);
 *   - an unsupported protocol level is answered with CONNACK 0x01 before the close (MQTT-3.1.2-2);
 *   - a CONNECT with bytes its flags do not announce is closed without CONNACK (MQTT-3.1.2-18, -19);
 *   - each parsed packet passes guardPacket() on its way to Aedes's handlers, where an acknowledgement
 *     of another flow closes the connection (../protocol/flows.ts).
 */
import { isUtf8 } from 'node:buffer';
import type { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { refusingConnack } from '../protocol/connect.js';
import { ProtocolViolation } from '../protocol/errors.js';
import { packetViolation, type ParsedPacket } from '../protocol/packets.js';
import { flowsOfConnection } from './outgoing-flows.js';
import type { PacketIds } from '../protocol/packet-ids.js';
import type { PublishFastLane } from './publish-fast-lane.js';

/** The bl 6 BufferList internals read here: its buffers, the first starting at offset 0. */
interface BufferList {
  _bufs: Buffer[];
  slice(start: number, end: number): Buffer;
  readUInt8(offset?: number): number;
  readUInt16BE(offset?: number): number;
}

/** The mqtt-packet 9 Parser internals read here. */
interface Parser extends EventEmitter {
  _list: BufferList;
  _pos: number;
  error: Error | null;
  packet: ParsedPacket;
  _parseString(): string | null;
  _parseConnect(): unknown;
  _emitError(err: Error): void;
}

/** The Aedes 1.2 Client (lib/client.js) fields read here; the typed Client hides them. */
export interface AedesClientInternals {
  conn: Duplex;
  connecting: boolean;
  connected: boolean;
  connackSent: boolean;
  closed: boolean;
  _parser: Parser;
  /** The "packet handled" callback Aedes passes each handler; it reads the next chunk when all are done. */
  _nextBatch: (err?: Error | null) => void;
}

type Enqueue = (this: Parser, packet: ParsedPacket) => void;

/**
 * MQTT-1.5.3-1, -2: mqtt-packet decodes strings with Buffer#toString, which turns ill-formed UTF-8
 * (surrogates included) into U+FFFD, and Aedes takes U+0000 as any character. The decoded string
 * tells both cheaply; only a string holding U+FFFD has its bytes validated (it may be a real U+FFFD).
 */
function checkStrings(parser: Parser): void {
  const parseString = parser._parseString;
  parser._parseString = function checkedParseString(this: Parser) {
    const start = this._pos + 2;
    const result = parseString.call(this);
    if (result === null || this.error) return result;
    if (result.includes('\0')) {
      this._emitError(new ProtocolViolation('ROOST_ERR_UTF8_NUL'));
    } else if (result.includes('\uFFFD') && !isUtf8(this._list.slice(start, this._pos))) {
      this._emitError(new ProtocolViolation('ROOST_ERR_UTF8'));
    }
    return result;
  };
}

/**
 * bl reads a number by slicing a new Buffer for it and reading that (five per PUBLISH parsed: the
 * header, each length byte, the topic length); read the bytes in place when they lie in the list's
 * first buffer, as they nearly always do. Other reads go to bl as before.
 */
function readNumbersInPlace(list: BufferList): void {
  const { readUInt8, readUInt16BE } = list;
  list.readUInt8 = function readUInt8InPlace(this: BufferList, offset = 0) {
    const first = this._bufs[0];
    if (first !== undefined && offset >= 0 && offset < first.length) return first[offset];
    return readUInt8.call(this, offset);
  };
  list.readUInt16BE = function readUInt16BEInPlace(this: BufferList, offset = 0) {
    const first = this._bufs[0];
    if (first !== undefined && offset >= 0 && offset + 1 < first.length) return (first[offset] << 8) | first[offset + 1];
    return readUInt16BE.call(this, offset);
  };
}

/**
 * MQTT-3.1.2-18, -19, MQTT-4.8.0-1: mqtt-packet reads the fields the CONNECT flags announce and
 * leaves the rest (e.g. a user name sent with the user name flag 0), which Aedes never sees.
 */
function refuseConnectLeftovers(parser: Parser): void {
  const parseConnect = parser._parseConnect;
  parser._parseConnect = function parseWholeConnect(this: Parser) {
    const packet = parseConnect.call(this);
    if (packet !== undefined && !this.error && this._pos < (this.packet.length ?? 0)) {
      this._emitError(new ProtocolViolation('ROOST_ERR_CONNECT_PAYLOAD'));
      return undefined;
    }
    return packet;
  };
}

/**
 * MQTT-3.1.2-2: mqtt-packet fails a CONNECT whose level is not 3, 4 or 5 and Aedes closes without a
 * word; the client is owed CONNACK 0x01 first. Runs before Aedes's own error listener closes.
 */
function answerUnsupportedLevel(client: AedesClientInternals): void {
  const parser = client._parser;
  parser.prependListener('error', () => {
    const { cmd, protocolVersion } = parser.packet;
    if (cmd !== 'connect' || client.connecting || client.connected || typeof protocolVersion !== 'number') return;
    if (protocolVersion === 3 || protocolVersion === 4 || protocolVersion === 5) return;
    client.conn.write(refusingConnack(1));
  });
}

export function guardConnection(client: AedesClientInternals, ids: PacketIds, fastLane?: PublishFastLane): void {
  const parser = client._parser;
  const flows = flowsOfConnection(client.conn);
  checkStrings(parser);
  refuseConnectLeftovers(parser);
  readNumbersInPlace(parser._list);
  answerUnsupportedLevel(client);

  const aedesListeners = parser.listeners('packet') as Enqueue[];
  if (aedesListeners.length !== 1) throw new Error(`expected Aedes's one parser listener, found ${aedesListeners.length}`);
  const enqueue = aedesListeners[0];
  parser.removeListener('packet', enqueue);

  // Retained ordering: Aedes runs all packets of one read chunk at once, so a SUBSCRIBE right after a
  // retained PUBLISH can be added before that message is stored (the client then gets it live with
  // RETAIN=0) or after it is stored but before it is routed (twice). Packets from a SUBSCRIBE that
  // follows an unfinished retained PUBLISH on are held until it finishes, then go in order.
  let retainedInFlight = 0;
  let held: ParsedPacket[] = [];

  const release = () => {
    const packets = held;
    held = [];
    if (!client.closed) for (const packet of packets) dispatch(packet);
  };

  const dispatch = (packet: ParsedPacket) => {
    if (held.length > 0 || (packet.cmd === 'subscribe' && retainedInFlight > 0)) {
      held.push(packet);
      return;
    }
    if (packet.cmd !== 'publish' || !packet.retain || !client.connackSent) {
      if (!fastLane?.(client, packet)) enqueue.call(parser, packet);
      return;
    }
    // Aedes hands the handler client._nextBatch as its "done"; lend it one that counts this PUBLISH.
    retainedInFlight++;
    const nextBatch = client._nextBatch;
    client._nextBatch = (err) => {
      if (--retainedInFlight === 0) {
        if (err) held = [];
        else release();
      }
      nextBatch(err);
    };
    try {
      enqueue.call(parser, packet);
    } finally {
      client._nextBatch = nextBatch;
    }
  };

  parser.on('packet', function guardPacket(this: Parser, packet: ParsedPacket) {
    const violation = packetViolation(packet);
    if (violation) {
      // Aedes's parser error path: client 'error' → connection destroyed, client closed.
      parser.emit('error', violation);
      return;
    }
    const ack = packet.cmd === 'puback' || packet.cmd === 'pubrec' || packet.cmd === 'pubcomp' ? packet.cmd : undefined;
    if (ack && packet.messageId !== undefined) {
      const wrongAck = flows.acknowledged(ack, packet.messageId);
      if (wrongAck) {
        parser.emit('error', wrongAck);
        return;
      }
      if (ack !== 'pubrec') ids.release(packet.messageId);
    }
    dispatch(packet);
  });
}
