/** Bans, when this Roost's API has them (GET /api/bans); otherwise says so. */
import { ApiError, call } from '../api.js';
import { fill, h, table, when } from '../dom.js';
import type { Page } from '../widgets.js';

export const bansPage: Page = {
  path: 'bans',
  title: 'Bans',
  render(main, ctx) {
    const list = h('div');
    fill(main, h('h2', {}, 'Bans'), h('div', { class: 'card' }, list));
    ctx.every(5000, async () => {
      try {
        const res = await call<{ items: Array<Record<string, unknown>> }>('GET', '/api/bans');
        const keys = [...new Set(res.items.flatMap((b) => Object.keys(b)))];
        const cell = (k: string, v: unknown) => (v === null || v === undefined ? '' : /_at$/.test(k) ? when(String(v)) : typeof v === 'object' ? JSON.stringify(v) : String(v));
        fill(list, table(keys, res.items.map((b) => keys.map((k) => cell(k, b[k]))), 'Nothing is banned.'));
      } catch (e) {
        if (e instanceof ApiError && e.status === 404) fill(list, h('p', { class: 'muted', 'data-test': 'no-bans' }, 'This Roost has no bans API (GET /api/bans).'));
        else throw e;
      }
    });
  },
};
