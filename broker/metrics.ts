import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';

/** Broker metrics, one registry per Roost process (the API serves it at /metrics). */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'roost_process_' });
  return {
    registry,
    connections: new Gauge({ name: 'roost_connections', help: 'Connected MQTT clients', registers: [registry] }),
    publishesReceived: new Counter({
      name: 'roost_publishes_received_total',
      help: 'PUBLISH packets accepted from clients',
      labelNames: ['qos'] as const,
      registers: [registry],
    }),
    publishesDenied: new Counter({
      name: 'roost_publishes_denied_total',
      help: 'PUBLISH packets refused by the ACL (QoS 1/2 acknowledged, not delivered; QoS 0 dropped)',
      registers: [registry],
    }),
    clientErrors: new Counter({
      name: 'roost_client_errors_total',
      help: 'Errors in one client connection (the client is closed, the process goes on)',
      registers: [registry],
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
