/**
 * max_connections and max_connections_per_ip: counted where sockets are accepted (listeners.ts),
 * before TLS, WebSocket or MQTT cost anything. A socket over a limit is closed at once: no CONNECT
 * has been read, so there is nobody to send a CONNACK to (Mosquitto's max_connections does the same).
 */
import type { Socket } from 'node:net';
import type { LimitReporter } from './limits.js';

export interface ConnectionLimitSettings {
  /** 0: no limit. */
  maxConnections: number;
  /** 0: no limit. */
  maxConnectionsPerIp: number;
}

export class ConnectionLimiter {
  #open = 0;
  readonly #perIp = new Map<string, number>();

  constructor(
    private readonly settings: ConnectionLimitSettings,
    private readonly reporter?: LimitReporter,
  ) {}

  /** Open sockets counted now. */
  get open(): number {
    return this.#open;
  }

  /** Counts the socket until it closes; false (and the socket destroyed) when a limit is reached. */
  admit(socket: Socket): boolean {
    const raw = socket.remoteAddress ?? 'unknown';
    const ip = raw.startsWith('::ffff:') ? raw.slice(7) : raw;
    const { maxConnections, maxConnectionsPerIp } = this.settings;
    const fromIp = this.#perIp.get(ip) ?? 0;
    if (maxConnections > 0 && this.#open >= maxConnections) {
      this.reporter?.hit('max_connections', { ip, open: this.#open }, 'connection refused');
      socket.destroy();
      return false;
    }
    if (maxConnectionsPerIp > 0 && fromIp >= maxConnectionsPerIp) {
      this.reporter?.hit('max_connections_per_ip', { ip, open: fromIp }, 'connection refused');
      socket.destroy();
      return false;
    }
    this.#open++;
    this.#perIp.set(ip, fromIp + 1);
    socket.once('close', () => {
      this.#open--;
      const n = (this.#perIp.get(ip) ?? 1) - 1;
      if (n <= 0) this.#perIp.delete(ip);
      else this.#perIp.set(ip, n);
    });
    return true;
  }
}
