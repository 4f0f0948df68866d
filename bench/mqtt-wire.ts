/**
 * The little MQTT the load generator needs (3.1.1, or MQTT 5 without properties): packets encoded once with mqtt-packet, and a framer
 * that splits a byte stream into packets without decoding them (a subscriber only counts PUBLISH,
 * a publisher only reads the packet id of PUBACK), so the generator spends almost nothing per message.
 */
import { generate, type IConnectPacket, type IPublishPacket, type ISubscribePacket } from 'mqtt-packet';

export const PacketType = { CONNACK: 2, PUBLISH: 3, PUBACK: 4, SUBACK: 9, PINGRESP: 13 } as const;

/** The protocol level every packet is encoded at: 4 (MQTT 3.1.1) unless useProtocolLevel(5) was called. */
let level: 4 | 5 = 4;

/** MQTT 5 packets (no properties) from now on; set once, before any packet is encoded. */
export function useProtocolLevel(to: 4 | 5): void {
  level = to;
}

export function protocolLevel(): 4 | 5 {
  return level;
}

export function encodeConnect(clientId: string, username?: string, password?: string): Buffer {
  const packet: IConnectPacket = { cmd: 'connect', protocolId: 'MQTT', protocolVersion: level, clean: true, keepalive: 0, clientId };
  if (username !== undefined) packet.username = username;
  if (password !== undefined) packet.password = Buffer.from(password);
  return generate(packet, { protocolVersion: level });
}

export function encodeSubscribe(filter: string, qos: 0 | 1): Buffer {
  const packet: ISubscribePacket = { cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: filter, qos }] };
  return generate(packet, { protocolVersion: level });
}

export function encodePublish(topic: string, payload: Buffer, qos: 0 | 1, messageId?: number): Buffer {
  const packet: IPublishPacket = { cmd: 'publish', topic, payload, qos, retain: false, dup: false };
  if (qos > 0) packet.messageId = messageId;
  return generate(packet, { protocolVersion: level });
}

/** The first reason code of a SUBACK body: after the packet id, and in MQTT 5 after the properties. */
export function subackCode(body: Buffer): number | undefined {
  return level === 5 ? body[3 + (body[2] ?? 0)] : body[2];
}

export const disconnectPacket = () => generate({ cmd: 'disconnect' }, { protocolVersion: level });

/** A JSON document of exactly `size` bytes, like a small sensor reading. */
export function jsonPayload(size: number): Buffer {
  const base = JSON.stringify({ ts: 1732500000000, temp: 21.53, rh: 41.5, pad: '' });
  if (base.length > size) throw new Error(`payload size ${size} is smaller than the minimum ${base.length}`);
  const doc = { ts: 1732500000000, temp: 21.53, rh: 41.5, pad: 'x'.repeat(size - base.length) };
  return Buffer.from(JSON.stringify(doc));
}

/**
 * Splits a stream into MQTT packets. For each packet, onPacket gets its type and, for packets of
 * up to `keepBodyUpTo` bytes, its variable header + payload (PUBACK ids, CONNACK codes); larger
 * bodies are skipped without copying.
 */
export class PacketFramer {
  private header = 0; // first byte of the current packet
  private lengthBytes = 0;
  private remaining = 0;
  private multiplier = 1;
  private body: Buffer | null = null;
  private bodyFill = 0;
  private skipping = 0;
  private inHeader = false;

  constructor(
    private readonly onPacket: (type: number, body: Buffer | null, flags: number) => void,
    private readonly keepBodyUpTo = 8,
  ) {}

  /** Offset in the chunk being pushed just after the last complete packet (0: none complete yet). */
  completeUpTo = 0;

  private complete(body: Buffer | null, end: number): void {
    this.completeUpTo = end;
    this.onPacket(this.header >> 4, body, this.header & 0x0f);
  }

  push(chunk: Buffer): void {
    this.completeUpTo = 0;
    let i = 0;
    const n = chunk.length;
    while (i < n) {
      if (this.skipping > 0) {
        const take = Math.min(this.skipping, n - i);
        this.skipping -= take;
        i += take;
        if (this.skipping === 0) this.complete(null, i);
        continue;
      }
      if (this.body) {
        const take = Math.min(this.body.length - this.bodyFill, n - i);
        chunk.copy(this.body, this.bodyFill, i, i + take);
        this.bodyFill += take;
        i += take;
        if (this.bodyFill === this.body.length) {
          const body = this.body;
          this.body = null;
          this.complete(body, i);
        }
        continue;
      }
      if (!this.inHeader) {
        this.header = chunk[i++];
        this.inHeader = true;
        this.remaining = 0;
        this.multiplier = 1;
        this.lengthBytes = 0;
        continue;
      }
      // MQTT-2.2.3: remaining length, 1-4 bytes, 7 bits each, high bit = more bytes follow.
      const byte = chunk[i++];
      this.remaining += (byte & 0x7f) * this.multiplier;
      this.multiplier *= 128;
      if (++this.lengthBytes > 4) throw new Error('malformed remaining length');
      if (byte & 0x80) continue;
      this.inHeader = false;
      if (this.remaining === 0) this.complete(Buffer.alloc(0), i);
      else if (this.remaining <= this.keepBodyUpTo) {
        this.body = Buffer.allocUnsafe(this.remaining);
        this.bodyFill = 0;
      } else this.skipping = this.remaining;
    }
  }
}
