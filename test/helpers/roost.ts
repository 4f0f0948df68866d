/** A Roost process inside the test, on ephemeral ports, on either database backend. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { loadConfig } from '../../lib/config.js';
import { createLogger } from '../../lib/log.js';
import { startRoost, type Roost } from '../../server/roost.js';
import { createDevice } from '../../auth/admin.js';
import { createApiToken } from '../../api/tokens.js';
import { openTestDb, type BackendName } from './db.js';
import { httpsRequest } from './https.js';

export interface DevCerts {
  dir: string;
  ca: string;
  cert: string;
  key: string;
}

/** Runs `npm run certs` into a temporary folder. */
export function makeDevCerts(): DevCerts {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'roost-certs-'));
  execFileSync('node', [path.resolve('certs/generate.mjs'), dir], { stdio: 'ignore' });
  return { dir, ca: path.join(dir, 'ca.crt'), cert: path.join(dir, 'server.crt'), key: path.join(dir, 'server.key') };
}

/** A superuser device every test Roost has; connectClient uses it unless told otherwise. */
export const TEST_ADMIN = { username: 'test-admin', password: 'test-admin-password' };

export interface TestRoost {
  roost: Roost;
  /** The first admin API token, for API requests. */
  apiToken: string;
  backend: BackendName;
  env: Record<string, string>;
  certs?: DevCerts;
  /** The API's base URL: https:// when it serves TLS (then trust certs.ca). */
  apiUrl: string;
  stop(): Promise<void>;
}

/**
 * With `tls`, the MQTT listeners serve TLS and the API stays on plain HTTP (ROOST_API_TLS=off) unless
 * `env` sets ROOST_API_TLS: those tests are about the listeners (test/integration/api-tls.test.ts is
 * about the HTTPS API), and browsers in them load the dashboard over http.
 */
export async function startTestRoost(
  backend: BackendName,
  opts: { tls?: boolean; env?: Record<string, string>; databaseUrl?: string; dataDir?: string } = {},
): Promise<TestRoost> {
  const certs = opts.tls ? makeDevCerts() : undefined;
  let cleanupDb = async () => {};
  let databaseUrl = opts.databaseUrl;
  let dataDir = opts.dataDir;
  if (!databaseUrl && !dataDir) {
    if (backend === 'postgres') {
      const t = await openTestDb('postgres');
      await t.db.close();
      databaseUrl = t.databaseUrl;
      cleanupDb = t.cleanup;
    } else {
      dataDir = mkdtempSync(path.join(os.tmpdir(), 'roost-data-'));
      const dir = dataDir;
      cleanupDb = async () => rmSync(dir, { recursive: true, force: true });
    }
  }
  const env: Record<string, string> = {
    ROOST_HOST: '127.0.0.1',
    ROOST_API_HOST: '127.0.0.1',
    ROOST_MQTT_PORT: '0',
    ROOST_MQTTS_PORT: '0',
    ROOST_WS_PORT: '0',
    ROOST_WSS_PORT: '0',
    ROOST_API_PORT: '0',
    ROOST_LOG_LEVEL: process.env.ROOST_TEST_LOG_LEVEL ?? 'silent',
    ROOST_BCRYPT_COST: '4',
    ...(databaseUrl ? { DATABASE_URL: databaseUrl } : { ROOST_DATA_DIR: dataDir! }),
    ...(certs ? { ROOST_TLS_CERT: certs.cert, ROOST_TLS_KEY: certs.key, ROOST_API_TLS: 'off' } : {}),
    ...opts.env,
  };
  const config = loadConfig(env);
  const roost = await startRoost(config, { log: createLogger(config.ROOST_LOG_LEVEL) });
  const existing = await roost.db.query('SELECT 1 FROM devices WHERE username = $1', [TEST_ADMIN.username]);
  if (existing.rows.length === 0) {
    const passwordHash = await roost.auth.authenticator.hasher.hash(TEST_ADMIN.password);
    await createDevice(roost.db, { username: TEST_ADMIN.username, passwordHash, superuser: true });
  }
  const apiToken = roost.firstAdminToken ?? (await createApiToken(roost.db, 'test', 'admin')).token;
  return {
    roost,
    apiToken,
    backend,
    env,
    certs,
    apiUrl: `${config.apiTls ? 'https' : 'http'}://127.0.0.1:${roost.ports.api}`,
    async stop() {
      await roost.close();
      await cleanupDb();
      if (certs) rmSync(certs.dir, { recursive: true, force: true });
    },
  };
}

export type Transport = 'mqtt' | 'mqtts' | 'ws' | 'wss';

export function brokerUrl(t: TestRoost, transport: Transport): string {
  const port = t.roost.ports[transport];
  if (port === undefined) throw new Error(`listener ${transport} is not running`);
  return transport.startsWith('ws') ? `${transport}://localhost:${port}/mqtt` : `${transport}://localhost:${port}`;
}

/** Connects an MQTT.js client (MQTT 3.1.1, no auto-reconnect) and waits for CONNACK. */
/** An API request with the test's admin token (or `token`), JSON in and out. */
export async function api(t: TestRoost, method: string, url: string, body?: unknown, token: string | null = t.apiToken) {
  const request = {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  };
  const { status, text, headers } = t.apiUrl.startsWith('https:')
    ? await httpsRequest(`${t.apiUrl}${url}`, { ...request, ca: readFileSync(t.certs!.ca) })
    : await fetch(`${t.apiUrl}${url}`, request).then(async (res) => ({ status: res.status, text: await res.text(), headers: res.headers }));
  let json: any;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status, body: json, text, headers };
}

/** A device's POST /provision: no API token, the body sent as given when it is a string (signed requests). */
export async function provisionRequest(t: TestRoost, body: unknown, headers: Record<string, string>) {
  const res = await fetch(`http://127.0.0.1:${t.roost.ports.api}/provision`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

export async function connectClient(t: TestRoost, transport: Transport, opts: IClientOptions = {}): Promise<MqttClient> {
  const client = mqtt.connect(brokerUrl(t, transport), {
    protocolVersion: 4,
    reconnectPeriod: 0,
    connectTimeout: 5000,
    ...(t.certs && (transport === 'mqtts' || transport === 'wss') ? { ca: readFileSync(t.certs.ca) } : {}),
    ...('username' in opts ? {} : TEST_ADMIN),
    ...opts,
  });
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
    client.once('close', () => reject(new Error('connection closed before CONNACK')));
  });
  return client;
}

/** Polls `ok` every 100 ms until it holds or `ms` pass; its last answer. */
export async function until(ok: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await ok()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return ok();
}

/** Collects messages until `count` arrived or `ms` passed. */
export function collect(client: MqttClient, count: number, ms = 5000): Promise<Array<{ topic: string; payload: Buffer; qos: number; retain: boolean }>> {
  const got: Array<{ topic: string; payload: Buffer; qos: number; retain: boolean }> = [];
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function onMessage(topic: string, payload: Buffer, packet: { qos: number; retain: boolean }) {
      got.push({ topic, payload, qos: packet.qos, retain: packet.retain });
      if (got.length >= count) done();
    }
    function done() {
      clearTimeout(timer);
      client.off('message', onMessage);
      resolve(got);
    }
    client.on('message', onMessage);
  });
}
