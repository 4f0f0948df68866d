/**
 * Changes to the CONNACK bytes Aedes writes, for what Aedes 2.0.0-beta.1 decides otherwise:
 *   - Session Present (protocol-guards.ts decides when): Aedes sets it only for a session with
 *     subscriptions, MQTT-3.2.2-2 asks it for any session the server holds;
 *   - the MQTT 5 reason code of a refusal (core.ts): Aedes's authenticate answers a v5 client with the
 *     reason its 3.1.1 return code maps to (4 → 0x86, 5 → 0x87...) and reads no reason of the hook's,
 *     so a ban cannot say 0x8A Banned nor a throttled login 0x9F.
 * The CONNACK is the first thing a server writes (MQTT-3.2.0-1), and mqtt-packet writes it in pieces:
 * they are held until the flags and the code are in, fixed, and written at once; what follows (a v5
 * CONNACK's properties) passes through.
 */
import type { Writable } from 'node:stream';

type WriteFn = (chunk: unknown, encoding?: unknown, callback?: unknown) => boolean;

interface ConnackPatch {
  /** Session Present, for a CONNACK that accepts (code 0; MQTT-3.2.2-4 keeps it 0 otherwise). */
  sessionPresent?: boolean;
  /** The MQTT 5 reason code, for a CONNACK that refuses (code 0x80 and above). */
  reasonCode?: number;
}

const patches = new WeakMap<object, ConnackPatch>();

/**
 * Sets Session Present in the CONNACK Aedes writes next on this connection, when it accepts the
 * client. MQTT 3.1 (protocol level 3) has no Session Present flag: its byte is always 0, so `present`
 * is false there.
 */
export function setSessionPresentOnConnack(conn: Writable, present = true): void {
  patchConnack(conn, { sessionPresent: present });
}

/** Sets the reason code of a refusing MQTT 5 CONNACK Aedes writes next on this connection. */
export function setConnackReasonCode(conn: Writable, reasonCode: number): void {
  patchConnack(conn, { reasonCode });
}

function patchConnack(conn: Writable, patch: ConnackPatch): void {
  const pending = patches.get(conn);
  if (pending) {
    Object.assign(pending, patch);
    return;
  }
  patches.set(conn, { ...patch });
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
    const bytes = Buffer.concat(pieces, length);
    // Fixed header: the type byte, then the remaining length (1 to 4 bytes, the high bit continues).
    let at = 1;
    while (at < bytes.length && at < 5 && bytes[at] & 0x80) at++;
    const flagsAt = at + 1;
    if (bytes.length < flagsAt + 2) return true;

    target.write = write;
    const { sessionPresent, reasonCode } = patches.get(conn) ?? {};
    patches.delete(conn);
    if (bytes[0] === 0x20) {
      const code = bytes[flagsAt + 1];
      if (code === 0x00 && sessionPresent !== undefined) bytes[flagsAt] = sessionPresent ? 0x01 : 0x00;
      if (code >= 0x80 && reasonCode !== undefined) bytes[flagsAt + 1] = reasonCode;
    }
    return write.call(this, bytes, (err?: Error | null) => {
      for (const done of callbacks) done(err);
    });
  };
}
