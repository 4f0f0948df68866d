/**
 * Logins in progress per IP address (issue 22 #16): at most `inFlight` logins of one address are
 * checked at once; the others wait their turn, first come first served, and beyond `waiting` more
 * are refused at once (ROOST_ERR_AUTH_BUSY, CONNACK 3: try again). One address — an attacker, or a
 * gateway in front of a fleet — then holds at most `inFlight` places in the password workers'
 * queue and the logins of other addresses go by it, while a fleet behind one gateway still gets
 * in, at the pace of the workers.
 */
import { AuthError } from './errors.js';

export interface LoginLineOptions {
  /** 0: no bound (every login goes on at once). */
  inFlight: number;
  waiting: number;
}

interface Line {
  running: number;
  waiting: Array<() => void>;
}

export class LoginLine {
  readonly #lines = new Map<string, Line>();

  constructor(private readonly opts: LoginLineOptions) {}

  /** Waits for this address's turn; call the release it resolves with when the login is decided. */
  async enter(ip: string): Promise<() => void> {
    if (this.opts.inFlight === 0) return () => {};
    let line = this.#lines.get(ip);
    if (!line) this.#lines.set(ip, (line = { running: 0, waiting: [] }));
    if (line.running >= this.opts.inFlight) {
      if (line.waiting.length >= this.opts.waiting) {
        throw new AuthError('ROOST_ERR_AUTH_BUSY', `${line.running + line.waiting.length} logins from ${ip} in progress`);
      }
      // release() hands its place over, so `running` stays counted for the one woken.
      await new Promise<void>((resolve) => line.waiting.push(resolve));
    } else {
      line.running++;
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = line.waiting.shift();
      if (next) return next();
      line.running--;
      if (line.running === 0) this.#lines.delete(ip);
    };
  }

  /** Addresses with logins in progress (bounded by the connections open). */
  get addresses(): number {
    return this.#lines.size;
  }
}
