/**
 * Runs the publish steps (broker/core.ts) as Aedes's authorizePublish hook. Each step ends with a
 * verdict:
 *   undefined        go on to the next step (after the last: acknowledged and published)
 *   { drop: reason } refused: acknowledged by its QoS (MQTT 3.1.1 has no negative ack, and like
 *                    Mosquitto Roost does not disconnect), then neither stored, queued nor delivered;
 *                    an MQTT 5 client's refused QoS 1/2 PUBLISH gets a negative PUBACK/PUBREC instead:
 *                    0x87 (Not authorized) for the ACL, 0x97 (Quota exceeded) for the payload limit,
 *                    0x99 (Payload format invalid) for a payload said to be UTF-8 that is not. Aedes 2
 *                    answers an authorizePublish error of a v5 client with 0x87 and drops the message
 *                    without closing the connection; outgoing-flows.ts puts the other reasons in
 *   an Error         the connection is closed, as Aedes does with a failed authorizePublish
 * Aedes's later broker.publish of a dropped packet is skipped (qos1-ack-after-publish.ts asks
 * wasDropped()), and so is the QoS 0 fast lane's routing (publish-fast-lane.ts).
 */
import type { Connection, DropReason, Message, PublishStep, PublishVerdict, StepList } from '../core.js';
import { isUtf8 } from 'node:buffer';
import { protocolLevel } from './connection.js';
import { setAckReason } from './outgoing-flows.js';

/** The error a v5 client's refused PUBLISH hands Aedes: answered 0x87, reported as a drop, not a client error. */
export class PublishRefused extends Error {}

/** The MQTT 5 PUBACK/PUBREC reason code (3.4.2.1) a v5 client's QoS 1/2 PUBLISH refused for `reason` gets. */
const ACK_REASON: Record<DropReason, number> = { acl: 0x87, payload_size: 0x97, payload_format: 0x99 };

export class PublishRunner {
  readonly #dropped = new WeakSet<object>();

  constructor(
    private readonly steps: StepList<PublishStep>,
    private readonly onDrop: (conn: Connection | null, message: Message, reason: DropReason) => void,
  ) {}

  /** Runs every step; `done` gets an Error that closes the connection, or nothing (published or dropped). */
  run(conn: Connection | null, message: Message, done: (err?: Error | null) => void): void {
    const list = this.steps.list;
    let i = 0;
    const next = (verdict?: PublishVerdict): void => {
      if (verdict instanceof Error) return done(verdict);
      if (verdict) {
        this.#dropped.add(message);
        this.onDrop(conn, message, verdict.drop);
        if (message.qos > 0 && conn && protocolLevel(conn) === 5) {
          const reason = ACK_REASON[verdict.drop];
          if (reason !== 0x87 && message.messageId !== undefined) setAckReason((conn as unknown as { conn: object }).conn, message.messageId, reason);
          return done(new PublishRefused(`${verdict.drop} refused a publish to ${message.topic}`));
        }
        return done(null);
      }
      if (i === list.length) return done(null);
      list[i++](conn, message, next);
    };
    // MQTT 5 3.3.2.3.2: Payload Format Indicator 1 says UTF-8; a payload that is not is refused (0x99).
    if (message.properties?.payloadFormatIndicator === true && !isUtf8(message.payload)) return next({ drop: 'payload_format' });
    next();
  }

  /** Whether the steps refused this very packet (Aedes must then neither route nor store it). */
  wasDropped(message: object): boolean {
    return this.#dropped.has(message);
  }
}
