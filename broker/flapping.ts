/**
 * Flapping detection (as EMQX does it): a client id whose connection ends more than `maxCount`
 * times within `windowMs` is banned for `banMs` (a ban with created_by "flapping", on every node).
 * Only connections that were accepted count: a refused CONNECT is cheap and already throttled.
 * Disconnections are counted per (client id, username), so that connections of another username
 * with a device's client id cannot get it banned (issue 22 #5).
 */
import type { BrokerCore, Connection } from './core.js';
import type { Logger } from '../lib/log.js';
import type { Bans } from './bans.js';
import type { LimitReporter } from './limits.js';

export interface FlappingOptions {
  /** 0 turns detection off. */
  maxCount: number;
  windowMs: number;
  banMs: number;
  /** Most client ids remembered at once; beyond it the oldest are forgotten. */
  maxTracked?: number;
  now?: () => number;
}

/** Disconnection times per (client id, username), oldest first; pure bookkeeping. */
export class FlappingDetector {
  readonly #ends = new Map<string, number[]>();
  readonly #now: () => number;

  constructor(private readonly opts: FlappingOptions) {
    this.#now = opts.now ?? Date.now;
  }

  /** Records one disconnection; true when this one makes the client id, under this username, a flapper. */
  disconnected(clientId: string, username?: string): boolean {
    if (this.opts.maxCount === 0) return false;
    const now = this.#now();
    const since = now - this.opts.windowMs;
    // NUL cannot occur in an MQTT string (MQTT-1.5.3-2), so the key is unambiguous.
    const key = `${clientId}\u0000${username ?? ''}`;
    const ends = (this.#ends.get(key) ?? []).filter((t) => t > since);
    ends.push(now);
    // Re-insert so that Map order is least recently seen first.
    this.#ends.delete(key);
    if (ends.length > this.opts.maxCount) return true;
    this.#ends.set(key, ends);
    const max = this.opts.maxTracked ?? 100_000;
    if (this.#ends.size > max) this.#ends.delete(this.#ends.keys().next().value!);
    return false;
  }

  /** Forgets client ids with no disconnection inside the window. */
  sweep(): void {
    const since = this.#now() - this.opts.windowMs;
    for (const [id, ends] of this.#ends) if (ends[ends.length - 1] <= since) this.#ends.delete(id);
  }
}

export function startFlappingDetection(
  core: BrokerCore,
  bans: Bans,
  opts: FlappingOptions,
  reporter: LimitReporter,
  log: Logger,
  usernameOf: (conn: Connection) => string | undefined = () => undefined,
): () => void {
  if (opts.maxCount === 0) return () => {};
  const detector = new FlappingDetector(opts);
  const onDisconnect = (client: Connection) => {
    const username = usernameOf(client);
    if (!client.id || !detector.disconnected(client.id, username)) return;
    reporter.hit('flapping', { clientId: client.id, username, windowMs: opts.windowMs, banMs: opts.banMs }, 'client id banned');
    bans
      .ban({
        kind: 'client_id',
        value: client.id,
        reason: `flapping: more than ${opts.maxCount} disconnections in ${Math.round(opts.windowMs / 1000)} s`,
        createdBy: 'flapping',
        expiresAt: new Date(Date.now() + opts.banMs),
      })
      .catch((err: Error) => log.error({ err: err.message, clientId: client.id }, 'cannot ban a flapping client'));
  };
  const off = core.on('disconnected', onDisconnect);
  const sweeper = setInterval(() => detector.sweep(), opts.windowMs);
  sweeper.unref();
  return () => {
    clearInterval(sweeper);
    off();
  };
}
