/**
 * The Aedes seam's private reads (broker/aedes/internals.ts) are still what the installed packages
 * have: each version is the one the reads were checked against, and each field is there on a real,
 * plain Aedes broker with a connected client (not Roost's: what Roost adds must not hide a rename).
 */
import { once } from 'node:events';
import { createRequire } from 'node:module';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Aedes } from 'aedes';
import { CHECKED_VERSIONS, INTERNAL_FIELDS, type InternalField } from '../../broker/aedes/internals.js';
import { connectBytes } from '../protocol/bytes.js';

const require = createRequire(import.meta.url);
/** Packages resolved as Aedes resolves them (its own dependencies), qlobber as mqemitter does. */
const fromAedes = createRequire(require.resolve('aedes'));
const fromMqemitter = createRequire(fromAedes.resolve('mqemitter'));

function versionOf(name: keyof typeof CHECKED_VERSIONS): string {
  const resolve = name === 'qlobber' ? fromMqemitter : name === 'bl' ? createRequire(fromAedes.resolve('mqtt-packet')) : fromAedes;
  return (resolve(`${name}/package.json`) as { version: string }).version;
}

describe('the Aedes seam’s private reads', () => {
  let broker: Aedes;
  let server: net.Server;
  let socket: net.Socket;
  const objects = {} as Record<InternalField['on'], object>;

  beforeAll(async () => {
    broker = await Aedes.createBroker();
    server = net.createServer(broker.handle);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const connected = once(broker, 'client');
    socket = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    socket.on('error', () => {});
    socket.write(connectBytes({ clientId: 'internals' }));
    const [client] = await connected;
    const mq = (broker as unknown as { mq: { _matcher: object } }).mq;
    const parser = (client as { _parser: { _list: object } })._parser;
    Object.assign(objects, {
      broker,
      client,
      parser,
      bufferList: parser._list,
      emitter: mq,
      matcher: mq._matcher,
      qlobberPrototype: (fromMqemitter('qlobber') as { Qlobber: { prototype: object } }).Qlobber.prototype,
      mqttPacket: fromAedes('mqtt-packet'),
    });
  });
  afterAll(async () => {
    socket?.destroy();
    await new Promise<void>((resolve) => broker?.close(() => resolve()));
    server?.close();
  });

  it.each(Object.entries(CHECKED_VERSIONS))('%s is installed at %s, the version its fields were checked in', (name, version) => {
    // Aedes's package.json is not exported; the broker says its version itself.
    const installed = name === 'aedes' ? (broker as unknown as { version: string }).version : versionOf(name as keyof typeof CHECKED_VERSIONS);
    expect(installed).toBe(version);
  });

  it('package.json pins each of them exactly', () => {
    const pkg = require('../../package.json') as { dependencies: Record<string, string> };
    for (const [name, version] of Object.entries(CHECKED_VERSIONS)) expect(pkg.dependencies[name], name).toBe(version);
  });

  it.each(INTERNAL_FIELDS.map((f) => [f.on, f.field, f]))('%s.%s is still there', (_on, _field, f) => {
    expect(objects[f.on], f.on).toBeDefined();
    expect(f.field in objects[f.on], `${f.on}.${f.field} (used by ${f.by})`).toBe(true);
    if (f.use === 'replaced' || f.use === 'called') expect(typeof (objects[f.on] as Record<string, unknown>)[f.field], `${f.on}.${f.field}`).toBe('function');
  });
});
