/**
 * One Roost process: database → migrations → first admin token → broker → listeners → API.
 * close() undoes it in reverse, letting in-flight work finish.
 */
import type { BrokerCore } from '../broker/core.js';
import type { FastifyInstance } from 'fastify';
import { buildApi } from '../api/app.js';
import { defaultTokenExpiry, ensureFirstAdminToken } from '../api/tokens.js';
import { createRoostBroker } from '../broker/broker.js';
import { startListeners, type ListenerName } from '../broker/listeners.js';
import { createMetrics, type Metrics } from '../broker/metrics.js';
import { createSessionStore } from '../broker/aedes/session-store.js';
import { createAuthHooks, type AuthHooks } from '../broker/auth-hooks.js';
import { createPresence, type Presence } from '../broker/presence.js';
import { joinCluster } from '../broker/cluster.js';
import { sqlSessionExpiry } from '../broker/session-expiry.js';
import { openClusterRegistry } from '../broker/cluster-registry.js';
import { startSysStats } from '../broker/sys-stats.js';
import { startRetainedMirror } from '../broker/retained-mirror.js';
import { dropExpiredPartitions, ensurePartitions } from '../broker/message-partitions.js';
import { StoreWriter } from '../broker/store-writer.js';
import { ActivityRecorder } from '../broker/activity.js';
import { TlsCredentials } from '../broker/tls.js';
import { startWebhooks } from '../broker/webhooks.js';
import { limitSettingsFrom } from '../broker/limits.js';
import { ConnectionLimiter } from '../broker/limits-connections.js';
import { startBans, type Bans } from '../broker/bans.js';
import { startFlappingDetection } from '../broker/flapping.js';
import type { Config } from '../lib/config.js';
import { openDb, type Db } from '../lib/db/index.js';
import { DataDirLockedError } from '../lib/db/data-dir-lock.js';
import { DataDirUnsafeError } from '../lib/db/data-dir.js';
import { localApiUrl, openLocalAccess } from '../api/local-access.js';
import { migrate } from '../lib/db/migrate.js';
import { createLogger, type Logger } from '../lib/log.js';

export class StartupError extends Error {
  readonly code = 'ROOST_ERR_STARTUP';
  constructor(
    readonly setting: string,
    message: string,
  ) {
    super(`${setting}: ${message}`);
  }
}

export interface Roost {
  broker: BrokerCore;
  db: Db;
  api?: FastifyInstance;
  metrics: Metrics;
  store: StoreWriter;
  auth: AuthHooks;
  presence: Presence;
  activity: ActivityRecorder;
  bans: Bans;
  log: Logger;
  ports: Partial<Record<ListenerName | 'api', number>>;
  /** The first admin token, when this start created it (printed once by the CLI). */
  firstAdminToken?: string;
  close(): Promise<void>;
}

/** A publish made by Roost itself (API, $SYS): stored first (committed when QoS > 0), then delivered. */
function publishAs(
  broker: BrokerCore,
  store: StoreWriter,
  message: { topic: string; payload: Buffer; qos: 0 | 1 | 2; retain: boolean },
  actor: string,
): Promise<void> {
  return new Promise((resolve, reject) => {
    store.storePublish(null, message, actor, (err) => {
      if (err) return reject(err);
      broker.publish(message).then(resolve, reject);
    });
  });
}

/** The API as its own process (`roost api`): same database, no broker; changes reach brokers by NOTIFY. */
export async function startApiOnly(config: Config, opts: { log?: Logger } = {}): Promise<{ api: FastifyInstance; db: Db; port: number; close(): Promise<void> }> {
  const log = opts.log ?? createLogger(config.ROOST_LOG_LEVEL, config.ROOST_LOG_FORMAT);
  // No listeners here: the certificate is the API's alone, reloaded as the listeners' would be.
  const https = config.apiTls ? startTls(config, log) : undefined;
  const db = await openConfiguredDb(config).catch((err: unknown) => {
    https?.close();
    throw err;
  });
  try {
    await migrate(db);
    const { PasswordHasher } = await import('../auth/credentials.js');
    const hasher = new PasswordHasher({ cost: config.ROOST_BCRYPT_COST, concurrency: config.ROOST_BCRYPT_CONCURRENCY, queue: config.ROOST_BCRYPT_QUEUE });
    const cluster = config.REDIS_URL ? openClusterRegistry(config.REDIS_URL, db) : undefined;
    const api = await buildApi({ db, config, hasher, log, cluster: cluster?.registry, https });
    await api.listen({ port: config.ROOST_API_PORT === 'off' ? 3000 : config.ROOST_API_PORT, host: config.ROOST_API_HOST });
    const port = (api.server.address() as { port: number }).port;
    const closeLocalAccess = db.kind === 'pglite' ? await openLocalAccess(db, config.ROOST_DATA_DIR, localApiUrl(config.ROOST_API_HOST, port, config.apiTls), https) : undefined;
    return {
      api,
      db,
      port,
      async close() {
        await api.close();
        https?.close();
        await closeLocalAccess?.();
        await cluster?.close();
        await db.close();
      },
    };
  } catch (err) {
    https?.close();
    await db.close().catch(() => {});
    throw err;
  }
}

/** TLS credentials of the listeners, reloaded on SIGHUP, on a file change and by the API. */
function startTls(config: Config, log: Logger): TlsCredentials {
  const tls = new TlsCredentials(
    {
      pairs: [{ cert: config.ROOST_TLS_CERT!, key: config.ROOST_TLS_KEY! }, ...config.ROOST_TLS_EXTRA_PAIRS],
      ca: config.ROOST_TLS_CA,
      requireClientCert: config.ROOST_TLS_REQUIRE_CLIENT_CERT,
      minVersion: config.ROOST_TLS_MIN_VERSION,
      ciphers: config.ROOST_TLS_CIPHERS,
    },
    log.child({ component: 'tls' }),
  );
  tls.watch(config.ROOST_TLS_WATCH_MS);
  tls.reloadOnSignal('SIGHUP');
  return tls;
}

export async function openConfiguredDb(config: Config): Promise<Db> {
  try {
    return await openDb({
      databaseUrl: config.DATABASE_URL,
      dataDir: config.ROOST_DATA_DIR,
      poolSize: config.ROOST_DB_POOL_SIZE,
      pgliteSharedBuffers: config.ROOST_PGLITE_SHARED_BUFFERS,
      pgliteOptimize: config.ROOST_PGLITE_OPTIMIZE,
    });
  } catch (err) {
    if (err instanceof DataDirLockedError) throw new StartupError('ROOST_DATA_DIR', `${err.message}; one process at a time opens an embedded database`);
    if (err instanceof DataDirUnsafeError) throw new StartupError('ROOST_DATA_DIR', err.message);
    const reason = (err as Error).message || String(err);
    if (config.DATABASE_URL) throw new StartupError('DATABASE_URL', `cannot connect to PostgreSQL (${reason})`);
    throw new StartupError('ROOST_DATA_DIR', `cannot open the embedded database in ${config.ROOST_DATA_DIR} (${reason})`);
  }
}

export async function startRoost(config: Config, opts: { log?: Logger } = {}): Promise<Roost> {
  const log = opts.log ?? createLogger(config.ROOST_LOG_LEVEL, config.ROOST_LOG_FORMAT);
  const db = await openConfiguredDb(config);
  const cleanups: Array<() => Promise<unknown>> = [() => db.close()];
  const unwind = async () => {
    for (const fn of cleanups.reverse()) await fn().catch(() => {});
  };
  try {
    const report = await migrate(db);
    if (report.applied.length > 0) log.info({ applied: report.applied }, 'migrations applied');
    const firstAdminToken = await ensureFirstAdminToken(db, defaultTokenExpiry(config.ROOST_API_TOKEN_TTL_DAYS));

    const metrics = createMetrics();
    const maintainPartitions = async () => {
      await ensurePartitions(db, config.ROOST_PARTITION_DAYS);
      const dropped = await dropExpiredPartitions(db, config.ROOST_RETENTION_DAYS);
      if (dropped.length > 0) log.info({ dropped }, 'retention dropped message partitions');
    };
    await maintainPartitions();
    const maintenance = setInterval(() => {
      maintainPartitions().catch((err) => log.warn({ err: (err as Error).message }, 'partition maintenance failed; will retry'));
    }, 3_600_000);
    maintenance.unref();
    cleanups.push(async () => clearInterval(maintenance));

    const activity = new ActivityRecorder(db, log.child({ component: 'activity' }));
    cleanups.push(() => activity.close());
    const store = new StoreWriter({
      db,
      include: config.ROOST_STORE_INCLUDE,
      exclude: config.ROOST_STORE_EXCLUDE,
      batchSize: config.ROOST_STORE_BATCH_SIZE,
      flushMs: config.ROOST_STORE_FLUSH_MS,
      queueMax: config.ROOST_STORE_QUEUE_MAX,
      queueMaxBytes: config.ROOST_STORE_QUEUE_MAX_BYTES,
      // PostgreSQL: ROOST_STORE_CONNECTIONS batches at once, each on its own connection, committing
      // in id order (store-writer.ts). PGlite runs one statement at a time anyway.
      maxInFlight: config.DATABASE_URL ? config.ROOST_STORE_CONNECTIONS : 1,
      metrics,
      log: log.child({ component: 'store' }),
      onStored: (topic, bytes, username, at) => activity.record(topic, bytes, username, at),
    });
    cleanups.push(() => store.drain());
    const sessions = await createSessionStore({ db, redisUrl: config.REDIS_URL, log: log.child({ component: 'sessions' }) });
    cleanups.push(() => sessions.close());
    const roostBroker = await createRoostBroker({
      id: config.ROOST_NODE_ID,
      heartbeatMs: config.ROOST_HEARTBEAT_S * 1000,
      persistence: sessions.persistence,
      mq: sessions.mq,
      store,
      metrics,
      log: log.child({ component: 'broker' }),
      limits: limitSettingsFrom(config),
    });
    const broker = roostBroker.core;
    cleanups.push(() => broker.close());
    const auth = await createAuthHooks({ db, config, log: log.child({ component: 'auth' }), recordLogin: (device) => activity.markSeen(device.username) });
    cleanups.push(() => auth.close());
    roostBroker.useAuth(auth);
    const bans = await startBans({ db, core: broker, usernameOf: roostBroker.usernameOf, metrics, log: log.child({ component: 'bans' }) });
    roostBroker.useBans(bans);
    cleanups.push(() => bans.close());
    const stopFlapping = startFlappingDetection(
      broker,
      bans,
      { maxCount: config.ROOST_FLAPPING_MAX, windowMs: config.ROOST_FLAPPING_WINDOW_S * 1000, banMs: config.ROOST_FLAPPING_BAN_S * 1000 },
      roostBroker.limits!.reporter,
      log.child({ component: 'bans' }),
      roostBroker.usernameOf,
    );
    cleanups.push(async () => stopFlapping());
    const connectionLimiter = new ConnectionLimiter(
      { maxConnections: config.ROOST_MAX_CONNECTIONS, maxConnectionsPerIp: config.ROOST_MAX_CONNECTIONS_PER_IP },
      roostBroker.limits!.reporter,
    );
    const presence = createPresence(broker, roostBroker.usernameOf);
    // Cluster mode: its hooks are in place before a client connects; announced once listeners are up.
    const clusterNode = config.REDIS_URL
      ? await joinCluster({ redisUrl: config.REDIS_URL, db, core: broker, presence, metrics, address: config.ROOST_NODE_ADDRESS, log: log.child({ component: 'cluster' }) })
      : undefined;
    if (clusterNode) cleanups.push(() => clusterNode.leave());
    // MQTT 5 session expiry in the database, swept by every node (broker/session-expiry.ts); stopped by broker.close().
    broker.keepSessionExpiry(
      sqlSessionExpiry(db),
      clusterNode && (async (ids) => {
        const live = await clusterNode.registry.clients();
        return new Set(live.map((c) => c.clientId).filter((id) => ids.includes(id)));
      }),
    );
    if (config.REDIS_URL) {
      const stopMirror = startRetainedMirror(broker, db, log.child({ component: 'retained-mirror' }));
      cleanups.push(stopMirror);
    }
    const stopSysStats = startSysStats(broker, metrics, config.ROOST_SYS_INTERVAL_S);
    cleanups.push(async () => stopSysStats());

    const tls = config.ROOST_TLS_CERT && config.ROOST_TLS_KEY ? startTls(config, log) : undefined;
    if (tls) cleanups.push(async () => tls.close());
    const webhooks = await startWebhooks({
      db,
      core: broker,
      metrics,
      log: log.child({ component: 'webhooks' }),
      usernameOf: roostBroker.usernameOf,
      maxBackoffMs: config.ROOST_WEBHOOK_MAX_BACKOFF_MS,
      concurrency: config.ROOST_WEBHOOK_CONCURRENCY,
      allowedTargets: config.ROOST_WEBHOOK_ALLOWED_TARGETS,
    });
    cleanups.push(() => webhooks.close());
    const listeners = await startListeners(
      broker,
      {
        host: config.ROOST_HOST,
        mqttPort: config.ROOST_TLS_ONLY ? 'off' : config.ROOST_MQTT_PORT,
        mqttsPort: config.ROOST_MQTTS_PORT,
        wsPort: config.ROOST_TLS_ONLY ? 'off' : config.ROOST_WS_PORT,
        wssPort: config.ROOST_WSS_PORT,
        wsPath: config.ROOST_WS_PATH,
        allowedOrigins: config.ROOST_WS_ALLOWED_ORIGINS,
        maxPacketBytes: config.ROOST_MAX_PACKET_BYTES,
        trustedProxies: config.ROOST_TRUSTED_PROXIES,
        proxyHeaderTimeoutMs: config.ROOST_CONNECT_TIMEOUT_MS,
        onFrameTooLarge: (transport) => roostBroker.limits!.reporter.hit('packet_size', { transport }, 'WebSocket frame too large, connection closed'),
        tls,
        admit: (socket) => connectionLimiter.admit(socket),
      },
      log,
    );
    const ports: Roost['ports'] = { ...listeners.ports };
    await clusterNode?.announce(listeners.ports.mqtt);

    let api: FastifyInstance | undefined;
    if (config.ROOST_API_PORT !== 'off') {
      api = await buildApi({
        db,
        config,
        hasher: auth.authenticator.hasher,
        authenticator: auth.authenticator,
        publish: (message, actor) => publishAs(broker, store, message, actor),
        broker,
        presence,
        tls,
        https: config.apiTls ? tls : undefined,
        cluster: clusterNode?.registry,
        metrics,
        log,
        ports: () => listeners.ports,
        readiness: () => ({ store: store.databaseDown ? 'unavailable' : store.depth >= config.ROOST_STORE_QUEUE_MAX ? 'saturated' : 'ok' }),
      });
      await api.listen({ port: config.ROOST_API_PORT, host: config.ROOST_API_HOST });
      ports.api = (api.server.address() as { port: number }).port;
      // The roost command on this machine sends its commands here while this process holds the folder.
      if (db.kind === 'pglite') {
        cleanups.push(await openLocalAccess(db, config.ROOST_DATA_DIR, localApiUrl(config.ROOST_API_HOST, ports.api, config.apiTls), config.apiTls ? tls : undefined));
      }
    }

    let closing: Promise<void> | undefined;
    const close = () => {
      closing ??= (async () => {
        // Stop accepting first, then close clients (Aedes flushes their sessions), then storage.
        const listenersClosed = listeners.close();
        await api?.close();
        await unwind();
        await listenersClosed;
      })();
      return closing;
    };
    return { broker, db, api, metrics, store, auth, presence, activity, bans, log, ports, firstAdminToken, close };
  } catch (err) {
    await unwind();
    throw err;
  }
}
