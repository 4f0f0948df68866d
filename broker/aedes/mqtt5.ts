/**
 * What Roost adds to Aedes 2.0.0-beta.1's MQTT 5, each naming the upstream behaviour it covers so
 * that it can go when Aedes has it:
 *   keep alive   Aedes closes a client silent for 1.5 × its keep alive by destroying the socket
 *                (lib/handlers/connect.js keepaliveTimeout emits 'error'), which drops anything
 *                written just before; a v5 client is instead sent DISCONNECT 0x8D (Keep alive
 *                timeout, 3.14.2.1) and closed once it is written, with the same 'clientError'
 *   receive max  Aedes 2 advertises Receive Maximum and does not enforce it (aedes.js
 *                receiveMaximum: "advisory"); a v5 client with more QoS 1/2 PUBLISHes unacknowledged
 *                than that gets DISCONNECT 0x93 (Receive Maximum exceeded, MQTT-3.3.4-9)
 * Elsewhere in the seam: reason codes of refused CONNECTs and Session Present (connack.ts), PUBACK
 * 0x87 for a PUBLISH the ACL refuses (publish-steps.ts), DISCONNECT 0x95 for a packet over the limit
 * (client-limits.ts), DISCONNECT 0x98 for a kick or a ban (connection.ts), the queue of a resumed
 * session (upstream-fixes.ts).
 */
import type { Aedes, Client } from 'aedes';
import { noteInboundPublish } from './outgoing-flows.js';

/** MQTT 5 DISCONNECT reason 0x8D (3.14.2.1). */
const KEEP_ALIVE_TIMEOUT = 0x8d;

interface V5Client {
  version?: number | null;
  conn: object;
  connected: boolean;
  closed: boolean;
  emit(event: string, ...args: unknown[]): boolean;
  disconnect(opts: { reasonCode: number }, done: () => void): void;
}

/** MQTT 5 DISCONNECT reason 0x93 (3.14.2.1). */
const RECEIVE_MAXIMUM_EXCEEDED = 0x93;

export function completeMqtt5(broker: Aedes, opts: { receiveMaximum?: number } = {}): void {
  const receiveMaximum = opts.receiveMaximum;
  if (receiveMaximum) {
    // Outermost of the authorizePublish wrappers: a PUBLISH over the window goes no further.
    const authorizePublish = broker.authorizePublish;
    broker.authorizePublish = function receiveMaximumFirst(client, packet, done) {
      const c = client as unknown as V5Client | null;
      if (c && c.version === 5 && packet.qos > 0 && packet.messageId !== undefined && !noteInboundPublish(c.conn, packet.messageId, receiveMaximum)) {
        // The batch's done is not called: the connection ends here, and Aedes's reading with it.
        c.disconnect({ reasonCode: RECEIVE_MAXIMUM_EXCEEDED }, () => {});
        return;
      }
      return authorizePublish.call(this, client, packet, done);
    };
  }

  const events = broker as unknown as { on(e: 'keepaliveTimeout', fn: (client: Client) => void): void; emit(e: string, ...a: unknown[]): boolean };
  events.on('keepaliveTimeout', (client) => {
    const c = client as unknown as V5Client;
    if (c.version !== 5 || !c.connected || c.closed || typeof c.disconnect !== 'function') return;
    // Aedes emits the client's 'error' right after this event: that one error is reported as Aedes
    // would (clientError) and the close is the DISCONNECT's.
    const emit = c.emit;
    c.emit = function takeKeepAliveError(this: V5Client, event: string, ...args: unknown[]) {
      c.emit = emit;
      const err = args[0];
      if (event === 'error' && err instanceof Error && err.message === 'keep alive timeout') {
        events.emit('clientError', client, err);
        c.disconnect({ reasonCode: KEEP_ALIVE_TIMEOUT }, () => {});
        return true;
      }
      return emit.call(this, event, ...args);
    };
  });
}
