/**
 * Session Present for resumed sessions [MQTT-3.2.2-1, -2, -3], and never for MQTT 3.1 clients.
 *
 * Aedes 1.2 (lib/handlers/connect.js, restoreSubs) answers Session Present = !!subscriptions, so a
 * clean-session-0 client whose stored session holds no subscription is told it has none. No Aedes
 * persistence records "a session exists", so Roost records it: a marker in the persistence's
 * incoming-QoS-2 store under packet identifier 0, an identifier MQTT never puts on the wire
 * (MQTT-2.3.1-1; protocol-connection.ts closes a client that sends it). That store exists in every
 * Aedes persistence (memory, Redis, Roost's SQL one) with exactly a session's lifetime: Aedes's
 * cleanIncoming wipes it when a clean-session-1 client takes the identifier.
 */
import type { Writable } from 'node:stream';

/** The part of the Aedes persistence interface the marker lives in. */
export interface IncomingStore {
  incomingStorePacket(client: { id: string }, packet: object): Promise<void>;
  incomingGetPacket(client: { id: string }, packet: { messageId: number }): Promise<unknown>;
  incomingDelPacket(client: { id: string }, packet: { messageId: number }): Promise<void>;
  cleanIncoming?(client: { id: string }): Promise<void>;
}

const MARKER_ID = 0;

export class SessionMarkers {
  constructor(private readonly store: IncomingStore) {}

  /** Whether a clean-session-0 client with this identifier left a session behind. */
  async exists(clientId: string): Promise<boolean> {
    // Every persistence rejects for "not stored"; like Aedes (pubrel.js), any rejection reads as absent.
    return this.store.incomingGetPacket({ id: clientId }, { messageId: MARKER_ID }).then(
      () => true,
      () => false,
    );
  }

  async record(clientId: string): Promise<void> {
    await this.store.incomingStorePacket(
      { id: clientId },
      { cmd: 'publish', topic: '$roost/session', payload: Buffer.alloc(0), qos: 2, retain: false, dup: false, messageId: MARKER_ID },
    );
  }

  /** Ends the session record when a clean-session-1 client connects (Aedes's cleanIncoming does it when present). */
  async forget(clientId: string): Promise<void> {
    if (typeof this.store.cleanIncoming === 'function') return;
    await this.store.incomingDelPacket({ id: clientId }, { messageId: MARKER_ID }).catch(() => {});
  }
}

type WriteFn = (chunk: unknown, encoding?: unknown, callback?: unknown) => boolean;

/**
 * Sets Session Present in the CONNACK Aedes writes next on this connection, when it accepts the
 * client (return code 0; MQTT-3.2.2-4 keeps it 0 otherwise). The CONNACK is the first thing a server
 * writes (MQTT-3.2.0-1), 4 bytes that mqtt-packet writes in pieces: hold them, fix byte 2, write once.
 * MQTT 3.1 (protocol level 3) has no Session Present flag: its byte is always 0, so `present` is false.
 */
export function setSessionPresentOnConnack(conn: Writable, present = true): void {
  const target = conn as unknown as { write: WriteFn };
  const write = target.write;
  const pieces: Buffer[] = [];
  const callbacks: Array<(err?: Error | null) => void> = [];
  let length = 0;
  target.write = function holdConnack(this: Writable, chunk, encoding, callback) {
    const piece = typeof chunk === 'string' ? Buffer.from(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8') : (chunk as Buffer);
    pieces.push(piece);
    length += piece.length;
    const cb = typeof encoding === 'function' ? encoding : callback;
    if (typeof cb === 'function') callbacks.push(cb as (err?: Error | null) => void);
    if (length < 4) return true;

    target.write = write;
    const bytes = Buffer.concat(pieces);
    if (bytes[0] === 0x20 && bytes[1] === 0x02 && bytes[3] === 0x00) bytes[2] = present ? 0x01 : 0x00;
    return write.call(this, bytes, (err?: Error | null) => {
      for (const done of callbacks) done(err);
    });
  };
}
