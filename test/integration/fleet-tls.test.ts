/**
 * TLS operators can leave running: certificate files swapped under a connected client (it stays
 * connected; a new connection gets the new certificate), reload on SIGHUP and by the API (a broken
 * pair is refused and the old one stays), ECDSA and RSA pairs at once, TLS 1.1 refused, and
 * TLS-only mode with nothing on the plain ports.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/services.js';
import { api, collect, connectClient, makeDevCerts, startTestRoost, type DevCerts, type TestRoost } from '../helpers/roost.js';

const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });

/** A server certificate for localhost signed by the dev CA; `rsa` for an RSA key, else ECDSA P-256. */
function serverCert(certs: DevCerts, name: string, rsa = false): { cert: string; key: string } {
  const base = path.join(certs.dir, name);
  writeFileSync(`${base}.ext`, 'basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n');
  const keyArgs = rsa ? ['-newkey', 'rsa:2048'] : ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1'];
  openssl('req', ...keyArgs, '-nodes', '-subj', `/CN=${name}`, '-keyout', `${base}.key`, '-out', `${base}.csr`);
  openssl('x509', '-req', '-in', `${base}.csr`, '-CA', certs.ca, '-CAkey', path.join(certs.dir, 'ca.key'), '-CAcreateserial', '-days', '2', '-extfile', `${base}.ext`, '-out', `${base}.crt`);
  return { cert: `${base}.crt`, key: `${base}.key` };
}

/** Handshakes with the MQTTS port and returns the server certificate (CN, key type) or the error. */
function handshake(port: number, ca: string, opts: tls.ConnectionOptions = {}): Promise<{ cn?: string; fingerprint?: string; bits?: number; error?: string }> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: readFileSync(ca), ...opts }, () => {
      const peer = socket.getPeerCertificate();
      resolve({ cn: String(peer.subject.CN), fingerprint: peer.fingerprint256, bits: peer.bits });
      socket.end();
    });
    socket.on('error', (err) => resolve({ error: (err as NodeJS.ErrnoException).code ?? err.message }));
  });
}

async function until(ok: () => Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await ok()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return ok();
}

describe('TLS reload and versions', () => {
  let t: TestRoost;
  let certs: DevCerts;
  let rsa: { cert: string; key: string };
  beforeAll(async () => {
    certs = makeDevCerts();
    rsa = serverCert(certs, 'rsa-pair', true);
    t = await startTestRoost('postgres', {
      env: { ROOST_TLS_CERT: certs.cert, ROOST_TLS_KEY: certs.key, ROOST_TLS_WATCH_MS: '200', ROOST_TLS_EXTRA_PAIRS: `${rsa.cert}:${rsa.key}` },
    });
    t.certs = certs;
  });
  afterAll(async () => {
    await t?.stop();
    rmSync(certs.dir, { recursive: true, force: true });
  });

  it('serves the ECDSA and the RSA pair, each to the client that asks for it', async () => {
    const port = t.roost.ports.mqtts!;
    expect((await handshake(port, certs.ca)).cn).toBe('localhost');
    const rsaOnly = await handshake(port, certs.ca, { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES128-GCM-SHA256', sigalgs: 'RSA-PSS+SHA256:RSA+SHA256' });
    expect(rsaOnly).toMatchObject({ cn: 'rsa-pair', bits: 2048 });
  });

  it('refuses TLS 1.1 even from a client willing to speak it', async () => {
    const old = await handshake(t.roost.ports.mqtts!, certs.ca, { minVersion: 'TLSv1.1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' });
    // The server's "protocol version" alert, not a client that could not offer TLS 1.1 at all.
    expect(old.error).toBe('ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION');
    expect(old.cn).toBeUndefined();
    expect((await handshake(t.roost.ports.mqtts!, certs.ca, { maxVersion: 'TLSv1.2' })).cn).toBeDefined();
  });

  it('swapping the certificate files keeps a connected client and gives new connections the new certificate', async () => {
    const port = t.roost.ports.mqtts!;
    const before = await handshake(port, certs.ca);
    const client = await connectClient(t, 'mqtts', { clientId: 'stays-connected' });
    await client.subscribeAsync('tls/ping');

    // What certbot does: new files, then moved into place.
    const next = serverCert(certs, 'renewed');
    renameSync(next.key, certs.key);
    renameSync(next.cert, certs.cert);
    expect(await until(async () => (await handshake(port, certs.ca)).cn === 'renewed', 5000)).toBe(true);
    const after = await handshake(port, certs.ca);
    expect(after.fingerprint).not.toBe(before.fingerprint);
    const state = await api(t, 'GET', '/api/tls');
    expect(state.body.certificates[0]).toMatchObject({ subject: 'CN=renewed', fingerprint_sha256: after.fingerprint });

    expect(client.connected).toBe(true);
    const got = collect(client, 1, 3000);
    await client.publishAsync('tls/ping', 'still here', { qos: 1 });
    expect((await got).map((m) => m.payload.toString())).toEqual(['still here']);
    await client.endAsync();
  });

  it('reloads on POST /api/tls/reload; a key that does not match is refused and the old pair stays', async () => {
    const port = t.roost.ports.mqtts!;
    const viaApi = serverCert(certs, 'via-api');
    writeFileSync(certs.key, readFileSync(viaApi.key));
    writeFileSync(certs.cert, readFileSync(viaApi.cert));
    const reloaded = await api(t, 'POST', '/api/tls/reload');
    expect(reloaded.status).toBe(200);
    expect(reloaded.body.certificates[0].subject).toBe('CN=via-api');
    expect((await handshake(port, certs.ca)).cn).toBe('via-api');

    // A certificate whose key is elsewhere: refused, the running pair stays.
    writeFileSync(certs.cert, readFileSync(serverCert(certs, 'mismatched').cert));
    const refused = await api(t, 'POST', '/api/tls/reload');
    expect(refused.status).toBe(422);
    expect(refused.body.code).toBe('ROOST_ERR_TLS_RELOAD');
    expect((await handshake(port, certs.ca)).cn).toBe('via-api');
    expect((await api(t, 'GET', '/api/tls')).body.last_error).toMatch(/cannot load/);
    expect((await api(t, 'POST', '/api/tls/reload', undefined, null)).status).toBe(401);
    const audit = await api(t, 'GET', '/api/audit?limit=5');
    expect(audit.body.items.some((a: { action: string }) => a.action === 'tls.reload')).toBe(true);
  });
});

describe('TLS-only mode', () => {
  let t: TestRoost;
  let plain: { mqtt: number; ws: number };
  beforeAll(async () => {
    plain = { mqtt: await freePort(), ws: await freePort() };
    t = await startTestRoost('pglite', {
      tls: true,
      env: { ROOST_TLS_ONLY: 'true', ROOST_MQTT_PORT: String(plain.mqtt), ROOST_WS_PORT: String(plain.ws), ROOST_TLS_MIN_VERSION: 'TLSv1.3', ROOST_TLS_WATCH_MS: '0' },
    });
  });
  afterAll(async () => t?.stop());

  const refused = (port: number) =>
    new Promise<string>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve('open');
      });
      s.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
    });

  it('opens only MQTTS and WSS: nothing listens on the plain ports', async () => {
    expect(Object.keys(t.roost.ports).sort()).toEqual(['api', 'mqtts', 'wss']);
    expect(await refused(plain.mqtt)).toBe('ECONNREFUSED');
    expect(await refused(plain.ws)).toBe('ECONNREFUSED');
    const client = await connectClient(t, 'mqtts');
    expect(client.connected).toBe(true);
    await client.endAsync();
    const wss = await connectClient(t, 'wss');
    await wss.endAsync();
    // /ready lists exactly the open listeners.
    const ready = await api(t, 'GET', '/ready', undefined, null);
    expect(ready.body.listeners).toEqual([`mqtts:${t.roost.ports.mqtts}`, `wss:${t.roost.ports.wss}`]);
  });

  it('with TLS 1.3 as the minimum, a TLS 1.2 client is refused', async () => {
    const port = t.roost.ports.mqtts!;
    expect((await handshake(port, t.certs!.ca, { maxVersion: 'TLSv1.2' })).error).toBeDefined();
    expect((await handshake(port, t.certs!.ca)).cn).toBe('localhost');
  });

  it('reloads on SIGHUP (file watching off)', async () => {
    const certs = t.certs!;
    const port = t.roost.ports.mqtts!;
    const hup = serverCert(certs, 'after-sighup');
    writeFileSync(certs.key, readFileSync(hup.key));
    writeFileSync(certs.cert, readFileSync(hup.cert));
    await new Promise((r) => setTimeout(r, 300));
    expect((await handshake(port, certs.ca)).cn).toBe('localhost');
    process.emit('SIGHUP', 'SIGHUP');
    expect((await handshake(port, certs.ca)).cn).toBe('after-sighup');
  });
});
