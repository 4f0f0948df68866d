/** Webhook metrics, on the process's registry (served at /metrics), labelled by hook name. */
import { Counter, Gauge, type Registry } from 'prom-client';

export interface HookBacklog {
  name: string;
  depth: number;
  /** Age of the oldest waiting event, seconds (0 when none waits). */
  lagSeconds: number;
}

export function createWebhookMetrics(registry: Registry, backlog: () => HookBacklog[]) {
  return {
    queueDepth: new Gauge({
      name: 'roost_webhook_queue_depth',
      help: 'Events waiting in the outbox, per hook',
      labelNames: ['hook'] as const,
      registers: [registry],
      collect() {
        this.reset();
        for (const b of backlog()) this.set({ hook: b.name }, b.depth);
      },
    }),
    lag: new Gauge({
      name: 'roost_webhook_lag_seconds',
      help: 'Age of the oldest event waiting for delivery, per hook',
      labelNames: ['hook'] as const,
      registers: [registry],
      collect() {
        this.reset();
        for (const b of backlog()) this.set({ hook: b.name }, b.lagSeconds);
      },
    }),
    delivered: new Counter({
      name: 'roost_webhook_events_delivered_total',
      help: 'Events a receiver acknowledged with 2xx, per hook',
      labelNames: ['hook'] as const,
      registers: [registry],
    }),
    failures: new Counter({
      name: 'roost_webhook_failures_total',
      help: 'Delivery attempts that failed (no answer, or not 2xx), per hook',
      labelNames: ['hook'] as const,
      registers: [registry],
    }),
    dropped: new Counter({
      name: 'roost_webhook_events_dropped_total',
      help: 'Events dropped undelivered after the hook retention window, per hook (hook="" : process buffer full)',
      labelNames: ['hook'] as const,
      registers: [registry],
    }),
  };
}

export type WebhookMetrics = ReturnType<typeof createWebhookMetrics>;
