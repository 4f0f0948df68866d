/** Broker statistics every 2 s: connections, msg/s in and stored, write-queue depth, refusals. */
import { call } from '../api.js';
import { fill, h } from '../dom.js';
import { timeSeriesChart } from '../chart.js';
import type { Page } from '../widgets.js';

interface Stats {
  connections: Record<string, number>;
  messages_received: number;
  messages_stored: number;
  messages_denied: number;
  store_queue_depth: number;
  auth_failures: number;
  stored_rows_estimate: number;
}

const tile = (label: string, value: string | number, test: string) =>
  h('div', { class: 'tile', 'data-test': test }, h('div', { class: 'v' }, value), h('div', { class: 'k' }, label));

export const statsPage: Page = {
  path: 'stats',
  title: 'Stats',
  render(main, ctx) {
    const tiles = h('div', { class: 'tiles' });
    const chart = h('div');
    let last: { at: number; s: Stats } | undefined;
    const rates: Array<{ t: number; v: number }> = [];

    fill(main, h('h2', {}, 'Broker'), tiles, h('div', { class: 'card' }, chart));
    ctx.every(2000, async () => {
      const s = await call<Stats>('GET', '/api/stats');
      const now = Date.now();
      const per = (key: 'messages_received' | 'messages_stored') => (last ? ((s[key] - last.s[key]) * 1000) / (now - last.at) : 0);
      const inRate = per('messages_received');
      const storedRate = per('messages_stored');
      last = { at: now, s };
      rates.push({ t: now, v: inRate });
      if (rates.length > 90) rates.shift();
      const total = Object.values(s.connections).reduce((a, b) => a + b, 0);
      fill(tiles,
        tile(`connections (tcp ${s.connections.mqtt ?? 0} · tls ${s.connections.mqtts ?? 0} · ws ${s.connections.ws ?? 0} · wss ${s.connections.wss ?? 0})`, total, 'connections'),
        tile('messages/s in', inRate.toFixed(1), 'rate-in'),
        tile('messages/s stored', storedRate.toFixed(1), 'rate-stored'),
        tile('write queue depth', s.store_queue_depth, 'queue'),
        tile('publishes refused by ACL', s.messages_denied, 'denied'),
        tile('failed logins', s.auth_failures, 'auth-failures'),
        tile('stored messages', s.stored_rows_estimate, 'stored'),
      );
      fill(chart, rates.length >= 2 ? timeSeriesChart('messages/s in', rates, 720, 160) : h('p', { class: 'muted' }, 'Measuring…'));
      ctx.error(undefined);
    });
  },
};
