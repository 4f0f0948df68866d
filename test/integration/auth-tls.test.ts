/**
 * Client certificates on the TLS listeners: a certificate verified against ROOST_TLS_CA names the
 * device (CN or a SAN field); ROOST_TLS_CERT_PASSWORD_REQUIRED says whether a password is needed too.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import bcrypt from 'bcrypt';
import mqtt, { type IClientOptions } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDevice } from '../../auth/admin.js';
import { makeDevCerts, startTestRoost, type DevCerts, type TestRoost } from '../helpers/roost.js';

interface ClientCert {
  cert: Buffer;
  key: Buffer;
}

const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });

/** A client certificate for `cn` signed by the dev CA (or self-signed: a rogue one). */
function clientCert(certs: DevCerts, cn: string, opts: { email?: string; rogue?: boolean } = {}): ClientCert {
  const base = path.join(certs.dir, `client-${cn}${opts.rogue ? '-rogue' : ''}`);
  const ext = `${base}.ext`;
  writeFileSync(ext, `basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n${opts.email ? `subjectAltName=email:${opts.email}\n` : ''}`);
  const newKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', `/CN=${cn}`, '-keyout', `${base}.key`];
  if (opts.rogue) {
    openssl('req', '-x509', ...newKey, '-days', '1', '-out', `${base}.crt`);
  } else {
    openssl('req', ...newKey, '-out', `${base}.csr`);
    openssl('x509', '-req', '-in', `${base}.csr`, '-CA', certs.ca, '-CAkey', path.join(certs.dir, 'ca.key'), '-CAcreateserial', '-days', '1', '-extfile', ext, '-out', `${base}.crt`);
  }
  return { cert: readFileSync(`${base}.crt`), key: readFileSync(`${base}.key`) };
}

/** CONNACK code of a CONNECT over mqtts or wss (0 = accepted). */
async function connack(t: TestRoost, certs: DevCerts, transport: 'mqtts' | 'wss', opts: IClientOptions): Promise<number> {
  const port = t.roost.ports[transport];
  const url = transport === 'wss' ? `wss://localhost:${port}/mqtt` : `mqtts://localhost:${port}`;
  const client = mqtt.connect(url, { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 10_000, ca: readFileSync(certs.ca), ...opts });
  return new Promise((resolve) => {
    client.once('connect', () => {
      resolve(0);
      client.end(true);
    });
    client.once('error', (err) => {
      client.end(true);
      resolve((err as Error & { code?: number }).code ?? -1);
    });
    client.once('close', () => resolve(-1));
  });
}

describe.each([
  { passwordRequired: false, field: 'CN' },
  { passwordRequired: true, field: 'SAN_EMAIL' },
])('client certificates (password required: $passwordRequired, name from $field)', ({ passwordRequired, field }) => {
  let certs: DevCerts;
  let t: TestRoost;
  let meter: ClientCert;
  const name = field === 'CN' ? 'meter-7' : 'meter-7@devices.example';

  beforeAll(async () => {
    certs = makeDevCerts();
    t = await startTestRoost('pglite', {
      env: {
        ROOST_TLS_CERT: certs.cert,
        ROOST_TLS_KEY: certs.key,
        ROOST_TLS_CA: certs.ca,
        ROOST_TLS_CERT_USERNAME_FIELD: field,
        ROOST_TLS_CERT_PASSWORD_REQUIRED: String(passwordRequired),
        ROOST_BCRYPT_COST: '4',
      },
    });
    await createDevice(t.roost.db, { username: name, passwordHash: await bcrypt.hash('meter-pw', 4) });
    meter = clientCert(certs, 'meter-7', { email: 'meter-7@devices.example' });
  });
  afterAll(async () => {
    await t?.stop();
    rmSync(certs?.dir ?? '/nonexistent', { recursive: true, force: true });
  });

  it.each(['mqtts', 'wss'] as const)('over %s, the certificate names the device', async (transport) => {
    const code = await connack(t, certs, transport, { ...meter, clientId: `m-${transport}` });
    // Without a password: accepted only when the certificate suffices.
    expect(code).toBe(passwordRequired ? 4 : 0);
    expect(await connack(t, certs, transport, { ...meter, clientId: `mp-${transport}`, username: name, password: 'meter-pw' })).toBe(0);
  });

  it('refuses a username that differs from the certificate with 5', async () => {
    expect(await connack(t, certs, 'mqtts', { ...meter, clientId: 'm-other', username: 'someone-else', password: 'meter-pw' })).toBe(5);
  });

  it('ignores a certificate the CA did not sign: without a username the client is anonymous', async () => {
    const rogue = clientCert(certs, 'meter-7', { email: 'meter-7@devices.example', rogue: true });
    expect(await connack(t, certs, 'mqtts', { ...rogue, clientId: 'm-rogue' })).toBe(5);
    expect(await connack(t, certs, 'mqtts', { ...rogue, clientId: 'm-rogue-2', username: name, password: 'wrong' })).toBe(4);
  });

  it('refuses a signed certificate that names no device', async () => {
    const stranger = clientCert(certs, 'stranger', { email: 'stranger@devices.example' });
    expect(await connack(t, certs, 'mqtts', { ...stranger, clientId: 'm-stranger' })).toBe(passwordRequired ? 4 : 5);
  });
});
