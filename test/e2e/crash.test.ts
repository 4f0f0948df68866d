/**
 * kill -9 of a broker under QoS 1 load: every message whose PUBACK a client received is in the
 * messages table after the process is gone (the ack was sent after the commit).
 * On PostgreSQL the kill comes while a lock holds the batch being written, so publishes are in
 * flight and uncommitted: a PUBACK sent before its commit is then always caught, not by chance.
 */
import mqtt from 'mqtt';
import { describe, expect, it } from 'vitest';
import { openDb } from '../../lib/db/index.js';
import { BACKENDS, holdMessageWrites } from '../helpers/db.js';
import { PROCESS_ADMIN, startRoostProcess } from '../helpers/roost-process.js';

describe.each(BACKENDS)('SIGKILL under QoS 1 load (%s)', (backend) => {
  it('keeps every acknowledged message', async () => {
    const roost = await startRoostProcess({}, backend);
    try {
      const acked: string[] = [];
      let sent = 0;
      const clients = await Promise.all(
        [0, 1, 2, 3, 4].map(
          (c) =>
            new Promise<mqtt.MqttClient>((resolve, reject) => {
              const client = mqtt.connect(`mqtt://127.0.0.1:${roost.mqttPort}`, { clientId: `crash-${c}`, protocolVersion: 4, reconnectPeriod: 0, ...PROCESS_ADMIN });
              client.once('connect', () => resolve(client));
              client.once('error', reject);
            }),
        ),
      );
      let stop = false;
      const loops = clients.map(async (client, c) => {
        for (let i = 0; !stop; i++) {
          const batch = Array.from({ length: 8 }, (_, k) => `crash/${c}/${i * 8 + k}`);
          sent += batch.length;
          await Promise.all(
            batch.map((topic) =>
              client.publishAsync(topic, 'x', { qos: 1 }).then(
                () => acked.push(topic),
                () => {},
              ),
            ),
          ).catch(() => {});
        }
      });
      await new Promise((r) => setTimeout(r, 2000));
      // The embedded database admits no second connection to hold it: there the kill comes as it falls.
      const release = roost.dbOptions.databaseUrl ? await holdMessageWrites(roost.dbOptions.databaseUrl) : async () => {};
      let inFlightAtKill: number;
      try {
        await new Promise((r) => setTimeout(r, 500));
        inFlightAtKill = sent - acked.length;
        roost.child.kill('SIGKILL');
        expect((await roost.exited).signal).toBe('SIGKILL');
      } finally {
        await release();
      }
      expect(inFlightAtKill).toBeGreaterThan(0); // sent and not acknowledged when it died
      stop = true;
      for (const client of clients) client.end(true);
      await Promise.race([Promise.all(loops), new Promise((r) => setTimeout(r, 2000))]);
      expect(acked.length).toBeGreaterThan(100);

      const db = await openDb(roost.dbOptions);
      try {
        const res = await db.query<{ topic: string }>("SELECT topic FROM messages WHERE topic LIKE 'crash/%'");
        const stored = new Set(res.rows.map((r) => r.topic));
        const missing = acked.filter((topic) => !stored.has(topic));
        console.log(`crash (${backend}): ${sent} sent, ${acked.length} acknowledged, ${inFlightAtKill} in flight at the kill, ${stored.size} found after SIGKILL`);
        expect(missing).toEqual([]);
      } finally {
        await db.close();
      }
    } finally {
      await roost.destroy();
    }
  }, 90_000);
});
