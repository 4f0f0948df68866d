/**
 * Where a connection enters Roost: MQTT over TCP, TLS, WebSocket and secure WebSocket.
 * WebSocket uses ws 8 + createWebSocketStream (websocket-stream pulls in ws 3, CVE-2024-37890).
 * TLS credentials come from broker/tls.ts; a reload swaps the secure context of the TLS servers
 * (new handshakes) and leaves established connections alone.
 */
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import type { BrokerCore } from './core.js';
import { WebSocketServer, createWebSocketStream } from 'ws';
import { coalesceWrites } from './write-coalescing.js';
import type { Logger } from '../lib/log.js';
import type { TlsCredentials } from './tls.js';
import { verifyOrigin } from './ws-origin.js';
import { readProxyHeader, showClientAddress, trustedProxies } from './proxied-sockets.js';
import type { ClientAddress } from './proxy-protocol.js';

export interface ListenerOptions {
  host: string;
  mqttPort: number | 'off';
  mqttsPort: number | 'off';
  wsPort: number | 'off';
  wssPort: number | 'off';
  wsPath: string;
  tls?: TlsCredentials;
  /** ROOST_WS_ALLOWED_ORIGINS: pages from other origins are refused the WebSocket upgrade (403). */
  allowedOrigins?: readonly string[];
  /**
   * ROOST_MAX_PACKET_BYTES: ws buffers a whole frame before MQTT reads it, so a frame may carry at most
   * one packet of this size (ws default: 100 MiB, issue 22 #7).
   */
  maxPacketBytes: number;
  /** Called when a WebSocket frame over that size closes its connection (counted as packet_size). */
  onFrameTooLarge?: (transport: 'ws' | 'wss') => void;
  /**
   * ROOST_TRUSTED_PROXIES: a connection from one of these must open with a PROXY protocol header
   * (v1 or v2), read within `proxyHeaderTimeoutMs`; its client address replaces the proxy's.
   */
  trustedProxies?: readonly string[];
  proxyHeaderTimeoutMs?: number;
  /** Counts each accepted socket (broker/limits-connections.ts); false means it was refused and destroyed. */
  admit?: (socket: net.Socket) => boolean;
}

export type ListenerName = 'mqtt' | 'mqtts' | 'ws' | 'wss';

export interface Listeners {
  /** Bound ports (the real ones when 0 was asked for); absent when the listener is off. */
  ports: Partial<Record<ListenerName, number>>;
  /** Stops accepting new connections; open connections are left to the broker to close. */
  close(): Promise<void>;
}

function listen(server: net.Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as net.AddressInfo).port);
    });
  });
}

/** The open listeners, e.g. ["mqtts:8883", "wss:8081"] (TLS-only mode shows no plain one). */
export function openListeners(ports: Listeners['ports']): string[] {
  return (['mqtt', 'mqtts', 'ws', 'wss'] as const).filter((n) => ports[n] !== undefined).map((n) => `${n}:${ports[n]}`);
}

/** MQTT-2.2.3: a fixed header is one byte and at most four of remaining length. */
const MQTT_FIXED_HEADER_MAX = 5;

/**
 * The largest WebSocket message taken: one whole MQTT packet of the largest size. ws reads the
 * announced frame length first and closes with 1009 before buffering a longer one, so an
 * unauthenticated connection holds at most a CONNECT's worth, as on TCP.
 */
function wsMaxPayload(maxPacketBytes: number): number {
  return maxPacketBytes + MQTT_FIXED_HEADER_MAX;
}

function attachWebSocket(server: http.Server | https.Server, broker: BrokerCore, opts: ListenerOptions, log: Logger): WebSocketServer {
  const wss = new WebSocketServer({
    server,
    path: opts.wsPath,
    maxPayload: wsMaxPayload(opts.maxPacketBytes),
    verifyClient: verifyOrigin(opts.allowedOrigins ?? [], (origin) => log.info({ origin }, 'WebSocket refused: origin not allowed')),
  });
  const transport = server instanceof https.Server ? 'wss' : 'ws';
  wss.on('connection', (socket, req) => {
    // ws's own error for a frame over maxPayload; it then closes with 1009 (RFC 6455 7.4.1).
    socket.on('error', (err: Error & { code?: string }) => {
      if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') opts.onFrameTooLarge?.(transport);
    });
    const stream = createWebSocketStream(socket);
    stream.on('error', (err) => log.debug({ err: err.message }, 'websocket stream error'));
    broker.handle(stream, req);
  });
  return wss;
}

export async function startListeners(broker: BrokerCore, opts: ListenerOptions, log: Logger): Promise<Listeners> {
  const servers: net.Server[] = [];
  const sockets: WebSocketServer[] = [];
  const ports: Listeners['ports'] = {};
  let stopReloads = () => {};
  const handle = (conn: net.Socket) => {
    if (conn.destroyed) return;
    coalesceWrites(conn);
    broker.handle(conn);
  };
  // Connection limits apply to the raw socket, before any TLS handshake or WebSocket upgrade (and
  // after a PROXY header, so that they count the client's address).
  const admit = (socket: net.Socket) => opts.admit?.(socket) ?? true;
  const trusts = trustedProxies(opts.trustedProxies ?? []);
  // Node makes a TLS socket of its own from the raw one, reporting the proxy's address again: the
  // client's is passed on under the raw socket's peer (proxy address:port, unique while it is open).
  const clientsByPeer = new Map<string, ClientAddress>();
  const peerOf = (socket: net.Socket) => `${socket.remoteAddress}:${socket.remotePort}`;

  const accept = (server: net.Server, socket: net.Socket) => {
    if (!trusts(socket.remoteAddress)) {
      if (admit(socket)) server.emit('connection', socket);
      return;
    }
    const peer = peerOf(socket);
    readProxyHeader(socket, opts.proxyHeaderTimeoutMs ?? 10_000).then(
      (client) => {
        if (client) {
          showClientAddress(socket, client);
          if (server instanceof tls.Server) {
            clientsByPeer.set(peer, client);
            socket.once('close', () => clientsByPeer.delete(peer));
          }
        }
        if (admit(socket)) server.emit('connection', socket);
      },
      (err: Error) => {
        log.info({ proxy: peer, err: err.message }, 'connection from a trusted proxy refused: no valid PROXY header');
        socket.destroy();
      },
    );
  };
  /** The server that listens for `server`: a plain TCP one that admits each socket, then hands it over. */
  const listening = (server: net.Server): net.Server => {
    if (server instanceof tls.Server) {
      server.prependListener('secureConnection', (socket: tls.TLSSocket) => {
        const client = clientsByPeer.get(peerOf(socket));
        if (client) showClientAddress(socket, client);
      });
    }
    const front = net.createServer((socket) => accept(server, socket));
    servers.push(front, server);
    return front;
  };

  try {
    if (opts.mqttPort !== 'off') {
      ports.mqtt = await listen(listening(net.createServer(handle)), opts.mqttPort, opts.host);
    }
    if (opts.wsPort !== 'off') {
      const server = http.createServer((_req, res) => res.writeHead(426).end('MQTT over WebSocket: connect to ' + opts.wsPath));
      sockets.push(attachWebSocket(server, broker, opts, log));
      ports.ws = await listen(listening(server), opts.wsPort, opts.host);
    }
    if (opts.tls) {
      const credentials = opts.tls;
      const tlsServers: tls.Server[] = [];
      if (opts.mqttsPort !== 'off') {
        const server = tls.createServer(credentials.serverOptions(), handle);
        server.on('tlsClientError', (err) => log.debug({ err: err.message }, 'TLS handshake failed'));
        tlsServers.push(server);
        ports.mqtts = await listen(listening(server), opts.mqttsPort, opts.host);
      }
      if (opts.wssPort !== 'off') {
        const server = https.createServer(credentials.serverOptions(), (_req, res) => res.writeHead(426).end('MQTT over WebSocket: connect to ' + opts.wsPath));
        server.on('tlsClientError', (err) => log.debug({ err: err.message }, 'TLS handshake failed'));
        sockets.push(attachWebSocket(server, broker, opts, log));
        tlsServers.push(server);
        ports.wss = await listen(listening(server), opts.wssPort, opts.host);
      }
      stopReloads = credentials.onReload((options) => {
        for (const server of tlsServers) server.setSecureContext(options);
      });
    }
  } catch (err) {
    stopReloads();
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    throw err;
  }
  log.info({ listeners: openListeners(ports) }, 'MQTT listeners open');

  return {
    ports,
    async close() {
      stopReloads();
      for (const ws of sockets) ws.close();
      await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    },
  };
}
