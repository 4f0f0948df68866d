/**
 * Connections from a trusted load balancer (ROOST_TRUSTED_PROXIES): each must open with a PROXY
 * protocol header (./proxy-protocol.ts), which is read off the socket before TLS, HTTP or MQTT see
 * a byte; the client's address it names is then the socket's remoteAddress for everything after it
 * (connection limits, bans, the login throttle, presence, webhooks, logs). Connections from any
 * other address are never parsed as PROXY: a client cannot choose its own address.
 */
import net from 'node:net';
import { parseProxyHeader, type ClientAddress } from './proxy-protocol.js';

export class ProxyHeaderError extends Error {
  readonly code = 'ROOST_ERR_PROXY_HEADER';
}

/** Whether an address is one of the trusted proxies ("10.0.0.5", "10.0.0.0/8", "::1"; IPv4-mapped IPv6 matches IPv4). */
export function trustedProxies(entries: readonly string[]): (address: string | undefined) => boolean {
  if (entries.length === 0) return () => false;
  const list = new net.BlockList();
  for (const entry of entries) {
    const [address, prefix] = entry.split('/');
    const family = net.isIP(address) === 6 ? 'ipv6' : 'ipv4';
    if (prefix === undefined) list.addAddress(address, family);
    else list.addSubnet(address, Number(prefix), family);
  }
  return (address) => {
    if (!address) return false;
    const plain = address.startsWith('::ffff:') && net.isIPv4(address.slice(7)) ? address.slice(7) : address;
    return list.check(plain, net.isIP(plain) === 6 ? 'ipv6' : 'ipv4');
  };
}

/**
 * Reads the PROXY header from the front of `socket`; resolves the client's address (undefined when
 * the proxy speaks for itself) with the bytes after the header put back for the next reader.
 * Rejects on anything else, on close, or after `timeoutMs`.
 */
export function readProxyHeader(socket: net.Socket, timeoutMs: number): Promise<ClientAddress | undefined> {
  return new Promise((resolve, reject) => {
    let received: Buffer = Buffer.alloc(0);
    const finish = (err: Error | undefined, client?: ClientAddress, rest?: Buffer) => {
      clearTimeout(timer);
      socket.off('readable', onReadable);
      socket.off('close', onClose);
      socket.off('error', onClose);
      if (err) return reject(err);
      if (rest && rest.length > 0) socket.unshift(rest);
      resolve(client);
    };
    const onClose = () => finish(new ProxyHeaderError('connection closed before its PROXY header'));
    const onReadable = () => {
      for (let chunk: Buffer | null = socket.read(); chunk !== null; chunk = socket.read()) {
        received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
        const result = parseProxyHeader(received);
        if (result.kind === 'incomplete') continue;
        if (result.kind === 'invalid') return finish(new ProxyHeaderError(result.reason));
        return finish(undefined, result.client, received.subarray(result.length));
      }
    };
    const timer = setTimeout(() => finish(new ProxyHeaderError(`no PROXY header within ${timeoutMs} ms`)), timeoutMs);
    socket.on('readable', onReadable);
    socket.once('close', onClose);
    socket.once('error', onClose);
  });
}

/**
 * Makes `socket` report the client's address as its remote end. Node's sockets read it from the
 * kernel (the proxy's); an own property shadows that getter on this one socket only.
 */
export function showClientAddress(socket: net.Socket, client: ClientAddress): void {
  Object.defineProperty(socket, 'remoteAddress', { value: client.address, configurable: true });
  Object.defineProperty(socket, 'remotePort', { value: client.port, configurable: true });
  Object.defineProperty(socket, 'remoteFamily', { value: net.isIP(client.address) === 6 ? 'IPv6' : 'IPv4', configurable: true });
}
