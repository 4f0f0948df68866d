/** History: stored messages for a filter and time range, with a chart per numeric JSON field. */
import { call, qs } from '../api.js';
import { fill, h, table, when } from '../dom.js';
import { numericFields, timeSeriesChart } from '../chart.js';
import { inputOf, type Page } from '../widgets.js';

interface Message {
  id: string;
  topic: string;
  encoding: 'json' | 'base64';
  payload: unknown;
  username: string | null;
  received_at: string;
}

const MAX_CHARTS = 6;

/** datetime-local value → ISO (local time), or undefined. */
const iso = (v: string) => (v ? new Date(v).toISOString() : undefined);

export const historyPage: Page = {
  path: 'history',
  title: 'History',
  render(main, ctx) {
    const filter = inputOf({ name: 'filter', value: '#' });
    const from = inputOf({ name: 'from', type: 'datetime-local' });
    const to = inputOf({ name: 'to', type: 'datetime-local' });
    const device = inputOf({ name: 'device', placeholder: 'any' });
    const charts = h('div', { 'data-test': 'charts' });
    const list = h('div');

    async function load() {
      try {
        const res = await call<{ items: Message[] }>('GET', `/api/messages?${qs({ filter: filter.value.trim() || '#', from: iso(from.value), to: iso(to.value), device: device.value.trim(), limit: 500 })}`);
        // One series per topic and numeric field.
        const series = new Map<string, Array<{ t: number; v: number }>>();
        for (const m of res.items) {
          if (m.encoding !== 'json') continue;
          for (const [field, v] of numericFields(m.payload)) {
            const key = `${m.topic} · ${field}`;
            if (!series.has(key)) series.set(key, []);
            series.get(key)!.push({ t: new Date(m.received_at).getTime(), v });
          }
        }
        fill(charts, [...series].filter(([, p]) => p.length >= 2).slice(0, MAX_CHARTS).map(([k, p]) => timeSeriesChart(k, p)));
        fill(list, table(['Received', 'Topic', 'Device', 'Payload'], res.items.map((m) => [
          when(m.received_at), h('code', {}, m.topic), m.username ?? '',
          h('pre', {}, m.encoding === 'json' ? JSON.stringify(m.payload) : `base64 ${String(m.payload)}`),
        ]), 'No stored messages match.'));
        ctx.error(undefined);
      } catch (e) {
        ctx.error(e);
      }
    }

    fill(main,
      h('h2', {}, 'History'),
      h('div', { class: 'card' },
        h('form', { class: 'row', onsubmit: (e: Event) => { e.preventDefault(); load(); } },
          h('label', {}, 'Topic filter', filter), h('label', {}, 'From', from), h('label', {}, 'To', to), h('label', {}, 'Device', device),
          h('button', { class: 'primary' }, 'Load'))),
      h('div', { class: 'card' }, charts, list),
    );
    load();
  },
};
