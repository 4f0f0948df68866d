/**
 * The load generator: one process, raw TCP sockets, every packet encoded once and then the same
 * Buffers written again and again. It prints JSON lines on stdout: {"event":"window-start"} and
 * {"event":"window-end"} around the measured window (so the caller can sample the broker's CPU),
 * then {"event":"result", ...}.
 *
 *   node dist/bench/loadgen.js --scenario qos0|qos1|qos1-rate|connect --port 1883 [options]
 *
 * Scenarios:
 *   qos0       N publishers → 1 subscriber on PREFIX/#, QoS 0; delivered msg/s at the subscriber.
 *              At most --window messages are in flight between publishers and subscriber, so a
 *              broker is measured at the rate it sustains, not at how much it can buffer.
 *              --subscribers M: M subscribers (fan-out), deliveries counted over all of them.
 *              --pub-ports/--sub-ports P1,P2: publishers/subscribers spread over several brokers (a cluster).
 *   qos1       N publishers, --inflight QoS 1 publishes each, a new one per PUBACK; acked msg/s and
 *              PUBACK latency. A QoS 0 subscriber on PREFIX/# counts deliveries.
 *   qos1-rate  as qos1 at a fixed offered --rate (msg/s in total). Latency counts from the time a
 *              message was due, so waiting for a free in-flight slot is included (no coordinated omission).
 *   qos0-v5, qos1-v5  qos0 and qos1 with MQTT 5 clients (the same packets, with empty properties).
 *   connect    --clients connections with username/password (--credentials FILE of user:password lines),
 *              --concurrency at a time, all held open, then closed; repeated --passes times, each at
 *              most --connect-max seconds.
 */
import net from 'node:net';
import { parseArgs } from 'node:util';
import { readCredentials, type Credential } from './credentials.js';
import { PacketFramer, PacketType, disconnectPacket, encodeConnect, encodePublish, encodeSubscribe, jsonPayload, protocolLevel, subackCode, useProtocolLevel } from './mqtt-wire.js';

export type ScenarioName = 'qos0' | 'qos1' | 'qos1-rate' | 'connect' | 'qos0-v5' | 'qos1-v5';

interface Options {
  host: string;
  port: number;
  durationSec: number;
  warmupSec: number;
  publishers: number;
  payloadBytes: number;
  inflight: number;
  rate: number;
  window: number;
  maxMessages: number;
  clients: number;
  concurrency: number;
  passes: number;
  /** Longest one connect pass may take. */
  connectMaxSec: number;
  prefix: string;
  credentials: Credential[];
  /** Ports the publishers connect to, in turn (cluster bench: several nodes); default [port]. */
  pubPorts: number[];
  /** Ports the subscribers connect to, in turn; default [port]. */
  subPorts: number[];
  /** qos0: subscribers on PREFIX/# (fan-out); each message counts once per subscriber. Default 1. */
  subscribers: number;
}

export interface LatencySummary {
  count: number;
  p50: number;
  p99: number;
  max: number;
}

export interface ConnectPass {
  connected: number;
  refused: number;
  failed: number;
  seconds: number;
  perSec: number;
  latencyMs: LatencySummary;
}

export interface LoadResult {
  event: 'result';
  scenario: ScenarioName;
  /** Length of the measured window, seconds. */
  windowSec: number;
  /** Wall clock (ms since epoch) when the first publish was written and when the last was. */
  loadStartedAt: number;
  loadEndedAt: number;
  /** Messages written by publishers in the window / in the whole run. */
  sentPerSec: number;
  sentTotal: number;
  /** Messages received by the subscriber in the window / in the whole run (after draining). */
  deliveredPerSec: number;
  deliveredTotal: number;
  /** QoS 1: PUBACKs in the window / in the whole run. */
  ackedPerSec?: number;
  ackedTotal?: number;
  /** QoS 1: PUBACK latency in ms (qos1-rate: from the time the message was due). */
  latencyMs?: LatencySummary;
  /** QoS 1: the same over the warm-up, from the first publish (the broker's cold start). */
  warmupLatencyMs?: LatencySummary;
  targetRate?: number;
  passes?: ConnectPass[];
  /** CPU the generator used in the window, as a share of one core (1 = a full core). */
  generatorCpu: number;
  notes: string[];
}

const emit = (obj: object) => process.stdout.write(JSON.stringify(obj) + '\n');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const now = () => performance.now();

export function summarise(values: number[]): LatencySummary {
  if (values.length === 0) return { count: 0, p50: NaN, p99: NaN, max: NaN };
  const sorted = Float64Array.from(values).sort();
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return { count: sorted.length, p50: at(0.5), p99: at(0.99), max: sorted[sorted.length - 1] };
}

/** An MQTT connection on a raw socket; packets after CONNACK go to `onPacket`. */
class Connection {
  onPacket: (type: number, body: Buffer | null) => void = () => {};
  // An MQTT 5 CONNACK carries properties: its body is kept up to 64 bytes (a PUBLISH is still skipped).
  readonly framer = new PacketFramer((type, body) => this.onPacket(type, body), protocolLevel() === 5 ? 64 : 8);
  closed = false;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk) => this.framer.push(chunk));
    socket.on('close', () => (this.closed = true));
    socket.on('error', () => {});
  }

  /** Resolves with the CONNACK return code (0 = accepted) and the connection. */
  static open(host: string, port: number, connect: Buffer, timeoutMs = 15_000): Promise<{ code: number; conn: Connection }> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port, noDelay: true });
      const conn = new Connection(socket);
      const timer = setTimeout(() => fail(new Error('CONNACK timeout')), timeoutMs);
      const fail = (err: Error) => {
        clearTimeout(timer);
        socket.destroy();
        reject(err);
      };
      socket.once('error', fail);
      socket.once('close', () => fail(new Error('closed before CONNACK')));
      socket.once('connect', () => socket.write(connect));
      conn.onPacket = (type, body) => {
        if (type !== PacketType.CONNACK || !body) return fail(new Error(`expected CONNACK, got packet type ${type}`));
        clearTimeout(timer);
        socket.removeListener('error', fail);
        socket.removeAllListeners('close');
        socket.on('close', () => (conn.closed = true));
        conn.onPacket = () => {};
        resolve({ code: body[1], conn });
      };
    });
  }

  end(): void {
    if (this.closed) return;
    this.socket.end(disconnectPacket());
  }
}

async function openAccepted(o: Options, clientId: string, index: number, port = o.port): Promise<Connection> {
  const cred = o.credentials.length ? o.credentials[index % o.credentials.length] : undefined;
  const { code, conn } = await Connection.open(o.host, port, encodeConnect(clientId, cred?.username, cred?.password));
  if (code !== 0) {
    conn.socket.destroy();
    throw new Error(`${clientId} refused with CONNACK code ${code}${cred ? ` (user ${cred.username})` : ''}`);
  }
  return conn;
}

/** A subscriber on PREFIX/# that counts the PUBLISH packets it receives. */
async function openCountingSubscriber(o: Options, onDelivered: () => void, k = 0): Promise<{ conn: Connection; count: () => number }> {
  const conn = await openAccepted(o, `bench-sub-${process.pid}${k ? `-${k}` : ''}`, k, o.subPorts[k % o.subPorts.length]);
  let count = 0;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('SUBACK timeout')), 10_000);
    conn.onPacket = (type, body) => {
      if (type !== PacketType.SUBACK) return;
      clearTimeout(timer);
      if (body && subackCode(body) === 0x80) return reject(new Error(`subscription to ${o.prefix}/# refused`));
      conn.onPacket = (t) => {
        if (t === PacketType.PUBLISH) {
          count++;
          onDelivered();
        }
      };
      resolve();
    };
    conn.socket.write(encodeSubscribe(`${o.prefix}/#`, 0));
  });
  return { conn, count: () => count };
}

function openPublishers(o: Options): Promise<Connection[]> {
  return Promise.all(Array.from({ length: o.publishers }, (_, i) => openAccepted(o, `bench-pub-${process.pid}-${i}`, i + 1, o.pubPorts[i % o.pubPorts.length])));
}

/** `o.subscribers` counting subscribers; count() is every delivery, perSubscriber() their average. */
async function openCountingSubscribers(o: Options, onDelivered: () => void): Promise<{ conns: Connection[]; count: () => number; perSubscriber: () => number }> {
  const subs = await Promise.all(Array.from({ length: o.subscribers }, (_, k) => openCountingSubscriber(o, onDelivered, k)));
  const count = () => subs.reduce((n, s) => n + s.count(), 0);
  return { conns: subs.map((s) => s.conn), count, perSubscriber: () => count() / subs.length };
}

/** Measures a window after a warm-up; resolves when the window is over. */
class Window {
  startedAt = 0;
  endedAt = 0;
  private cpu0: NodeJS.CpuUsage | undefined;
  cpuShare = 0;
  open = false;

  async run(o: Options, atStart: () => void, atEnd: () => void): Promise<void> {
    await sleep(o.warmupSec * 1000);
    atStart();
    this.cpu0 = process.cpuUsage();
    this.startedAt = now();
    this.open = true;
    emit({ event: 'window-start' });
    await sleep(o.durationSec * 1000);
    this.open = false;
    this.endedAt = now();
    const cpu = process.cpuUsage(this.cpu0);
    this.cpuShare = (cpu.user + cpu.system) / 1000 / (this.endedAt - this.startedAt);
    emit({ event: 'window-end' });
    atEnd();
  }

  get seconds(): number {
    return (this.endedAt - this.startedAt) / 1000;
  }
}

/** Waits until `done()` or until `progress()` has not moved for `idleMs`. */
async function drain(done: () => boolean, progress: () => number, idleMs = 2000): Promise<void> {
  let last = progress();
  let lastMoved = now();
  while (!done()) {
    await sleep(20);
    const p = progress();
    if (p !== last) {
      last = p;
      lastMoved = now();
    } else if (now() - lastMoved > idleMs) return;
  }
}

async function runQos0(o: Options): Promise<LoadResult> {
  const payload = jsonPayload(o.payloadBytes);
  const notes: string[] = [];
  let sent = 0;
  let writtenOff = 0; // messages the broker dropped, so they no longer hold the window
  let running = true;
  let pumpScheduled = false;
  const schedulePump = () => {
    if (pumpScheduled || !running) return;
    pumpScheduled = true;
    setImmediate(pump);
  };
  const sub = await openCountingSubscribers(o, () => {
    if (sent - sub.perSubscriber() - writtenOff < o.window / 2) schedulePump();
  });
  const pubs = await openPublishers(o);
  const perWrite = 32;
  const chunks = pubs.map((_, i) => Buffer.concat(Array(perWrite).fill(encodePublish(`${o.prefix}/${i}/reading`, payload, 0))));
  const blocked = pubs.map(() => false);
  pubs.forEach((p, i) => p.socket.on('drain', () => ((blocked[i] = false), schedulePump())));

  function pump() {
    pumpScheduled = false;
    let progress = true;
    while (running && progress) {
      progress = false;
      for (let i = 0; i < pubs.length; i++) {
        if (blocked[i] || sent - sub.perSubscriber() - writtenOff >= o.window || sent >= o.maxMessages) continue;
        blocked[i] = !pubs[i].socket.write(chunks[i]);
        sent += perWrite;
        progress = true;
      }
    }
  }
  // A broker may drop QoS 0 messages; count them as lost so they stop holding the window.
  let lastDelivered = 0;
  const stallCheck = setInterval(() => {
    const d = sub.perSubscriber();
    if (d === lastDelivered && sent - d - writtenOff >= o.window) {
      writtenOff = sent - d;
      schedulePump();
    }
    lastDelivered = d;
  }, 250);

  // BENCH_TRACE=1: sent and delivered per second on stderr, to see a run's shape (steady or not).
  let traced = { sent: 0, delivered: 0 };
  const trace = process.env.BENCH_TRACE
    ? setInterval(() => {
        process.stderr.write(`qos0 trace: sent ${sent - traced.sent}/s delivered ${sub.count() - traced.delivered}/s\n`);
        traced = { sent, delivered: sub.count() };
      }, 1000)
    : undefined;
  const loadStartedAt = Date.now();
  let s0 = 0, d0 = 0, s1 = 0, d1 = 0;
  schedulePump();
  const win = new Window();
  await win.run(
    o,
    () => ((s0 = sent), (d0 = sub.count())),
    () => ((s1 = sent), (d1 = sub.count())),
  );
  running = false;
  const loadEndedAt = Date.now();
  clearInterval(stallCheck);
  clearInterval(trace);
  const expected = sent * o.subscribers;
  await drain(() => sub.count() >= expected, sub.count);
  if (sent >= o.maxMessages) notes.push(`stopped at --max-messages ${o.maxMessages}`);
  if (sub.count() < expected) notes.push(`${expected - sub.count()} of ${expected} QoS 0 deliveries never reached the subscriber${o.subscribers > 1 ? 's' : ''}`);
  for (const c of [...pubs, ...sub.conns]) c.end();
  return {
    event: 'result',
    scenario: 'qos0',
    windowSec: win.seconds,
    loadStartedAt,
    loadEndedAt,
    sentPerSec: (s1 - s0) / win.seconds,
    sentTotal: sent,
    deliveredPerSec: (d1 - d0) / win.seconds,
    deliveredTotal: sub.count(),
    generatorCpu: win.cpuShare,
    notes,
  };
}

/** QoS 1 publishers; with a rate, messages are due on a schedule, else one is sent per PUBACK. */
async function runQos1(o: Options, rate: number | undefined): Promise<LoadResult> {
  const payload = jsonPayload(o.payloadBytes);
  const notes: string[] = [];
  const sub = await openCountingSubscriber(o, () => {});
  const pubs = await openPublishers(o);
  const ids = Math.max(64, o.inflight * 4); // packet ids cycle; each is free long before it comes round
  const latencies: number[] = [];
  const warmupLatencies: number[] = [];
  const win = new Window();
  let sent = 0;
  let acked = 0;
  let windowAcked = 0;
  let running = true;
  let unexpectedAcks = 0;
  // BENCH_TRACE=1: PUBACK latency second by second on stderr, warm-up included.
  const traceLatencies: number[] | undefined = process.env.BENCH_TRACE ? [] : undefined;

  const publishers = pubs.map((conn, p) => {
    const packets = Array.from({ length: ids }, (_, k) => encodePublish(`${o.prefix}/${p}/reading`, payload, 1, k + 1));
    const sentAt = new Float64Array(ids + 1); // 0 = free
    const dueTimes: number[] = []; // messages due (rate mode) not yet sent, as due times
    let next = 1;
    let inflight = 0;
    let issued = 0;
    const send = (since: number) => {
      while (sentAt[next] !== 0) next = (next % ids) + 1; // skip an id still unacknowledged
      sentAt[next] = since;
      conn.socket.write(packets[next - 1]);
      next = (next % ids) + 1;
      inflight++;
      sent++;
    };
    const fill = () => {
      if (!running) return;
      if (rate === undefined) {
        while (inflight < o.inflight) send(now());
      } else {
        while (inflight < o.inflight && dueTimes.length > 0) send(dueTimes.shift()!);
      }
    };
    conn.onPacket = (type, body) => {
      if (type !== PacketType.PUBACK || !body) return;
      const id = body.readUInt16BE(0);
      const since = sentAt[id];
      if (since === 0) return void unexpectedAcks++;
      sentAt[id] = 0;
      inflight--;
      acked++;
      if (win.open) {
        windowAcked++;
        latencies.push(now() - since);
      } else if (win.startedAt === 0) warmupLatencies.push(now() - since);
      if (traceLatencies) traceLatencies.push(now() - since);
    };
    // Send the replacements of a whole read's PUBACKs in one write.
    conn.socket.prependListener('data', () => conn.socket.cork());
    conn.socket.on('data', () => {
      fill();
      process.nextTick(() => conn.socket.uncork());
    });
    return {
      fill,
      inflight: () => inflight,
      /** Rate mode: queue the messages that have become due since `start`. */
      schedule(start: number, perSec: number) {
        const due = Math.floor(((now() - start) / 1000) * perSec);
        for (; issued < due && sent + dueTimes.length < o.maxMessages; issued++) dueTimes.push(start + (issued * 1000) / perSec);
      },
    };
  });

  const loadStartedAt = Date.now();
  const start = now();
  const trace = traceLatencies
    ? setInterval(() => {
        const l = summarise(traceLatencies.splice(0));
        process.stderr.write(`qos1 trace: acked ${l.count}/s p50 ${l.p50.toFixed(1)} ms p99 ${l.p99.toFixed(1)} ms max ${l.max.toFixed(1)} ms\n`);
      }, 1000)
    : undefined;
  let ticker: NodeJS.Timeout | undefined;
  if (rate === undefined) publishers.forEach((p) => p.fill());
  else {
    const perPublisher = rate / pubs.length;
    ticker = setInterval(() => {
      for (const p of publishers) {
        p.schedule(start, perPublisher);
        p.fill();
      }
    }, 1);
  }
  let d0 = 0, d1 = 0, s0 = 0, s1 = 0;
  await win.run(
    o,
    () => ((d0 = sub.count()), (s0 = sent)),
    () => ((d1 = sub.count()), (s1 = sent)),
  );
  running = false;
  clearInterval(ticker);
  clearInterval(trace);
  const loadEndedAt = Date.now();
  await drain(() => publishers.every((p) => p.inflight() === 0), () => acked, 5000);
  await drain(() => sub.count() >= acked, sub.count);
  const unacked = publishers.reduce((n, p) => n + p.inflight(), 0);
  if (unacked) notes.push(`${unacked} publishes never acknowledged`);
  if (unexpectedAcks) notes.push(`${unexpectedAcks} PUBACKs for unknown packet ids`);
  if (sent >= o.maxMessages) notes.push(`stopped at --max-messages ${o.maxMessages}`);
  const windowRate = windowAcked / win.seconds;
  if (rate !== undefined && windowRate < rate * 0.97) notes.push(`offered ${rate} msg/s but only ${Math.round(windowRate)} were acknowledged per second`);
  for (const c of [...pubs, sub.conn]) c.end();
  return {
    event: 'result',
    scenario: rate === undefined ? 'qos1' : 'qos1-rate',
    windowSec: win.seconds,
    loadStartedAt,
    loadEndedAt,
    sentPerSec: (s1 - s0) / win.seconds,
    sentTotal: sent,
    deliveredPerSec: (d1 - d0) / win.seconds,
    deliveredTotal: sub.count(),
    ackedPerSec: windowRate,
    ackedTotal: acked,
    latencyMs: summarise(latencies),
    warmupLatencyMs: summarise(warmupLatencies),
    targetRate: rate,
    generatorCpu: win.cpuShare,
    notes,
  };
}

async function runConnect(o: Options): Promise<LoadResult> {
  const notes: string[] = [];
  if (o.credentials.length === 0) notes.push('no --credentials: clients connected without username/password');
  const packets = Array.from({ length: o.clients }, (_, i) => {
    const cred = o.credentials.length ? o.credentials[i % o.credentials.length] : undefined;
    return encodeConnect(`bench-conn-${i}`, cred?.username, cred?.password);
  });
  const passes: ConnectPass[] = [];
  const refusedCodes = new Map<number, number>();
  const cpu0 = process.cpuUsage();
  const t0 = now();
  const loadStartedAt = Date.now();
  for (let pass = 0; pass < o.passes; pass++) {
    const open: Connection[] = [];
    const latencies: number[] = [];
    let refused = 0;
    let failed = 0;
    let nextClient = 0;
    const started = now();
    if (pass === 0) emit({ event: 'window-start' });
    const deadline = started + o.connectMaxSec * 1000;
    const worker = async () => {
      while (nextClient < o.clients && now() < deadline) {
        const i = nextClient++;
        const t = now();
        try {
          const { code, conn } = await Connection.open(o.host, o.port, packets[i], 30_000);
          if (code === 0) {
            latencies.push(now() - t);
            open.push(conn);
          } else {
            refused++;
            refusedCodes.set(code, (refusedCodes.get(code) ?? 0) + 1);
            conn.socket.destroy();
          }
        } catch {
          failed++;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(o.concurrency, o.clients) }, worker));
    const seconds = (now() - started) / 1000;
    if (nextClient < o.clients) notes.push(`pass ${pass + 1}: stopped after ${o.connectMaxSec} s with ${nextClient} of ${o.clients} clients tried`);
    passes.push({ connected: latencies.length, refused, failed, seconds, perSec: latencies.length / seconds, latencyMs: summarise(latencies) });
    for (const c of open) c.end();
    await drain(() => open.every((c) => c.closed), () => open.filter((c) => c.closed).length, 3000);
    for (const c of open) c.socket.destroy();
    await sleep(200);
  }
  emit({ event: 'window-end' });
  const elapsed = now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const refusedAll = passes.reduce((n, p) => n + p.refused, 0);
  if (refusedAll) {
    const codes = [...refusedCodes].map(([code, n]) => `${n} with code ${code}`).join(', ');
    notes.push(`${refusedAll} CONNECTs refused (${codes}; 3 = server unavailable, 4 = bad username or password, 5 = not authorized)`);
  }
  return {
    event: 'result',
    scenario: 'connect',
    windowSec: elapsed / 1000,
    loadStartedAt,
    loadEndedAt: Date.now(),
    sentPerSec: 0,
    sentTotal: 0,
    deliveredPerSec: 0,
    deliveredTotal: 0,
    passes,
    generatorCpu: (cpu.user + cpu.system) / 1000 / elapsed,
    notes,
  };
}

function parseOptions(argv: string[]): { scenario: ScenarioName; options: Options } {
  const { values } = parseArgs({
    args: argv,
    options: {
      scenario: { type: 'string' },
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '1883' },
      duration: { type: 'string', default: '10' },
      warmup: { type: 'string', default: '1' },
      publishers: { type: 'string', default: '8' },
      payload: { type: 'string', default: '64' },
      inflight: { type: 'string', default: '16' },
      rate: { type: 'string', default: '10000' },
      window: { type: 'string', default: '20000' },
      'max-messages': { type: 'string', default: '20000000' },
      clients: { type: 'string', default: '2000' },
      concurrency: { type: 'string', default: '100' },
      passes: { type: 'string', default: '2' },
      'connect-max': { type: 'string', default: '300' },
      prefix: { type: 'string' },
      credentials: { type: 'string', default: process.env.BENCH_CREDENTIALS },
      'pub-ports': { type: 'string' },
      'sub-ports': { type: 'string' },
      subscribers: { type: 'string', default: '1' },
    },
  });
  const scenario = values.scenario as ScenarioName;
  if (!['qos0', 'qos1', 'qos1-rate', 'connect', 'qos0-v5', 'qos1-v5'].includes(scenario)) throw new Error('--scenario must be qos0, qos1, qos1-rate, connect, qos0-v5 or qos1-v5');
  const num = (name: keyof typeof values) => {
    const n = Number(values[name]);
    if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a number`);
    return n;
  };
  return {
    scenario,
    options: {
      host: values.host!,
      port: num('port'),
      durationSec: num('duration'),
      warmupSec: num('warmup'),
      publishers: num('publishers'),
      payloadBytes: num('payload'),
      inflight: num('inflight'),
      rate: num('rate'),
      window: num('window') || Infinity,
      maxMessages: num('max-messages'),
      clients: num('clients'),
      concurrency: num('concurrency'),
      passes: num('passes'),
      connectMaxSec: num('connect-max'),
      prefix: values.prefix ?? `bench/${scenario}`,
      credentials: values.credentials ? readCredentials(values.credentials) : [],
      pubPorts: values['pub-ports'] ? values['pub-ports'].split(',').map(Number) : [num('port')],
      subPorts: values['sub-ports'] ? values['sub-ports'].split(',').map(Number) : [num('port')],
      subscribers: Math.max(1, num('subscribers')),
    },
  };
}

async function main(): Promise<void> {
  const { scenario, options } = parseOptions(process.argv.slice(2));
  // qos0-v5 and qos1-v5: the same load with MQTT 5 clients (packets without properties).
  if (scenario.endsWith('-v5')) useProtocolLevel(5);
  const result =
    scenario === 'qos0' || scenario === 'qos0-v5' ? await runQos0(options)
    : scenario === 'qos1' || scenario === 'qos1-v5' ? await runQos1(options, undefined)
    : scenario === 'qos1-rate' ? await runQos1(options, options.rate)
    : await runConnect(options);
  emit({ ...result, scenario });
  // Sockets may still be closing; the result is out, so leave now.
  setTimeout(() => process.exit(0), 100).unref();
}

main().catch((err: unknown) => {
  process.stderr.write(`loadgen: ${(err as Error).message ?? String(err)}\n`);
  process.exit(1);
});
