/**
 * Runs the publish steps (broker/core.ts) as Aedes's authorizePublish hook. Each step ends with a
 * verdict:
 *   undefined        go on to the next step (after the last: acknowledged and published)
 *   { drop: reason } refused: acknowledged by its QoS (MQTT 3.1.1 has no negative ack, and like
 *                    Mosquitto Roost does not disconnect), then neither stored, queued nor delivered
 *   an Error         the connection is closed, as Aedes does with a failed authorizePublish
 * Aedes's later broker.publish of a dropped packet is skipped (qos1-ack-after-publish.ts asks
 * wasDropped()), and so is the QoS 0 fast lane's routing (publish-fast-lane.ts).
 */
import type { Connection, DropReason, Message, PublishStep, PublishVerdict, StepList } from '../core.js';

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
