/**
 * What Roost adds to Aedes 2.0.0-beta.1's MQTT 5, each naming the upstream behaviour it covers so
 * that it can go when Aedes has it:
 *   keep alive   Aedes closes a client silent for 1.5 × its keep alive by destroying the socket
 *                (lib/handlers/connect.js keepaliveTimeout emits 'error'), which drops anything
 *                written just before; a v5 client is instead sent DISCONNECT 0x8D (Keep alive
 *                timeout, 3.14.2.1) and closed once it is written, with the same 'clientError'
 *   max packet   Aedes 2 keeps the client's Maximum Packet Size and sends larger packets anyway; a
 *                PUBLISH over it is discarded as if sent (MQTT-3.1.2-24, outgoing-flows.ts)
 *   receive max  Aedes 2 keeps the client's Receive Maximum and sends every delivery at once; QoS 1/2
 *   (client's)   PUBLISHes beyond it, live or from a resumed session's queue, wait until a PUBACK or
 *                PUBCOMP frees a slot (MQTT-3.3.4-7, outgoing-flows.ts)
 *   receive max  Aedes 2 advertises Roost's Receive Maximum and does not enforce it (aedes.js
 *                receiveMaximum: "advisory"); a v5 client with more QoS 1/2 PUBLISHes unacknowledged
 *                than that gets DISCONNECT 0x93 (Receive Maximum exceeded, MQTT-3.3.4-9)
 *   topic alias  Aedes 2 resolves the client's topic aliases and uses none towards it; with
 *   (outbound)   ROOST_MAX_TOPIC_ALIASES_OUT Roost gives the first topics it sends a client that allows
 *                aliases one each (outgoing-topic-aliases.ts)
 *   problem info Aedes 2 leaves the Reason String out of its own PUBACK/PUBREC for a client with Request
 *                Problem Information 0; Roost holds MQTT-3.1.2-29 for every packet it writes
 *                (problem-information.ts)
 * Elsewhere in the seam: Server Keep Alive (keep-alive-limit.ts), reason codes of refused CONNECTs
 * and Session Present (connack.ts), PUBACK 0x87 for a PUBLISH the ACL refuses (publish-steps.ts),
 * DISCONNECT 0x95 for a packet over the limit (client-limits.ts), DISCONNECT 0x98 for a kick or a ban
 * (connection.ts), the queue of a resumed session (upstream-fixes.ts), shared subscriptions
 * (shared-subscriptions.ts), every matching Subscription Identifier (subscription-ids.ts), the wills
 * with a delay a dead node left (stray-wills.ts).
 */
import type { Aedes, Client } from 'aedes';
import { keepsSession } from './connection.js';
import { limitInFlight, limitOutgoingPackets, noteInboundPublish } from './outgoing-flows.js';
import { useTopicAliases } from './outgoing-topic-aliases.js';
import { withholdProblemInformation } from './problem-information.js';

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
/** Without Roost's limits (a bare core): ROOST_MAX_CLIENT_BUFFER_BYTES's default. */
const DEFAULT_MAX_HELD_BYTES = 8_388_608;

export function completeMqtt5(broker: Aedes, opts: { receiveMaximum?: number; maxHeldBytes?: number; maxTopicAliasesOut?: number } = {}): void {
  // MQTT-3.1.2-24: never send a v5 client a packet over its Maximum Packet Size (Aedes 2 stores the
  // value, connect.js: "nor honour the client's maximumPacketSize"). Such a PUBLISH is discarded as if
  // sent: a QoS 1/2 one leaves the session's queue.
  const persistence = (broker as unknown as { persistence: { outgoingClearMessageId(client: Client, packet: object): Promise<unknown> } }).persistence;
  (broker as unknown as { on(e: 'client', fn: (client: Client) => void): void }).on('client', (client) => {
    const c = client as unknown as { version?: number | null; maximumPacketSize?: number; receiveMaximum?: number; conn: object; clean: boolean };
    if (c.version !== 5) return;
    if (c.maximumPacketSize) {
      limitOutgoingPackets(c.conn, c.maximumPacketSize, (packet) => {
        if ((packet.qos ?? 0) > 0 && packet.messageId !== undefined) persistence.outgoingClearMessageId(client, packet).catch(() => {});
      });
    }
    if (c.receiveMaximum !== undefined && c.receiveMaximum < 65_535) limitInFlight(c.conn, c.receiveMaximum, opts.maxHeldBytes ?? DEFAULT_MAX_HELD_BYTES);
  });

  // What a v5 CONNECT asks of what Roost writes (3.1.2.11.5, 3.1.2.11.7), noted before any answer:
  // Aedes keeps no Topic Alias Maximum of the client's, and Request Problem Information only privately.
  const preConnect = broker.preConnect;
  broker.preConnect = function noteWhatV5ClientTakes(client, packet, callback) {
    if (packet.protocolVersion === 5 && packet.properties) {
      const conn = (client as unknown as { conn: object }).conn;
      useTopicAliases(conn, Math.min(packet.properties.topicAliasMaximum ?? 0, opts.maxTopicAliasesOut ?? 0));
      if (packet.properties.requestProblemInformation === false) withholdProblemInformation(conn);
    }
    return preConnect.call(this, client, packet, callback);
  };

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

/** A Session Expiry Interval of 0xFFFFFFFF: the session never expires (3.1.2.11.2). */
const NEVER_EXPIRES = 0xffffffff;
/** How often a node looks for sessions whose expiry has come. */
const SWEEP_MS = 1000;

interface ExpiryInternals {
  _takingOver: Set<string>;
  clients: Record<string, unknown>;
  id: string;
  scheduleSessionExpiry(client: Client): void;
  clearSessionExpiry(clientId: string): void;
  _wipeSession(client: object): void;
  persistence: {
    outgoingStream(client: { id: string }): AsyncIterable<{ messageId?: number }>;
    outgoingClearMessageId(client: { id: string }, packet: { messageId?: number }): Promise<unknown>;
  };
}

export interface SessionExpiryKeeper {
  schedule(clientId: string, seconds: number): Promise<void>;
  cancel(clientId: string): Promise<void>;
  due(limit?: number): Promise<string[]>;
}

/**
 * Session expiry in a store shared by every node and kept across restarts, for what Aedes 2 does with
 * a timer in the memory of the node the client left (aedes.js scheduleSessionExpiry): a session whose
 * node restarted was never wiped, and one whose client reconnected to another node was wiped by the
 * first node's timer. Here a v5 client leaving with an interval schedules a row; a client connecting
 * with the id cancels it; a due session not live anywhere is wiped as Aedes would (_wipeSession:
 * subscriptions, will, queued messages; protocol-guards.ts ends its record with it).
 */
export function keepSessionExpiry(
  broker: Aedes,
  store: SessionExpiryKeeper,
  opts: { log: { warn(obj: object, msg: string): void }; liveElsewhere?: (clientIds: string[]) => Promise<Set<string>> },
): () => Promise<void> {
  const internals = broker as unknown as ExpiryInternals;
  const pending = new Set<Promise<void>>();
  const track = (p: Promise<void>) => {
    pending.add(p);
    void p.finally(() => pending.delete(p));
  };

  const schedule = internals.scheduleSessionExpiry;
  internals.scheduleSessionExpiry = function scheduleInStore(this: ExpiryInternals, client: Client) {
    const c = client as unknown as { id: string; version?: number | null; sessionExpiryInterval?: number };
    const interval = c.sessionExpiryInterval ?? 0;
    // Also while the broker shuts down (Aedes then arranges nothing): the restart must find it.
    if (c.version === 5 && interval > 0 && interval < NEVER_EXPIRES && !this._takingOver.has(c.id)) {
      this.clearSessionExpiry(c.id);
      track(
        store.schedule(c.id, interval).catch((err: Error) => {
          opts.log.warn({ clientId: c.id, err: err.message }, 'could not store the session expiry; this node keeps a timer instead');
          schedule.call(this, client);
        }),
      );
      return;
    }
    schedule.call(this, client);
  };
  const events = broker as unknown as { on(e: 'client', fn: (client: Client) => void): void; off(e: 'client', fn: (client: Client) => void): void };
  const onClient = (client: Client) => {
    // A session that ends with this connection is not resumed: a row left for the id wipes nothing of it.
    if (!keepsSession(client as never)) return;
    track(store.cancel(client.id).catch((err: Error) => opts.log.warn({ clientId: client.id, err: err.message }, 'could not cancel a session expiry')));
  };
  events.on('client', onClient);

  const wipe = async (clientId: string) => {
    const persistence = internals.persistence;
    const session = {
      id: clientId,
      // What Aedes's Client.emptyOutgoingQueue does, for a client that is not here.
      emptyOutgoingQueue(done: () => void) {
        (async () => {
          const queued: Array<{ messageId?: number }> = [];
          for await (const packet of persistence.outgoingStream({ id: clientId })) queued.push(packet);
          for (const packet of queued) await persistence.outgoingClearMessageId({ id: clientId }, packet).catch(() => {});
        })().then(done, done);
      },
    };
    internals._wipeSession(session);
  };

  let sweeping = false;
  const sweep = async () => {
    if (sweeping) return;
    sweeping = true;
    try {
      const due = await store.due();
      if (due.length === 0) return;
      const elsewhere = opts.liveElsewhere ? await opts.liveElsewhere(due) : new Set<string>();
      for (const clientId of due) {
        if (internals.clients[clientId] || elsewhere.has(clientId)) continue; // connected again: not this session's end
        await wipe(clientId);
        (broker as unknown as { emit(e: string, c: object): void }).emit('sessionExpired', { id: clientId });
      }
    } catch (err) {
      opts.log.warn({ err: (err as Error).message }, 'session expiry sweep failed; it runs again in a second');
    } finally {
      sweeping = false;
    }
  };
  const timer = setInterval(() => void sweep(), SWEEP_MS);
  timer.unref();
  void sweep();

  return async () => {
    clearInterval(timer);
    events.off('client', onClient);
    await Promise.all([...pending]);
  };
}
