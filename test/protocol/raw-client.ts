/**
 * A raw MQTT connection for protocol tests: sends exact bytes (well-formed ones built with
 * mqtt-packet, malformed ones by hand) over TCP or WebSocket and reads back whole packets, each
 * with its bytes, so a test can assert what the broker answered byte for byte.
 */
import type { EventEmitter } from 'node:events';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import mqttPacket, { type Packet } from 'mqtt-packet';
import { WebSocket, createWebSocketStream } from 'ws';

export type RawTransport = 'mqtt' | 'ws';

export interface Received {
  bytes: Buffer;
  packet: Packet;
}

export class RawClient {
  private buffer = Buffer.alloc(0);
  private readonly frames: Received[] = [];
  private waiters: Array<() => void> = [];
  private isClosed = false;
  /** The level of the CONNECT sent (packets from the broker are read at it): 4 until one says 5. */
  private protocolVersion: 4 | 5 = 4;

  private constructor(
    private readonly stream: Duplex,
    closing: EventEmitter,
  ) {
    stream.on('data', (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      for (let frame = takeFrame(this.buffer); frame; frame = takeFrame(this.buffer)) {
        this.buffer = this.buffer.subarray(frame.length);
        this.frames.push({ bytes: frame, packet: parseFrame(frame, this.protocolVersion) });
      }
      this.wake();
    });
    stream.on('error', () => {});
    // A WebSocket stream's own 'close' waits for its writable side too; the socket's does not.
    closing.on('close', () => {
      this.isClosed = true;
      this.wake();
    });
  }

  static async open(transport: RawTransport, port: number): Promise<RawClient> {
    if (transport === 'mqtt') {
      const socket = net.connect(port, '127.0.0.1');
      await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
      socket.setNoDelay(true);
      return new RawClient(socket, socket);
    }
    const ws = new WebSocket(`ws://127.0.0.1:${port}/mqtt`, ['mqtt']);
    await new Promise<void>((resolve, reject) => ws.once('open', () => resolve()).once('error', reject));
    return new RawClient(createWebSocketStream(ws), ws);
  }

  /** Sends bytes as they are, or a packet encoded by mqtt-packet (MQTT 3.1.1). */
  send(data: Buffer | Packet): void {
    const bytes = Buffer.isBuffer(data) ? data : mqttPacket.generate(data);
    if (bytes[0] === 0x10) this.protocolVersion = connectLevel(bytes) === 5 ? 5 : 4;
    this.stream.write(bytes);
  }

  /** The next packet from the broker; rejects after `ms` or when the connection closes first. */
  async next(ms = 2000): Promise<Received> {
    const deadline = Date.now() + ms;
    while (this.frames.length === 0) {
      if (this.isClosed) throw new Error('connection closed while waiting for a packet');
      if (!(await this.wait(deadline))) throw new Error(`no packet within ${ms} ms`);
    }
    return this.frames.shift()!;
  }

  /** Every packet that arrives within `ms`. */
  async drain(ms: number): Promise<Received[]> {
    await new Promise((r) => setTimeout(r, ms));
    return this.frames.splice(0);
  }

  /** Resolves true when the broker has closed the connection within `ms`, false otherwise. */
  async closedWithin(ms = 1000): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (!this.isClosed) if (!(await this.wait(deadline))) return false;
    return true;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** Packets received and not yet read. */
  get pending(): Received[] {
    return this.frames;
  }

  end(): void {
    this.stream.destroy();
  }

  private wait(deadline: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), Math.max(0, deadline - Date.now()));
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}

/** One whole MQTT packet from the front of `buf`, or undefined when it has not all arrived. */
function takeFrame(buf: Buffer): Buffer | undefined {
  let length = 0;
  for (let i = 1, shift = 0; i <= 4 && i < buf.length; i++, shift += 7) {
    length += (buf[i] & 0x7f) << shift;
    if ((buf[i] & 0x80) === 0) return buf.length >= i + 1 + length ? Buffer.from(buf.subarray(0, i + 1 + length)) : undefined;
  }
  return undefined;
}

/** The protocol level byte of a CONNECT's bytes (after the fixed header and the protocol name). */
function connectLevel(bytes: Buffer): number | undefined {
  let i = 1;
  while (i < 5 && i < bytes.length && bytes[i] & 0x80) i++;
  const nameAt = i + 1;
  if (bytes.length < nameAt + 2) return undefined;
  return bytes[nameAt + 2 + bytes.readUInt16BE(nameAt)];
}

function parseFrame(frame: Buffer, protocolVersion: 4 | 5): Packet {
  const parser = mqttPacket.parser({ protocolVersion });
  let parsed: Packet | undefined;
  parser.on('packet', (p: Packet) => (parsed = p));
  parser.on('error', (err: Error) => {
    throw err;
  });
  parser.parse(frame);
  if (!parsed) throw new Error(`unparsable packet ${frame.toString('hex')}`);
  return parsed;
}
