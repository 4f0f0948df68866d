/**
 * Random and mutated MQTT packets for the fuzz test, from a seeded generator (a failing run is
 * repeated with the seed it printed). Valid packets are encoded by mqtt-packet, then broken in the
 * ways firmware and attackers break them: wrong lengths, bad flags and reserved bits, invalid UTF-8,
 * truncated or over-long varints, huge remaining lengths, wrong protocol levels, cut-off packets.
 */
import mqttPacket, { type Packet } from 'mqtt-packet';
import { connectBytes } from '../protocol/bytes.js';

/** mulberry32: small, fast, good enough to drive a fuzzer. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class PacketFuzzer {
  constructor(
    private readonly random: () => number,
    private readonly login: { username: string; password: string },
  ) {}

  int(n: number): number {
    return Math.floor(this.random() * n);
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  private topic(): string {
    return this.pick(['fuzz/a', 'fuzz/+/b', 'fuzz/#', '#', '+', '$SYS/x', 'a//b', '/', 'good/0', 'fuzz/' + 'x'.repeat(this.int(300)), 'f/'.repeat(this.int(60)) + 'z']);
  }

  /** A well-formed CONNECT; with `valid` false, one with a wrong protocol level. */
  connect(valid = true): Buffer {
    return connectBytes({
      level: valid ? 4 : this.pick([0, 1, 2, 3, 5, 6, 255]),
      clean: this.random() < 0.7,
      clientId: this.random() < 0.1 ? '' : `fuzz-${this.int(1e9)}`,
      keepalive: this.pick([0, 1, 30, 60, 65535]),
      ...(this.random() < 0.8 ? { username: this.login.username, password: Buffer.from(this.random() < 0.9 ? this.login.password : 'wrong') } : {}),
      ...(this.random() < 0.2 ? { will: { topic: this.topic(), payload: Buffer.from('will'), qos: this.int(3), retain: this.random() < 0.5 } } : {}),
    });
  }

  /** A well-formed packet of any type a client may send. */
  valid(): Buffer {
    const messageId = 1 + this.int(65535);
    const kind = this.int(10);
    let packet: Packet;
    switch (kind) {
      case 0:
      case 1:
        packet = { cmd: 'publish', topic: this.topic().replace(/[+#]/g, 'w'), payload: Buffer.alloc(this.int(200), this.int(256)), qos: this.int(3) as 0 | 1 | 2, retain: this.random() < 0.1, dup: false, messageId } as Packet;
        break;
      case 2:
        packet = { cmd: 'subscribe', messageId, subscriptions: [{ topic: this.topic(), qos: this.int(3) as 0 | 1 | 2 }] } as Packet;
        break;
      case 3:
        packet = { cmd: 'unsubscribe', messageId, unsubscriptions: [this.topic()] } as Packet;
        break;
      case 4:
        packet = { cmd: 'pubrel', messageId } as Packet;
        break;
      case 5:
        packet = { cmd: this.pick(['puback', 'pubrec', 'pubcomp'] as const), messageId } as Packet;
        break;
      case 6:
        packet = { cmd: 'pingreq' } as Packet;
        break;
      case 7:
        return this.connect(this.random() < 0.5); // a second CONNECT
      case 8:
        packet = { cmd: this.pick(['connack', 'suback', 'unsuback', 'pingresp'] as const), returnCode: 0, granted: [0], messageId, sessionPresent: false } as Packet;
        break;
      default:
        packet = { cmd: 'disconnect' } as Packet;
    }
    try {
      return mqttPacket.generate(packet);
    } catch {
      return Buffer.from([0xc0, 0x00]); // what mqtt-packet will not encode: a PINGREQ instead
    }
  }

  /** A valid packet broken in one (or several) of the ways listed at the top of this file. */
  mutated(): Buffer {
    const base = Buffer.from(this.random() < 0.2 ? this.connect() : this.valid());
    const mutations = 1 + this.int(3);
    let out = base;
    for (let m = 0; m < mutations; m++) out = this.mutate(out);
    return out;
  }

  private mutate(buf: Buffer): Buffer {
    const b = Buffer.from(buf);
    switch (this.int(12)) {
      case 0: // flip bits anywhere
        for (let i = 0, n = 1 + this.int(4); i < n && b.length > 0; i++) b[this.int(b.length)] ^= 1 << this.int(8);
        return b;
      case 1: // reserved / flag bits of the fixed header
        if (b.length > 0) b[0] = (b[0] & 0xf0) | this.int(16);
        return b;
      case 2: // wrong remaining length (one byte form)
        if (b.length > 1) b[1] = this.int(128);
        return b;
      case 3: // truncated: the end never arrives
        return b.subarray(0, this.int(b.length + 1));
      case 4: // huge remaining length (up to the 4-byte maximum, 256 MB)
        return Buffer.concat([Buffer.from([b[0] ?? 0x30, 0xff, 0xff, 0xff, 0x7f]), b.subarray(2, 40)]);
      case 5: // over-long varint (a fifth continuation byte)
        return Buffer.from([b[0] ?? 0x30, 0xff, 0xff, 0xff, 0xff, 0x01]);
      case 6: { // invalid UTF-8 spliced into a string field
        const bad = this.pick([[0xc3, 0x28], [0xff], [0xed, 0xa0, 0x80], [0x00], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xef, 0xbf, 0xbf]]);
        const at = Math.min(b.length, 4 + this.int(Math.max(1, b.length - 4)));
        return Buffer.concat([b.subarray(0, at), Buffer.from(bad), b.subarray(at)]);
      }
      case 7: // wrong protocol name or level in a CONNECT-shaped packet
        if (b.length > 8) b[8] = this.int(256);
        if (b.length > 4 && this.random() < 0.5) b[4 + this.int(4)] = 0x41 + this.int(26);
        return b;
      case 8: // random bytes
        return Buffer.from(Array.from({ length: 1 + this.int(64) }, () => this.int(256)));
      case 9: // packet type 0 or 15 (reserved)
        if (b.length > 0) b[0] = (this.random() < 0.5 ? 0x00 : 0xf0) | (b[0] & 0x0f);
        return b;
      case 10: // duplicated tail / two packets glued with a wrong boundary
        return Buffer.concat([b, b.subarray(this.int(b.length + 1))]);
      default: // a length that claims more than follows
        if (b.length > 1 && b[1] < 0x7f) b[1] = b[1] + 1 + this.int(0x7f - b[1]);
        return b;
    }
  }
}
