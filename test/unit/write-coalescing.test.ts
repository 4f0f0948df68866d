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
async function socketPair(): Promise<{ sending: net.Socket; chunks: Buffer[]; received: () => Buffer; peerClosed: Promise<unknown> }> {
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
  return { sending, chunks, received: () => Buffer.concat(chunks), peerClosed: once(peer, 'end') };
}

const nextTurn = () => new Promise((r) => setImmediate(r));

describe('coalesced socket writes', () => {
  it('sends the writes of one event-loop turn as one write on the next turn, in order', async () => {
    const { sending, chunks, received } = await socketPair();
    // Pieces as mqtt-packet writes them: Buffers and utf8 strings.
    const pieces = Array.from({ length: 100 }, (_, i) => (i % 2 ? Buffer.from(`packet ${i};`) : `tööt ${i};`));
    const expected = Buffer.concat(pieces.map((p) => Buffer.from(p)));
    for (const p of pieces) expect(sending.write(p)).toBe(true);
    expect(sending.bytesWritten).toBe(0); // nothing has left during this turn
    await nextTurn();
    await expect.poll(received).toEqual(expected);
    expect(chunks).toHaveLength(1); // one write, so the peer read it in one piece
  });

  it('keeps order across turns, runs write callbacks, and answers false until the socket drains', async () => {
    const { sending, received } = await socketPair();
    let called = false;
    sending.write('first;', () => (called = true));
    await nextTurn();
    await expect.poll(() => called).toBe(true);
    const big = Buffer.alloc(8 * 1024 * 1024, 0x61);
    sending.write(big);
    await nextTurn();
    // The socket took more than its high-water mark: callers are told to wait for 'drain'.
    expect(sending.write('last')).toBe(false);
    await once(sending, 'drain');
    await expect.poll(() => received().length, { timeout: 10_000 }).toBe(6 + big.length + 4);
    expect(received().subarray(0, 6).toString()).toBe('first;');
    expect(received().subarray(-4).toString()).toBe('last');
  });

  it('end() sends what this turn gathered before closing (a refusing CONNACK is not lost)', async () => {
    const { sending, received, peerClosed } = await socketPair();
    sending.write(Buffer.from([0x20, 0x02, 0x00, 0x05])); // CONNACK 5: not authorized
    sending.end();
    await peerClosed;
    expect([...received()]).toEqual([0x20, 0x02, 0x00, 0x05]);
  });

  it('a write whose socket is destroyed before the next turn gets its callback with an error, not silence', async () => {
    const { sending } = await socketPair();
    const answered = new Promise<Error | null | undefined>((resolve) => sending.write('late', (err) => resolve(err)));
    sending.on('error', () => {});
    // Destroyed by someone else's path, then the gathered write comes due.
    Object.getPrototypeOf(sending).destroy.call(sending);
    await nextTurn();
    expect((await answered)?.message).toMatch(/destroyed/);
  });
});
