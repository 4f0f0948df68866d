/**
 * MQTT-1.5.3-1, -2 over raw TCP and WebSocket: every UTF-8 string a client sends — client id,
 * user name, will topic, topic name, topic filter — closes the connection when it is ill-formed
 * (surrogates included) or holds U+0000; nothing of it is stored or forwarded. (Rule 5 of issue 9.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestRoost } from '../helpers/roost.js';
import { connectBytes, publishBytes, subscribeBytes, unsubscribeBytes, type Str } from '../protocol/bytes.js';
import { ADMIN_LOGIN, RAW_TRANSPORTS, connectOk, expectClosedSilently, expectServed, open, startGuardedRoost, uniqueId } from '../protocol/suite.js';

let t: TestRoost;
beforeAll(async () => {
  t = await startGuardedRoost();
});
afterAll(async () => t?.stop());

/** Strings that break MQTT-1.5.3-1 (ill-formed) or MQTT-1.5.3-2 (U+0000), each inside "ab…". */
const BAD: Array<[string, string, Buffer]> = [
  ['MQTT-1.5.3-1', 'a byte that is never UTF-8 (0xFF)', Buffer.from([0x61, 0xff, 0x62])],
  ['MQTT-1.5.3-1', 'an encoded surrogate (U+D800)', Buffer.from([0x61, 0xed, 0xa0, 0x80, 0x62])],
  ['MQTT-1.5.3-1', 'an overlong encoding of "/"', Buffer.from([0x61, 0xc0, 0xaf, 0x62])],
  ['MQTT-1.5.3-2', 'U+0000', Buffer.from([0x61, 0x00, 0x62])],
];

describe.each(RAW_TRANSPORTS)('UTF-8 strings over %s', (transport) => {
  it.each(BAD)('%s: a client identifier with %s closes the connection', async (_s, _what, bad) => {
    await expectClosedSilently(await open(t, transport), connectBytes({ ...ADMIN_LOGIN, clientId: bad }));
    await expectServed(t, transport);
  });

  it.each(BAD)('%s: a user name with %s closes the connection', async (_s, _what, bad) => {
    await expectClosedSilently(await open(t, transport), connectBytes({ clientId: uniqueId('user'), username: bad, password: ADMIN_LOGIN.password }));
    await expectServed(t, transport);
  });

  it.each(BAD)('%s: a will topic with %s closes the connection', async (_s, _what, bad) => {
    await expectClosedSilently(await open(t, transport), connectBytes({ ...ADMIN_LOGIN, clientId: uniqueId('will'), will: { topic: bad } }));
    await expectServed(t, transport);
  });

  it.each(BAD)('%s: a PUBLISH topic with %s closes the connection; the message is neither forwarded nor stored', async (_s, _what, bad) => {
    const marker = uniqueId('bad-topic-payload');
    const watcher = await connectOk(t, transport, { clientId: uniqueId('watcher') });
    watcher.send(subscribeBytes(1, [['#', 1]]));
    expect((await watcher.next()).bytes).toEqual(Buffer.from([0x90, 0x03, 0x00, 0x01, 0x01]));
    await watcher.drain(100); // retained messages of other tests

    const publisher = await connectOk(t, transport, { clientId: uniqueId('publisher') });
    await expectClosedSilently(publisher, publishBytes(bad, marker, { qos: 1, messageId: 7 }));
    await expectServed(t, transport);
    const seen = (await watcher.drain(300)).filter((r) => r.packet.cmd === 'publish' && String((r.packet as { payload: Buffer }).payload) === marker);
    expect(seen).toEqual([]);
    watcher.end();
    const stored = await t.roost.db.query<{ n: number }>('SELECT count(*)::int AS n FROM messages WHERE payload = $1', [Buffer.from(marker)]);
    expect(stored.rows[0]?.n).toBe(0);
  });

  it.each(BAD)('%s: a SUBSCRIBE topic filter with %s closes the connection without SUBACK', async (_s, _what, bad) => {
    const client = await connectOk(t, transport, { clientId: uniqueId('sub') });
    await expectClosedSilently(client, subscribeBytes(3, [['fine/+', 0], [Buffer.concat([bad, Buffer.from('/#')]), 1]]));
    await expectServed(t, transport);
  });

  it.each(BAD)('%s: an UNSUBSCRIBE topic filter with %s closes the connection without UNSUBACK', async (_s, _what, bad) => {
    const client = await connectOk(t, transport, { clientId: uniqueId('unsub') });
    await expectClosedSilently(client, unsubscribeBytes(4, [bad]));
    await expectServed(t, transport);
  });

  it('MQTT-1.5.3-1: a well-formed U+FFFD and characters beyond the BMP are ordinary characters', async () => {
    const topic: Str = `utf8/${uniqueId(transport)}/\uFFFD/\u{1F3B9}/é`;
    const client = await connectOk(t, transport, { clientId: uniqueId('fffd') });
    client.send(subscribeBytes(1, [[topic, 0]]));
    expect((await client.next()).bytes).toEqual(Buffer.from([0x90, 0x03, 0x00, 0x01, 0x00]));
    client.send(publishBytes(topic, 'fine'));
    const { packet } = await client.next();
    expect(packet).toMatchObject({ cmd: 'publish', topic });
    client.end();
  });
});
