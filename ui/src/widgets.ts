/** Widgets every page uses: admin-only buttons, the page's error box, periodic refresh. */
import { isAdmin } from './api.js';
import { h } from './dom.js';

export interface PageContext {
  /** Shows an error at the top of the page (or clears it with undefined). */
  error(err: unknown): void;
  /** Runs fn every ms while the page is shown (and once now). */
  every(ms: number, fn: () => Promise<void> | void): void;
  /** Runs a change, then `after` (a refresh); a failure of either is shown as the page's error. */
  act(fn: () => Promise<unknown>, after?: () => Promise<unknown>): Promise<void>;
  /** Called when the page is left. */
  onLeave(fn: () => void): void;
}

export interface Page {
  path: string;
  title: string;
  render(main: HTMLElement, ctx: PageContext): void;
}

/** A button that changes something: disabled for viewers (the API would refuse them anyway). */
export function adminButton(label: string, onclick: () => unknown, cls = ''): HTMLButtonElement {
  const admin = isAdmin();
  return h('button', {
    type: 'button',
    class: cls,
    disabled: !admin,
    title: admin ? undefined : 'Needs an admin token',
    'data-admin': true,
    onclick: () => onclick(),
  }, label);
}

export function inputOf(attrs: Record<string, unknown> = {}): HTMLInputElement {
  return h('input', attrs);
}

export function selectOf(name: string, options: string[], value?: string): HTMLSelectElement {
  return h('select', { name }, options.map((o) => h('option', { value: o, selected: o === value }, o)));
}
