/**
 * Shared subscriptions on Aedes 2.0.0-beta.1, which has none: it refuses `$share/` from a v5 client
 * with SUBACK 0x9E (handlers/subscribe.js doSubscribe), says so in every v5 CONNACK
 * (sharedSubscriptionAvailable=false), and would subscribe a 3.1.1 client to the literal filter.
 * broker/shared-subscriptions.ts decides who gets a message; here it is wired into Aedes:
 *   SUBSCRIBE  a v5 client's `$share/...` filter passes Aedes's refusal (SharedFilter below), and
 *              every client's goes through Aedes's own steps (authorize: the subscribe steps, with
 *              the ACL on the filter; the session store; the client's subscription and its
 *              delivery function, with its QoS, no-local, retain-as-published and identifier) up to
 *              broker.subscribe, which makes the client a member instead of an mqemitter listener.
 *   route      one mqemitter listener per group on each node, on the group's filter; the node the
 *              message entered on (packet.brokerId) picks the member and delivers to it, or hands
 *              the message to the member's node on an internal topic no client can name (it holds
 *              U+0000, which Roost's parser refuses).
 *   members    each node announces its members on another such topic, on change and every 2 s.
 *   QoS 1/2    a message a member has not acknowledged (PUBACK or PUBREC) when its connection ends
 *              goes to another member (MQTT 5.0 4.8.2 "SHOULD"), and leaves the member's session.
 *   offline    a member whose session stays when its connection closes stays a member; with no
 *              member connected anywhere, a message goes into an offline member's session.
 * A group with no member at all drops the message. A node that stops leaves its groups at once (its
 * last announcement is empty); one that dies, once not heard from for 6 s.
 */
import type { Aedes, AedesPublishPacket, Client } from 'aedes';
import type { Logger } from '../../lib/log.js';
import { MEMBERS_ANNOUNCE_MS, ShareGroups, parseShare, type AnnouncedMembers, type ShareName } from '../shared-subscriptions.js';
import type { Connection } from '../core.js';
import { keepsSession, protocolLevel } from './connection.js';
import { offerSharedSubscriptions, watchDeliveries, type WrittenPacket } from './outgoing-flows.js';

type Deliver = (packet: AedesPublishPacket, callback: () => void) => void;
type Packet = AedesPublishPacket & { brokerId?: string; brokerCounter?: number; messageId?: number };

interface MqEmitter {
  on(topic: string, fn: Deliver, done?: () => void): void;
  removeListener(topic: string, fn: Deliver, done?: () => void): void;
  emit(packet: object, done?: (err?: Error) => void): void;
}

/** The Aedes 2 Client fields read here (lib/client.js). */
interface MemberClient {
  id: string;
  closed: boolean;
  clean: boolean;
  conn: { once(event: 'close', fn: () => void): void };
  subscriptions: Record<string, { qos: 0 | 1 | 2; func: Deliver } | undefined>;
  _parser: { prependListener(event: 'packet', fn: (packet: { cmd: string; subscriptions?: Array<{ topic: string }> }) => void): void };
}

/**
 * A v5 client's `$share/...` filter as a String whose startsWith answers false, so that Aedes 2's
 * doSubscribe does not refuse it with 0x9E; it is a plain string again in authorizeSubscribe
 * (admitSharedFilter), before anything else reads it. Goes when Aedes serves shared subscriptions.
 */
class SharedFilter extends String {
  override startsWith(): boolean {
    return false;
  }
}

/** Internal topics: they hold U+0000, which no client's topic or filter may (MQTT-1.5.4-2, Roost's parser). */
const MEMBERS_TOPIC = '$\u0000roost/share/members';
const handOverTopic = (node: string) => `$\u0000roost/share/to/${node}`;

const DOLLAR = 36;
const PLUS = 43;
const HASH = 35;

/**
 * For authorizeSubscribe, before the subscribe steps: the subscription's topic made a plain string
 * again, and its share name if it is a shared one; 'invalid' for a malformed `$share/` filter, and
 * 'no-local' for a shared one with No Local set, which MQTT-3.8.3-4 makes a Protocol Error.
 */
export function admitSharedFilter(sub: { topic: string; nl?: boolean }): ShareName | 'invalid' | 'no-local' | undefined {
  if (typeof sub.topic !== 'string') sub.topic = String(sub.topic);
  const share = parseShare(sub.topic);
  if (share && share !== 'invalid' && sub.nl) return 'no-local';
  return share;
}

export interface SharedSubscriptions {
  /** For authorizeSubscribe, once a shared subscription is granted: this client is about to become a member. */
  expect(client: unknown, topic: string): void;
  /** Leaves every group (the other nodes hear it at once) and stops announcing. */
  close(): void;
}

export function installSharedSubscriptions(broker: Aedes, opts: { log: Logger }): SharedSubscriptions {
  const b = broker as unknown as {
    id: string;
    counter: number;
    mq: MqEmitter;
    persistence: {
      outgoingEnqueue(sub: { clientId: string; topic: string; qos: number }, packet: object): Promise<unknown>;
      outgoingClearMessageId(client: unknown, packet: { messageId: number }): Promise<unknown>;
    };
    subscribe(topic: string, fn: Deliver, done?: () => void): void;
    unsubscribe(topic: string, fn: Deliver, done?: () => void): void;
    handle: Aedes['handle'];
    _wipeSession(client: { id: string }): void;
  };
  const node = b.id;
  const groups = new ShareGroups(node);
  const log = opts.log;
  offerSharedSubscriptions();

  // SUBSCRIBE: a v5 client's shared filters pass Aedes's refusal.
  const handle = b.handle;
  b.handle = function handleWithSharedFilters(conn, req) {
    const client = handle.call(broker, conn, req) as unknown as MemberClient;
    client._parser.prependListener('packet', (packet) => {
      if (packet.cmd !== 'subscribe' || protocolLevel(client as unknown as Client) !== 5) return;
      for (const sub of packet.subscriptions ?? []) if (sub.topic.startsWith('$share/')) sub.topic = new SharedFilter(sub.topic) as unknown as string;
    });
    return client as unknown as ReturnType<Aedes['handle']>;
  };

  /** key → client id → the delivery function Aedes made for that client's subscription. */
  const deliveries = new Map<string, Map<string, { client: MemberClient; func: Deliver }>>();
  /** key → the mqemitter listener routing the group's messages from this node. */
  const routes = new Map<string, { filter: string; route: Deliver }>();

  /** One listener per group known anywhere in the cluster; none for a group with no member left. */
  const syncRoutes = () => {
    const keys = new Set(groups.keys());
    for (const key of keys) {
      if (routes.has(key)) continue;
      const share = parseShare(key) as ShareName;
      const rooted = share.filter.charCodeAt(0) !== PLUS && share.filter.charCodeAt(0) !== HASH;
      const route: Deliver = (packet, cb) => {
        // MQTT-4.7.2-1: a filter starting with a wildcard matches no $-topic.
        if ((packet as Packet).brokerId !== node || (!rooted && packet.topic.charCodeAt(0) === DOLLAR)) return cb();
        dispatch(key, packet as Packet, undefined, cb);
      };
      routes.set(key, { filter: share.filter, route });
      b.mq.on(share.filter, route);
    }
    for (const [key, { filter, route }] of routes) {
      if (keys.has(key)) continue;
      routes.delete(key);
      b.mq.removeListener(filter, route);
    }
  };

  let announceTimer: NodeJS.Timeout | undefined;
  const announce = (hello = false) => {
    const payload = Buffer.from(JSON.stringify({ node, members: groups.announcement(), hello }));
    b.mq.emit({ topic: MEMBERS_TOPIC, payload, qos: 0, retain: false }, (err) => {
      if (err) log.debug({ err: err.message }, 'shared subscription members not announced; again in 2 s');
    });
  };
  let announceSoon: NodeJS.Immediate | undefined;
  const changed = () => {
    syncRoutes();
    announceSoon ??= setImmediate(() => {
      announceSoon = undefined;
      announce();
    });
  };
  const onMembers: Deliver = (packet, cb) => {
    try {
      const { node: from, members, hello } = JSON.parse(String(packet.payload)) as { node: string; members: AnnouncedMembers; hello?: boolean };
      if (from !== node) {
        groups.heard(from, members);
        syncRoutes();
        if (hello) announce();
      }
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'unreadable shared subscription announcement ignored');
    }
    cb();
  };
  b.mq.on(MEMBERS_TOPIC, onMembers);

  /** A message for a member on this node, handed over by the node it entered on. */
  const onHandOver: Deliver = (packet, cb) => {
    const { key, clientId, skip, message } = (packet as unknown as { share: { key: string; clientId: string; skip: string[]; message: Packet } }).share;
    deliverHere(key, clientId, message, new Set(skip), cb);
  };
  b.mq.on(handOverTopic(node), onHandOver);

  // An offline member's membership ends with its session (expired, or wiped by a Clean Start), and
  // when its client id connects anywhere: resuming, the session's subscriptions make it a member again.
  const wipeSession = b._wipeSession;
  b._wipeSession = function wipeSessionAndMemberships(client) {
    if (groups.dropOffline(client.id)) changed();
    return wipeSession.call(this, client);
  };
  const onNewClient: Deliver = (packet, cb) => {
    if (groups.dropOffline(String(packet.payload))) changed();
    cb();
  };
  b.mq.on('$SYS/+/new/clients', onNewClient);

  announce(true);
  announceTimer = setInterval(() => {
    if (groups.expire().length > 0) syncRoutes();
    announce();
  }, MEMBERS_ANNOUNCE_MS);
  announceTimer.unref();

  /** Sends the message to the group's next member; `skip`: clients it is not to go to again. */
  function dispatch(key: string, packet: Packet, skip: Set<string> | undefined, cb: () => void): void {
    const member = groups.choose(key, skip);
    if (!member) {
      log.debug({ group: key, topic: packet.topic }, 'shared subscription message dropped: the group has no member');
      return cb();
    }
    if (!member.online) {
      // No member connected anywhere: into an offline member's session (the session store is the
      // cluster's), as Aedes queues for a persistent subscriber; QoS 0 is not queued, as there.
      const qos = Math.min(packet.qos, member.qos) as 0 | 1 | 2;
      if (qos === 0) return cb();
      b.persistence.outgoingEnqueue({ clientId: member.clientId, topic: key, qos }, { ...packet, qos }).then(
        () => cb(),
        (err: Error) => {
          log.warn({ err: err.message, clientId: member.clientId, group: key }, 'shared subscription message not queued in an offline member\'s session; tried on another');
          dispatch(key, packet, new Set(skip).add(member.clientId), cb);
        },
      );
      return;
    }
    if (member.node === node) return deliverHere(key, member.clientId, packet, skip ?? new Set(), cb);
    const message = { ...packet };
    b.mq.emit({ topic: handOverTopic(member.node), payload: Buffer.alloc(0), qos: 0, retain: false, share: { key, clientId: member.clientId, skip: [...(skip ?? [])], message } }, (err) => {
      if (err) log.warn({ err: err.message, group: key }, 'shared subscription message not handed to its member\'s node');
      cb();
    });
  }

  /** Delivers to a member on this node, or to another member if this one is gone. */
  function deliverHere(key: string, clientId: string, packet: Packet, skip: Set<string>, cb: () => void): void {
    const member = deliveries.get(key)?.get(clientId);
    if (!member || member.client.closed) {
      skip.add(clientId);
      return dispatch(key, packet, skip, cb);
    }
    const qos = Math.min(packet.qos, member.client.subscriptions[key]?.qos ?? 0) as 0 | 1 | 2;
    const copy = { ...packet, qos } as Packet;
    if (qos === 0) return member.func(copy, cb);
    unacknowledged(member.client).track(key, copy);
    if (member.client.clean) return member.func(copy, cb);
    // Aedes queues a message for each persistent session its index finds subscribed (broker.publish,
    // outgoingEnqueueCombi) before delivering it, and delivery updates that entry: a member's `$share/`
    // filter is no such subscription, so its message is queued here.
    b.persistence.outgoingEnqueue({ clientId, topic: key, qos }, copy).then(
      () => member.func(copy, cb),
      (err: Error) => {
        log.warn({ err: err.message, clientId, group: key }, 'shared subscription message not queued in its member\'s session; sent to another member');
        skip.add(clientId);
        dispatch(key, packet, skip, cb);
      },
    );
  }

  /** Per member client: the shared messages sent and not yet acknowledged, to go elsewhere if it leaves. */
  const pendingOf = new WeakMap<MemberClient, ReturnType<typeof pendingFor>>();
  function unacknowledged(client: MemberClient) {
    let pending = pendingOf.get(client);
    if (!pending) pendingOf.set(client, (pending = pendingFor(client)));
    return pending;
  }
  function pendingFor(client: MemberClient) {
    const byMessage = new Map<string, { key: string; packet: Packet; messageId?: number }>();
    const byId = new Map<number, string>();
    const idOf = (p: { brokerId?: string; brokerCounter?: number }) => `${p.brokerId}:${p.brokerCounter}`;
    watchDeliveries(client.conn, {
      written(packet: WrittenPacket) {
        const id = idOf(packet as Packet);
        const entry = byMessage.get(id);
        if (entry && packet.messageId !== undefined) {
          entry.messageId = packet.messageId;
          byId.set(packet.messageId, id);
        }
      },
      received(messageId) {
        const id = byId.get(messageId);
        if (id === undefined) return;
        byId.delete(messageId);
        byMessage.delete(id);
      },
    });
    client.conn.once('close', () => {
      if (byMessage.size === 0) return;
      // Aedes has closed the client (client.closed) and takes it out of its groups: no member is
      // skipped, so that a connection taking its client id over may have them as any member would.
      for (const { key, packet, messageId } of byMessage.values()) {
        // Out of the member's session first, so that it is not sent again when the member is back.
        if (!client.clean && messageId !== undefined) b.persistence.outgoingClearMessageId(client, { ...packet, messageId }).catch(() => {});
        // A new number from this node: the other member's dedupe (Aedes's duplicates, by broker and
        // counter) would take the original's for one it has seen, having had later ones.
        const { messageId: _sent, ...message } = packet;
        dispatch(key, { ...message, brokerId: node, brokerCounter: ++b.counter } as Packet, undefined, () => {});
      }
      log.info({ clientId: client.id, messages: byMessage.size }, 'shared subscription messages unacknowledged by a leaving member sent to others in its groups');
      byMessage.clear();
      byId.clear();
    });
    return {
      track(key: string, packet: Packet) {
        byMessage.set(idOf(packet), { key, packet });
      },
    };
  }

  // A subscription Aedes makes for a client (live or restored session) on a `$share/` filter makes
  // the client a member; the client is the one whose subscription holds this delivery function.
  const subscribe = b.subscribe;
  b.subscribe = function subscribeShared(topic, func, done) {
    if (typeof topic !== 'string' || !topic.startsWith('$share/') || parseShare(topic) === 'invalid') return subscribe.call(this, topic, func, done);
    const client = memberOf(topic, func);
    if (client) {
      let members = deliveries.get(topic);
      if (!members) deliveries.set(topic, (members = new Map()));
      members.set(client.id, { client, func });
      groups.addLocal(topic, client.id, client.subscriptions[topic]!.qos);
      changed();
    }
    if (done) setImmediate(done);
  };
  const unsubscribe = b.unsubscribe;
  b.unsubscribe = function unsubscribeShared(topic, func, done) {
    if (typeof topic !== 'string' || !topic.startsWith('$share/') || parseShare(topic) === 'invalid') return unsubscribe.call(this, topic, func, done);
    const members = deliveries.get(topic);
    for (const [clientId, member] of members ?? []) {
      if (member.func !== func) continue;
      members!.delete(clientId);
      if (members!.size === 0) deliveries.delete(topic);
      // Aedes unsubscribes a closing client's filters too: one whose session stays is a member still.
      if (member.client.closed && keepsSession(member.client as unknown as Connection)) groups.setOffline(topic, clientId);
      else groups.removeLocal(topic, clientId);
      changed();
    }
    if (done) setImmediate(done);
  };

  /** Aedes sets the client's subscription (with this function) just before it calls broker.subscribe. */
  const pendingMembers = new Map<string, Set<MemberClient>>();
  function memberOf(topic: string, func: Deliver): MemberClient | undefined {
    const waiting = pendingMembers.get(topic);
    for (const client of waiting ?? []) {
      if (client.subscriptions[topic]?.func !== func) continue;
      waiting!.delete(client);
      if (waiting!.size === 0) pendingMembers.delete(topic);
      return client;
    }
    return undefined;
  }

  return {
    close() {
      clearInterval(announceTimer);
      announceTimer = undefined;
      if (announceSoon) clearImmediate(announceSoon);
      for (const key of [...deliveries.keys()]) for (const clientId of deliveries.get(key)!.keys()) groups.removeLocal(key, clientId);
      deliveries.clear();
      announce(); // empty: the other nodes drop this node's members now
    },
    expect(client: unknown, topic: string) {
      let waiting = pendingMembers.get(topic);
      if (!waiting) pendingMembers.set(topic, (waiting = new Set()));
      waiting.add(client as MemberClient);
    },
  };
}
