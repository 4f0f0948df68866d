/**
 * Issue 22 #7: a WebSocket frame is buffered whole by ws before MQTT sees a byte of it, so the frame
 * size is the WebSocket listeners' packet-size limit. One frame far over ROOST_MAX_PACKET_BYTES, sent
 * before any CONNECT, is refused on its announced length (close code 1009), as TCP refuses a packet
 * on its announced remaining length; a frame carrying a packet of exactly the limit still passes.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { startTestRoost, type TestRoost } from '../helpers/roost.js';
import { publishBytes, subscribeBytes } from '../protocol/bytes.js';
import { connectOk, uniqueId } from '../protocol/suite.js';

const MAX_PACKET_BYTES = 4096;
const EIGHT_MIB = 8 * 1024 * 1024;

/** A TCP socket that has completed the WebSocket upgrade on `port` (RFC 6455 4.1). */
async function upgradedSocket(port: number): Promise<net.Socket> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  socket.write(
    'GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n`,
  );
  const head = await new Promise<string>((resolve, reject) => {
    let text = '';
    const onData = (chunk: Buffer) => {
      text += chunk.toString('latin1');
      if (!text.includes('\r\n\r\n')) return;
      socket.off('data', onData);
      resolve(text);
    };
    socket.on('data', onData);
    socket.once('close', () => reject(new Error('closed during the upgrade')));
  });
  expect(head).toMatch(/^HTTP\/1\.1 101/);
  return socket;
}

/** A masked binary frame header announcing `length` payload bytes (RFC 6455 5.2: 64-bit length, mask bit set). */
function frameHeader(length: number): Buffer {
  const header = Buffer.alloc(14);
  header[0] = 0x82;
  header[1] = 0x80 | 127;
  header.writeBigUInt64BE(BigInt(length), 2);
  randomBytes(4).copy(header, 10);
  return header;
}

/** The status code of the first close frame the server sends within `ms` (RFC 6455 5.5.1), or undefined. */
function closeCodeWithin(socket: net.Socket, ms: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    let received = Buffer.alloc(0);
    const timer = setTimeout(() => resolve(undefined), ms);
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (received.length >= 4 && (received[0] & 0x0f) === 0x8) {
        clearTimeout(timer);
        resolve(received.readUInt16BE(2));
      }
    });
  });
}

async function packetSizeHits(t: TestRoost): Promise<number> {
  const metric = await t.roost.metrics.limitHits.get();
  return metric.values.find((v) => v.labels.limit === 'packet_size')?.value ?? 0;
}

describe('WebSocket frames and ROOST_MAX_PACKET_BYTES', () => {
  let t: TestRoost;
  beforeAll(async () => {
    t = await startTestRoost('postgres', { tls: true, env: { ROOST_MAX_PACKET_BYTES: String(MAX_PACKET_BYTES), ROOST_MAX_PAYLOAD_BYTES: String(MAX_PACKET_BYTES) } });
  });
  afterAll(async () => t?.stop());

  it('refuses a frame announcing 8 MiB before CONNECT with close code 1009 after only 16 KiB of it has arrived', async () => {
    const before = await packetSizeHits(t);
    const socket = await upgradedSocket(t.roost.ports.ws!);
    try {
      const closed = closeCodeWithin(socket, 3000);
      // The announced length decides: the rest of the frame is never sent, so nothing of it could be buffered.
      socket.write(Buffer.concat([frameHeader(EIGHT_MIB), randomBytes(16 * 1024)]));
      expect(await closed).toBe(1009);
      expect(await packetSizeHits(t)).toBe(before + 1);
    } finally {
      socket.destroy();
    }
  });

  for (const transport of ['ws', 'wss'] as const) {
    it(`closes a ${transport} client sending one 8 MiB frame and no CONNECT with close code 1009 (message too big) and no reason text`, async () => {
      const ws = new WebSocket(`${transport}://127.0.0.1:${t.roost.ports[transport]}/mqtt`, ['mqtt'], { rejectUnauthorized: false });
      try {
        await new Promise<void>((resolve, reject) => ws.once('open', () => resolve()).once('error', reject));
        const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
        const started = Date.now();
        ws.send(randomBytes(EIGHT_MIB));
        const { code, reason } = await closed;
        expect(code).toBe(1009);
        expect(reason).toBe('');
        expect(Date.now() - started).toBeLessThan(5000);
      } finally {
        ws.terminate();
      }
    });
  }

  it('still takes a frame holding one PUBLISH of exactly ROOST_MAX_PACKET_BYTES and delivers it', async () => {
    const topic = `frames/${uniqueId('max')}`;
    const client = await connectOk(t, 'ws', { clientId: uniqueId('max-frame') });
    try {
      client.send(subscribeBytes(1, [[topic, 0]]));
      expect((await client.next()).packet).toMatchObject({ cmd: 'suback', granted: [0] });
      // Remaining length = 2 (topic length) + topic + payload; with its 3-byte fixed header the frame is 4099 bytes.
      const payload = randomBytes(MAX_PACKET_BYTES - 2 - Buffer.byteLength(topic));
      const publish = publishBytes(topic, payload);
      expect(publish.length).toBe(MAX_PACKET_BYTES + 3);
      client.send(publish);
      const delivered = await client.next(5000);
      expect(delivered.packet).toMatchObject({ cmd: 'publish', topic });
      expect(Buffer.compare((delivered.packet as { payload: Buffer }).payload, payload)).toBe(0);
    } finally {
      client.end();
    }
  });
});
