/**
 * What a ban is and whether a connection matches one: pure logic, no database, no Aedes.
 * A ban names a client id, a username (both exact) or an IP network (CIDR); it holds until
 * `expiresAt` (null: until removed). Expired bans stop matching by themselves.
 */
import net from 'node:net';

export const BAN_KINDS = ['client_id', 'username', 'ip'] as const;
export type BanKind = (typeof BAN_KINDS)[number];

export interface Ban {
  id: string;
  kind: BanKind;
  value: string;
  reason: string;
  createdBy: string;
  createdAt: Date;
  expiresAt: Date | null;
}

export class BanValueError extends Error {
  readonly code = 'ROOST_ERR_BAN_VALUE';
}

/** Longest client id or username a ban may name (MQTT strings are at most 65,535 bytes). */
export const MAX_BAN_VALUE_LENGTH = 65_535;

/** "10.1.2.3" → "10.1.2.3/32"; "2001:DB8::/48" → "2001:db8::/48"; anything else throws. */
export function normaliseNetwork(value: string): string {
  const [address = '', prefixText, ...rest] = value.trim().toLowerCase().split('/');
  const family = net.isIP(address);
  if (family === 0 || rest.length > 0) throw new BanValueError(`"${value}" is not an IP address or CIDR network`);
  const maxPrefix = family === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? maxPrefix : /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : NaN;
  if (!(prefix >= 0 && prefix <= maxPrefix)) throw new BanValueError(`"${value}": prefix must be 0-${maxPrefix}`);
  return `${address}/${prefix}`;
}

/** The value stored for a ban of this kind (the API, the CLI and flapping detection all go through it). */
export function normaliseBanValue(kind: BanKind, value: string): string {
  if (kind === 'ip') return normaliseNetwork(value);
  if (value.length === 0 || value.length > MAX_BAN_VALUE_LENGTH) throw new BanValueError(`a ${kind} ban needs a value of 1-${MAX_BAN_VALUE_LENGTH} characters`);
  return value;
}

/** Who is connecting, or connected: the fields a ban can match. */
export interface BanSubject {
  clientId?: string | null;
  username?: string | null;
  ip?: string | null;
}

export class BanList {
  readonly #byClientId = new Map<string, Ban>();
  readonly #byUsername = new Map<string, Ban>();
  readonly #networks: Array<{ ban: Ban; block: net.BlockList }> = [];

  constructor(readonly bans: readonly Ban[] = []) {
    for (const ban of bans) {
      if (ban.kind === 'client_id') this.#byClientId.set(ban.value, ban);
      else if (ban.kind === 'username') this.#byUsername.set(ban.value, ban);
      else {
        const [address, prefix] = ban.value.split('/');
        const block = new net.BlockList();
        block.addSubnet(address, Number(prefix), net.isIP(address) === 6 ? 'ipv6' : 'ipv4');
        this.#networks.push({ ban, block });
      }
    }
  }

  get size(): number {
    return this.bans.length;
  }

  /** The ban in force that matches, if any. */
  match(subject: BanSubject, now = Date.now()): Ban | undefined {
    const live = (ban: Ban | undefined) => (ban && (ban.expiresAt === null || ban.expiresAt.getTime() > now) ? ban : undefined);
    const byId = subject.clientId ? live(this.#byClientId.get(subject.clientId)) : undefined;
    if (byId) return byId;
    const byName = subject.username ? live(this.#byUsername.get(subject.username)) : undefined;
    if (byName) return byName;
    const ip = plainAddress(subject.ip);
    if (!ip || this.#networks.length === 0) return undefined;
    const family = net.isIP(ip) === 6 ? 'ipv6' : 'ipv4';
    for (const { ban, block } of this.#networks) if (live(ban) && block.check(ip, family)) return ban;
    return undefined;
  }
}

/** IPv4-mapped IPv6 addresses ("::ffff:10.0.0.1") match IPv4 networks. */
function plainAddress(ip: string | null | undefined): string | undefined {
  if (!ip) return undefined;
  const plain = ip.startsWith('::ffff:') && net.isIPv4(ip.slice(7)) ? ip.slice(7) : ip;
  return net.isIP(plain) ? plain : undefined;
}
