/**
 * Issue 22 #9: behind a load balancer every device had the balancer's address, so one IP's failures
 * or bans hit the whole fleet. With ROOST_TRUSTED_PROXIES, a connection from a trusted proxy opens
 * with a PROXY protocol header (v1 or v2) and Roost takes the client's address from it, on every
 * listener; a connection from anyone else is never read as PROXY.
 */
import net from 'node:net';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket, createWebSocketStream } from 'ws';
import type { Duplex } from 'node:stream';
import { api, startTestRoost, type TestRoost } from '../helpers/roost.js';
import { connack, connectBytes } from '../protocol/bytes.js';
import { ADMIN_LOGIN, uniqueId } from '../protocol/suite.js';

const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

function proxyV1(client: string, port = 51000): Buffer {
  return Buffer.from(`PROXY ${net.isIPv6(client) ? 'TCP6' : 'TCP4'} ${client} ${net.isIPv6(client) ? '::1' : '127.0.0.1'} ${port} 1883\r\n`, 'latin1');
}

/** A v2 PROXY header for a TCP client at `client` (IPv4), with one TLV after the addresses as HAProxy may send. */
function proxyV2(client: string, port = 52000): Buffer {
  const tlv = Buffer.from([0x05, 0x00, 0x03, 0x61, 0x62, 0x63]); // PP2_TYPE_UNIQUE_ID "abc": skipped
  const addresses = Buffer.alloc(12);
  Buffer.from(client.split('.').map(Number)).copy(addresses, 0);
  Buffer.from([127, 0, 0, 1]).copy(addresses, 4);
  addresses.writeUInt16BE(port, 8);
  addresses.writeUInt16BE(1883, 10);
  const head = Buffer.from([0x21, 0x11, 0, 0]);
  head.writeUInt16BE(addresses.length + tlv.length, 2);
  return Buffer.concat([V2_SIGNATURE, head, addresses, tlv]);
}

async function tcp(port: number, localAddress = '127.0.0.1'): Promise<net.Socket> {
  const socket = net.connect({ port, host: '127.0.0.1', localAddress });
  socket.on('error', () => {});
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  return socket;
}

/** The first `bytes` bytes the broker sends within `ms` (a WebSocket may split them over frames), or 'closed' / 'silent'. */
function firstAnswer(stream: Duplex, ms = 3000, bytes = 4): Promise<Buffer | 'closed' | 'silent'> {
  return new Promise((resolve) => {
    let received = Buffer.alloc(0);
    const timer = setTimeout(() => resolve('silent'), ms);
    stream.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (received.length < bytes) return;
      clearTimeout(timer);
      resolve(received.subarray(0, bytes));
    });
    stream.once('close', () => {
      clearTimeout(timer);
      resolve('closed');
    });
  });
}

/** The address presence shows for a client id, once it is listed (within 2 s). */
async function addressOf(t: TestRoost, clientId: string): Promise<string | null | undefined> {
  const deadline = Date.now() + 2000;
  while (!t.roost.presence.get(clientId) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  return t.roost.presence.get(clientId)?.ip;
}

describe('PROXY protocol from ROOST_TRUSTED_PROXIES (127.0.0.1 here)', () => {
  let t: TestRoost;
  beforeAll(async () => {
    t = await startTestRoost('postgres', { tls: true, env: { ROOST_TRUSTED_PROXIES: '127.0.0.1' } });
  });
  afterAll(async () => t?.stop());

  it('takes the client address of a v1 header over MQTT: presence shows it, not the proxy', async () => {
    const clientId = uniqueId('v1');
    const socket = await tcp(t.roost.ports.mqtt!);
    try {
      socket.write(Buffer.concat([proxyV1('203.0.113.7'), connectBytes({ ...ADMIN_LOGIN, clientId })]));
      expect(await firstAnswer(socket)).toEqual(connack(0, 0));
      expect(await addressOf(t, clientId)).toBe('203.0.113.7');
    } finally {
      socket.destroy();
    }
  });

  it('takes the client address of a v2 header (with a TLV) sent apart from the CONNECT', async () => {
    const clientId = uniqueId('v2');
    const socket = await tcp(t.roost.ports.mqtt!);
    try {
      const header = proxyV2('198.51.100.23');
      socket.write(header.subarray(0, 10));
      await new Promise((r) => setTimeout(r, 50));
      socket.write(header.subarray(10));
      socket.write(connectBytes({ ...ADMIN_LOGIN, clientId }));
      expect(await firstAnswer(socket)).toEqual(connack(0, 0));
      expect(await addressOf(t, clientId)).toBe('198.51.100.23');
    } finally {
      socket.destroy();
    }
  });

  it('takes the client address of an IPv6 v1 header', async () => {
    const clientId = uniqueId('v1-6');
    const socket = await tcp(t.roost.ports.mqtt!);
    try {
      socket.write(Buffer.concat([proxyV1('2001:db8::17'), connectBytes({ ...ADMIN_LOGIN, clientId })]));
      expect(await firstAnswer(socket)).toEqual(connack(0, 0));
      expect(await addressOf(t, clientId)).toBe('2001:db8::17');
    } finally {
      socket.destroy();
    }
  });

  it('reads the header before the TLS handshake on MQTTS', async () => {
    const clientId = uniqueId('tls');
    const raw = await tcp(t.roost.ports.mqtts!);
    raw.write(proxyV2('198.51.100.40'));
    const secure = tls.connect({ socket: raw, rejectUnauthorized: false });
    try {
      await new Promise<void>((resolve, reject) => secure.once('secureConnect', resolve).once('error', reject));
      secure.write(connectBytes({ ...ADMIN_LOGIN, clientId }));
      expect(await firstAnswer(secure)).toEqual(connack(0, 0));
      expect(await addressOf(t, clientId)).toBe('198.51.100.40');
    } finally {
      secure.destroy();
    }
  });

  for (const transport of ['ws', 'wss'] as const) {
    it(`reads the header before the WebSocket upgrade on ${transport.toUpperCase()}`, async () => {
      const clientId = uniqueId(transport);
      const port = t.roost.ports[transport]!;
      const ws = new WebSocket(`${transport}://127.0.0.1:${port}/mqtt`, ['mqtt'], {
        rejectUnauthorized: false,
        createConnection: () => {
          const raw = net.connect({ port, host: '127.0.0.1' });
          raw.write(proxyV1('192.0.2.99'));
          return transport === 'wss' ? tls.connect({ socket: raw, rejectUnauthorized: false }) : raw;
        },
      });
      try {
        await new Promise<void>((resolve, reject) => ws.once('open', () => resolve()).once('error', reject));
        const stream = createWebSocketStream(ws);
        stream.on('error', () => {});
        stream.write(connectBytes({ ...ADMIN_LOGIN, clientId }));
        expect(await firstAnswer(stream)).toEqual(connack(0, 0));
        expect(await addressOf(t, clientId)).toBe('192.0.2.99');
      } finally {
        ws.terminate();
      }
    });
  }

  it('closes a connection from a trusted proxy that does not start with a PROXY header, without a CONNACK', async () => {
    const socket = await tcp(t.roost.ports.mqtt!);
    try {
      socket.write(connectBytes({ ...ADMIN_LOGIN, clientId: uniqueId('no-header') }));
      expect(await firstAnswer(socket)).toBe('closed');
    } finally {
      socket.destroy();
    }
  });

  it('never reads a PROXY header from an address that is not a trusted proxy (127.0.0.2)', async () => {
    const spoofer = await tcp(t.roost.ports.mqtt!, '127.0.0.2');
    try {
      spoofer.write(Buffer.concat([proxyV1('203.0.113.1'), connectBytes({ ...ADMIN_LOGIN, clientId: uniqueId('spoof') })]));
      expect(await firstAnswer(spoofer)).toBe('closed');
    } finally {
      spoofer.destroy();
    }
    const clientId = uniqueId('direct');
    const direct = await tcp(t.roost.ports.mqtt!, '127.0.0.2');
    try {
      direct.write(connectBytes({ ...ADMIN_LOGIN, clientId }));
      expect(await firstAnswer(direct)).toEqual(connack(0, 0));
      expect(await addressOf(t, clientId)).toBe('127.0.0.2');
    } finally {
      direct.destroy();
    }
  });

  it('bans the client address named in the header, not the proxy: other clients behind it still connect', async () => {
    const ban = await api(t, 'POST', '/api/bans', { kind: 'ip', value: '203.0.113.66', reason: 'test', duration_s: 600 });
    expect(ban.status).toBe(201);
    // The ban reaches the broker's list by NOTIFY; under load that may take a moment.
    const deadline = Date.now() + 3000;
    while (!t.roost.bans.list.match({ ip: '203.0.113.66' }) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    try {
      const banned = await tcp(t.roost.ports.mqtt!);
      const other = await tcp(t.roost.ports.mqtt!);
      try {
        banned.write(Buffer.concat([proxyV1('203.0.113.66'), connectBytes({ ...ADMIN_LOGIN, clientId: uniqueId('banned') })]));
        other.write(Buffer.concat([proxyV1('203.0.113.67'), connectBytes({ ...ADMIN_LOGIN, clientId: uniqueId('neighbour') })]));
        expect(await firstAnswer(banned)).toEqual(connack(0, 5));
        expect(await firstAnswer(other)).toEqual(connack(0, 0));
      } finally {
        banned.destroy();
        other.destroy();
      }
    } finally {
      await api(t, 'DELETE', `/api/bans/${ban.body.id}`);
    }
  });

  it('gives the API the client address from X-Forwarded-For of a trusted proxy (the audit log records it)', async () => {
    const value = '198.51.100.250';
    const res = await fetch(`http://127.0.0.1:${t.roost.ports.api}/api/bans`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.apiToken}`, 'content-type': 'application/json', 'x-forwarded-for': '203.0.113.200' },
      body: JSON.stringify({ kind: 'ip', value, reason: 'xff', duration_s: 60 }),
    });
    expect(res.status).toBe(201);
    const audit = await t.roost.db.query<{ ip: string }>("SELECT ip FROM audit_log WHERE action = 'ban.add' AND target = $1", [`ip:${value}/32`]);
    expect(audit.rows.map((r) => r.ip)).toEqual(['203.0.113.200']);
  });
});
