import net from 'node:net';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { coalesceWrites } from '../../broker/write-coalescing.js';

const open: net.Socket[] = [];
let server: net.Server | undefined;
afterEach(() => {
  open.splice(0).forEach((s) => s.destroy());
  server?.close();
});

/** A real loopback TCP pair: the broker's side (coalesced) and the peer that reads it. */
async function socketPair(): Promise<{ sending: net.Socket; received: () => Buffer }> {
  server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  const accepted = once(server, 'connection');
  const peer = net.connect(port, '127.0.0.1');
  const [sending] = (await accepted) as [net.Socket];
  open.push(peer, sending);
  const chunks: Buffer[] = [];
  peer.on('data', (c: Buffer) => chunks.push(c));
  coalesceWrites(sending);
  return { sending, received: () => Buffer.concat(chunks) };
}

describe('coalesced socket writes', () => {
  it('holds the writes of one event-loop turn and sends them together on the next, in order', async () => {
    const { sending, received } = await socketPair();
    const packets = Array.from({ length: 100 }, (_, i) => Buffer.from(`packet ${i};`));
    for (const p of packets) sending.write(p);
    // Nothing has left yet: all of it waits in the corked socket.
    expect(sending.writableLength).toBe(Buffer.concat(packets).length);
    await new Promise((r) => setImmediate(r));
    expect(sending.writableLength).toBe(0);
    await expect.poll(received).toEqual(Buffer.concat(packets));
  });

  it('keeps order across turns and reports when the socket buffer is full', async () => {
    const { sending, received } = await socketPair();
    const first = Buffer.from('first;');
    sending.write(first);
    await new Promise((r) => setImmediate(r));
    const big = Buffer.alloc(sending.writableHighWaterMark + 1, 0x61);
    // Over the high-water mark write() says "wait for drain", as Aedes expects.
    expect(sending.write(big)).toBe(false);
    sending.write('last');
    await expect.poll(() => received().length).toBe(first.length + big.length + 4);
    expect(received().subarray(0, first.length).toString()).toBe('first;');
    expect(received().subarray(-4).toString()).toBe('last');
  });
});
