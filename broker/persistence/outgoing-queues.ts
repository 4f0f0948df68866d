/**
 * The in-memory index of every client's outgoing queue (the rows of session_outgoing), so that
 * the per-delivery lookups Aedes makes (by broker id + counter, by messageId) cost a map lookup
 * instead of a scan or a query. Pure data structure: the persistence writes the rows.
 */
import type { PacketLike } from './packet-codec.js';

export interface QueuedPacket {
  readonly clientId: string;
  /** Position in the queue, unique across clients: session_outgoing.seq. */
  readonly seq: number;
  packet: PacketLike;
}

type MessageId = number | undefined;

function brokerKey(packet: PacketLike): string | undefined {
  return packet.brokerId === undefined ? undefined : `${String(packet.brokerId)}\u0000${String(packet.brokerCounter)}`;
}

function addTo<K>(index: Map<K, QueuedPacket[]>, key: K, item: QueuedPacket): void {
  const list = index.get(key);
  if (list) list.push(item);
  else index.set(key, [item]);
}

function removeFrom<K>(index: Map<K, QueuedPacket[]>, key: K, item: QueuedPacket): void {
  const list = index.get(key);
  if (!list) return;
  const i = list.indexOf(item);
  if (i >= 0) list.splice(i, 1);
  if (list.length === 0) index.delete(key);
}

class ClientQueue {
  /** seq -> packet, in queue order (seqs only grow). */
  readonly items = new Map<number, QueuedPacket>();
  readonly byBroker = new Map<string, QueuedPacket[]>();
  /** Only packets that have a messageId (a client may have thousands queued without one). */
  readonly byMessageId = new Map<number, QueuedPacket[]>();

  add(item: QueuedPacket): void {
    this.items.set(item.seq, item);
    this.#index(item);
  }

  remove(item: QueuedPacket): void {
    this.items.delete(item.seq);
    this.#unindex(item);
  }

  /** Replaces the packet of a queued item, keeping its place in the queue. */
  replace(item: QueuedPacket, packet: PacketLike, mutate?: () => void): void {
    this.#unindex(item);
    item.packet = packet;
    mutate?.();
    this.#index(item);
  }

  #index(item: QueuedPacket): void {
    const bk = brokerKey(item.packet);
    if (bk !== undefined) addTo(this.byBroker, bk, item);
    const id = item.packet.messageId as MessageId;
    if (id !== undefined) addTo(this.byMessageId, id, item);
  }

  #unindex(item: QueuedPacket): void {
    const bk = brokerKey(item.packet);
    if (bk !== undefined) removeFrom(this.byBroker, bk, item);
    const id = item.packet.messageId as MessageId;
    if (id !== undefined) removeFrom(this.byMessageId, id, item);
  }
}

export class OutgoingQueues {
  readonly #queues = new Map<string, ClientQueue>();

  add(item: QueuedPacket): void {
    let queue = this.#queues.get(item.clientId);
    if (!queue) {
      queue = new ClientQueue();
      this.#queues.set(item.clientId, queue);
    }
    queue.add(item);
  }

  /** A copy of the client's queue, oldest first (safe to iterate while it changes). */
  list(clientId: string): QueuedPacket[] {
    const queue = this.#queues.get(clientId);
    return queue ? [...queue.items.values()] : [];
  }

  /**
   * The queued packet `update` refers to, as aedes-persistence finds it: the same broker id and
   * counter (the PUBLISH getting its messageId), else the same messageId from another origin (the
   * PUBREL that replaces a QoS 2 PUBLISH). Among copies of one PUBLISH queued twice (overlapping
   * subscriptions), the one already holding this messageId, then one without a messageId.
   */
  findForUpdate(clientId: string, update: PacketLike): QueuedPacket | undefined {
    const queue = this.#queues.get(clientId);
    if (!queue) return undefined;
    const bk = brokerKey(update);
    const sameOrigin = bk === undefined ? undefined : queue.byBroker.get(bk);
    if (sameOrigin) {
      return (
        sameOrigin.find((q) => q.packet.messageId === update.messageId) ??
        sameOrigin.find((q) => q.packet.messageId === undefined) ??
        sameOrigin[0]
      );
    }
    const id = update.messageId as MessageId;
    return id === undefined ? undefined : queue.byMessageId.get(id)?.find((q) => q.packet.brokerId !== update.brokerId);
  }

  /** The oldest queued packet with the messageId of `ack` (a PUBACK, PUBCOMP or the packet itself). */
  findForAck(clientId: string, ack: PacketLike): QueuedPacket | undefined {
    const queue = this.#queues.get(clientId);
    if (!queue) return undefined;
    if (ack.messageId === undefined) {
      // A packet Aedes decided not to forward: it has no messageId yet, but its origin identifies it.
      const bk = brokerKey(ack);
      const sameOrigin = bk === undefined ? undefined : queue.byBroker.get(bk);
      if (sameOrigin) return sameOrigin.find((q) => q.packet.messageId === undefined) ?? sameOrigin[0];
      for (const q of queue.items.values()) if (q.packet.messageId === undefined) return q;
      return undefined;
    }
    return queue.byMessageId.get(ack.messageId as number)?.[0];
  }

  /** Gives a queued PUBLISH its messageId, in place (Aedes may hold the same object). */
  assignMessageId(item: QueuedPacket, messageId: number | undefined): void {
    const queue = this.#queues.get(item.clientId);
    if (!queue) return;
    queue.replace(item, item.packet, () => (item.packet.messageId = messageId));
  }

  setPacket(item: QueuedPacket, packet: PacketLike): void {
    const queue = this.#queues.get(item.clientId);
    if (queue) queue.replace(item, packet);
    else item.packet = packet;
  }

  remove(item: QueuedPacket): void {
    const queue = this.#queues.get(item.clientId);
    if (!queue) return;
    queue.remove(item);
    if (queue.items.size === 0) this.#queues.delete(item.clientId);
  }

  clear(): void {
    this.#queues.clear();
  }
}
