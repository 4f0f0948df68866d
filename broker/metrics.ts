import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Broker metrics, one registry per Roost process (the API serves it at /metrics). */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'roost_process_' });
  /** Values read when metrics are scraped; the owning component replaces the function. */
  const probes = { storeQueueDepth: () => 0, connections: () => 0 };
  /** PUBLISH packets per QoS since the last scrape: a labelled inc() per message hashed its labels each time. */
  const receivedByQos = [0, 0, 0];
  return {
    registry,
    probes,
    receivedByQos,
    connections: new Gauge({
      name: 'roost_connections',
      help: 'Connected MQTT clients',
      registers: [registry],
      collect() {
        this.set(probes.connections());
      },
    }),
    publishesReceived: new Counter({
      name: 'roost_publishes_received_total',
      help: 'PUBLISH packets accepted from clients',
      labelNames: ['qos'] as const,
      registers: [registry],
      collect() {
        receivedByQos.forEach((n, qos) => {
          if (n > 0) this.inc({ qos: String(qos) }, n);
          receivedByQos[qos] = 0;
        });
      },
    }),
    publishesDenied: new Counter({
      name: 'roost_publishes_denied_total',
      help: 'PUBLISH packets refused by the ACL (QoS 1/2 acknowledged, not delivered; QoS 0 dropped)',
      registers: [registry],
    }),
    messagesStored: new Counter({ name: 'roost_messages_stored_total', help: 'Rows committed to the messages table', registers: [registry] }),
    storeWriteErrors: new Counter({
      name: 'roost_store_write_errors_total',
      help: 'Failed attempts to write a batch (it is retried)',
      registers: [registry],
    }),
    storeQueueDepth: new Gauge({
      name: 'roost_store_queue_depth',
      help: 'Publishes waiting to be stored',
      registers: [registry],
      collect() {
        this.set(probes.storeQueueDepth());
      },
    }),
    storeBatchSeconds: new Histogram({
      name: 'roost_store_batch_seconds',
      help: 'Time to write one batch',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [registry],
    }),
    clientErrors: new Counter({
      name: 'roost_client_errors_total',
      help: 'Errors in one client connection (the client is closed, the process goes on)',
      registers: [registry],
    }),
    limitHits: new Counter({
      name: 'roost_limit_hits_total',
      help: 'Times a limit refused or cut something (README: Limits, bans and faults), by limit',
      labelNames: ['limit'] as const,
      registers: [registry],
    }),
    bansEnforced: new Counter({
      name: 'roost_bans_enforced_total',
      help: 'Connections refused at CONNECT or closed because a ban matched, by what matched (client_id, username, ip)',
      labelNames: ['kind'] as const,
      registers: [registry],
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
