/**
 * The admin dashboard in a real headless Chromium against a real Roost on PostgreSQL: an admin adds
 * a device and watches it come online and get kicked, tails live messages, charts history, edits
 * rules; a viewer sees every page with its buttons off and the API refuses it anyway. Screenshots of
 * each page land in test-artifacts/ (git-ignored).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import type { Page } from 'playwright-core';
import { launchBrowser, screenshot, type TestBrowser } from '../helpers/browser.js';
import { api, connectClient, startTestRoost, type TestRoost } from '../helpers/roost.js';

let t: TestRoost;
let browser: TestBrowser;
let page: Page;
let publisher: MqttClient;
let origin: string;

const until = <T>(promise: Promise<T>, ms: number, what: string) =>
  Promise.race([promise, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms))]);

async function logIn(p: Page, token: string): Promise<void> {
  await p.goto(`${origin}/ui/`);
  await p.fill('input[name=token]', token);
  await p.click('button:has-text("Log in")');
  await p.locator('header [data-test=role]').waitFor();
}

async function open(p: Page, route: string): Promise<void> {
  await p.click(`header nav a[href="#/${route}"]`);
  await p.waitForFunction((r) => location.hash === `#/${r}`, route);
}

beforeAll(async () => {
  t = await startTestRoost('postgres');
  origin = `http://127.0.0.1:${t.roost.ports.api}`;
  browser = await launchBrowser();
  page = await browser.newPage();
  page.on('dialog', (d) => void d.accept());
  publisher = await connectClient(t, 'mqtt');
}, 60_000);

afterAll(async () => {
  await publisher?.endAsync();
  await browser?.close();
  await t?.stop();
});

describe('as an admin', () => {
  it('serves the dashboard from / and /ui/ with a strict CSP, and refuses a bad token', async () => {
    const res = await fetch(`${origin}/`, { redirect: 'manual' });
    expect(res.headers.get('location')).toBe('/ui/');
    const index = await fetch(`${origin}/ui/`);
    expect(index.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect((await fetch(`${origin}/ui/mqtt.min.js`)).headers.get('content-type')).toMatch(/javascript/);
    await page.goto(`${origin}/ui/`);
    await page.fill('input[name=token]', 'roost_not-a-token');
    await page.click('button:has-text("Log in")');
    await page.locator('.error:has-text("not valid")').waitFor();
    await screenshot(page, 'dashboard-login');
  });

  it('adds a device, shows its password once; a client using it turns the device online; disabling it in the UI kicks the client', async () => {
    await logIn(page, t.apiToken);
    expect(await page.locator('header [data-test=role]').textContent()).toBe('admin');
    await page.fill('input[name=username]', 'lamp-1');
    await page.fill('input[name=name]', 'Hall lamp');
    await page.click('button:has-text("Add device")');
    const password = (await page.locator('[data-test=secret] code').textContent()) ?? '';
    expect(password.length).toBeGreaterThanOrEqual(20);

    const row = page.locator('tr[data-device="lamp-1"]');
    await row.locator('[data-online=false]').waitFor();
    const lamp = await connectClient(t, 'mqtt', { username: 'lamp-1', password, clientId: 'lamp-1' });
    await row.locator('[data-online=true]').waitFor({ timeout: 5000 });
    await screenshot(page, 'dashboard-devices');

    const kicked = new Promise<void>((resolve) => lamp.once('close', () => resolve()));
    await row.locator('button:has-text("Disable")').click();
    await until(kicked, 3000, 'client kicked after Disable');
    await row.locator('[data-test=enabled]:has-text("disabled")').waitFor({ timeout: 5000 });
    await row.locator('[data-online=false]').waitFor({ timeout: 5000 });
    await expect(connectClient(t, 'mqtt', { username: 'lamp-1', password })).rejects.toThrow(/Not authorized/);

    // Rotate shows a new password that works; the old one does not.
    await row.locator('button:has-text("Enable")').click();
    await row.locator('[data-test=enabled]:has-text("enabled")').waitFor();
    await row.locator('button:has-text("Rotate password")').click();
    await page.waitForFunction((old) => document.querySelector('[data-test=secret] code')?.textContent !== old, password);
    const rotated = (await page.locator('[data-test=secret] code').textContent()) ?? '';
    await (await connectClient(t, 'mqtt', { username: 'lamp-1', password: rotated })).endAsync();
    await expect(connectClient(t, 'mqtt', { username: 'lamp-1', password })).rejects.toThrow(/Bad username or password/);
  });

  it('tails live messages over MQTT/WebSocket with JSON pretty-printed, and pauses', async () => {
    await open(page, 'live');
    await page.locator('[data-test=feed][data-subscribed="#"]').waitFor({ state: 'attached' });
    await publisher.publishAsync('sensors/lamp-1/temp', JSON.stringify({ celsius: 21.5, ok: true }), { qos: 1 });
    const first = page.locator('[data-test=feed] .msg').first();
    await first.waitFor({ timeout: 1000 });
    expect(await first.locator('pre').textContent()).toBe('{\n  "celsius": 21.5,\n  "ok": true\n}');
    expect(await first.getAttribute('data-topic')).toBe('sensors/lamp-1/temp');

    await page.click('button:has-text("Pause")');
    await publisher.publishAsync('sensors/lamp-1/temp', JSON.stringify({ celsius: 22 }), { qos: 1 });
    await page.locator('[data-test=live-status]:has-text("1 waiting")').waitFor();
    expect(await page.locator('[data-test=feed] .msg').count()).toBe(1);
    await page.click('button:has-text("Resume")');
    expect(await page.locator('[data-test=feed] .msg').count()).toBe(2);
    await screenshot(page, 'dashboard-live');
    // The tail logged in with a browser token, not with any device password.
    const clients = (await api(t, 'GET', '/api/clients')).body.items as Array<{ username: string; transport: string }>;
    expect(clients.find((c) => c.username?.startsWith('browser:'))?.transport).toBe('ws');
  });

  it('charts a numeric JSON field of the stored history', async () => {
    for (const celsius of [19, 20.5, 23, 22.25, 24]) {
      await publisher.publishAsync('sensors/lamp-1/temp', JSON.stringify({ celsius, meta: { battery: 90 - celsius } }), { qos: 1 });
    }
    await open(page, 'history');
    await page.fill('input[name=filter]', 'sensors/lamp-1/#');
    await page.click('button:has-text("Load")');
    const chart = page.locator('[data-test=charts] svg[aria-label="sensors/lamp-1/temp · celsius over time"] polyline');
    await chart.waitFor();
    expect(((await chart.getAttribute('points')) ?? '').split(' ')).toHaveLength(7);
    await page.locator('[data-test=charts] svg[aria-label="sensors/lamp-1/temp · meta.battery over time"]').waitFor();
    await screenshot(page, 'dashboard-history');
  });

  it('adds a rule and answers "may D publish T?" with the deciding rule', async () => {
    await api(t, 'POST', '/api/devices', { username: 'piano-9' });
    await open(page, 'acl');
    await page.selectOption('select[name=owner-kind]', 'device');
    await page.fill('input[name=owner]', 'piano-9');
    await page.fill('input[name=pattern]', 'pianos/%u/#');
    await page.click('button:has-text("Add rule")');
    await page.locator('td code:has-text("pianos/%u/#")').waitFor();
    await page.fill('input[name=check-device]', 'piano-9');
    await page.fill('input[name=check-topic]', 'pianos/piano-9/tune');
    await page.click('button:has-text("Check")');
    await page.locator('[data-test=check-result]:has-text("Allowed")').waitFor();
    expect(await page.locator('[data-test=check-result]').textContent()).toContain('pianos/%u/# readwrite allow from device');
    await page.fill('input[name=check-topic]', 'pianos/piano-8/tune');
    await page.click('button:has-text("Check")');
    await page.locator('[data-test=check-result]:has-text("Denied (no-matching-rule)")').waitFor();
    await screenshot(page, 'dashboard-acl');
  });

  it('creates a provisioning key (shown once), lists and deletes retained messages, shows live stats and bans', async () => {
    await open(page, 'provisioning');
    await page.fill('input[name=key-name]', 'factory-1');
    await page.click('button:has-text("Create key")');
    expect(((await page.locator('[data-test=secret] code').textContent()) ?? '').length).toBeGreaterThan(20);
    await page.locator('td:has-text("factory-1")').waitFor();
    await screenshot(page, 'dashboard-provisioning');

    await publisher.publishAsync('status/lamp-1', JSON.stringify({ on: true }), { qos: 1, retain: true });
    await open(page, 'retained');
    const retained = page.locator('tr:has(code:text-is("status/lamp-1"))');
    await retained.waitFor();
    await screenshot(page, 'dashboard-retained');
    await retained.locator('button:has-text("Delete")').click();
    await retained.waitFor({ state: 'detached' });
    expect((await api(t, 'GET', '/api/retained?filter=status/%23')).body.items).toEqual([]);

    await open(page, 'stats');
    await page.locator('[data-test=connections] .v').waitFor();
    await page.locator('.chart svg').waitFor({ timeout: 5000 });
    expect(Number(await page.locator('[data-test=connections] .v').textContent())).toBeGreaterThanOrEqual(1);
    await screenshot(page, 'dashboard-stats');

    await open(page, 'bans');
    await page.locator('[data-test=no-bans]').waitFor();
    await page.locator('input[name=value]').fill('flaky-logger-9');
    await page.locator('input[name=reason]').fill('reconnect storm');
    await page.locator('button:has-text("Ban")').click();
    await page.locator('main table td:has-text("flaky-logger-9")').waitFor();
    const bans = (await api(t, 'GET', '/api/bans')).body.items;
    expect(bans).toEqual([expect.objectContaining({ kind: 'client_id', value: 'flaky-logger-9', reason: 'reconnect storm' })]);
    await screenshot(page, 'dashboard-bans');
    await page.locator('button:has-text("Lift")').click();
    await page.locator('[data-test=no-bans]').waitFor();
    expect((await api(t, 'GET', '/api/bans')).body.items).toEqual([]);
  });
});

describe('as a viewer', () => {
  it('sees the pages with every changing button disabled, and the API refuses its changes', async () => {
    const viewer = (await api(t, 'POST', '/api/tokens', { name: 'wall-screen', role: 'viewer' })).body.token as string;
    const p = await browser.newPage();
    try {
      await logIn(p, viewer);
      expect(await p.locator('header [data-test=role]').textContent()).toBe('viewer');
      await p.locator('tr[data-device="lamp-1"]').waitFor();
      for (const route of ['devices', 'acl', 'provisioning']) {
        await open(p, route);
        await p.locator('main table').first().waitFor();
        const buttons = p.locator('button[data-admin]');
        expect(await buttons.count()).toBeGreaterThan(0);
        expect(await p.locator('button[data-admin]:not([disabled])').count()).toBe(0);
        if (route === 'devices') await screenshot(p, 'dashboard-viewer-devices');
      }
      // The same requests the buttons would make, from the page with the viewer's token: refused.
      const statuses = await p.evaluate(async (token) => {
        const send = (method: string, url: string, body?: unknown) =>
          fetch(url, { method, headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body && JSON.stringify(body) }).then((r) => r.status);
        return [
          await send('POST', '/api/devices', { username: 'sneaky' }),
          await send('PATCH', '/api/devices/lamp-1', { enabled: false }),
          await send('DELETE', '/api/devices/lamp-1'),
          await send('POST', '/api/rules', { device: 'lamp-1', pattern: '#', access: 'readwrite' }),
          await send('POST', '/api/provisioning-keys', { name: 'sneaky' }),
        ];
      }, viewer);
      expect(statuses).toEqual([403, 403, 403, 403, 403]);
      // Reading is fine: the viewer's live tail connects with its own browser token.
      await open(p, 'live');
      await p.locator('[data-test=feed][data-subscribed="#"]').waitFor({ state: 'attached' });
    } finally {
      await p.close();
    }
  });
});
