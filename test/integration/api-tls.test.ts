/**
 * The API over HTTPS (issue 22 #15): with a certificate configured, the API port serves the
 * certificate of the MQTT TLS listeners, follows its reloads, and answers nothing in plain HTTP;
 * ROOST_API_TLS=off keeps it on HTTP. The `roost` command beside a running Roost reaches that API
 * over HTTPS, trusting only the certificate the running process recorded in the folder's lock.
 */
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../lib/config.js';
import { httpsRequest } from '../helpers/https.js';
import { dbEnv, startRoostProcess, type RoostProcess } from '../helpers/roost-process.js';
import { api, makeDevCerts, startTestRoost, until, type DevCerts, type TestRoost } from '../helpers/roost.js';

const CLI = path.resolve('dist/cli/cli.js');

/** The SHA-256 fingerprint of the certificate a TLS server on `port` presents (chain not checked). */
function presentedFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      resolve(socket.getPeerCertificate().fingerprint256);
      socket.end();
    });
    socket.on('error', reject);
  });
}

const fingerprintOf = (file: string) => new X509Certificate(readFileSync(file)).fingerprint256;

const stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const stop of stops.splice(0).reverse()) await stop();
});
async function roostWith(env: Record<string, string>): Promise<TestRoost> {
  const t = await startTestRoost('postgres', { tls: true, env });
  stops.push(() => t.stop());
  return t;
}

describe('the API with a TLS certificate configured', () => {
  it('answers GET /health over HTTPS with the listeners\' certificate, trusted through the CA, and nothing in plain HTTP', async () => {
    const t = await roostWith({ ROOST_API_TLS: 'auto' });
    expect(t.apiUrl).toBe(`https://127.0.0.1:${t.roost.ports.api}`);

    const health = await httpsRequest(`${t.apiUrl}/health`, { ca: readFileSync(t.certs!.ca) });
    expect(health.status).toBe(200);
    expect(JSON.parse(health.text)).toEqual({ status: 'ok' });
    expect(await presentedFingerprint(t.roost.ports.api!)).toBe(fingerprintOf(t.certs!.cert));
    // Authenticated routes work the same over HTTPS.
    expect((await api(t, 'GET', '/api/tls')).body.certificates[0].fingerprint_sha256).toBe(fingerprintOf(t.certs!.cert));

    await expect(fetch(`http://127.0.0.1:${t.roost.ports.api}/health`, { signal: AbortSignal.timeout(30_000) })).rejects.toThrow();
  }, 60_000);

  it('serves a renewed certificate from the next handshake on, without a restart', async () => {
    const t = await roostWith({ ROOST_API_TLS: 'on', ROOST_TLS_WATCH_MS: '200' });
    const renewed: DevCerts = makeDevCerts(); // another CA and server certificate
    stops.push(async () => rmSync(renewed.dir, { recursive: true, force: true }));
    const before = await presentedFingerprint(t.roost.ports.api!);
    expect(before).toBe(fingerprintOf(t.certs!.cert));

    // Swapped in as certbot does: each file replaced whole.
    for (const [from, to] of [[renewed.key, t.certs!.key], [renewed.cert, t.certs!.cert]]) {
      copyFileSync(from, `${to}.next`);
      renameSync(`${to}.next`, to);
    }
    expect(await until(async () => (await presentedFingerprint(t.roost.ports.api!)) === fingerprintOf(renewed.cert), 20_000)).toBe(true);
    const health = await httpsRequest(`${t.apiUrl}/health`, { ca: readFileSync(renewed.ca) });
    expect(health.status).toBe(200);
  }, 60_000);

  it('stays on plain HTTP with ROOST_API_TLS=off, while the MQTT listeners keep their TLS', async () => {
    const t = await roostWith({ ROOST_API_TLS: 'off' });
    expect(t.apiUrl).toBe(`http://127.0.0.1:${t.roost.ports.api}`);
    const health = await fetch(`${t.apiUrl}/health`);
    expect(health.status).toBe(200);
    expect(await presentedFingerprint(t.roost.ports.mqtts!)).toBe(fingerprintOf(t.certs!.cert));
  }, 60_000);
});

describe('ROOST_API_TLS', () => {
  it('on without a certificate refuses to start, naming the setting', () => {
    expect(() => loadConfig({ ROOST_API_TLS: 'on' })).toThrow('ROOST_API_TLS: an HTTPS API needs ROOST_TLS_CERT and ROOST_TLS_KEY');
  });
});

describe('the roost command beside a running Roost whose API serves HTTPS', () => {
  async function roostProcessWithTls(): Promise<{ roost: RoostProcess; certs: DevCerts }> {
    const certs = makeDevCerts();
    stops.push(async () => rmSync(certs.dir, { recursive: true, force: true }));
    const roost = await startRoostProcess({ ROOST_TLS_CERT: certs.cert, ROOST_TLS_KEY: certs.key, ROOST_MQTTS_PORT: '0', ROOST_WSS_PORT: 'off' }, 'pglite');
    stops.push(() => roost.destroy());
    // /ready answers once the API listens; the lock records it (and its certificate) a moment later.
    expect(await until(() => lockOf(roost).apiCertificates !== undefined, 30_000)).toBe(true);
    return { roost, certs };
  }
  const lockFile = (roost: RoostProcess) => path.join(roost.dbOptions.dataDir, 'roost.lock');
  const lockOf = (roost: RoostProcess) => JSON.parse(readFileSync(lockFile(roost), 'utf8')) as { api?: string; apiCertificates?: string[] };
  const roostCommand = (roost: RoostProcess, args: string[]) =>
    // The command is given no certificate setting: it learns the API and its certificate from the lock.
    spawnSync('node', [CLI, ...args], { env: { ...dbEnv(roost.dbOptions), ROOST_LOG_LEVEL: 'warn' }, encoding: 'utf8', timeout: 60_000 });

  it('sends its command over HTTPS to the running process, which applies it', async () => {
    const { roost, certs } = await roostProcessWithTls();
    const lock = lockOf(roost);
    expect(lock.api).toBe(`https://127.0.0.1:${roost.apiPort}`);
    expect(lock.apiCertificates).toEqual([fingerprintOf(certs.cert)]);

    const added = roostCommand(roost, ['device', 'add', 'over-https', '--password', 'over-https-pw']);
    expect(added.stderr).toBe('');
    expect(added.status).toBe(0);
    expect(added.stdout).toContain('device over-https added');
    expect(roostCommand(roost, ['device', 'list']).stdout).toMatch(/^over-https\tenabled/m);

    // A renewed certificate (reloaded on SIGHUP) is recorded in its turn, and trusted.
    const renewed = makeDevCerts();
    stops.push(async () => rmSync(renewed.dir, { recursive: true, force: true }));
    copyFileSync(renewed.key, certs.key);
    copyFileSync(renewed.cert, certs.cert);
    roost.child.kill('SIGHUP');
    expect(await until(() => lockOf(roost).apiCertificates?.[0] === fingerprintOf(renewed.cert), 30_000)).toBe(true);
    expect(await presentedFingerprint(roost.apiPort)).toBe(fingerprintOf(renewed.cert));
    const disabled = roostCommand(roost, ['device', 'disable', 'over-https']);
    expect(disabled.stderr).toBe('');
    expect(disabled.stdout).toContain('device over-https disabled');
  }, 240_000);

  it('refuses with one line, sending nothing, when the API presents a certificate the lock does not record', async () => {
    const { roost, certs } = await roostProcessWithTls();
    const lock = lockOf(roost);
    const other = makeDevCerts();
    stops.push(async () => rmSync(other.dir, { recursive: true, force: true }));
    writeFileSync(lockFile(roost), JSON.stringify({ ...lock, apiCertificates: [fingerprintOf(other.cert)] }), { mode: 0o600 });

    const res = roostCommand(roost, ['device', 'add', 'never-sent', '--password', 'never-sent-pw']);
    expect(res.status).toBe(2);
    expect(res.stderr.trim().split('\n')).toEqual([
      `roost: ${roost.dbOptions.dataDir} is in use by process ${roost.child.pid}, but the API presented a certificate the running Roost did not record (SHA-256 ${fingerprintOf(certs.cert)}) at ${lock.api}; the command was not sent`,
    ]);
    writeFileSync(lockFile(roost), JSON.stringify(lock), { mode: 0o600 });
    expect(roostCommand(roost, ['device', 'list']).stdout).not.toContain('never-sent');
  }, 180_000);
});
