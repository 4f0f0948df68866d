/**
 * Acknowledgements that belong to another flow [MQTT-4.3.2-2, MQTT-4.3.3-2, MQTT-4.8.0-1].
 *
 * Aedes 1.2 takes any acknowledgement for any identifier it has in flight: a PUBREC for a QoS 1
 * PUBLISH is even answered with a PUBREL. Roost notes what it sent under each identifier (QoS 1
 * PUBLISH: PUBACK is owed; QoS 2 PUBLISH: PUBREC; PUBREL: PUBCOMP) and closes a client whose
 * acknowledgement does not fit. An identifier with nothing noted goes to Aedes as before.
 */
import { ProtocolViolation } from './errors.js';

type Ack = 'puback' | 'pubrec' | 'pubcomp';

/** A packet as mqtt-packet writes it (the fields read here). */
interface WrittenPacket {
  cmd: string;
  qos?: number;
  messageId?: number;
}

/** What one client owes Roost for each identifier Roost sent it. */
export class OutgoingFlows {
  readonly #owed = new Map<number, Ack>();
  /** Told each time a flow ends (its PUBACK or PUBCOMP taken): a slot of the client's Receive Maximum is free. */
  onSettled: (() => void) | undefined;
  /** Told when the client has a QoS 1/2 PUBLISH of Roost's: its PUBACK or its PUBREC taken. */
  onReceived: ((messageId: number) => void) | undefined;

  /** QoS 1/2 flows sent and not yet acknowledged to the end. */
  get inFlight(): number {
    return this.#owed.size;
  }

  sent(packet: WrittenPacket): void {
    if (packet.messageId === undefined) return;
    if (packet.cmd === 'pubrel') this.#owed.set(packet.messageId, 'pubcomp');
    else if (packet.cmd === 'publish' && (packet.qos ?? 0) > 0) this.#owed.set(packet.messageId, packet.qos === 1 ? 'puback' : 'pubrec');
  }

  /** The violation an acknowledgement from the client commits, if any; a fitting one ends the step. */
  acknowledged(cmd: Ack, messageId: number): ProtocolViolation | undefined {
    const owed = this.#owed.get(messageId);
    if (owed === undefined) return undefined;
    // A PUBREC repeated while Roost's PUBREL is on its way, or after it, only gets the PUBREL again.
    if (cmd === 'pubrec' && owed === 'pubcomp') return undefined;
    if (cmd !== owed) return new ProtocolViolation('ROOST_ERR_WRONG_ACK');
    if (cmd !== 'pubcomp') this.onReceived?.(messageId);
    if (cmd !== 'pubrec') {
      this.#owed.delete(messageId); // after a PUBREC, the PUBREL Roost writes notes PUBCOMP
      this.onSettled?.();
    }
    return undefined;
  }
}
