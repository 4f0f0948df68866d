/**
 * The in-memory index of persistent-session subscriptions (the rows of session_subscriptions):
 * per client for restoring a session, and a topic trie of the QoS > 0 ones for the lookup Aedes
 * makes on every QoS > 0 PUBLISH. Same rules as aedes-persistence's in-memory implementation.
 */
import { createSubscriptionTrie, type TrieSubscription } from './matching.js';

/** One entry of a SUBSCRIBE packet, as Aedes passes it and gets it back on session restore. */
export interface SubscriptionRequest {
  topic: string;
  qos: number;
  rh?: number;
  rap?: boolean;
  nl?: boolean;
  subscriptionIdentifier?: number;
}
export type SubscriptionRecord = Omit<SubscriptionRequest, 'topic'>;

export class SubscriptionIndex {
  /** clientId -> topic filter -> options; every client listed has a stored session. */
  readonly #byClient = new Map<string, Map<string, SubscriptionRecord>>();
  /** QoS 0 subscriptions are restored with the session but never get messages queued. */
  readonly #trie = createSubscriptionTrie();

  set(clientId: string, topic: string, record: SubscriptionRecord): void {
    let stored = this.#byClient.get(clientId);
    if (!stored) {
      stored = new Map();
      this.#byClient.set(clientId, stored);
    }
    const previous = stored.get(topic);
    if (record.qos > 0) {
      this.#trie.add(topic, { clientId, topic, qos: record.qos, rh: record.rh, rap: record.rap, nl: record.nl });
    } else if (previous && previous.qos > 0) {
      this.#trie.remove(topic, { clientId, topic });
    }
    stored.set(topic, record);
  }

  /** Removes one subscription; false when the client had none on that filter. */
  delete(clientId: string, topic: string): boolean {
    const stored = this.#byClient.get(clientId);
    const record = stored?.get(topic);
    if (!stored || record === undefined) return false;
    if (record.qos > 0) this.#trie.remove(topic, { clientId, topic });
    stored.delete(topic);
    if (stored.size === 0) this.#byClient.delete(clientId);
    return true;
  }

  topicsOf(clientId: string): string[] {
    return [...(this.#byClient.get(clientId)?.keys() ?? [])];
  }

  listOf(clientId: string): SubscriptionRequest[] {
    const stored = this.#byClient.get(clientId);
    return stored ? [...stored].map(([topic, record]) => ({ topic, ...record })) : [];
  }

  match(topic: string): TrieSubscription[] {
    return this.#trie.match(topic);
  }

  /** Client ids subscribed to exactly this filter. */
  *clientsOn(topic: string): Generator<string> {
    for (const [clientId, stored] of this.#byClient) if (stored.has(topic)) yield clientId;
  }

  get subscriptionsCount(): number {
    return this.#trie.subscriptionsCount;
  }

  get clientsCount(): number {
    return this.#byClient.size;
  }
}
