/** Retained messages: list by filter, delete (clears it in the broker too). */
import { call, qs } from '../api.js';
import { fill, h, table } from '../dom.js';
import { adminButton, inputOf, type Page } from '../widgets.js';

interface Retained {
  topic: string;
  qos: number;
  encoding: 'json' | 'base64';
  payload: unknown;
}

export const retainedPage: Page = {
  path: 'retained',
  title: 'Retained',
  render(main, ctx) {
    const filter = inputOf({ name: 'filter', value: '#' });
    const list = h('div');

    async function refresh() {
      try {
        const res = await call<{ items: Retained[] }>('GET', `/api/retained?${qs({ filter: filter.value.trim() || '#', limit: 1000 })}`);
        fill(list, table(['Topic', 'QoS', 'Payload', ''], res.items.map((m) => [
          h('code', {}, m.topic), m.qos, h('pre', {}, m.encoding === 'json' ? JSON.stringify(m.payload, null, 2) : `base64 ${String(m.payload)}`),
          adminButton('Delete', () => ctx.act(() => call('DELETE', `/api/retained/message?${qs({ topic: m.topic })}`), refresh), 'danger'),
        ]), 'No retained messages match.'));
        ctx.error(undefined);
      } catch (e) {
        ctx.error(e);
      }
    }

    fill(main,
      h('h2', {}, 'Retained messages'),
      h('div', { class: 'card' },
        h('form', { class: 'row', onsubmit: (e: Event) => { e.preventDefault(); refresh(); } },
          h('label', {}, 'Topic filter', filter), h('button', { class: 'primary' }, 'List'))),
      h('div', { class: 'card' }, list),
    );
    refresh();
  },
};
