/**
 * The publish step list: what a PUBLISH from a client passes before Aedes acknowledges and routes it.
 * Steps are named, run in the order they were added, and each ends with a verdict:
 *   undefined        go on to the next step (after the last: acknowledged and published)
 *   { drop: reason } refused: acknowledged by its QoS (MQTT 3.1.1 has no negative ack, and like
 *                    Mosquitto Roost does not disconnect), then neither stored, queued nor delivered
 *   an Error         the connection is closed, as Aedes does with a failed authorizePublish
 * Aedes runs the list as its authorizePublish hook; its later broker.publish of a dropped packet is
 * skipped (publishSkips below), and the QoS 0 fast lane asks wasDropped() before routing.
 */

/** A PUBLISH as the steps see it (the fields Roost's steps read; v5 properties ride along). */
export interface PublishMessage {
  topic: string;
  payload: Buffer;
  qos: 0 | 1 | 2;
  retain: boolean;
  messageId?: number;
  properties?: Record<string, unknown>;
}

export type DropReason = 'acl' | 'payload_size';
export type PublishVerdict = { drop: DropReason } | Error | undefined;

/**
 * One step. `client` is null for a publish made by Roost itself; the object is the connection's
 * own (steps may key state on it) and stays the same for the life of the connection.
 */
export type PublishStep<C> = (client: C | null, message: PublishMessage, next: (verdict?: PublishVerdict) => void) => void;

export class PublishSteps<C> {
  readonly #steps: Array<{ name: string; run: PublishStep<C> }> = [];
  readonly #dropped = new WeakSet<object>();

  constructor(private readonly onDrop: (client: C | null, message: PublishMessage, reason: DropReason) => void) {}

  /** Adds a step after those already added; a name is used once. */
  add(name: string, run: PublishStep<C>): void {
    if (this.#steps.some((s) => s.name === name)) throw new Error(`publish step ${name} is already registered`);
    this.#steps.push({ name, run });
  }

  get names(): string[] {
    return this.#steps.map((s) => s.name);
  }

  /** Runs every step; `done` gets an Error that closes the connection, or nothing (published or dropped). */
  run(client: C | null, message: PublishMessage, done: (err?: Error | null) => void): void {
    const steps = this.#steps;
    let i = 0;
    const next = (verdict?: PublishVerdict): void => {
      if (verdict instanceof Error) return done(verdict);
      if (verdict) {
        this.#dropped.add(message);
        this.onDrop(client, message, verdict.drop);
        return done(null);
      }
      if (i === steps.length) return done(null);
      steps[i++].run(client, message, next);
    };
    next();
  }

  /** Whether the steps refused this very packet (Aedes must then neither route nor store it). */
  wasDropped(message: object): boolean {
    return this.#dropped.has(message);
  }
}
