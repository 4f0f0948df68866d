/** ACL: roles, rules (add, edit, delete) and "may D publish/subscribe T?" with the deciding rule. */
import { call, qs } from '../api.js';
import { fill, h, table } from '../dom.js';
import { adminButton, inputOf, selectOf, type Page } from '../widgets.js';

interface Rule {
  id: string;
  device: string | null;
  role: string | null;
  pattern: string;
  access: string;
  effect: string;
  ordering: number;
}

interface Role {
  name: string;
  description: string | null;
  devices: number;
  rules: number;
}

interface Check {
  allowed: boolean;
  reason: string;
  rule: { id: string; pattern: string; access: string; effect: string; source: string } | null;
  partial_deny: { pattern: string; source: string } | null;
}

export const aclPage: Page = {
  path: 'acl',
  title: 'ACL',
  render(main, ctx) {
    const rolesBox = h('div');
    const rulesBox = h('div');
    const checkResult = h('div', { 'data-test': 'check-result' });
    const show = inputOf({ placeholder: 'device or role name (empty: all)', name: 'rules-of', oninput: () => refresh() });
    // Rule form; editing fills it and remembers which rule Save replaces.
    const kind = selectOf('owner-kind', ['role', 'device']);
    const owner = inputOf({ name: 'owner', placeholder: 'name' });
    const pattern = inputOf({ name: 'pattern', placeholder: 'devices/%u/#' });
    const access = selectOf('access', ['read', 'write', 'readwrite'], 'readwrite');
    const effect = selectOf('effect', ['allow', 'deny']);
    const roleName = inputOf({ name: 'role-name', placeholder: 'new role' });
    let editing: Rule | undefined;
    const save = adminButton('Add rule', () => submit(), 'primary');

    const act = (fn: () => Promise<unknown>) => ctx.act(fn, refresh);

    const submit = () => act(async () => {
      const created = await call<Rule>('POST', '/api/rules', {
        [kind.value]: owner.value.trim(),
        pattern: pattern.value.trim(),
        access: access.value,
        effect: effect.value,
        ...(editing ? { ordering: editing.ordering } : {}),
      });
      if (editing && created) await call('DELETE', `/api/rules/${editing.id}`);
      editing = undefined;
      save.textContent = 'Add rule';
      pattern.value = '';
    });

    const edit = (r: Rule) => {
      editing = r;
      kind.value = r.device ? 'device' : 'role';
      owner.value = r.device ?? r.role ?? '';
      pattern.value = r.pattern;
      access.value = r.access;
      effect.value = r.effect;
      save.textContent = `Save rule #${r.id}`;
    };

    async function refresh() {
      const [roles, rules] = await Promise.all([
        call<{ items: Role[] }>('GET', '/api/roles?limit=500'),
        call<{ items: Rule[] }>('GET', '/api/rules?limit=1000'),
      ]);
      fill(rolesBox, table(['Role', 'Description', 'Devices', 'Rules', ''], roles.items.map((r) => [
        h('strong', {}, r.name), r.description ?? '', r.devices, r.rules,
        adminButton('Delete', () => act(async () => {
          if (confirm(`Delete role ${r.name}?`)) await call('DELETE', `/api/roles/${encodeURIComponent(r.name)}`);
        }), 'danger'),
      ]), 'No roles.'));
      const wanted = show.value.trim();
      const shown = rules.items.filter((r) => !wanted || r.device === wanted || r.role === wanted);
      fill(rulesBox, table(['#', 'Of', 'Pattern', 'Access', 'Effect', 'Order', ''], shown.map((r) => [
        r.id, r.device ? `device ${r.device}` : `role ${r.role}`, h('code', {}, r.pattern), r.access,
        h('span', { class: r.effect === 'deny' ? 'bad' : 'ok' }, r.effect), r.ordering,
        h('span', { class: 'actions' },
          adminButton('Edit', () => edit(r)),
          adminButton('Delete', () => act(() => call('DELETE', `/api/rules/${r.id}`)), 'danger')),
      ]), 'No rules.'));
    }

    const checkDevice = inputOf({ name: 'check-device', placeholder: 'device' });
    const checkAction = selectOf('check-action', ['publish', 'subscribe', 'read']);
    const checkTopic = inputOf({ name: 'check-topic', placeholder: 'devices/A/temp' });
    const check = async () => {
      try {
        const c = await call<Check>('GET', `/api/acl/check?${qs({ device: checkDevice.value.trim(), action: checkAction.value, topic: checkTopic.value })}`);
        fill(checkResult, h('p', {},
          h('strong', { class: c.allowed ? 'ok' : 'bad' }, c.allowed ? 'Allowed' : 'Denied'), ` (${c.reason})`,
          c.rule ? [' by rule #', c.rule.id, ' ', h('code', {}, c.rule.pattern), ` ${c.rule.access} ${c.rule.effect} from ${c.rule.source}`] : null,
          c.partial_deny ? [h('br'), 'Partly denied by ', h('code', {}, c.partial_deny.pattern), ` (${c.partial_deny.source}): checked per message`] : null,
        ));
        ctx.error(undefined);
      } catch (e) {
        ctx.error(e);
      }
    };

    fill(main,
      h('h2', {}, 'Access rules'),
      h('div', { class: 'card' },
        h('h3', {}, 'May this device…?'),
        h('form', { class: 'row', onsubmit: (e: Event) => { e.preventDefault(); check(); } },
          h('label', {}, 'Device', checkDevice), h('label', {}, 'Action', checkAction), h('label', {}, 'Topic or filter', checkTopic),
          h('button', { class: 'primary' }, 'Check')),
        checkResult),
      h('div', { class: 'card' },
        h('h3', {}, 'Rules'),
        h('div', { class: 'row' }, h('label', {}, 'Of', kind), h('label', {}, 'Name', owner), h('label', {}, 'Pattern', pattern),
          h('label', {}, 'Access', access), h('label', {}, 'Effect', effect), save),
        h('p', { class: 'row' }, h('label', {}, 'Show rules of', show)),
        rulesBox),
      h('div', { class: 'card' },
        h('h3', {}, 'Roles'),
        h('div', { class: 'row' }, h('label', {}, 'Name', roleName),
          adminButton('Create role', () => act(async () => {
            await call('POST', '/api/roles', { name: roleName.value.trim() });
            roleName.value = '';
          }))),
        rolesBox),
    );
    refresh().catch((e) => ctx.error(e));
  },
};
