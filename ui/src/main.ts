/**
 * The Roost dashboard: log in with an API token (admin or viewer), then one page per hash route.
 * The token stays in sessionStorage (this tab only); a viewer sees every page with its buttons off.
 */
import { ApiError, currentSession, roleOf, setSession, type Session } from './api.js';
import { fill, h } from './dom.js';
import { aclPage } from './pages/acl.js';
import { bansPage } from './pages/bans.js';
import { devicesPage } from './pages/devices.js';
import { historyPage } from './pages/history.js';
import { livePage } from './pages/live.js';
import { provisioningPage } from './pages/provisioning.js';
import { retainedPage } from './pages/retained.js';
import { statsPage } from './pages/stats.js';
import type { Page, PageContext } from './widgets.js';

const PAGES: Page[] = [devicesPage, aclPage, livePage, historyPage, provisioningPage, retainedPage, statsPage, bansPage];
const STORAGE_KEY = 'roost.session';
const root = document.getElementById('app')!;
let leave: Array<() => void> = [];

function logout(): void {
  sessionStorage.removeItem(STORAGE_KEY);
  setSession(undefined);
  showLogin('Your token was refused or has expired.');
}

function showLogin(message?: string): void {
  leaveCurrent();
  const token = h('input', { type: 'password', name: 'token', placeholder: 'roost_…', autocomplete: 'off', required: true });
  const error = h('div');
  if (message) fill(error, h('div', { class: 'error' }, message));
  const submit = async (e: Event) => {
    e.preventDefault();
    try {
      const session: Session = { token: token.value.trim(), role: await roleOf(token.value.trim()) };
      sessionStorage.setItem(STORAGE_KEY, JSON.stringify(session));
      start(session);
    } catch (err) {
      fill(error, h('div', { class: 'error' }, err instanceof ApiError && err.status === 401 ? 'That token is not valid.' : String((err as Error).message)));
    }
  };
  fill(root, h('div', { class: 'login card' },
    h('h2', {}, 'Roost'),
    h('p', { class: 'muted' }, 'Log in with an API token (admin or viewer).'),
    error,
    h('form', { onsubmit: submit }, h('p', {}, token), h('button', { class: 'primary' }, 'Log in'))));
  token.focus();
}

function leaveCurrent(): void {
  for (const fn of leave) fn();
  leave = [];
}

function route(): void {
  const session = currentSession();
  if (!session) return;
  leaveCurrent();
  const name = location.hash.replace(/^#\/?/, '') || 'devices';
  const page = PAGES.find((p) => p.path === name) ?? devicesPage;
  document.querySelectorAll('header nav a').forEach((a) => a.classList.toggle('active', a.getAttribute('href') === `#/${page.path}`));
  document.title = `${page.title} · Roost`;
  const errorBox = h('div', { 'data-test': 'error' });
  const body = h('div');
  fill(document.querySelector('main')!, errorBox, body);
  let left = false;
  const ctx: PageContext = {
    error(err) {
      if (left) return;
      fill(errorBox, err ? h('div', { class: 'error' }, err instanceof Error ? err.message : String(err)) : null);
    },
    every(ms, fn) {
      const run = () => Promise.resolve().then(fn).catch((e) => ctx.error(e));
      run();
      const timer = setInterval(() => document.visibilityState === 'visible' && run(), ms);
      leave.push(() => clearInterval(timer));
    },
    async act(fn, after) {
      try {
        await fn();
        ctx.error(undefined);
        await after?.();
      } catch (e) {
        ctx.error(e);
      }
    },
    onLeave(fn) {
      leave.push(fn);
    },
  };
  leave.push(() => (left = true));
  page.render(body, ctx);
}

function start(session: Session): void {
  setSession(session, logout);
  fill(root,
    h('header', {},
      h('h1', {}, 'Roost'),
      h('nav', {}, PAGES.map((p) => h('a', { href: `#/${p.path}` }, p.title))),
      h('div', { class: 'who' }, h('span', { 'data-test': 'role' }, session.role), h('button', { type: 'button', onclick: () => { sessionStorage.removeItem(STORAGE_KEY); setSession(undefined); showLogin(); } }, 'Log out'))),
    h('main'),
  );
  route();
}

window.addEventListener('hashchange', route);
const saved = sessionStorage.getItem(STORAGE_KEY);
if (saved) start(JSON.parse(saved) as Session);
else showLogin();
