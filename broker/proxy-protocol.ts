/**
 * The PROXY protocol header (HAProxy's spec, "The PROXY protocol", versions 1 and 2) a load balancer
 * puts before the client's bytes, so Roost learns the client's address instead of the balancer's.
 * Only the header is read here: the bytes after it are the client's, handed on unread.
 *
 * Hand-written rather than taken from npm: proxy-protocol-js 4.0.6 parses a whole buffer but does not
 * say where a v2 header ends (it takes the TLVs for client data) nor check a v1 address.
 */
import net from 'node:net';

/** Spec 2.1: "a receiver must not start processing the header before it has 107 bytes or a CRLF". */
const V1_MAX_BYTES = 107;
/** Spec 2.2: the 12-byte signature of version 2. */
const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V2_FIXED_BYTES = 16;
const V1_PREFIX = Buffer.from('PROXY ', 'latin1');

export interface ClientAddress {
  address: string;
  port: number;
}

export type ProxyHeaderResult =
  /** More bytes are needed. */
  | { kind: 'incomplete' }
  | { kind: 'invalid'; reason: string }
  /**
   * A whole header of `length` bytes. `client` is absent when the proxy speaks for itself (v2 LOCAL,
   * e.g. a health check; v1 UNKNOWN; v2 UNSPEC or UNIX): the connection is then the proxy's.
   */
  | { kind: 'header'; length: number; client?: ClientAddress };

const invalid = (reason: string): ProxyHeaderResult => ({ kind: 'invalid', reason });

/** Reads a PROXY header (v1 or v2) from the start of `bytes`. */
export function parseProxyHeader(bytes: Buffer): ProxyHeaderResult {
  if (startsWith(bytes, V2_SIGNATURE)) return parseV2(bytes);
  if (startsWith(bytes, V1_PREFIX)) return parseV1(bytes);
  // Not yet enough bytes to tell which signature this is, but so far it is one of them.
  if (bytes.length < V2_SIGNATURE.length && (isPrefixOf(bytes, V2_SIGNATURE) || isPrefixOf(bytes, V1_PREFIX))) return { kind: 'incomplete' };
  return invalid('no PROXY protocol signature');
}

function parseV1(bytes: Buffer): ProxyHeaderResult {
  const end = bytes.indexOf('\r\n', 0, 'latin1');
  if (end < 0) return bytes.length >= V1_MAX_BYTES ? invalid('v1 header longer than 107 bytes') : { kind: 'incomplete' };
  if (end + 2 > V1_MAX_BYTES) return invalid('v1 header longer than 107 bytes');
  const length = end + 2;
  const fields = bytes.toString('latin1', 0, end).split(' ');
  // Spec 2.1: "PROXY UNKNOWN" may carry anything up to the CRLF, which the receiver ignores.
  if (fields[1] === 'UNKNOWN') return { kind: 'header', length };
  if (fields.length !== 6) return invalid('v1 header needs protocol, two addresses and two ports');
  const [, protocol, source, destination, sourcePort, destinationPort] = fields;
  const family = protocol === 'TCP4' ? 4 : protocol === 'TCP6' ? 6 : 0;
  if (family === 0) return invalid(`v1 protocol ${JSON.stringify(protocol)}`);
  if (net.isIP(source) !== family || net.isIP(destination) !== family) return invalid(`v1 address is not ${protocol}`);
  const port = portOf(sourcePort);
  if (port === undefined || portOf(destinationPort) === undefined) return invalid('v1 port is not 0-65535');
  return { kind: 'header', length, client: { address: source, port } };
}

function parseV2(bytes: Buffer): ProxyHeaderResult {
  if (bytes.length < V2_FIXED_BYTES) return { kind: 'incomplete' };
  const versionAndCommand = bytes[12];
  if (versionAndCommand >> 4 !== 2) return invalid(`v2 version ${versionAndCommand >> 4}`);
  const command = versionAndCommand & 0x0f;
  if (command > 1) return invalid(`v2 command ${command}`);
  const length = V2_FIXED_BYTES + bytes.readUInt16BE(14);
  if (bytes.length < length) return { kind: 'incomplete' };
  // Spec 2.2: LOCAL (0) is the proxy's own connection; its address block is to be ignored.
  if (command === 0) return { kind: 'header', length };
  const family = bytes[13] >> 4;
  const body = bytes.subarray(V2_FIXED_BYTES, length);
  if (family === 0x1) {
    if (body.length < 12) return invalid('v2 IPv4 address block shorter than 12 bytes');
    return { kind: 'header', length, client: { address: Array.from(body.subarray(0, 4)).join('.'), port: body.readUInt16BE(8) } };
  }
  if (family === 0x2) {
    if (body.length < 36) return invalid('v2 IPv6 address block shorter than 36 bytes');
    return { kind: 'header', length, client: { address: ipv6Text(body.subarray(0, 16)), port: body.readUInt16BE(32) } };
  }
  // UNSPEC (0) or UNIX (3): no IP address to take; the spec says to keep the connection's own.
  if (family === 0x0 || family === 0x3) return { kind: 'header', length };
  return invalid(`v2 address family ${family}`);
}

function startsWith(bytes: Buffer, prefix: Buffer): boolean {
  return bytes.length >= prefix.length && bytes.subarray(0, prefix.length).equals(prefix);
}

function isPrefixOf(bytes: Buffer, signature: Buffer): boolean {
  return signature.subarray(0, bytes.length).equals(bytes);
}

function portOf(text: string): number | undefined {
  if (!/^\d{1,5}$/.test(text)) return undefined;
  const port = Number(text);
  return port <= 65535 ? port : undefined;
}

/** 16 bytes → the address's usual text ("2001:db8::1", "::ffff:10.0.0.1" shown as Node shows it). */
function ipv6Text(bytes: Buffer): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
  const block = new net.SocketAddress({ address: groups.join(':'), family: 'ipv6' });
  return block.address;
}
