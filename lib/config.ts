/**
 * Every Roost setting, read and validated in one place. Sources, later wins:
 * defaults < JSON file named by ROOST_CONFIG (same keys as the variables) < environment.
 * A bad value stops start-up with one line naming the setting (ConfigError).
 */
import { accessSync, constants, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { z } from 'zod';
import { DEFAULT_PGLITE_OPTIMIZE, DEFAULT_PGLITE_SHARED_BUFFERS } from './db/index.js';

export class ConfigError extends Error {
  readonly code = 'ROOST_ERR_CONFIG';
  constructor(
    readonly setting: string,
    message: string,
  ) {
    super(`${setting}: ${message}`);
  }
}

/**
 * The highest ROOST_MAX_TOPIC_LEVELS: every topic matcher in the broker (qlobber) walks a topic one
 * level per recursive call, and 20,000 levels overflow the stack (broker/persistence/matching.ts).
 */
export const MAX_TOPIC_LEVELS_CEILING = 4096;

const port = z.coerce.number().int().min(0, 'must be a port number 0-65535').max(65535, 'must be a port number 0-65535');
/** A listener port, or "off" to not start that listener. */
const listenerPort = z.union([z.literal('off'), port]);
const bool = z.union([z.boolean(), z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((v) => ['true', '1', 'yes'].includes(v))]);
const positiveInt = z.coerce.number().int().positive('must be a positive integer');
const nonNegativeInt = z.coerce.number().int().min(0, 'must be 0 or more');
const readableFile = z.string().refine(
  (file) => {
    try {
      accessSync(file, constants.R_OK);
      return true;
    } catch {
      return false;
    }
  },
  { message: 'file is not readable' },
);
const postgresUrl = z.string().refine(
  (value) => {
    try {
      const u = new URL(value);
      return (u.protocol === 'postgres:' || u.protocol === 'postgresql:') && u.hostname.length > 0;
    } catch {
      return false;
    }
  },
  { message: 'must be a postgres:// URL, e.g. postgres://user:pass@host:5432/roost' },
);
const redisUrl = z.string().refine(
  (value) => {
    try {
      const u = new URL(value);
      return u.protocol === 'redis:' || u.protocol === 'rediss:';
    } catch {
      return false;
    }
  },
  { message: 'must be a redis:// URL' },
);
/** "cert.pem:key.pem,cert2.pem:key2.pem" → pairs of readable files. */
const certificatePairs = z.string().transform((value, ctx) => {
  const pairs: Array<{ cert: string; key: string }> = [];
  for (const item of value.split(',').map((s) => s.trim()).filter(Boolean)) {
    const [cert, key, ...rest] = item.split(':');
    if (!cert || !key || rest.length > 0) {
      ctx.addIssue({ code: 'custom', message: `"${item}" is not CERT_FILE:KEY_FILE` });
      return z.NEVER;
    }
    for (const file of [cert, key]) {
      if (!readableFile.safeParse(file).success) {
        ctx.addIssue({ code: 'custom', message: `${file}: file is not readable` });
        return z.NEVER;
      }
    }
    pairs.push({ cert, key });
  }
  return pairs;
});
/** "https://app.example.com,http://localhost:3000" → normalised origins (scheme://host[:port]). */
const originList = z.string().transform((value, ctx) => {
  const origins: string[] = [];
  for (const item of value.split(',').map((s) => s.trim()).filter(Boolean)) {
    let origin: string | undefined;
    try {
      const u = new URL(item);
      if ((u.protocol === 'http:' || u.protocol === 'https:') && u.pathname === '/' && !u.search) origin = u.origin;
    } catch {
      // reported below
    }
    if (!origin) {
      ctx.addIssue({ code: 'custom', message: `"${item}" is not an origin like https://app.example.com` });
      return z.NEVER;
    }
    origins.push(origin);
  }
  return origins;
});
/** "127.0.0.1/32,10.0.0.0/8,::1" → address or address/prefix entries, each checked. */
const addressRangeList = z.string().transform((value, ctx) => {
  const entries = value.split(',').map((s) => s.trim()).filter(Boolean);
  for (const entry of entries) {
    const [address, prefix, ...rest] = entry.split('/');
    const bits = isIP(address) === 4 ? 32 : isIP(address) === 6 ? 128 : 0;
    const prefixOk = prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= bits);
    if (bits === 0 || !prefixOk || rest.length > 0) {
      ctx.addIssue({ code: 'custom', message: `"${entry}" is not an IP address or ADDRESS/PREFIX` });
      return z.NEVER;
    }
  }
  return entries;
});
/**
 * PGlite's shared_buffers in PostgreSQL memory units ("16MB"): from 128kB, PostgreSQL's least, to
 * 1GB, as PGlite's WebAssembly memory is at most 2 GB (32,768 pages; 3GB fails to start, 1GB runs).
 */
const KB_PER_UNIT = { kB: 1, MB: 1024, GB: 1024 * 1024 } as const;
const pgliteSharedBuffers = z.string().superRefine((value, ctx) => {
  const m = /^(\d+)(kB|MB|GB)$/.exec(value);
  const kb = m ? Number(m[1]) * KB_PER_UNIT[m[2] as keyof typeof KB_PER_UNIT] : NaN;
  if (!m) ctx.addIssue({ code: 'custom', message: 'must be a whole number of kB, MB or GB, e.g. 16MB' });
  else if (kb < 128) ctx.addIssue({ code: 'custom', message: 'must be at least 128kB' });
  else if (kb > 1024 * 1024) ctx.addIssue({ code: 'custom', message: "must be at most 1GB (the embedded database's memory is at most 2 GB)" });
});
const topicFilterList = z
  .string()
  .transform((v) => v.split(',').map((s) => s.trim()).filter(Boolean));

/** name → [schema, default, meaning]; docs/configuration.md's table is generated from it (test/unit/readme.test.ts). */
export const SETTINGS = {
  ROOST_HOST: [z.string().min(1), '127.0.0.1', 'Bind address of the MQTT listeners, e.g. 0.0.0.0 for every interface. While neither this, ROOST_API_HOST nor ROOST_ALLOW_ANONYMOUS is set, Roost runs loopback-only: anonymous clients may read and write every topic but $SYS'],
  ROOST_MQTT_PORT: [listenerPort, 1883, 'MQTT over TCP port ("off" disables)'],
  ROOST_MQTTS_PORT: [listenerPort, 8883, 'MQTT over TLS port; starts when ROOST_TLS_CERT and ROOST_TLS_KEY are set'],
  ROOST_WS_PORT: [listenerPort, 8080, 'MQTT over WebSocket port'],
  ROOST_WSS_PORT: [listenerPort, 8081, 'MQTT over secure WebSocket port; starts when TLS is configured'],
  ROOST_WS_PATH: [z.string().startsWith('/'), '/mqtt', 'HTTP path of the WebSocket listeners'],
  ROOST_WS_ALLOWED_ORIGINS: [originList, '', 'Comma-separated web origins whose pages may open MQTT WebSockets (others get 403; requests without an Origin header, i.e. not from a browser, are let in); empty allows any'],
  ROOST_TRUSTED_PROXIES: [addressRangeList, '', 'Comma-separated addresses or ADDRESS/PREFIX ranges of load balancers: a connection from one must open with a PROXY protocol header (v1 or v2; refused otherwise) and counts as coming from the client it names, for bans, limits, the login throttle and logs; the API trusts their X-Forwarded-For. Empty: no proxy is trusted'],
  ROOST_BROWSER_TOKEN_TTL_S: [positiveInt, 900, 'Lifetime of a browser token (POST /api/browser-tokens) unless the request asks for less'],
  ROOST_BROWSER_TOKEN_MAX_TTL_S: [positiveInt, 86_400, 'Longest lifetime a browser token may ask for'],
  ROOST_TLS_CERT: [readableFile.optional(), undefined, 'PEM server certificate (chain) for TLS and WSS'],
  ROOST_TLS_KEY: [readableFile.optional(), undefined, 'PEM private key for TLS and WSS'],
  ROOST_TLS_CA: [readableFile.optional(), undefined, 'PEM CA that signs client certificates (enables client-certificate login)'],
  ROOST_TLS_REQUIRE_CLIENT_CERT: [bool, false, 'Refuse TLS clients without a certificate signed by ROOST_TLS_CA'],
  ROOST_TLS_CERT_USERNAME_FIELD: [z.enum(['CN', 'SAN_DNS', 'SAN_EMAIL', 'SAN_URI']), 'CN', 'Certificate field that names the device'],
  ROOST_TLS_CERT_PASSWORD_REQUIRED: [bool, true, 'Whether a device with a verified certificate must still send its password'],
  ROOST_TLS_EXTRA_PAIRS: [certificatePairs, '', 'More certificate pairs served beside ROOST_TLS_CERT/KEY (e.g. RSA beside ECDSA): comma-separated CERT_FILE:KEY_FILE'],
  ROOST_TLS_MIN_VERSION: [z.enum(['TLSv1.2', 'TLSv1.3']), 'TLSv1.2', 'Oldest TLS version accepted'],
  ROOST_TLS_CIPHERS: [z.string().min(1).optional(), undefined, "OpenSSL cipher list of the TLS listeners (default: Node's)"],
  ROOST_TLS_WATCH_MS: [nonNegativeInt, 10_000, 'How often the certificate files are checked for a change, which reloads them (0: only SIGHUP and the API)'],
  ROOST_TLS_ONLY: [bool, false, 'Only the TLS listeners (MQTTS, WSS): plain MQTT and WebSocket stay closed whatever their ports say'],
  ROOST_PUBLIC_HOST: [z.string().min(1).optional(), undefined, 'Host name devices should connect to, told to them at provisioning (default: the Host header of the request)'],
  ROOST_PUBLIC_CA_CERT: [readableFile.optional(), undefined, 'PEM CA certificate handed to provisioned devices so they can verify the server'],
  ROOST_SERVER_SECRET_FILE: [z.string().min(1).optional(), undefined, 'File of the server secret provisioning keys are derived from, created mode 0600 when missing (default: server-secret in ROOST_DATA_DIR); every node of a cluster needs the same file, and losing it invalidates the provisioning keys'],
  ROOST_PROVISIONING_LEGACY_SIGNATURES: [bool, false, 'Accept signed provisioning requests by keys made before the server secret (whose stored hash can sign): for a transition only'],
  ROOST_API_HOST: [z.string().min(1), '127.0.0.1', 'Bind address of the HTTP API, e.g. 0.0.0.0 for every interface'],
  ROOST_API_HISTORY_RATE_PER_MIN: [positiveInt, 120, 'Requests per minute one API token may make to each message-history route (/api/messages, /latest, /pull); more get 429'],
  ROOST_API_QUERY_TIMEOUT_MS: [nonNegativeInt, 10_000, 'Longest a message-history query may run (PostgreSQL statement_timeout) before the client gets 503 (0: no limit)'],
  ROOST_API_PORT: [listenerPort, 3000, 'HTTP API port ("off" runs the broker without the API)'],
  ROOST_API_TLS: [z.enum(['auto', 'on', 'off']), 'auto', 'HTTPS on the API port with the certificate of ROOST_TLS_CERT/KEY (reloaded with it): auto serves HTTPS when they are set and HTTP otherwise, on requires them, off keeps plain HTTP (e.g. behind a proxy that terminates TLS)'],
  ROOST_DATA_DIR: [z.string().min(1), './data', 'Folder of the embedded PostgreSQL (used when DATABASE_URL is not set)'],
  DATABASE_URL: [postgresUrl.optional(), undefined, 'PostgreSQL URL; when unset Roost uses the embedded database in ROOST_DATA_DIR'],
  ROOST_DB_POOL_SIZE: [positiveInt, 10, 'Connections to PostgreSQL'],
  ROOST_PGLITE_SHARED_BUFFERS: [pgliteSharedBuffers, DEFAULT_PGLITE_SHARED_BUFFERS, "The embedded database's buffer pool (PostgreSQL's shared_buffers, 128kB to 1GB): 16MB keeps its memory about 30 MB resident; 128MB, PostgreSQL's own default, lets it grow to about 188 MB for up to about 10 % more throughput (docs/storage-and-sizing.md)"],
  ROOST_PGLITE_OPTIMIZE: [bool, DEFAULT_PGLITE_OPTIMIZE, "Whether V8 recompiles the embedded database's hot WebAssembly with its optimizing compiler. false runs its baseline code only: 45–60 MB less resident memory and about 1 s less CPU at the first start, for about 45 % more of the database thread's CPU per stored row (docs/storage-and-sizing.md)"],
  REDIS_URL: [redisUrl.optional(), undefined, 'Redis URL; switches sessions to Redis and joins the cluster of nodes on it'],
  ROOST_NODE_ID: [z.string().min(1).optional(), undefined, 'Stable node id in a cluster (default: generated)'],
  ROOST_HEARTBEAT_S: [positiveInt, 60, "Seconds between this node's heartbeats on the message bus: a node silent for 3 of them is taken for dead, and every 4 of them the wills of clients of dead or killed nodes (this one's before a restart included) are checked and published"],
  ROOST_NODE_ADDRESS: [z.string().min(1).optional(), undefined, 'Address of this node shown in the cluster view, GET /api/cluster/nodes (default: host name:MQTT port)'],
  ROOST_LOG_LEVEL: [z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']), 'info', 'Log level (pino)'],
  ROOST_LOG_FORMAT: [z.enum(['json', 'pretty']).optional(), undefined, 'Log lines: json, or pretty (one readable line per event: time, level, component, message); unset: pretty on a terminal, JSON otherwise'],
  ROOST_SYS_INTERVAL_S: [nonNegativeInt, 10, 'Seconds between broker statistics on $SYS/roost/<node>/... (0 turns them off)'],
  ROOST_SHUTDOWN_TIMEOUT_MS: [positiveInt, 10_000, 'Longest a graceful shutdown may take before exiting'],
  ROOST_ADMIN_TOKEN_FILE: [z.string().min(1).optional(), undefined, 'File the first admin token is written to (mode 0600) instead of being printed'],
  ROOST_API_TOKEN_TTL_DAYS: [nonNegativeInt, 90, 'Days a new API token lives unless its creator gives expires_at (0: tokens never expire); tokens made before this setting existed keep no expiry'],
  // Auth
  ROOST_BCRYPT_COST: [z.coerce.number().int().min(4).max(15), 10, 'bcrypt cost of new password hashes'],
  ROOST_BCRYPT_CONCURRENCY: [positiveInt, 2, 'bcrypt compares running at once (off the event loop)'],
  ROOST_BCRYPT_QUEUE: [positiveInt, 1000, 'CONNECTs that may wait for a bcrypt compare; more are refused'],
  ROOST_ALLOW_ANONYMOUS: [bool, false, 'Accept clients without a username (outside the loopback-only mode, see ROOST_HOST)'],
  ROOST_ANONYMOUS_ROLE: [z.string().min(1), 'anonymous', 'Role whose rules anonymous clients get'],
  ROOST_AUTH_FAILURES_BEFORE_DELAY: [nonNegativeInt, 3, 'Failed logins (per username+IP or per IP) before answers are delayed'],
  ROOST_AUTH_FAILURES_BEFORE_BLOCK: [positiveInt, 10, 'Failed logins of one username from one IP before that pair is refused for the cooling-off period (an IP alone is only ever delayed: past 5 × ROOST_AUTH_FAILURES_BEFORE_DELAY failures its checks go one per delay, up to 2 s apart)'],
  ROOST_AUTH_COOLDOWN_MS: [positiveInt, 60_000, 'Cooling-off period after too many failed logins'],
  ROOST_AUTH_PENDING_PER_IP: [nonNegativeInt, 32, 'Logins of one IP address whose password is checked at once; the others wait their turn (up to ROOST_BCRYPT_QUEUE, then CONNACK 3), so one address cannot fill the password workers; 0: no bound'],
  // Message store
  ROOST_STORE_INCLUDE: [topicFilterList, '#', 'Comma-separated topic filters of publishes to store'],
  ROOST_STORE_EXCLUDE: [topicFilterList, '$SYS/#', 'Comma-separated topic filters of publishes not to store'],
  ROOST_STORE_BATCH_SIZE: [positiveInt, 5000, 'Most rows in one write transaction (batches only grow this large while the database is behind: then each commit catches up more)'],
  ROOST_STORE_FLUSH_MS: [nonNegativeInt, 5, 'Longest a stored QoS 0 publish waits for its batch to fill (a QoS 1/2 publish, whose PUBACK waits for the commit, is written on the next turn with whatever else is queued)'],
  ROOST_STORE_QUEUE_MAX: [positiveInt, 50_000, 'Publishes waiting to be stored before publishing sockets are paused'],
  ROOST_STORE_QUEUE_MAX_BYTES: [positiveInt, 64 * 1024 * 1024, 'Payload bytes waiting to be stored before publishing sockets are paused'],
  ROOST_STORE_CONNECTIONS: [positiveInt, 1, 'Batches written at once on PostgreSQL, each on its own connection of the pool (less than ROOST_DB_POOL_SIZE), for a server with cores to spare; they still commit one after the other in id order. PGlite writes one at a time'],
  ROOST_PARTITION_DAYS: [positiveInt, 1, 'Days per partition of the messages table'],
  ROOST_RETENTION_DAYS: [nonNegativeInt, 0, 'Drop message partitions older than this many days (0 keeps everything)'],
  // Limits and abuse handling (docs/limits-and-bans.md)
  ROOST_MAX_CONNECTIONS: [nonNegativeInt, 100_000, 'Most MQTT connections open at once on this node, all listeners together; more are closed as they arrive (0: no limit)'],
  ROOST_MAX_CONNECTIONS_PER_IP: [nonNegativeInt, 0, 'Most MQTT connections open at once from one IP address (0: no limit; behind a load balancer every client has its address)'],
  ROOST_CONNECT_TIMEOUT_MS: [positiveInt, 10_000, 'A connection that has not sent CONNECT this long after opening is closed'],
  ROOST_MAX_KEEPALIVE: [
    z.coerce.number().int().min(0).max(65_535),
    0,
    "Longest keep alive in seconds a client may ask (0: no limit), as Mosquitto's max_keepalive: an MQTT 5 client asking more, or 0, is told this one (CONNACK Server Keep Alive) and held to it; an MQTT 3.1.1/3.1 client asking more, or 0, is refused (CONNACK 2)",
  ],
  ROOST_MAX_PACKET_BYTES: [z.coerce.number().int().min(64).max(268_435_455), 1_048_576, 'Largest MQTT packet accepted; a client announcing a larger one is disconnected before it is read'],
  ROOST_MAX_PAYLOAD_BYTES: [positiveInt, 262_144, 'Largest PUBLISH payload delivered and stored; a larger one is dropped like an ACL denial (QoS 1/2 acknowledged, neither delivered nor stored)'],
  ROOST_MAX_TOPIC_LENGTH: [z.coerce.number().int().min(1).max(65_535), 1024, 'Longest topic name or filter in bytes: a longer PUBLISH topic disconnects the client, a longer filter gets SUBACK 0x80'],
  ROOST_MAX_TOPIC_LEVELS: [
    z.coerce.number().int().min(1).max(MAX_TOPIC_LEVELS_CEILING),
    200,
    `Most levels in a topic name or filter (up to ${MAX_TOPIC_LEVELS_CEILING}): a PUBLISH topic with more disconnects the client, a filter with more gets SUBACK 0x80`,
  ],
  ROOST_MAX_SUBSCRIPTIONS: [positiveInt, 1000, 'Most subscriptions one client may hold; a filter beyond it gets SUBACK 0x80'],
  ROOST_MAX_INFLIGHT: [positiveInt, 1000, 'Incoming QoS 2 publishes of one client awaiting PUBREL; one more disconnects it. For MQTT 5 clients also the Receive Maximum (capped at 65,535): QoS 1/2 publishes not yet acknowledged; one more gets DISCONNECT 0x93'],
  ROOST_MAX_SESSION_QUEUE: [positiveInt, 1000, 'QoS 1/2 messages queued for one persistent session (sent and unacknowledged, or waiting while offline); when full, new messages for that session are dropped and counted'],
  ROOST_MAX_CLIENT_BUFFER_BYTES: [positiveInt, 8_388_608, 'Bytes written to a client and not yet taken by its socket (it stopped reading), with those its MQTT 5 Receive Maximum holds back: beyond this its QoS 0 messages are dropped and a QoS 1/2 delivery disconnects it'],
  ROOST_MAX_TOPIC_ALIASES_OUT: [
    z.coerce.number().int().min(0).max(65_535),
    0,
    "Topic aliases Roost may use in the messages it sends an MQTT 5 client that allows them (up to the client's Topic Alias Maximum; QoS 2 messages keep their topic): the first topics sent get one each, and later messages on them an empty topic. 0 (the default, as Mosquitto) uses none: some clients mishandle them (docs/mqtt5.md)",
  ],
  ROOST_CLIENT_ID_TAKEOVER: [z.enum(['own', 'any']), 'own', 'Who may connect with a client id another connection or stored session holds: "own" (its username, or a superuser; others get CONNACK 2) or "any" (plain MQTT: whoever connects takes it over)'],
  ROOST_FLAPPING_MAX: [nonNegativeInt, 0, 'Disconnections of one client id under one username within ROOST_FLAPPING_WINDOW_S that ban it for ROOST_FLAPPING_BAN_S; 0 (the default, as in EMQX) turns flapping detection off, e.g. 15 turns it on'],
  ROOST_FLAPPING_WINDOW_S: [positiveInt, 60, 'Window of the flapping detection'],
  ROOST_FLAPPING_BAN_S: [positiveInt, 300, 'How long a flapping client id is banned'],
  // Webhooks
  ROOST_WEBHOOK_RETENTION_S: [positiveInt, 86_400, 'Default retention of a new webhook: undelivered events older than this are dropped and counted'],
  ROOST_WEBHOOK_MAX_BACKOFF_MS: [positiveInt, 300_000, 'Longest wait between delivery attempts to a failing webhook'],
  ROOST_WEBHOOK_ALLOWED_TARGETS: [addressRangeList, '', 'Comma-separated addresses or ADDRESS/PREFIX ranges of loopback, link-local, private or multicast targets webhooks may reach (refused otherwise, after DNS resolution)'],
  ROOST_WEBHOOK_CONCURRENCY: [positiveInt, 8, 'Webhooks one process delivers to at once (each hook has one request in flight)'],
} as const;

type Settings = typeof SETTINGS;
export type SettingName = keyof Settings;
export type Config = { [K in SettingName]: z.output<Settings[K][0]> } & {
  /**
   * No address and no anonymous policy configured: the listeners and the API bind 127.0.0.1 and
   * anonymous clients may read and write every topic but $SYS — Mosquitto 2's local-only mode,
   * so a fresh `npm start` answers `mosquitto_sub -h localhost` and nothing beyond this machine.
   */
  loopbackOnly: boolean;
  /** The API is served over HTTPS (ROOST_API_TLS, with ROOST_TLS_CERT/KEY). */
  apiTls: boolean;
};

/** The settings whose being set at all ends the loopback-only mode. */
const LEAVES_LOOPBACK_ONLY: readonly SettingName[] = ['ROOST_HOST', 'ROOST_API_HOST', 'ROOST_ALLOW_ANONYMOUS'];

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  let fileValues: Record<string, unknown> = {};
  const file = env.ROOST_CONFIG;
  if (file) {
    try {
      fileValues = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    } catch (err) {
      throw new ConfigError('ROOST_CONFIG', `cannot read ${file}: ${(err as Error).message}`);
    }
    for (const key of Object.keys(fileValues)) {
      if (!(key in SETTINGS)) throw new ConfigError('ROOST_CONFIG', `unknown setting ${key} in ${file}`);
    }
  }
  // An empty variable counts as unset.
  const given = (name: string): unknown => (env[name] !== undefined && env[name] !== '' ? env[name] : fileValues[name]);
  const config: Record<string, unknown> = { loopbackOnly: LEAVES_LOOPBACK_ONLY.every((name) => given(name) === undefined) };
  for (const [name, [schema, fallback]] of Object.entries(SETTINGS)) {
    const raw = given(name) ?? fallback;
    const parsed = (schema as z.ZodType).safeParse(raw);
    if (!parsed.success) {
      // URLs may carry passwords: never echo them.
      const shown = name.endsWith('_URL') ? '' : ` (got ${JSON.stringify(raw)})`;
      throw new ConfigError(name, `${parsed.error.issues[0]?.message ?? 'invalid value'}${shown}`);
    }
    config[name] = parsed.data;
  }
  const c = config as Config;
  if (Boolean(c.ROOST_TLS_CERT) !== Boolean(c.ROOST_TLS_KEY)) {
    throw new ConfigError(c.ROOST_TLS_CERT ? 'ROOST_TLS_KEY' : 'ROOST_TLS_CERT', 'TLS needs both ROOST_TLS_CERT and ROOST_TLS_KEY');
  }
  if (c.ROOST_TLS_ONLY && !c.ROOST_TLS_CERT) throw new ConfigError('ROOST_TLS_ONLY', 'TLS-only mode needs ROOST_TLS_CERT and ROOST_TLS_KEY');
  if (c.ROOST_API_TLS === 'on' && !c.ROOST_TLS_CERT) throw new ConfigError('ROOST_API_TLS', 'an HTTPS API needs ROOST_TLS_CERT and ROOST_TLS_KEY');
  c.apiTls = c.ROOST_API_TLS !== 'off' && Boolean(c.ROOST_TLS_CERT);
  if (c.ROOST_TLS_EXTRA_PAIRS.length > 0 && !c.ROOST_TLS_CERT) throw new ConfigError('ROOST_TLS_EXTRA_PAIRS', 'extra pairs need ROOST_TLS_CERT and ROOST_TLS_KEY');
  // The message store must leave connections for sessions, counters and the API.
  if (c.DATABASE_URL && c.ROOST_STORE_CONNECTIONS >= c.ROOST_DB_POOL_SIZE) {
    throw new ConfigError('ROOST_STORE_CONNECTIONS', `must be less than ROOST_DB_POOL_SIZE (${c.ROOST_DB_POOL_SIZE}), got ${c.ROOST_STORE_CONNECTIONS}`);
  }
  return c;
}
