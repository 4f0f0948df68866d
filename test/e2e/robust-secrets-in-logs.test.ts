/**
 * No secret ever reaches the logs: a Roost process at debug level is put through everything that
 * handles one (API tokens good and bad, device passwords right and wrong, browser tokens,
 * provisioning keys, webhook secrets), then every pino line on its stdout is searched for each.
 */
import mqtt from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { PROCESS_ADMIN, startRoostProcess, type RoostProcess } from '../helpers/roost-process.js';

describe('secrets in logs', () => {
  let roost: RoostProcess | undefined;
  afterAll(async () => roost?.destroy());

  it('never writes a token, password, key or secret into a log line', async () => {
    // Its webhook points at loopback, which webhooks may reach only when listed.
    roost = await startRoostProcess({ ROOST_LOG_LEVEL: 'debug', ROOST_WEBHOOK_ALLOWED_TARGETS: '127.0.0.1' });
    const r = roost;
    const adminToken = /First admin API token[^\n]*\n\s*(\S+)/.exec(r.output())?.[1];
    expect(adminToken).toBeDefined();
    const secrets: Record<string, string> = { adminToken: adminToken!, adminPassword: PROCESS_ADMIN.password };
    const call = async (method: string, url: string, body?: unknown, token = adminToken!) => {
      const res = await fetch(`http://127.0.0.1:${r.apiPort}${url}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
      return { status: res.status, body: (await res.json().catch(() => undefined)) as any };
    };
    const mqttLogin = async (username: string, password: string, clientId?: string) => {
      const c = mqtt.connect(`mqtt://127.0.0.1:${r.mqttPort}`, { protocolVersion: 4, reconnectPeriod: 0, username, password, ...(clientId && { clientId }) });
      const ok = await new Promise<boolean>((resolve) => {
        c.once('connect', () => resolve(true));
        c.once('error', () => resolve(false));
        c.once('close', () => resolve(false));
      });
      c.end(true);
      return ok;
    };

    secrets.wrongToken = 'roost_0123456789abcdef-not-a-real-token';
    expect((await call('GET', '/api/devices', undefined, secrets.wrongToken)).status).toBe(401);
    const device = await call('POST', '/api/devices', { username: 'logged-device' });
    expect(device.status).toBe(201);
    secrets.devicePassword = device.body.password;
    expect(await mqttLogin('logged-device', secrets.devicePassword)).toBe(true);
    secrets.wrongPassword = 'wrong-password-that-must-not-be-logged';
    expect(await mqttLogin('logged-device', secrets.wrongPassword)).toBe(false);
    expect(await mqttLogin('no-such-device', secrets.wrongPassword)).toBe(false);
    const rotated = await call('PATCH', '/api/devices/logged-device', { rotate_password: true });
    secrets.rotatedPassword = rotated.body?.password ?? 'absent';
    // The rotation worked: the new password logs in, the old one no longer does.
    expect(rotated.status).toBe(200);
    expect(await mqttLogin('logged-device', secrets.rotatedPassword)).toBe(true);
    let oldStillIn = true; // the change reaches the credential cache by NOTIFY: allow it a moment
    for (let i = 0; i < 50 && oldStillIn; i++) {
      oldStillIn = await mqttLogin('logged-device', secrets.devicePassword);
      if (oldStillIn) await new Promise((r) => setTimeout(r, 100));
    }
    expect(oldStillIn).toBe(false);
    const token = await call('POST', '/api/tokens', { name: 'viewer-for-logs', role: 'viewer' });
    secrets.viewerToken = token.body.token;
    expect((await call('GET', '/api/devices', undefined, secrets.viewerToken)).status).toBe(200);
    const browser = await call('POST', '/api/browser-tokens', { filters: ['devices/A/#'] });
    expect(browser.status).toBe(201);
    secrets.browserToken = browser.body.token;
    // A browser token connects only under its client id prefix (issue 22 #5).
    expect(await mqttLogin(browser.body.username, secrets.browserToken, `${browser.body.client_id_prefix}logs`)).toBe(true);
    const key = await call('POST', '/api/provisioning-keys', { name: 'logs-key', acl_template: [{ pattern: 'devices/{device}/#', access: 'readwrite' }] });
    expect(key.status).toBe(201);
    secrets.provisioningKey = key.body.key;
    const provisioned = await call('POST', '/provision', { device: 'provisioned-1' }, secrets.provisioningKey);
    expect(provisioned.status).toBe(200);
    secrets.provisionedPassword = provisioned.body.password;
    const hook = await call('POST', '/api/webhooks', { name: 'logs-hook', url: 'http://127.0.0.1:9/hook', events: ['device.created'] });
    expect(hook.status).toBe(201);
    secrets.webhookSecret = hook.body.secret;
    await new Promise((res) => setTimeout(res, 500));

    for (const [name, value] of Object.entries(secrets)) expect(value, name).toEqual(expect.any(String));
    const lines = r.output().split('\n');
    const logLines = lines.filter((l) => l.startsWith('{'));
    expect(logLines.length).toBeGreaterThan(20);
    expect(logLines.some((l) => l.includes('connection refused'))).toBe(true);
    for (const line of logLines) {
      for (const [name, value] of Object.entries(secrets)) expect(line.includes(value), `${name} in log line: ${line.slice(0, 300)}`).toBe(false);
    }
    // Outside the log, only the first-start notice shows the admin token (once, by design).
    const plain = lines.filter((l) => !l.startsWith('{') && l.trim() !== '');
    expect(plain.filter((l) => l.includes(adminToken!))).toHaveLength(1);
    console.log(`${logLines.length} log lines at debug level, none holding any of ${Object.keys(secrets).length} secrets`);
  }, 60_000);
});
