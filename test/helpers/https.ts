/**
 * HTTPS requests for tests of the API over TLS: Node 20's fetch cannot be given a CA, node:https can.
 * The answer has fetch's shape (status, text, Headers) so a test reads it the same way.
 */
import https from 'node:https';

export interface HttpsAnswer {
  status: number;
  text: string;
  headers: Headers;
}

/**
 * `ca`: the PEM the server's certificate must chain to (its name is checked as well); without it,
 * any certificate is accepted (readiness polls only).
 */
export function httpsRequest(url: string, opts: { method?: string; headers?: Record<string, string>; body?: string; ca?: Buffer } = {}): Promise<HttpsAnswer> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method: opts.method ?? 'GET', headers: opts.headers, ...(opts.ca ? { ca: opts.ca } : { rejectUnauthorized: false }) }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => {
        const headers = new Headers();
        for (const [name, value] of Object.entries(res.headers)) if (value !== undefined) headers.set(name, String(value));
        resolve({ status: res.statusCode ?? 0, text, headers });
      });
      res.on('error', reject);
    });
    req.setTimeout(30_000, () => req.destroy(new Error(`no answer from ${url} in 30 s`)));
    req.on('error', reject);
    req.end(opts.body);
  });
}
