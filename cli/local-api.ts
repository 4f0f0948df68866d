/**
 * A request to the API of the Roost on this machine that holds the data folder (cli/delegate.ts).
 * Over HTTPS its certificate is seldom one this machine trusts, nor one naming 127.0.0.1 (it names
 * the host devices connect to), so it is pinned instead: the connection goes on only when the
 * server presents a certificate whose SHA-256 fingerprint the holder recorded in the folder's lock.
 * The admin token is then never sent to another process listening on that port.
 */
import http from 'node:http';
import tls from 'node:tls';

export interface LocalApiResponse {
  status: number;
  body: string;
}

/** The server's certificate is not one the lock records; `presented` is its fingerprint. */
export class UnpinnedCertificateError extends Error {
  readonly code = 'ROOST_ERR_UNPINNED_CERTIFICATE';
  constructor(readonly presented: string) {
    super(`the API presented a certificate the running Roost did not record (SHA-256 ${presented})`);
  }
}

/** A TLS connection to `url`'s host and port, kept only if the server's certificate is one of `pins`. */
function pinnedConnection(url: URL, pins: readonly string[], signal: AbortSignal): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    // The chain and name are not checked by OpenSSL: the pin below is the stricter check.
    const socket = tls.connect({ host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port), rejectUnauthorized: false });
    const abort = () => socket.destroy(signal.reason as Error);
    signal.addEventListener('abort', abort, { once: true });
    socket.once('error', reject);
    socket.once('secureConnect', () => {
      socket.off('error', reject);
      signal.removeEventListener('abort', abort); // the request's own signal takes over
      const presented = socket.getPeerCertificate().fingerprint256;
      if (pins.includes(presented)) return resolve(socket);
      socket.destroy();
      reject(new UnpinnedCertificateError(presented));
    });
  });
}

/** POSTs `body` as JSON to `url` (http: or https: with `pins`), answered within `timeoutMs`. */
export async function postLocalApi(
  url: string,
  headers: Record<string, string>,
  body: unknown,
  opts: { pins?: readonly string[]; timeoutMs: number },
): Promise<LocalApiResponse> {
  const target = new URL(url);
  const signal = AbortSignal.timeout(opts.timeoutMs);
  const socket = target.protocol === 'https:' ? await pinnedConnection(target, opts.pins ?? [], signal) : undefined;
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    // HTTP over the pinned TLS socket when there is one: node:http takes no https: URL, so no URL here.
    const req = http.request(
      {
        host: target.hostname.replace(/^\[|\]$/g, ''),
        port: Number(target.port),
        path: target.pathname + target.search,
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
        signal,
        ...(socket ? { createConnection: () => socket } : {}),
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}
