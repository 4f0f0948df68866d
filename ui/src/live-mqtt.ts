/**
 * The dashboard's own MQTT connection over WebSocket, with a browser token from the API (never a
 * device password): read-only, short-lived, renewed before it expires so reconnects keep working.
 */
import type { IClientOptions, MqttClient } from 'mqtt';
import { call } from './api.js';

declare global {
  interface Window {
    mqtt: { connect(url: string, opts: IClientOptions): MqttClient };
  }
}

interface BrowserToken {
  username: string;
  /** The page's client id must start with it (Roost refuses another with CONNACK 2). */
  client_id_prefix: string;
  token: string;
  expires_at: string;
  mqtt: { ws: string | null; wss: string | null };
}

export type LiveStatus = 'connecting' | 'connected' | 'offline' | 'error';

export interface LiveConnection {
  client: MqttClient;
  close(): void;
}

async function mint(filters: string[]): Promise<BrowserToken> {
  return call<BrowserToken>('POST', '/api/browser-tokens', { filters });
}

/** A page served over https must use wss (browsers refuse ws from a secure page). */
function urlOf(t: BrowserToken): string {
  const url = location.protocol === 'https:' ? (t.mqtt.wss ?? t.mqtt.ws) : (t.mqtt.ws ?? t.mqtt.wss);
  if (!url) throw new Error('This Roost has no WebSocket listener (ROOST_WS_PORT / ROOST_WSS_PORT are off)');
  return url;
}

export async function openLive(filters: string[], onStatus: (s: LiveStatus, detail?: string) => void): Promise<LiveConnection> {
  let token = await mint(filters);
  const suffix = `dashboard-${Math.random().toString(16).slice(2, 10)}`;
  const client = window.mqtt.connect(urlOf(token), {
    username: token.username,
    password: token.token,
    protocolVersion: 4,
    clientId: token.client_id_prefix + suffix,
    reconnectPeriod: 2000,
    connectTimeout: 10_000,
  });
  let renewal: ReturnType<typeof setTimeout> | undefined;
  const scheduleRenewal = () => {
    const ms = Math.max(5_000, (new Date(token.expires_at).getTime() - Date.now()) * 0.8);
    renewal = setTimeout(async () => {
      try {
        token = await mint(filters);
        client.options.username = token.username;
        client.options.password = token.token;
        // A new token has its own prefix: the next reconnect uses a client id under it.
        client.options.clientId = token.client_id_prefix + suffix;
      } catch {
        // tried again at the next renewal; the open connection is unaffected
      }
      scheduleRenewal();
    }, ms);
  };
  scheduleRenewal();
  onStatus('connecting');
  client.on('connect', () => onStatus('connected'));
  client.on('offline', () => onStatus('offline'));
  client.on('error', (err) => onStatus('error', err.message));
  return {
    client,
    close() {
      clearTimeout(renewal);
      client.end(true);
    },
  };
}
