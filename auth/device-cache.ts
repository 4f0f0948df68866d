/**
 * Devices (with their rules) by username, kept in memory so the CONNECT of a known device does not
 * wait for the database. Entries are dropped when a change notification names the device or one
 * of its roles; a TTL bounds staleness should a notification be lost (e.g. while the LISTEN
 * connection reconnects).
 */
import type { Queryable } from '../lib/db/index.js';
import { loadDevice, type DeviceRecord } from './store.js';

export interface DeviceCacheOptions {
  ttlMs?: number;
  maxEntries?: number;
  now?: () => number;
}

interface Entry {
  /** null: no such device (cached too, so a flood of unknown names does not hit the database). */
  record: DeviceRecord | null;
  at: number;
}

export class DeviceCache {
  private readonly entries = new Map<string, Entry>();
  private readonly loading = new Map<string, Promise<DeviceRecord | null>>();
  /** Bumped by every invalidation: a load that started before one is not cached. */
  private epoch = 0;
  private readonly ttlMs: number;
  private readonly maxEntries: number;
  private readonly now: () => number;

  constructor(
    private readonly db: Queryable,
    options: DeviceCacheOptions = {},
  ) {
    // Changes reach the cache by NOTIFY (and a lost LISTEN connection clears it): the TTL only bounds
    // what an edit that bypassed the triggers could leave stale.
    this.ttlMs = options.ttlMs ?? 10 * 60_000;
    this.maxEntries = options.maxEntries ?? 50_000;
    this.now = options.now ?? Date.now;
  }

  async get(username: string): Promise<DeviceRecord | null> {
    const entry = this.entries.get(username);
    if (entry && this.now() - entry.at <= this.ttlMs) return entry.record;
    let pending = this.loading.get(username);
    if (!pending) {
      pending = this.load(username);
      this.loading.set(username, pending);
      pending.finally(() => this.loading.delete(username)).catch(() => {});
    }
    return pending;
  }

  private async load(username: string): Promise<DeviceRecord | null> {
    const epoch = this.epoch;
    const record = (await loadDevice(this.db, username)) ?? null;
    if (epoch === this.epoch) {
      if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value as string);
      this.entries.set(username, { record, at: this.now() });
    }
    return record;
  }

  /** The username of a cached device id (a deletion notification may carry only the id). */
  usernameOf(deviceId: string): string | undefined {
    for (const [username, entry] of this.entries) if (entry.record?.id === deviceId) return username;
    return undefined;
  }

  invalidateUsername(username: string): void {
    this.epoch++;
    this.entries.delete(username);
  }

  invalidateDevice(deviceId: string): void {
    this.epoch++;
    for (const [username, entry] of this.entries) if (entry.record?.id === deviceId) this.entries.delete(username);
  }

  /** Drops every device holding the role (its rules changed). */
  invalidateRole(roleId: string): void {
    this.epoch++;
    for (const [username, entry] of this.entries) if (entry.record?.roleIds.includes(roleId)) this.entries.delete(username);
  }

  clear(): void {
    this.epoch++;
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }
}
