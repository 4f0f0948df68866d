/**
 * Shared subscriptions, `$share/{group}/{filter}` (MQTT 5.0 4.8.2; also taken from 3.1.1 clients, as
 * Mosquitto and EMQX do): each message matching the filter goes to one member of the group, across
 * every node of a cluster.
 *
 * Who decides: the node where the message entered the broker (its brokerId). Every node knows every
 * member, its own exactly and the others' from what they announce (the seam carries the
 * announcements, broker/aedes/shared-subscriptions.ts), and picks members in turns. A node that is
 * handed a message for a member gone meanwhile picks again among the others.
 *
 * A member with a persistent session stays a member while it is offline: a message goes to a
 * connected member when the group has one, else into an offline member's session (in turns), as
 * Mosquitto and VerneMQ do; it gets them when it is back.
 */

/** `$share/{group}/{filter}` taken apart; undefined when the topic is no shared subscription. */
export interface ShareName {
  group: string;
  filter: string;
}

export const SHARE_PREFIX = '$share/';

/**
 * The group and filter of a shared subscription; 'invalid' for one MQTT 5.0 4.8.2 forbids: an empty
 * share name or one holding `+` or `#` (MQTT-4.8.2-1), no filter after it (MQTT-4.8.2-2).
 */
export function parseShare(topic: string): ShareName | 'invalid' | undefined {
  if (!topic.startsWith(SHARE_PREFIX)) return undefined;
  const slash = topic.indexOf('/', SHARE_PREFIX.length);
  if (slash < 0) return 'invalid';
  const group = topic.slice(SHARE_PREFIX.length, slash);
  const filter = topic.slice(slash + 1);
  if (group.length === 0 || filter.length === 0 || group.includes('+') || group.includes('#')) return 'invalid';
  return { group, filter };
}

/** One member of a group: a client on a node, subscribed at a QoS; offline, its session holds the subscription. */
export interface ShareMember {
  node: string;
  clientId: string;
  qos: 0 | 1 | 2;
  online: boolean;
}

/** What a node announces: each of its members as [the `$share/...` filter, client id, QoS, 1 if offline]. */
export type AnnouncedMembers = Array<[string, string, 0 | 1 | 2, 1?]>;

/** A node not heard from for this long has left every group (its announcements come every 2 s). */
export const MEMBERS_STALE_MS = 6_000;
export const MEMBERS_ANNOUNCE_MS = 2_000;

/**
 * The members of every group in the cluster as this node knows them, and the turn of each group.
 * Keys are the whole `$share/{group}/{filter}`: two groups with one filter each get every message.
 */
export class ShareGroups {
  readonly #node: string;
  /** key → client id → QoS and whether it is connected, on this node. */
  readonly #local = new Map<string, Map<string, { qos: 0 | 1 | 2; online: boolean }>>();
  /** node → its members and when it was last heard. */
  readonly #remote = new Map<string, { members: AnnouncedMembers; heardAt: number }>();
  /** key → every member, in one order all turns follow (rebuilt on change). */
  #byKey: Map<string, ShareMember[]> | undefined;
  readonly #turn = new Map<string, number>();

  constructor(node: string) {
    this.#node = node;
  }

  addLocal(key: string, clientId: string, qos: 0 | 1 | 2): void {
    let members = this.#local.get(key);
    if (!members) this.#local.set(key, (members = new Map()));
    members.set(clientId, { qos, online: true });
    this.#byKey = undefined;
  }

  /** The member's connection ended and its session stays: it is a member still, offline. */
  setOffline(key: string, clientId: string): void {
    const member = this.#local.get(key)?.get(clientId);
    if (!member) return;
    member.online = false;
    this.#byKey = undefined;
  }

  /** The client's offline memberships on this node end (it connected somewhere, or its session ended); whether any did. */
  dropOffline(clientId: string): boolean {
    let dropped = false;
    for (const [key, members] of this.#local) {
      if (members.get(clientId)?.online !== false) continue;
      members.delete(clientId);
      if (members.size === 0) this.#local.delete(key);
      dropped = true;
    }
    if (dropped) this.#byKey = undefined;
    return dropped;
  }

  removeLocal(key: string, clientId: string): void {
    const members = this.#local.get(key);
    if (!members?.delete(clientId)) return;
    if (members.size === 0) this.#local.delete(key);
    this.#byKey = undefined;
  }

  /** This node's members, as announced to the others. */
  announcement(): AnnouncedMembers {
    const out: AnnouncedMembers = [];
    for (const [key, members] of this.#local) for (const [clientId, { qos, online }] of members) out.push(online ? [key, clientId, qos] : [key, clientId, qos, 1]);
    return out;
  }

  /** Another node's members, replacing what it announced before. */
  heard(node: string, members: AnnouncedMembers, now = Date.now()): void {
    if (node === this.#node) return;
    this.#remote.set(node, { members, heardAt: now });
    this.#byKey = undefined;
  }

  /** A node stopped (or was not heard from in MEMBERS_STALE_MS): its members leave their groups. */
  forget(node: string): void {
    if (this.#remote.delete(node)) this.#byKey = undefined;
  }

  /** Forgets the nodes not heard from since `now - MEMBERS_STALE_MS`; their ids. */
  expire(now = Date.now()): string[] {
    const gone = [...this.#remote].filter(([, r]) => now - r.heardAt > MEMBERS_STALE_MS).map(([node]) => node);
    for (const node of gone) this.forget(node);
    return gone;
  }

  /** Every group with a member anywhere. */
  keys(): string[] {
    return [...this.#members().keys()];
  }

  /**
   * The next connected member of the group in turn, else the next offline one, skipping the clients
   * in `skip` (members found gone on their node); undefined when the group has no member.
   */
  choose(key: string, skip?: ReadonlySet<string>): ShareMember | undefined {
    const members = this.#members().get(key);
    if (!members || members.length === 0) return undefined;
    const start = this.#turn.get(key) ?? 0;
    for (const online of [true, false]) {
      for (let i = 0; i < members.length; i++) {
        const member = members[(start + i) % members.length];
        if (member.online !== online || skip?.has(member.clientId)) continue;
        this.#turn.set(key, (start + i + 1) % members.length);
        return member;
      }
    }
    return undefined;
  }

  #members(): Map<string, ShareMember[]> {
    if (this.#byKey) return this.#byKey;
    const byKey = new Map<string, ShareMember[]>();
    const add = (key: string, member: ShareMember) => {
      let list = byKey.get(key);
      if (!list) byKey.set(key, (list = []));
      list.push(member);
    };
    for (const [key, members] of this.#local) for (const [clientId, { qos, online }] of members) add(key, { node: this.#node, clientId, qos, online });
    for (const [node, { members }] of this.#remote) for (const [key, clientId, qos, offline] of members) add(key, { node, clientId, qos, online: offline !== 1 });
    // One order on every node: by node, then client id.
    for (const list of byKey.values()) list.sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : a.clientId < b.clientId ? -1 : a.clientId > b.clientId ? 1 : 0));
    return (this.#byKey = byKey);
  }
}
