/**
 * MQTT-4.7.2-1: a topic filter starting with # or + never matches a topic name starting with $.
 *
 * Aedes 1.2 keeps live messages from such subscriptions (blockDollarSignTopics in
 * lib/handlers/subscribe.js), but the persistences' matching (qlobber) lets # match $-topics, and
 * Aedes corrects that only for $SYS/ in the offline queue (aedes.js, removeSharp) and not at all for
 * the retained messages a new subscription gets. Roost corrects both, for every $-topic.
 */
import { topicMatches } from '../../auth/acl.js';

type Deliver = (packet: { topic: string }, callback: () => void) => void;

/** The Aedes 1.2 Client fields read here (lib/client.js). */
interface DeliveringClient {
  subscriptions: Record<string, unknown>;
  deliverQoS: Deliver;
}

const DOLLAR = 36;
const PLUS = 43;
const HASH = 35;

function reachableThroughRootedFilter(client: DeliveringClient, topic: string): boolean {
  for (const filter in client.subscriptions) {
    const first = filter.charCodeAt(0);
    if (first !== PLUS && first !== HASH && topicMatches(filter, topic)) return true;
  }
  return false;
}

/**
 * Retained messages reach the client through client.deliverQoS (handlers/subscribe.js, sendRetained):
 * a $-topic passes only when one of the client's filters that does not start with a wildcard
 * matches it. (A client holding $x/# that subscribes to # gets $x/… retained messages again.)
 */
export function keepDollarTopicsFromWildcards(client: DeliveringClient): void {
  const deliverQoS = client.deliverQoS;
  client.deliverQoS = function deliverUnlessDollarLeak(packet, callback) {
    if (packet.topic.charCodeAt(0) === DOLLAR && !reachableThroughRootedFilter(client, packet.topic)) {
      setImmediate(callback);
      return;
    }
    deliverQoS(packet, callback);
  };
}

interface Subscriber {
  topic: string;
}

interface SubscriptionIndex {
  subscriptionsByTopic(topic: string): Promise<Subscriber[]>;
}

/**
 * The offline queue: Aedes enqueues a QoS 1/2 message for every clean-session-0 subscriber that
 * persistence.subscriptionsByTopic returns, dropping # and + filters only for $SYS/ topics.
 */
export function keepDollarTopicsOutOfWildcardQueues(persistence: SubscriptionIndex): void {
  const subscriptionsByTopic = persistence.subscriptionsByTopic;
  persistence.subscriptionsByTopic = async function rootedSubscribersOfDollarTopics(this: SubscriptionIndex, topic) {
    const subs = await subscriptionsByTopic.call(this, topic);
    if (topic.charCodeAt(0) !== DOLLAR) return subs;
    return subs.filter((sub) => sub.topic.charCodeAt(0) !== PLUS && sub.topic.charCodeAt(0) !== HASH);
  };
}
