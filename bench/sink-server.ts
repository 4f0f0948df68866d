/**
 * The generator's ceiling: a "broker" that does no MQTT work. It answers CONNECT and SUBSCRIBE,
 * acknowledges QoS 1 PUBLISH, and copies the bytes of every PUBLISH unchanged to every subscriber
 * (no topic matching, no decoding). The rate the generator reaches against it is the most it can
 * measure; it must be well above what the fastest real broker delivers.
 * Prints "listening PORT"; stops on SIGTERM.
 *   node dist/bench/sink-server.js [port]
 */
import net from 'node:net';
import { PacketFramer, PacketType } from './mqtt-wire.js';

const CONNACK = Buffer.from([0x20, 0x02, 0x00, 0x00]);
const subscribers = new Set<net.Socket>();

const server = net.createServer((socket) => {
  socket.setNoDelay(true);
  socket.on('error', () => {});
  socket.on('close', () => subscribers.delete(socket));
  let acks: Buffer[] = [];
  let publishes = 0;
  const framer = new PacketFramer((type, body, flags) => {
    if (type === 1) socket.write(CONNACK);
    else if (type === 8 && body) {
      subscribers.add(socket);
      socket.write(Buffer.from([0x90, 0x03, body[0], body[1], 0x00]));
    } else if (type === PacketType.PUBLISH && body) {
      publishes++;
      if (flags & 0x06) {
        const id = body.readUInt16BE(2 + body.readUInt16BE(0)); // after the topic
        acks.push(Buffer.from([0x40, 0x02, id >> 8, id & 0xff]));
      }
    } else if (type === 14) socket.end();
  }, 1024);
  // Bytes of a publish split across reads wait here for the rest.
  let carry: Buffer | null = null;
  socket.on('data', (chunk) => {
    publishes = 0;
    framer.push(chunk);
    if (acks.length) {
      socket.write(Buffer.concat(acks));
      acks = [];
    }
    const end = framer.completeUpTo;
    if (end === 0) {
      carry = carry ? Buffer.concat([carry, chunk]) : Buffer.from(chunk);
      return;
    }
    // The generator waits for CONNACK/SUBACK, so a read holds either publishes only or none.
    if (publishes > 0) {
      const out = carry ? Buffer.concat([carry, chunk.subarray(0, end)]) : chunk.subarray(0, end);
      for (const s of subscribers) s.write(out);
    }
    carry = end < chunk.length ? Buffer.from(chunk.subarray(end)) : null;
  });
});
server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => {
  process.stdout.write(`listening ${(server.address() as net.AddressInfo).port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
