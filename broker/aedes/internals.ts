/**
 * Every private or undocumented field of Aedes and the packages it brings that Roost reads, calls or
 * replaces, with the file that does it. These were checked against the versions below;
 * test/integration/aedes-internals.test.ts fails when an installed version differs, and checks that
 * each field is still there on a real broker, client, parser and emitter. Moving to another Aedes
 * starts here: every line is a place to read again.
 */

/** The versions the fields below were read in (package.json pins these exactly). */
export const CHECKED_VERSIONS = {
  aedes: '2.0.0-beta.1',
  'aedes-packet': '4.0.1',
  mqemitter: '7.1.0',
  'mqtt-packet': '9.0.2',
  bl: '6.1.6',
  qlobber: '8.0.1',
} as const;

export interface InternalField {
  /** The object it lives on, as the test reaches it. */
  on: 'broker' | 'client' | 'parser' | 'bufferList' | 'emitter' | 'matcher' | 'qlobberPrototype' | 'mqttPacket';
  field: string;
  /** read: its value is used; written: set to a value of Roost's; replaced: a function Roost wraps or swaps; called. */
  use: 'read' | 'written' | 'replaced' | 'called';
  by: string;
}

export const INTERNAL_FIELDS: readonly InternalField[] = [
  // Aedes (aedes.js)
  { on: 'broker', field: 'version', use: 'read', by: 'protocol-guards.ts (refuses another major)' },
  { on: 'broker', field: 'persistence', use: 'read', by: 'protocol-guards.ts, client-limits.ts, core.ts (retained messages), shared-subscriptions.ts (a member\'s session queue), stray-wills.ts (streamWill wrapped)' },
  { on: 'broker', field: 'mq', use: 'read', by: 'core.ts (match-cache.ts, mq-flat-release.ts), publish-fast-lane.ts, shared-subscriptions.ts (its routes and announcements)' },
  { on: 'broker', field: 'clients', use: 'written', by: 'upstream-fixes.ts (without a prototype), core.ts (connections)' },
  { on: 'broker', field: 'brokers', use: 'written', by: 'upstream-fixes.ts (without a prototype)' },
  { on: 'broker', field: 'maxTopicLevels', use: 'written', by: 'core.ts (Roost checks its own limit; this is the ceiling)' },
  { on: 'broker', field: 'handle', use: 'replaced', by: 'upstream-fixes.ts, protocol-guards.ts, client-limits.ts, shared-subscriptions.ts' },
  { on: 'broker', field: 'subscribe', use: 'replaced', by: 'shared-subscriptions.ts (a $share/ filter makes a member, not a listener)' },
  { on: 'broker', field: 'unsubscribe', use: 'replaced', by: 'shared-subscriptions.ts' },
  { on: 'broker', field: 'counter', use: 'written', by: 'shared-subscriptions.ts (a message sent to another member gets a new number)' },
  { on: 'broker', field: 'preConnect', use: 'replaced', by: 'protocol-guards.ts, mqtt5.ts (what a v5 CONNECT asks of what Roost writes)' },
  { on: 'broker', field: 'authenticate', use: 'replaced', by: 'core.ts (runs the connect steps)' },
  { on: 'broker', field: 'authorizePublish', use: 'replaced', by: 'core.ts (runs the publish steps), qos1-ack-after-publish.ts' },
  { on: 'broker', field: 'authorizeSubscribe', use: 'replaced', by: 'core.ts (runs the subscribe steps)' },
  { on: 'broker', field: 'publish', use: 'replaced', by: 'qos1-ack-after-publish.ts' },
  { on: 'broker', field: '_wipeSession', use: 'replaced', by: 'protocol-guards.ts (an MQTT 5 session that ends ends its record); called by mqtt5.ts (a session due in the store)' },
  { on: 'broker', field: 'scheduleSessionExpiry', use: 'replaced', by: 'mqtt5.ts (keepSessionExpiry: the expiry goes to the database)' },
  { on: 'broker', field: 'clearSessionExpiry', use: 'called', by: 'mqtt5.ts' },
  { on: 'broker', field: '_takingOver', use: 'read', by: 'mqtt5.ts (a client id being taken over keeps its session)' },
  { on: 'broker', field: 'published', use: 'called', by: 'publish-fast-lane.ts' },
  // Aedes Client (lib/client.js)
  { on: 'client', field: 'conn', use: 'read', by: 'connection.ts, connection-guards.ts, client-limits.ts, connack.ts' },
  { on: 'client', field: 'connecting', use: 'read', by: 'connection-guards.ts, client-limits.ts' },
  { on: 'client', field: 'connected', use: 'read', by: 'connection-guards.ts, client-limits.ts, publish-fast-lane.ts (and Connection.connected)' },
  { on: 'client', field: 'connackSent', use: 'read', by: 'connection-guards.ts, publish-fast-lane.ts' },
  { on: 'client', field: 'closed', use: 'read', by: 'connection-guards.ts, shared-subscriptions.ts (and Connection.closed)' },
  { on: 'client', field: '_will', use: 'read', by: 'core.ts (the will a CONNECT carries, checked by the connect steps)' },
  { on: 'client', field: 'will', use: 'read', by: 'core.ts (a stored will is not the connection\'s own)' },
  { on: 'client', field: 'errored', use: 'read', by: 'client-limits.ts' },
  { on: 'client', field: 'version', use: 'read', by: 'connection.ts (protocolLevel), core.ts, publish-steps.ts' },
  { on: 'client', field: 'sessionExpiryInterval', use: 'read', by: 'connection.ts (keepsSession), mqtt5.ts' },
  { on: 'client', field: '_cleanStart', use: 'read', by: 'upstream-fixes.ts, protocol-guards.ts (a v5 CONNECT\'s Clean Start)' },
  { on: 'client', field: 'clean', use: 'written', by: 'upstream-fixes.ts (off while a resumed v5 session\'s queue is sent)' },
  { on: 'client', field: '_wireVersion', use: 'read', by: 'client-limits.ts (the level its QoS 0 deliveries are written in)' },
  { on: 'client', field: 'subscriptions', use: 'written', by: 'upstream-fixes.ts (without a prototype), connection.ts, client-limits.ts, dollar-topics.ts, shared-subscriptions.ts (read)' },
  { on: 'client', field: 'duplicates', use: 'written', by: 'upstream-fixes.ts (without a prototype), client-limits.ts (read), cluster-dedupe.ts (replaced)' },
  { on: 'client', field: 'deliver0', use: 'replaced', by: 'client-limits.ts' },
  { on: 'client', field: 'deliverQoS', use: 'replaced', by: 'client-limits.ts, dollar-topics.ts' },
  { on: 'client', field: '_parser', use: 'read', by: 'connection-guards.ts, client-limits.ts, shared-subscriptions.ts' },
  { on: 'client', field: '_nextBatch', use: 'replaced', by: 'connection-guards.ts, publish-fast-lane.ts' },
  { on: 'client', field: '_nextId', use: 'written', by: 'packet-ids.ts (an accessor in its place)' },
  { on: 'client', field: '_onError', use: 'called', by: 'client-limits.ts' },
  { on: 'client', field: '_parsingBatch', use: 'written', by: 'publish-fast-lane.ts' },
  { on: 'client', field: '_keepaliveInterval', use: 'read', by: 'publish-fast-lane.ts' },
  { on: 'client', field: '_keepaliveTimer', use: 'read', by: 'publish-fast-lane.ts' },
  // mqtt-packet 9 Parser (parser.js)
  { on: 'parser', field: 'packet', use: 'read', by: 'connection-guards.ts, client-limits.ts' },
  { on: 'parser', field: 'error', use: 'read', by: 'connection-guards.ts' },
  { on: 'parser', field: '_list', use: 'read', by: 'connection-guards.ts' },
  { on: 'parser', field: '_pos', use: 'read', by: 'connection-guards.ts' },
  { on: 'parser', field: '_parseString', use: 'replaced', by: 'connection-guards.ts' },
  { on: 'parser', field: '_parseConnect', use: 'replaced', by: 'connection-guards.ts' },
  { on: 'parser', field: '_parseLength', use: 'replaced', by: 'client-limits.ts' },
  { on: 'parser', field: '_emitError', use: 'called', by: 'connection-guards.ts, client-limits.ts' },
  // mqtt-packet's module and bl 6 BufferList
  { on: 'mqttPacket', field: 'writeToStream', use: 'replaced', by: 'outgoing-flows.ts' },
  { on: 'bufferList', field: '_bufs', use: 'read', by: 'connection-guards.ts' },
  { on: 'bufferList', field: 'readUInt8', use: 'replaced', by: 'connection-guards.ts' },
  { on: 'bufferList', field: 'readUInt16BE', use: 'replaced', by: 'connection-guards.ts' },
  // mqemitter 7 and its qlobber
  { on: 'emitter', field: '_do', use: 'replaced', by: 'mq-flat-release.ts' },
  { on: 'emitter', field: '_matcher', use: 'read', by: 'match-cache.ts' },
  { on: 'emitter', field: 'closed', use: 'read', by: 'publish-fast-lane.ts' },
  { on: 'matcher', field: 'match', use: 'replaced', by: 'match-cache.ts' },
  { on: 'matcher', field: 'add', use: 'replaced', by: 'match-cache.ts' },
  { on: 'matcher', field: 'remove', use: 'replaced', by: 'match-cache.ts' },
  { on: 'qlobberPrototype', field: '_split_words', use: 'replaced', by: '../persistence/matching.ts (word limit)' },
];
// Not checked by aedes-internals.test.ts (it needs a Redis), held by protocol-upstream-fixes.test.ts:
// mqemitter-redis 7.2.1's `_topics` is replaced by session-store.ts with a map without a prototype.
