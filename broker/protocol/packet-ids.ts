/**
 * Packet identifiers of the QoS 1/2 packets Roost sends one client (MQTT-2.3.1-2, -4).
 *
 * Aedes 1.2 (lib/client.js, lib/qos-packet.js) starts each client at a random identifier and
 * increments it blindly, so after a wrap, or beside the packets a resumed session re-sends, it can
 * send an identifier still in flight. Roost counts up from 1, wraps after 65535 and skips every
 * identifier in flight; an identifier leaves flight when the client's PUBACK or PUBCOMP arrives.
 */

const MAX_ID = 65535;

export class PacketIds {
  #next = 1;
  readonly #inFlight = new Set<number>();

  /** The identifier the next packet gets: the first at or after the counter that is not in flight. */
  peek(): number {
    let id = this.#next;
    // When all 65535 are in flight there is no good choice left; reuse the counter's (as Aedes would).
    for (let scanned = 0; this.#inFlight.has(id) && scanned < MAX_ID; scanned++) id = (id % MAX_ID) + 1;
    return id;
  }

  /** Hands out peek()'s identifier: it is in flight until released. */
  take(): number {
    const id = this.peek();
    this.#inFlight.add(id);
    this.#next = (id % MAX_ID) + 1;
    return id;
  }

  /** An identifier Roost did not hand out but is sending (a resumed session's stored packets). */
  markInFlight(id: number): void {
    if (id >= 1 && id <= MAX_ID) this.#inFlight.add(id);
  }

  release(id: number): void {
    this.#inFlight.delete(id);
  }

  get inFlight(): number {
    return this.#inFlight.size;
  }
}
