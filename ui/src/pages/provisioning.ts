/** Provisioning keys: list, create (the key is shown once), revoke. */
import { call } from '../api.js';
import { fill, h, secret, table, when } from '../dom.js';
import { adminButton, inputOf, selectOf, type Page } from '../widgets.js';

interface Key {
  id: string;
  name: string;
  role: string | null;
  acl_template: Array<{ pattern: string; access: string }>;
  max_uses: number | null;
  uses: number;
  allow_reprovision: boolean;
  expires_at: string | null;
  revoked_at: string | null;
}

export const provisioningPage: Page = {
  path: 'provisioning',
  title: 'Provisioning',
  render(main, ctx) {
    const name = inputOf({ name: 'key-name', placeholder: 'factory-2025' });
    const role = inputOf({ name: 'key-role', placeholder: 'optional' });
    const pattern = inputOf({ name: 'key-pattern', value: 'devices/{device}/#' });
    const access = selectOf('key-access', ['read', 'write', 'readwrite'], 'readwrite');
    const maxUses = inputOf({ name: 'max-uses', type: 'number', min: 1, placeholder: 'unlimited' });
    const expires = inputOf({ name: 'expires', type: 'datetime-local' });
    const shown = h('div');
    const list = h('div');

    const act = (fn: () => Promise<unknown>) => ctx.act(fn, refresh);

    async function refresh() {
      const res = await call<{ items: Key[] }>('GET', '/api/provisioning-keys?limit=500');
      fill(list, table(['Name', 'Role', 'ACL template', 'Uses', 'Expires', 'State', ''], res.items.map((k) => [
        h('strong', {}, k.name), k.role ?? '', k.acl_template.map((t) => `${t.pattern} (${t.access})`).join(', '),
        `${k.uses}${k.max_uses ? ` / ${k.max_uses}` : ''}`, when(k.expires_at),
        k.revoked_at ? h('span', { class: 'bad' }, 'revoked') : h('span', { class: 'ok' }, 'active'),
        k.revoked_at ? '' : adminButton('Revoke', () => act(() => call('DELETE', `/api/provisioning-keys/${k.id}`)), 'danger'),
      ]), 'No provisioning keys.'));
    }

    const create = () => act(async () => {
      const res = await call<{ key: string }>('POST', '/api/provisioning-keys', {
        name: name.value.trim(),
        ...(role.value.trim() ? { role: role.value.trim() } : {}),
        ...(pattern.value.trim() ? { acl_template: [{ pattern: pattern.value.trim(), access: access.value }] } : {}),
        ...(maxUses.value ? { max_uses: Number(maxUses.value) } : {}),
        ...(expires.value ? { expires_at: new Date(expires.value).toISOString() } : {}),
      });
      fill(shown, secret(`Key ${name.value.trim()}`, res.key));
      name.value = '';
    });

    fill(main,
      h('h2', {}, 'Provisioning keys'),
      h('div', { class: 'card' },
        h('div', { class: 'row' }, h('label', {}, 'Name', name), h('label', {}, 'Role', role), h('label', {}, 'ACL template', pattern),
          h('label', {}, 'Access', access), h('label', {}, 'Max uses', maxUses), h('label', {}, 'Expires', expires),
          adminButton('Create key', create, 'primary')),
        h('p', { class: 'muted' }, 'A device exchanges the key for its own credentials at POST /provision; {device} is its username.'),
        shown),
      h('div', { class: 'card' }, list),
    );
    refresh().catch((e) => ctx.error(e));
  },
};
