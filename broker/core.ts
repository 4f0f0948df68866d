/**
 * What Roost's broker modules see of the MQTT broker: connections, messages, four step lists and a
 * few events. broker/aedes/core.ts is the one implementation (on Aedes); nothing here names Aedes,
 * so limits, bans, auth, cluster, webhooks and the store register with these lists and events and
 * never hold an Aedes object. Models: Mosquitto's plugin callbacks (one list per event, run in
 * order) and Fastify's hooks (a name checked when added, the order of registration).
 *
 * The steps, as a CONNECT, SUBSCRIBE, PUBLISH and delivery meet them:
 *   connect    (conn, login)   → go on | { refuse: CONNACK return code }; all passed: CONNACK 0
 *   subscribe  (conn, filter)  → go on | 'refuse' (SUBACK 0x80 for that filter) | Error (closed)
 *   publish    (conn, message) → go on | { drop: reason } (acknowledged, routed nowhere) | Error (closed)
 *   deliver    (conn, message) → true | false (this connection does not get it); synchronous, per subscriber
 * They run in the order they were added, which server/roost.ts keeps in one place.
 */
import type { SessionExpiryStore } from './session-expiry.js';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';

/** A client's connection, as long as it lasts (steps may key their state on the object). */
export interface Connection {
  /** The client identifier (empty until its CONNECT is read). */
  readonly id: string;
  /** Clean session (3.1.1) or clean start. */
  readonly clean: boolean;
  readonly connected: boolean;
  readonly closed: boolean;
  close(): void;
}

/** A PUBLISH as Roost handles it; v5 properties ride along untouched. */
export interface Message {
  topic: string;
  payload: Buffer;
  qos: 0 | 1 | 2;
  retain: boolean;
  dup?: boolean;
  messageId?: number;
  properties?: Record<string, unknown>;
  /**
   * On a will: whose it is, set by a connect step when the CONNECT was accepted and stored with the
   * will, so that it is checked against its owner's rules whoever publishes it (issue 22 #1).
   */
  owner?: WillOwner;
}

export interface WillOwner {
  /** The device that connected with it; null for an anonymous client. */
  username: string | null;
  clientId: string;
}

export interface Subscription {
  topic: string;
  qos: 0 | 1 | 2;
  /** A shared subscription's (`$share/{group}/{filter}`) group and filter: the ACL applies to the filter. */
  share?: { group: string; filter: string };
}

/** What a CONNECT brings to be checked. */
export interface Login {
  username?: string;
  password?: Buffer;
  /** The will the CONNECT carries: it is published later, so it is checked now. */
  will?: Message;
}

/** CONNACK return codes of MQTT 3.1.1 (3.2.2.3) a connect step may answer with. */
export type ConnackRefusal = 2 | 3 | 4 | 5;
/**
 * `refuse` is the MQTT 3.1.1 return code; `reasonCode` the MQTT 5 one where it says more than the
 * return code's own (0x86 for 4, 0x87 for 5, 0x85 for 2, 0x88 for 3): 0x8A banned, 0x9F throttled...
 */
export type ConnectVerdict = { refuse: ConnackRefusal; reason: string; reasonCode?: number } | undefined;
export type ConnectStep = (conn: Connection, login: Login, next: (verdict?: ConnectVerdict) => void) => void;

export type SubscribeVerdict = 'refuse' | Error | undefined;
export type SubscribeStep = (conn: Connection, sub: Subscription, next: (verdict?: SubscribeVerdict) => void) => void;

/** acl: no write access; payload_size: over ROOST_MAX_PAYLOAD_BYTES; payload_format: MQTT 5 says UTF-8 and it is not. */
export type DropReason = 'acl' | 'payload_size' | 'payload_format';
export type PublishVerdict = { drop: DropReason } | Error | undefined;
/**
 * `conn` is null for a will published with no connection of its own: stored by a node that was
 * killed, or taken over by another connection; its `owner` says whose it is. (Roost's own publishes,
 * API and $SYS, do not pass the publish steps: the caller stored them if it should.)
 */
export type PublishStep = (conn: Connection | null, message: Message, next: (verdict?: PublishVerdict) => void) => void;

/** Synchronous and on the hot path: runs once per message per subscriber. */
export type DeliverStep = (conn: Connection, message: Message) => boolean;

/** An ordered list of named steps; a name is added once. */
export class StepList<S> {
  readonly #steps: Array<{ name: string; step: S }> = [];
  #list: S[] = [];

  constructor(readonly point: string) {}

  add(name: string, step: S): void {
    if (this.#steps.some((s) => s.name === name)) throw new Error(`${this.point} step "${name}" is already registered`);
    this.#steps.push({ name, step });
    this.#list = this.#steps.map((s) => s.step);
  }

  get names(): string[] {
    return this.#steps.map((s) => s.name);
  }

  /** The steps, in order (the same array until a step is added). */
  get list(): readonly S[] {
    return this.#list;
  }
}

export interface BrokerEvents {
  /** CONNECT accepted and CONNACK 0 sent. */
  connected: (conn: Connection) => void;
  /** Its stored session is restored (queued messages are on their way). */
  ready: (conn: Connection) => void;
  disconnected: (conn: Connection) => void;
  /** A CONNACK other than 0 was sent; `username` is what the CONNECT gave, when it got that far. */
  refused: (conn: Connection, returnCode: number, username: string | undefined) => void;
  /** A message was routed (from a client, or from Roost with conn null). */
  published: (message: Message, conn: Connection | null) => void;
  subscribed: (subs: Subscription[], conn: Connection) => void;
  unsubscribed: (filters: string[], conn: Connection) => void;
  /** An error that closed a connection; `afterConnect` false: before or during its CONNECT. */
  connectionError: (conn: Connection, err: Error, afterConnect: boolean) => void;
}

export interface BrokerCore {
  /** This node's id (the $SYS topics and the cluster use it). */
  readonly id: string;
  readonly connectionCount: number;
  /** Once close() was called. */
  readonly closed: boolean;
  readonly steps: {
    connect: StepList<ConnectStep>;
    subscribe: StepList<SubscribeStep>;
    publish: StepList<PublishStep>;
    deliver: StepList<DeliverStep>;
  };
  on<E extends keyof BrokerEvents>(event: E, listener: BrokerEvents[E]): () => void;
  /** The connected client with this id on this node. */
  connection(clientId: string): Connection | undefined;
  connections(): Connection[];
  /** Routes a message as the broker (no publish steps: the caller stored it if it should be). */
  publish(message: Message): Promise<void>;
  /** Follows a filter inside this process (the API's live stream); returns the unfollow. */
  follow(filter: string, onMessage: (message: Message) => void): () => void;
  /** The retained messages matching the filters, from the session store. */
  retained(filters: string[]): AsyncIterable<Message>;
  /** Serves one accepted connection (a TCP/TLS socket, or a WebSocket stream with its upgrade request). */
  handle(stream: Duplex, req?: IncomingMessage): void;
  /**
   * MQTT 5 session expiry kept in `store` rather than in a timer of this process: from now on a
   * session due there is wiped by this node's sweep unless a client with its id is live here or, per
   * `liveElsewhere`, on another node. Returns the stop (the sweep ends; pending writes are awaited).
   */
  keepSessionExpiry(store: SessionExpiryStore, liveElsewhere?: (clientIds: string[]) => Promise<Set<string>>): () => Promise<void>;
  close(): Promise<void>;
}
