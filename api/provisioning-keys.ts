/**
 * Provisioning key material (issue 22 #13). A key is derived from the server secret and a random
 * seed stored with it: key = "rpk_" + base64url(HMAC(secret, seed)). Stored beside the seed is
 * HMAC(secret, key), to find the key a bearer request presents. A device signs with
 * hex(SHA-256(key)) as the HMAC key, as before; the server re-derives it from secret and seed, so
 * what the database holds cannot sign. Keys made before (no seed) stored SHA-256(key) itself.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';

export interface KeyMaterial {
  key_seed: string | null;
  secret_hash: string;
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/** The signature a device sends: hex HMAC-SHA256 keyed with hex(SHA-256(key)), over "<timestamp>.<body>". */
export function signProvisioningRequest(key: string, timestamp: number, body: string): string {
  return createHmac('sha256', sha256(key)).update(`${timestamp}.${body}`).digest('hex');
}

/** The one spelling of a signature accepted: other spellings of the same bytes would pass the replay guard. */
export const SIGNATURE_FORMAT = /^[0-9a-f]{64}$/;

function keyFromSeed(secret: Buffer, seed: string): string {
  return 'rpk_' + createHmac('sha256', secret).update(`roost provisioning key\0${seed}`).digest('base64url');
}

/** What a bearer key is looked up by: HMAC(secret, key) for derived keys, SHA-256(key) for older ones. */
export function lookupHashes(secret: Buffer, key: string): { derived: string; legacy: string } {
  return { derived: createHmac('sha256', secret).update(`roost provisioning lookup\0${key}`).digest('hex'), legacy: sha256(key) };
}

export function newProvisioningKey(secret: Buffer): { key: string } & KeyMaterial {
  const seed = randomBytes(24).toString('base64url');
  const key = keyFromSeed(secret, seed);
  return { key, key_seed: seed, secret_hash: lookupHashes(secret, key).derived };
}

/** The HMAC key a signed request by this key was made with; undefined for an older key. */
export function signingKey(secret: Buffer, material: KeyMaterial): string | undefined {
  return material.key_seed === null ? undefined : sha256(keyFromSeed(secret, material.key_seed));
}
