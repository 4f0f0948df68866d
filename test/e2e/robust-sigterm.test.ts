/**
 * SIGTERM under QoS 1 load: Roost stops accepting connections at once, flushes its write queue,
 * saves sessions and exits 0 within a bounded time; every message a publisher got a PUBACK for is
 * in the messages table, and a persistent session's subscription survives.
 */
import net from 'node:net';
import mqtt from 'mqtt';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { PROCESS_ADMIN, startRoostProcess, type RoostProcess } from '../helpers/roost-process.js';

const EXIT_BOUND_MS = 8_000;

describe('SIGTERM under QoS 1 load', () => {
  let roost: RoostProcess | undefined;
  afterAll(async () => roost?.destroy());

  it('exits 0 within the bound and loses nothing it acknowledged', async () => {
    roost = await startRoostProcess({ ROOST_SHUTDOWN_TIMEOUT_MS: '10000' });
    const url = `mqtt://127.0.0.1:${roost.mqttPort}`;
    const persistent = await mqtt.connectAsync(url, { clientId: 'sigterm-persistent', clean: false, protocolVersion: 4, reconnectPeriod: 0, ...PROCESS_ADMIN });
    await persistent.subscribeAsync('sigterm/#', { qos: 1 });
    const publishers = await Promise.all(
      [0, 1, 2, 3].map((c) => mqtt.connectAsync(url, { clientId: `sigterm-pub-${c}`, protocolVersion: 4, reconnectPeriod: 0, ...PROCESS_ADMIN })),
    );
    const acked: string[] = [];
    let stop = false;
    const loops = publishers.map(async (client, c) => {
      for (let i = 0; !stop && client.connected; i++) {
        const batch = Array.from({ length: 16 }, (_, k) => `sigterm/${c}/${i * 16 + k}`);
        await Promise.all(batch.map((topic) => client.publishAsync(topic, 'x', { qos: 1 }).then(() => acked.push(topic), () => {})));
      }
    });
    await new Promise((r) => setTimeout(r, 1500));
    expect(acked.length).toBeGreaterThan(100);

    const signalled = Date.now();
    roost.child.kill('SIGTERM');
    // Listeners close first: a new connection is refused soon after the signal.
    let refusedAfterMs: number | undefined;
    while (Date.now() - signalled < EXIT_BOUND_MS) {
      const refused = await new Promise<boolean>((resolve) => {
        const s = net.connect(roost!.mqttPort, '127.0.0.1');
        s.once('connect', () => (s.destroy(), resolve(false)));
        s.once('error', () => resolve(true));
      });
      if (refused) {
        refusedAfterMs = Date.now() - signalled;
        break;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    const exit = await Promise.race([roost.exited, new Promise<undefined>((r) => setTimeout(r, EXIT_BOUND_MS + 2000))]);
    stop = true;
    // In-flight publishes of a closed MQTT.js client never settle: do not wait for the loops.
    void loops;
    expect(exit, roost.output().slice(-2000)).toBeDefined();
    expect(exit!.code).toBe(0);
    expect(exit!.at - signalled).toBeLessThan(EXIT_BOUND_MS);
    expect(refusedAfterMs).toBeDefined();
    expect(refusedAfterMs!).toBeLessThan(1000);

    const db = new pg.Client({ connectionString: roost.dbOptions.databaseUrl });
    await db.connect();
    try {
      const stored = new Set((await db.query<{ topic: string }>("SELECT topic FROM messages WHERE topic LIKE 'sigterm/%'")).rows.map((r) => r.topic));
      expect(acked.filter((topic) => !stored.has(topic))).toEqual([]);
      // The persistent session's subscription outlives the shutdown (schema/003_sessions.sql).
      const held = await db.query("SELECT topic FROM session_subscriptions WHERE client_id = 'sigterm-persistent'");
      expect(held.rows.map((r) => r.topic)).toContain('sigterm/#');
      console.log(`SIGTERM: ${acked.length} acknowledged before and during shutdown, all stored; listeners closed after ${refusedAfterMs} ms; exit 0 after ${exit!.at - signalled} ms`);
    } finally {
      await db.end();
    }
    for (const c of [persistent, ...publishers]) c.end(true);
  }, 60_000);
});
