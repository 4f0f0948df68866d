/** Live messages: a topic filter, a tail over MQTT/WebSocket (browser token), pause, pretty JSON. */
import { fill, h } from '../dom.js';
import { openLive, type LiveConnection } from '../live-mqtt.js';
import { inputOf, type Page } from '../widgets.js';

const KEEP = 300;

/** JSON payloads pretty-printed; other UTF-8 as text; binary as hex. */
export function renderPayload(payload: Uint8Array): string {
  const text = new TextDecoder('utf-8', { fatal: false }).decode(payload);
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text.includes('\uFFFD') ? Array.from(payload, (b) => b.toString(16).padStart(2, '0')).join(' ') : text;
  }
}

export const livePage: Page = {
  path: 'live',
  title: 'Live',
  render(main, ctx) {
    const filter = inputOf({ name: 'filter', value: '#' });
    const status = h('span', { class: 'muted', 'data-test': 'live-status' }, 'not connected');
    const feed = h('div', { class: 'feed', 'data-test': 'feed' });
    const pauseButton = h('button', { type: 'button', onclick: () => togglePause() }, 'Pause');
    let live: LiveConnection | undefined;
    let subscribed: string | undefined;
    let paused = false;
    const held: HTMLElement[] = [];

    const entry = (topic: string, payload: Uint8Array, retain: boolean) =>
      h('div', { class: 'msg', 'data-topic': topic },
        h('div', {}, h('span', { class: 'topic' }, topic), ' ', h('span', { class: 'muted' }, new Date().toLocaleTimeString(), retain ? ' · retained' : '')),
        h('pre', {}, renderPayload(payload)));

    const show = (el: HTMLElement) => {
      feed.prepend(el);
      while (feed.childElementCount > KEEP) feed.lastElementChild?.remove();
    };

    function togglePause() {
      paused = !paused;
      pauseButton.textContent = paused ? 'Resume' : 'Pause';
      if (!paused) held.splice(0).forEach(show);
      else status.textContent = 'paused';
    }

    async function subscribe() {
      try {
        if (!live) {
          live = await openLive(['#'], (s, detail) => {
            status.textContent = detail ? `${s}: ${detail}` : s;
            status.className = s === 'connected' ? 'ok' : s === 'error' ? 'bad' : 'muted';
          });
          live.client.on('message', (topic, payload, packet) => {
            const el = entry(topic, payload, packet.retain);
            if (paused) {
              held.push(el);
              status.textContent = `paused, ${held.length} waiting`;
            } else show(el);
          });
        }
        const wanted = filter.value.trim() || '#';
        if (subscribed && subscribed !== wanted) live.client.unsubscribe(subscribed);
        live.client.subscribe(wanted, { qos: 0 }, (err, granted) => {
          if (err || granted?.[0]?.qos === 128) ctx.error(new Error(`Subscription to ${wanted} was refused`));
          else {
            ctx.error(undefined);
            feed.setAttribute('data-subscribed', wanted);
          }
        });
        subscribed = wanted;
      } catch (e) {
        ctx.error(e);
      }
    }

    ctx.onLeave(() => live?.close());
    fill(main,
      h('h2', {}, 'Live messages'),
      h('div', { class: 'card' },
        h('form', { class: 'row', onsubmit: (e: Event) => { e.preventDefault(); subscribe(); } },
          h('label', {}, 'Topic filter', filter), h('button', { class: 'primary' }, 'Subscribe'), pauseButton,
          h('button', { type: 'button', onclick: () => { feed.replaceChildren(); held.length = 0; } }, 'Clear'), status)),
      h('div', { class: 'card' }, feed),
    );
    subscribe();
  },
};
