/** Devices: online state and last_seen refreshed every 2 s; add, enable/disable, rotate, delete. */
import { call, qs } from '../api.js';
import { fill, h, secret, table, when } from '../dom.js';
import { adminButton, inputOf, type Page } from '../widgets.js';

interface Device {
  username: string;
  name: string | null;
  enabled: boolean;
  online: boolean;
  last_seen: string | null;
  roles: string[];
  superuser: boolean;
}

export const devicesPage: Page = {
  path: 'devices',
  title: 'Devices',
  render(main, ctx) {
    const username = inputOf({ placeholder: 'piano-7', name: 'username', required: true });
    const name = inputOf({ placeholder: 'optional', name: 'name' });
    const roles = inputOf({ placeholder: 'role-a, role-b', name: 'roles' });
    const shown = h('div');
    const search = inputOf({ placeholder: 'name or username prefix', name: 'search', oninput: () => refresh() });
    const list = h('div');

    const showPassword = (who: string, password: string) => fill(shown, secret(`Password of ${who}`, password));
    const act = (fn: () => Promise<unknown>) => () => ctx.act(fn, refresh);

    const add = act(async () => {
      if (!username.value) throw new Error('A username is needed');
      const body = {
        username: username.value.trim(),
        ...(name.value ? { name: name.value } : {}),
        ...(roles.value ? { roles: roles.value.split(',').map((r) => r.trim()).filter(Boolean) } : {}),
      };
      const res = await call<{ device: Device; password: string }>('POST', '/api/devices', body);
      showPassword(res.device.username, res.password);
      username.value = name.value = roles.value = '';
    });

    async function refresh() {
      const res = await call<{ items: Device[]; next_cursor: string | null }>('GET', `/api/devices?${qs({ limit: 200, name_prefix: search.value })}`);
      const rows = res.items.map((d) => [
        h('strong', {}, d.username),
        d.name ?? '',
        h('span', { 'data-test': 'online', 'data-online': String(d.online) }, h('span', { class: d.online ? 'dot on' : 'dot' }), d.online ? 'online' : 'offline'),
        when(d.last_seen),
        d.roles.join(', '),
        h('span', { class: d.enabled ? 'ok' : 'bad', 'data-test': 'enabled' }, d.enabled ? 'enabled' : 'disabled'),
        h('span', { class: 'actions' },
          adminButton(d.enabled ? 'Disable' : 'Enable', act(() => call('PATCH', `/api/devices/${encodeURIComponent(d.username)}`, { enabled: !d.enabled }))),
          adminButton('Rotate password', act(async () => {
            const r = await call<{ password: string }>('PATCH', `/api/devices/${encodeURIComponent(d.username)}`, { rotate_password: true });
            showPassword(d.username, r.password);
          })),
          adminButton('Delete', act(async () => {
            if (confirm(`Delete device ${d.username}? Its connections are closed.`)) await call('DELETE', `/api/devices/${encodeURIComponent(d.username)}`);
          }), 'danger'),
        ),
      ]);
      fill(list,
        table(['Username', 'Name', 'State', 'Last seen', 'Roles', 'Enabled', ''], rows, 'No devices.'),
        res.next_cursor ? h('p', { class: 'muted' }, 'Showing the first 200; narrow the search to see others.') : null,
      );
      list.querySelectorAll('tr').forEach((tr, i) => i > 0 && tr.setAttribute('data-device', res.items[i - 1].username));
    }

    fill(main,
      h('h2', {}, 'Devices'),
      h('div', { class: 'card' },
        h('form', { class: 'row', onsubmit: (e: Event) => { e.preventDefault(); add(); } },
          h('label', {}, 'Username', username), h('label', {}, 'Name', name), h('label', {}, 'Roles', roles),
          adminButton('Add device', add, 'primary'),
        ),
        shown,
      ),
      h('div', { class: 'card' }, h('div', { class: 'row' }, h('label', {}, 'Search', search)), list),
    );
    ctx.every(2000, refresh);
  },
};
