/**
 * Fuzzing a real Roost process over real sockets: 100,000+ random and mutated MQTT packets over
 * thousands of connections (from many loopback addresses, before and after CONNECT). Throughout,
 * the process never exits, its RSS stays under RSS_BOUND, and a well-behaved client connected the
 * whole time publishes and receives every one of its QoS 1 messages, in order.
 */
import net from 'node:net';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PacketFuzzer, rng } from './packets.js';
import { PROCESS_ADMIN, startRoostProcess, type RoostProcess } from '../helpers/roost-process.js';

const PACKETS = 100_000;
const WORKERS = 24;
/** The broker's resident memory may not exceed this at any sample (it starts near 120 MB and peaked near 170 MB). */
const RSS_BOUND = 300 * 1024 * 1024;

describe('fuzzing', () => {
  let roost: RoostProcess;
  beforeAll(async () => {
    roost = await startRoostProcess();
  }, 60_000);
  afterAll(async () => roost?.destroy());

  it(`survives ${PACKETS.toLocaleString('en-US')} random and mutated packets while a good client loses nothing`, async () => {
    const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 1e9);
    console.log(`fuzz seed ${seed} (FUZZ_SEED=${seed} repeats this run)`);
    const fuzz = new PacketFuzzer(rng(seed), PROCESS_ADMIN);
    const rssStart = roost.rss();
    let rssPeak = rssStart;
    const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, roost.rss())), 200);
    let exitedEarly = false;
    void roost.exited.then(() => (exitedEarly = true));

    // The well-behaved client: QoS 1 to itself, one message every 10 ms, for the whole run.
    const good = mqtt.connect(`mqtt://127.0.0.1:${roost.mqttPort}`, { clientId: 'well-behaved', protocolVersion: 4, reconnectPeriod: 0, ...PROCESS_ADMIN });
    await new Promise<void>((resolve, reject) => good.once('connect', () => resolve()).once('error', reject));
    let goodClosed = 0;
    good.on('close', () => goodClosed++);
    await good.subscribeAsync('good/#', { qos: 1 });
    const received: number[] = [];
    good.on('message', (_topic, payload) => {
      const m = /^good-(\d+)$/.exec(payload.toString());
      if (m) received.push(Number(m[1]));
    });
    let published = 0;
    let fuzzing = true;
    const goodLoop = (async () => {
      while (fuzzing) {
        await good.publishAsync(`good/${published % 10}`, `good-${published}`, { qos: 1 });
        published++;
        await new Promise((r) => setTimeout(r, 10));
      }
    })();

    let sent = 0;
    let connections = 0;
    const worker = async () => {
      while (sent < PACKETS) {
        connections++;
        const socket = net.connect({ port: roost.mqttPort, host: '127.0.0.1', localAddress: `127.0.0.${10 + fuzz.int(240)}` });
        socket.on('error', () => {});
        socket.on('data', () => {});
        let closed = false;
        const closedP = new Promise<void>((resolve) => socket.once('close', () => ((closed = true), resolve())));
        const opened = await Promise.race([new Promise<boolean>((resolve) => socket.once('connect', () => resolve(true))), closedP.then(() => false)]);
        if (!opened) continue;
        if (fuzz.int(100) < 85) {
          // Most connections CONNECT first (mostly validly) so their packets reach the connected state.
          socket.write(fuzz.connect(fuzz.int(100) < 85));
          sent++;
          await Promise.race([new Promise((r) => socket.once('data', r)), closedP, new Promise((r) => setTimeout(r, 200))]);
        }
        const n = 10 + fuzz.int(70);
        for (let i = 0; i < n && !closed; i++) {
          socket.write(fuzz.int(100) < 35 ? fuzz.valid() : fuzz.mutated());
          sent++;
          if (i % 10 === 9) await new Promise((r) => setImmediate(r));
        }
        await Promise.race([closedP, new Promise((r) => setTimeout(r, 5 + fuzz.int(30)))]);
        socket.destroy();
      }
    };
    const started = Date.now();
    await Promise.all(Array.from({ length: WORKERS }, worker));
    const fuzzMs = Date.now() - started;

    fuzzing = false;
    await goodLoop;
    // Every acknowledged message of the good client comes back to it, once and in order.
    const deadline = Date.now() + 10_000;
    while (received.length < published && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    clearInterval(sampler);
    rssPeak = Math.max(rssPeak, roost.rss());

    expect(exitedEarly, roost.output().slice(-3000)).toBe(false);
    expect(roost.child.exitCode).toBeNull();
    expect(sent).toBeGreaterThanOrEqual(PACKETS);
    expect(goodClosed).toBe(0);
    expect(published).toBeGreaterThan(50);
    expect(received).toEqual(Array.from({ length: published }, (_, i) => i));
    expect(rssPeak).toBeLessThan(RSS_BOUND);
    expect((await fetch(`http://127.0.0.1:${roost.apiPort}/health`)).status).toBe(200);
    // A fresh client still connects.
    const after = await mqtt.connectAsync(`mqtt://127.0.0.1:${roost.mqttPort}`, { clientId: 'after-fuzz', protocolVersion: 4, reconnectPeriod: 0, ...PROCESS_ADMIN });
    await after.endAsync();
    await good.endAsync();
    const mb = (n: number) => `${Math.round(n / 1024 / 1024)} MB`;
    console.log(
      `fuzz: ${sent.toLocaleString('en-US')} packets over ${connections.toLocaleString('en-US')} connections in ${fuzzMs} ms; ` +
        `RSS ${mb(rssStart)} at start, ${mb(rssPeak)} at peak (bound ${mb(RSS_BOUND)}); good client ${published} published, ${received.length} received`,
    );
  }, 150_000);
});
