import { describe, expect, it } from 'vitest';
import { parseProxyHeader } from '../../broker/proxy-protocol.js';

const SIG = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const v2 = (versionCommand: number, family: number, body: Buffer) => {
  const head = Buffer.from([versionCommand, family, 0, 0]);
  head.writeUInt16BE(body.length, 2);
  return Buffer.concat([SIG, head, body]);
};

describe('PROXY protocol header', () => {
  it('reads a v1 TCP4 header and says where it ends', () => {
    const bytes = Buffer.from('PROXY TCP4 203.0.113.7 10.0.0.1 51000 1883\r\n\x10\x00', 'latin1');
    expect(parseProxyHeader(bytes)).toEqual({ kind: 'header', length: bytes.length - 2, client: { address: '203.0.113.7', port: 51000 } });
  });

  it('waits for more bytes while a header is incomplete, v1 or v2', () => {
    expect(parseProxyHeader(Buffer.from('PRO'))).toEqual({ kind: 'incomplete' });
    expect(parseProxyHeader(Buffer.from('PROXY TCP4 203.0.113.7'))).toEqual({ kind: 'incomplete' });
    expect(parseProxyHeader(SIG.subarray(0, 5))).toEqual({ kind: 'incomplete' });
    expect(parseProxyHeader(v2(0x21, 0x11, Buffer.alloc(12)).subarray(0, 20))).toEqual({ kind: 'incomplete' });
  });

  it('refuses bytes that are not a PROXY header, a v1 address of the wrong family, a bad port, and a v1 line over 107 bytes', () => {
    expect(parseProxyHeader(Buffer.from([0x10, 0x0c])).kind).toBe('invalid');
    expect(parseProxyHeader(Buffer.from('PROXY TCP4 2001:db8::1 10.0.0.1 1 2\r\n')).kind).toBe('invalid');
    expect(parseProxyHeader(Buffer.from('PROXY TCP4 203.0.113.7 10.0.0.1 70000 2\r\n')).kind).toBe('invalid');
    expect(parseProxyHeader(Buffer.from('PROXY TCP4 203.0.113.7  10.0.0.1 1 2\r\n')).kind).toBe('invalid');
    expect(parseProxyHeader(Buffer.from('PROXY UNKNOWN ' + 'x'.repeat(100))).kind).toBe('invalid');
  });

  it('keeps the connection address for v1 UNKNOWN and v2 LOCAL (the proxy speaking for itself)', () => {
    expect(parseProxyHeader(Buffer.from('PROXY UNKNOWN\r\n'))).toEqual({ kind: 'header', length: 15 });
    expect(parseProxyHeader(v2(0x20, 0x00, Buffer.alloc(0)))).toEqual({ kind: 'header', length: 16 });
  });

  it('reads v2 IPv4 and IPv6 addresses and skips the TLVs after them', () => {
    const ipv4 = Buffer.concat([Buffer.from([198, 51, 100, 23, 10, 0, 0, 1, 0xcb, 0x20, 0x07, 0x5b]), Buffer.from([0x05, 0x00, 0x01, 0x61])]);
    expect(parseProxyHeader(v2(0x21, 0x11, ipv4))).toEqual({ kind: 'header', length: 16 + 16, client: { address: '198.51.100.23', port: 52000 } });
    const ipv6 = Buffer.alloc(36);
    Buffer.from('20010db8000000000000000000000017', 'hex').copy(ipv6, 0);
    ipv6.writeUInt16BE(443, 32);
    expect(parseProxyHeader(v2(0x21, 0x21, ipv6))).toEqual({ kind: 'header', length: 52, client: { address: '2001:db8::17', port: 443 } });
  });

  it('refuses a v2 header of another version or command, or with too short an address block', () => {
    expect(parseProxyHeader(v2(0x11, 0x11, Buffer.alloc(12))).kind).toBe('invalid');
    expect(parseProxyHeader(v2(0x22, 0x11, Buffer.alloc(12))).kind).toBe('invalid');
    expect(parseProxyHeader(v2(0x21, 0x11, Buffer.alloc(8))).kind).toBe('invalid');
  });
});
