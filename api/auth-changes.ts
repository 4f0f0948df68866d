/**
 * One LISTEN on the auth channel per API, for whatever must follow access as it changes (open
 * Server-Sent Event streams). Device, role and rule changes, and revoked tokens (schema 009), are
 * announced there; a resumed LISTEN counts as a change, since some may have been missed.
 */
import { AUTH_CHANNEL } from '../auth/store.js';
import type { Db } from '../lib/db/index.js';
import type { Logger } from '../lib/log.js';

export class AuthChangeFeed {
  private readonly listeners = new Set<() => void>();
  private unlisten?: Promise<(() => Promise<void>) | undefined>;

  constructor(
    private readonly db: Db,
    private readonly log: Logger,
  ) {}

  /** Calls `onChange` after every auth change until the returned function is called. */
  subscribe(onChange: () => void): () => void {
    this.listeners.add(onChange);
    this.unlisten ??= this.db.listen(AUTH_CHANNEL, () => this.emit(), () => this.emit()).catch((err: unknown) => {
      this.log.warn({ err }, 'cannot listen for auth changes; open streams are re-checked on their timer only');
      return undefined;
    });
    return () => this.listeners.delete(onChange);
  }

  private emit(): void {
    for (const listener of this.listeners) listener();
  }

  async close(): Promise<void> {
    this.listeners.clear();
    const unlisten = await this.unlisten;
    await unlisten?.();
  }
}
