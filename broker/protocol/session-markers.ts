/**
 * Session Present for resumed sessions [MQTT-3.2.2-1, -2, -3], and never for MQTT 3.1 clients.
 *
 * Aedes (lib/handlers/connect.js, restoreSubs) answers Session Present = !!subscriptions, so a
 * clean-session-0 client whose stored session holds no subscription is told it has none. No Aedes
 * persistence records "a session exists", so Roost records it: a marker in the persistence's
 * incoming-QoS-2 store under packet identifier 0, an identifier MQTT never puts on the wire
 * (MQTT-2.3.1-1; aedes/connection-guards.ts closes a client that sends it). That store exists in every
 * Aedes persistence (memory, Redis, Roost's SQL one) with exactly a session's lifetime: Aedes's
 * cleanIncoming wipes it when a clean-session-1 client takes the identifier.
 */
/** The part of the Aedes persistence interface the marker lives in. */
export interface IncomingStore {
  incomingStorePacket(client: { id: string }, packet: object): Promise<void>;
  incomingGetPacket(client: { id: string }, packet: { messageId: number }): Promise<unknown>;
  incomingDelPacket(client: { id: string }, packet: { messageId: number }): Promise<void>;
  cleanIncoming?(client: { id: string }): Promise<void>;
}

const MARKER_ID = 0;

export class SessionMarkers {
  constructor(private readonly store: IncomingStore) {}

  /** Whether a clean-session-0 client with this identifier left a session behind. */
  async exists(clientId: string): Promise<boolean> {
    // Every persistence rejects for "not stored"; like Aedes (pubrel.js), any rejection reads as absent.
    return this.store.incomingGetPacket({ id: clientId }, { messageId: MARKER_ID }).then(
      () => true,
      () => false,
    );
  }

  async record(clientId: string): Promise<void> {
    await this.store.incomingStorePacket(
      { id: clientId },
      { cmd: 'publish', topic: '$roost/session', payload: Buffer.alloc(0), qos: 2, retain: false, dup: false, messageId: MARKER_ID },
    );
  }

  /** Ends the session record and its inbound QoS 2 state: an MQTT 5 session that expired. */
  async end(clientId: string): Promise<void> {
    if (typeof this.store.cleanIncoming === 'function') return this.store.cleanIncoming({ id: clientId });
    await this.store.incomingDelPacket({ id: clientId }, { messageId: MARKER_ID }).catch(() => {});
  }

  /** Ends the session record when a clean-session-1 client connects (Aedes's cleanIncoming does it when present). */
  async forget(clientId: string): Promise<void> {
    if (typeof this.store.cleanIncoming === 'function') return;
    await this.store.incomingDelPacket({ id: clientId }, { messageId: MARKER_ID }).catch(() => {});
  }
}
