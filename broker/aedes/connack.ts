/** Session Present in the CONNACK bytes Aedes writes (protocol-guards.ts decides when). */
import type { Writable } from 'node:stream';

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
