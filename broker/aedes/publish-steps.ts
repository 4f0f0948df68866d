/**
 * Runs the publish steps (broker/core.ts) as Aedes's authorizePublish hook. Each step ends with a
 * verdict:
 *   undefined        go on to the next step (after the last: acknowledged and published)
 *   { drop: reason } refused: acknowledged by its QoS (MQTT 3.1.1 has no negative ack, and like
 *                    Mosquitto Roost does not disconnect), then neither stored, queued nor delivered;
 *                    an MQTT 5 client's QoS 1/2 PUBLISH refused by the ACL gets PUBACK/PUBREC 0x87
 *                    (Not authorized) instead: Aedes 2 answers so an authorizePublish error of a v5
 *                    client, and drops the message without closing the connection
 *   an Error         the connection is closed, as Aedes does with a failed authorizePublish
 * Aedes's later broker.publish of a dropped packet is skipped (qos1-ack-after-publish.ts asks
 * wasDropped()), and so is the QoS 0 fast lane's routing (publish-fast-lane.ts).
 */
import type { Connection, DropReason, Message, PublishStep, PublishVerdict, StepList } from '../core.js';
import { protocolLevel } from './connection.js';

/** The error a v5 client's refused PUBLISH hands Aedes: answered 0x87, reported as a drop, not a client error. */
export class PublishRefused extends Error {}

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
        if (verdict.drop === 'acl' && message.qos > 0 && conn && protocolLevel(conn) === 5) {
          return done(new PublishRefused(`not authorized to publish to ${message.topic}`));
        }
        return done(null);
      }
      if (i === list.length) return done(null);
      list[i++](conn, message, next);
    };
    next();
  }

  /** Whether the steps refused this very packet (Aedes must then neither route nor store it). */
  wasDropped(message: object): boolean {
    return this.#dropped.has(message);
  }
}
