/**
 * A real headless Chromium (the Debian package, never a downloaded browser) driven by
 * playwright-core, with a fresh profile and HOME per launch. `trustCa` adds a CA to that HOME's
 * NSS database (certutil, Debian libnss3-tools): Chromium then verifies the server's chain to it
 * like any trusted root — no certificate error is ignored.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { clientIdPrefixOfUsername } from '../../auth/browser-tokens.js';

export const CHROMIUM = '/usr/bin/chromium';
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Screenshots go here (git-ignored). */
export const ARTIFACTS = path.resolve('test-artifacts');

export interface TestBrowser {
  context: BrowserContext;
  newPage(): Promise<Page>;
  close(): Promise<void>;
}

function trustInNss(home: string, caFile: string): void {
  const db = path.join(home, '.pki', 'nssdb');
  mkdirSync(db, { recursive: true });
  execFileSync('certutil', ['-N', '-d', `sql:${db}`, '--empty-password'], { stdio: 'ignore', timeout: 10_000 });
  execFileSync('certutil', ['-A', '-d', `sql:${db}`, '-n', 'roost-test-ca', '-t', 'C,,', '-i', caFile], { stdio: 'ignore', timeout: 10_000 });
}

export async function launchBrowser(opts: { trustCa?: string } = {}): Promise<TestBrowser> {
  const home = mkdtempSync(path.join(os.tmpdir(), 'roost-chromium-'));
  if (opts.trustCa) trustInNss(home, opts.trustCa);
  const context = await chromium.launchPersistentContext(path.join(home, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    env: { ...process.env, HOME: home },
    timeout: 20_000,
    viewport: { width: 1280, height: 860 },
  });
  context.setDefaultTimeout(10_000);
  return {
    context,
    newPage: () => context.newPage(),
    async close() {
      await context.close().catch(() => {});
      rmSync(home, { recursive: true, force: true });
    },
  };
}

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true, timeout: 10_000 });
  return file;
}

/**
 * In the page: connects MQTT.js (the browser build Roost serves at /ui/mqtt.min.js) and subscribes;
 * messages are collected in window.__got with the page's receive time. Returns the granted QoS.
 */
export async function pageSubscribe(
  page: Page,
  url: string,
  credentials: { username: string; password: string },
  filters: string[],
): Promise<number[]> {
  // A browser token connects only under its client id prefix (auth/browser-tokens.ts); a device as it likes.
  const clientId = `${clientIdPrefixOfUsername(credentials.username) ?? ''}page-${Math.random().toString(16).slice(2)}`;
  return page.evaluate(
    async ({ url, credentials, filters, clientId }) => {
      const w = window as any;
      w.__got = [];
      const client = w.mqtt.connect(url, { ...credentials, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5000, clientId });
      w.__client = client;
      await new Promise<void>((resolve, reject) => {
        client.once('connect', () => resolve());
        client.once('error', (e: Error) => reject(new Error(`MQTT over WebSocket: ${e.message}`)));
        client.once('close', () => reject(new Error('MQTT over WebSocket: closed before CONNACK')));
      });
      client.on('message', (topic: string, payload: Uint8Array) => w.__got.push({ topic, payload: new TextDecoder().decode(payload), at: Date.now() }));
      // MQTT.js reports a refused filter (0x80) as an error carrying the SUBACK: read the codes from it.
      return new Promise<number[]>((resolve, reject) =>
        client.subscribe(filters, { qos: 0 }, (err: (Error & { packet?: { granted: number[] } }) | null, g: Array<{ qos: number }>) => {
          if (err?.packet) resolve(err.packet.granted);
          else if (err) reject(err);
          else resolve(g.map((x) => x.qos));
        }),
      );
    },
    { url, credentials, filters, clientId },
  );
}

export function pageMessages(page: Page): Promise<Array<{ topic: string; payload: string; at: number }>> {
  return page.evaluate(() => (window as any).__got ?? []);
}
