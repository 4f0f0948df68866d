/** Bans by client id, username or network (CIDR), with expiry: list, add, lift. */
import { call } from '../api.js';
import { fill, h, table, when } from '../dom.js';
import { adminButton, inputOf, selectOf, type Page } from '../widgets.js';

interface Ban {
  id: string;
  kind: string;
  value: string;
  reason: string;
  created_by: string;
  created_at: string;
  expires_at: string | null;
}

export const bansPage: Page = {
  path: 'bans',
  title: 'Bans',
  render(main, ctx) {
    const list = h('div');
    const kind = selectOf('kind', ['client_id', 'username', 'ip']);
    const value = inputOf({ name: 'value', placeholder: 'client id, username or 10.0.0.0/8', required: true });
    const reason = inputOf({ name: 'reason', placeholder: 'why' });
    const minutes = inputOf({ name: 'minutes', type: 'number', min: 1, placeholder: 'forever' });

    async function refresh() {
      const res = await call<{ items: Ban[] }>('GET', '/api/bans?limit=1000');
      const rows = res.items.map((b) => [
        b.kind, h('code', {}, b.value), b.reason, b.created_by, when(b.created_at), b.expires_at ? when(b.expires_at) : 'never',
        adminButton('Lift', () => ctx.act(() => call('DELETE', `/api/bans/${b.id}`), refresh), 'danger'),
      ]);
      fill(list, rows.length ? table(['Kind', 'Value', 'Reason', 'By', 'Since', 'Expires', ''], rows) : h('p', { class: 'muted', 'data-test': 'no-bans' }, 'Nothing is banned.'));
    }

    const add = adminButton('Ban', () =>
      ctx.act(() => {
        const expires = Number(minutes.value) > 0 ? new Date(Date.now() + Number(minutes.value) * 60_000).toISOString() : undefined;
        return call('POST', '/api/bans', { kind: kind.value, value: value.value.trim(), reason: reason.value.trim() || undefined, expires_at: expires });
      }, refresh), 'primary');

    fill(main,
      h('h2', {}, 'Bans'),
      h('div', { class: 'card' }, h('div', { class: 'row' }, h('label', {}, 'Kind', kind), h('label', {}, 'Value', value), h('label', {}, 'Reason', reason), h('label', {}, 'Minutes', minutes), add)),
      h('div', { class: 'card' }, list),
    );
    ctx.every(5000, refresh);
  },
};
