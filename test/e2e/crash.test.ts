/**
 * kill -9 of a broker under QoS 1 load: every message whose PUBACK a client received is in the
 * messages table after the process is gone (the ack was sent after the commit).
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { openDb } from '../../lib/db/index.js';
import { BACKENDS, createPostgresDatabase } from '../helpers/db.js';
import { freePort } from '../helpers/services.js';

const CLI = path.resolve('dist/lib/cli.js');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'roost-crash-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe.each(BACKENDS)('SIGKILL under QoS 1 load (%s)', (backend) => {
  it('keeps every acknowledged message', async () => {
    const created = backend === 'postgres' ? await createPostgresDatabase() : undefined;
    const dataDir = path.join(tmp, backend);
    const [mqttPort, apiPort] = [await freePort(), await freePort()];
    const dbEnv = created ? { DATABASE_URL: created.url } : { ROOST_DATA_DIR: dataDir };
    const added = spawnSync('node', [CLI, 'device', 'add', 'crash-logger', '--password', 'crash-password', '--superuser'], {
      env: { PATH: process.env.PATH, ROOST_BCRYPT_COST: '4', ...dbEnv },
      encoding: 'utf8',
    });
    expect(added.status, added.stderr).toBe(0);
    const child = spawn('node', [CLI, 'start'], {
      env: {
        PATH: process.env.PATH,
        ROOST_LOG_LEVEL: 'warn',
        ROOST_HOST: '127.0.0.1',
        ROOST_API_HOST: '127.0.0.1',
        ROOST_MQTT_PORT: String(mqttPort),
        ROOST_API_PORT: String(apiPort),
        ROOST_WS_PORT: 'off',
        ...dbEnv,
      },
      stdio: 'ignore',
    });
    const exited = new Promise<string | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
    try {
      const started = Date.now();
      while (Date.now() - started < 20_000 && !(await fetch(`http://127.0.0.1:${apiPort}/ready`).then((r) => r.ok, () => false))) {
        await new Promise((r) => setTimeout(r, 200));
      }

      const acked: string[] = [];
      let sent = 0;
      const clients = await Promise.all(
        [0, 1, 2, 3, 4].map(
          (c) =>
            new Promise<mqtt.MqttClient>((resolve, reject) => {
              const client = mqtt.connect(`mqtt://127.0.0.1:${mqttPort}`, { clientId: `crash-${c}`, protocolVersion: 4, reconnectPeriod: 0, username: 'crash-logger', password: 'crash-password' });
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
      child.kill('SIGKILL');
      expect(await exited).toBe('SIGKILL');
      stop = true;
      for (const client of clients) client.end(true);
      await Promise.race([Promise.all(loops), new Promise((r) => setTimeout(r, 2000))]);
      expect(acked.length).toBeGreaterThan(100);

      const db = await openDb({ databaseUrl: created?.url, dataDir });
      try {
        const res = await db.query<{ topic: string }>("SELECT topic FROM messages WHERE topic LIKE 'crash/%'");
        const stored = new Set(res.rows.map((r) => r.topic));
        const missing = acked.filter((topic) => !stored.has(topic));
        console.log(`crash (${backend}): ${sent} sent, ${acked.length} acknowledged, ${stored.size} found after SIGKILL`);
        expect(missing).toEqual([]);
      } finally {
        await db.close();
      }
    } finally {
      child.kill('SIGKILL');
      await created?.drop();
    }
  }, 90_000);
});
