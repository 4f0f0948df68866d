/**
 * Broker statistics published on $SYS/roost/<node id>/... every ROOST_SYS_INTERVAL_S seconds.
 * $-topics are matched by no wildcard at the first level (MQTT-4.7.2-1), so only superusers or
 * devices with a $SYS rule read them.
 */
import type { BrokerCore } from './core.js';
import type { Metrics } from './metrics.js';

async function total(metrics: Metrics, name: string): Promise<number> {
  const m = await metrics.registry.getSingleMetric(name)?.get();
  return (m?.values ?? []).reduce((sum, v) => sum + v.value, 0);
}

export function startSysStats(core: BrokerCore, metrics: Metrics, intervalS: number): () => void {
  if (intervalS <= 0) return () => {};
  const base = `$SYS/roost/${core.id}`;
  let last = { received: 0, at: Date.now() };
  const publish = async () => {
    const received = await total(metrics, 'roost_publishes_received_total');
    const now = Date.now();
    const perSecond = ((received - last.received) * 1000) / Math.max(1, now - last.at);
    last = { received, at: now };
    const values: Record<string, number> = {
      'clients/connected': core.connectionCount,
      'messages/received': received,
      'messages/received/per-second': Math.round(perSecond * 10) / 10,
      'messages/stored': await total(metrics, 'roost_messages_stored_total'),
      'messages/denied': await total(metrics, 'roost_publishes_denied_total'),
      'store/queue-depth': await total(metrics, 'roost_store_queue_depth'),
      'auth/failures': await total(metrics, 'roost_auth_failures_total'),
    };
    for (const [name, value] of Object.entries(values)) {
      core.publish({ topic: `${base}/${name}`, payload: Buffer.from(String(value)), qos: 0, retain: true }).catch(() => {});
    }
  };
  const timer = setInterval(() => void publish(), intervalS * 1000);
  timer.unref();
  return () => clearInterval(timer);
}
