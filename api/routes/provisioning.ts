/**
 * Provisioning: admins mint keys (shown once, stored hashed, max uses, expiry, revocable, a role and
 * an ACL template); a device exchanges a key — or a request signed with HMAC-SHA256 — for its own
 * credentials and connection details at POST /provision. Re-provisioning is explicit, never silent.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { addRule, assignRole, createDevice, updateDevice } from '../../auth/admin.js';
import type { Queryable } from '../../lib/db/index.js';
import { audit, auditAs } from '../audit.js';
import { bearerSecurity, requireRole } from '../auth.js';
import { ApiErrors } from '../errors.js';
import { lookupHashes, newProvisioningKey, SIGNATURE_FORMAT, signingKey } from '../provisioning-keys.js';
import { loadServerSecret, serverSecretFile } from '../server-secret.js';
import { decodeIdCursor, pageResponseSchema, page, pageQuerySchema } from '../pagination.js';
import { generatePassword } from './devices.js';

/** Signed requests older than this (or from further in the future) are refused. */
export const SIGNATURE_WINDOW_S = 300;

interface KeyRow {
  id: string;
  name: string;
  secret_hash: string;
  key_seed: string | null;
  role: string | null;
  acl_template: Array<{ pattern: string; access: 'read' | 'write' | 'readwrite' }>;
  max_uses: number | null;
  uses: number;
  allow_reprovision: boolean;
  expires_at: Date | null;
  revoked_at: Date | null;
}

export { signProvisioningRequest } from '../provisioning-keys.js';

/** Both are 64 lower-case hex digits (checked before): equal bytes, compared in constant time. */
function sameHex(a: string, b: string): boolean {
  return a.length === b.length && timingSafeEqual(Buffer.from(a, 'hex'), Buffer.from(b, 'hex'));
}

const keySchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    role: { type: ['string', 'null'] },
    acl_template: { type: 'array', items: { type: 'object', properties: { pattern: { type: 'string' }, access: { type: 'string' } } } },
    max_uses: { type: ['integer', 'null'] },
    uses: { type: 'integer' },
    allow_reprovision: { type: 'boolean' },
    expires_at: { type: ['string', 'null'], format: 'date-time' },
    revoked_at: { type: ['string', 'null'], format: 'date-time' },
  },
} as const;

const provisioningRoutes: FastifyPluginAsync = async (app) => {
  const { db, hasher, config } = app.roost;
  let secret: Buffer | undefined;
  // Read on first use: an API that never provisions needs no secret file.
  const serverSecret = () => (secret ??= loadServerSecret(serverSecretFile(config)));
  const err = { 400: { $ref: 'error#' }, 401: { $ref: 'error#' }, 403: { $ref: 'error#' }, 404: { $ref: 'error#' }, 409: { $ref: 'error#' } };

  // Keep the raw body: a signed request is verified over the exact bytes sent.
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    (req as FastifyRequest & { rawBody?: string }).rawBody = body as string;
    try {
      done(null, body === '' ? {} : JSON.parse(body as string));
    } catch {
      done(new ApiErrors.badRequest('body is not valid JSON'));
    }
  });

  app.post<{ Body: { name: string; role?: string; acl_template?: KeyRow['acl_template']; max_uses?: number; expires_at?: string; allow_reprovision?: boolean } }>('/api/provisioning-keys', {
    onRequest: requireRole('admin'),
    schema: {
      tags: ['provisioning'],
      security: bearerSecurity,
      body: {
        type: 'object',
        required: ['name'],
        additionalProperties: false,
        properties: {
          name: { type: 'string', minLength: 1, maxLength: 200 },
          role: { type: 'string', minLength: 1 },
          acl_template: {
            type: 'array',
            maxItems: 50,
            items: {
              type: 'object',
              required: ['pattern', 'access'],
              additionalProperties: false,
              properties: { pattern: { type: 'string', minLength: 1, maxLength: 1024 }, access: { type: 'string', enum: ['read', 'write', 'readwrite'] } },
            },
          },
          max_uses: { type: 'integer', minimum: 1 },
          expires_at: { type: 'string', format: 'date-time' },
          allow_reprovision: { type: 'boolean' },
        },
      },
      response: { 201: { type: 'object', properties: { key: { type: 'string' }, provisioning_key: keySchema } }, ...err },
    },
  }, async (req, reply) => {
    const b = req.body;
    const { key, key_seed, secret_hash } = newProvisioningKey(serverSecret());
    try {
      const res = await db.query<KeyRow>(
        `INSERT INTO provisioning_keys (name, secret_hash, key_seed, role, acl_template, max_uses, expires_at, allow_reprovision)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *`,
        [b.name, secret_hash, key_seed, b.role ?? null, JSON.stringify(b.acl_template ?? []), b.max_uses ?? null, b.expires_at ?? null, b.allow_reprovision ?? false],
      );
      await audit(db, req, 'provisioning_key.create', b.name, { role: b.role ?? null, max_uses: b.max_uses ?? null });
      return reply.code(201).send({ key, provisioning_key: res.rows[0] });
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === '23505') throw new ApiErrors.conflict(`a provisioning key named ${b.name} exists`);
      if (code === '23503') throw new ApiErrors.badRequest(`body.role: no role named ${b.role}`);
      throw e;
    }
  });

  app.get<{ Querystring: { limit: number; cursor?: string } }>('/api/provisioning-keys', {
    onRequest: requireRole('viewer'),
    schema: {
      tags: ['provisioning'],
      security: bearerSecurity,
      querystring: { type: 'object', additionalProperties: false, properties: pageQuerySchema },
      response: { 200: pageResponseSchema(keySchema), ...err },
    },
  }, async (req) => {
    const after = decodeIdCursor(req.query.cursor);
    const res = await db.query<KeyRow>('SELECT * FROM provisioning_keys WHERE ($1::bigint IS NULL OR id > $1::bigint) ORDER BY id LIMIT $2', [after, req.query.limit + 1]);
    return page(res.rows, req.query.limit, (r) => [r.id]);
  });

  app.delete<{ Params: { id: string } }>('/api/provisioning-keys/:id', {
    onRequest: requireRole('admin'),
    schema: {
      tags: ['provisioning'],
      security: bearerSecurity,
      description: 'Revokes the key: it provisions nothing more (devices it made keep working).',
      params: { type: 'object', properties: { id: { type: 'string', pattern: '^[0-9]{1,18}$' } } },
      response: { 204: { type: 'null' }, ...err },
    },
  }, async (req, reply) => {
    const res = await db.query('UPDATE provisioning_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1 RETURNING name', [req.params.id]);
    if (res.rowCount === 0) throw new ApiErrors.notFound(`provisioning key ${req.params.id}`);
    await audit(db, req, 'provisioning_key.revoke', req.params.id);
    return reply.code(204).send();
  });

  /** The key a request proves it holds: a bearer key, or an HMAC signature by a named key. */
  async function keyOf(req: FastifyRequest): Promise<KeyRow> {
    const auth = req.headers.authorization;
    const bearer = auth ? /^Bearer\s+(rpk_\S+)$/i.exec(auth)?.[1] : undefined;
    if (bearer) {
      const { derived, legacy } = lookupHashes(serverSecret(), bearer);
      const res = await db.query<KeyRow>(
        'SELECT * FROM provisioning_keys WHERE (key_seed IS NOT NULL AND secret_hash = $1) OR (key_seed IS NULL AND secret_hash = $2)',
        [derived, legacy],
      );
      if (!res.rows[0]) throw new ApiErrors.provisioning('invalid provisioning key');
      return res.rows[0];
    }
    const keyName = req.headers['x-roost-key'];
    const timestamp = Number(req.headers['x-roost-timestamp']);
    const signature = req.headers['x-roost-signature'];
    if (typeof keyName !== 'string' || typeof signature !== 'string' || !Number.isInteger(timestamp)) {
      throw new ApiErrors.provisioning('send Authorization: Bearer <provisioning key>, or X-Roost-Key, X-Roost-Timestamp and X-Roost-Signature');
    }
    // One spelling per signature: the replay guard below keys on this exact string.
    if (!SIGNATURE_FORMAT.test(signature)) throw new ApiErrors.provisioning('X-Roost-Signature must be 64 lower-case hex digits');
    if (Math.abs(Date.now() / 1000 - timestamp) > SIGNATURE_WINDOW_S) throw new ApiErrors.provisioning('signed request is older than 5 minutes (or its clock is off)');
    const res = await db.query<KeyRow>('SELECT * FROM provisioning_keys WHERE name = $1', [keyName]);
    const key = res.rows[0];
    const hmacKey = key && signingKeyOf(key);
    const raw = (req as FastifyRequest & { rawBody?: string }).rawBody ?? '';
    const expected = hmacKey ? createHmac('sha256', hmacKey).update(`${timestamp}.${raw}`).digest('hex') : '';
    if (!key || !sameHex(expected, signature)) throw new ApiErrors.provisioning('invalid signature');
    await db.query("DELETE FROM provisioning_nonces WHERE seen_at < now() - interval '10 minutes'");
    const fresh = await db.query('INSERT INTO provisioning_nonces (signature) VALUES ($1) ON CONFLICT DO NOTHING RETURNING signature', [signature]);
    if (fresh.rowCount === 0) throw new ApiErrors.provisioning('signed request was already used (replay)');
    return key;
  }

  /** A key made before the server secret signed with its stored hash: refused unless the setting allows it. */
  function signingKeyOf(key: KeyRow): string {
    const derived = signingKey(serverSecret(), key);
    if (derived) return derived;
    if (config.ROOST_PROVISIONING_LEGACY_SIGNATURES) return key.secret_hash;
    throw new ApiErrors.provisioning(
      `key ${key.name} predates the server secret, and its stored hash could sign: make a new key for signed requests (it still works as a bearer key)`,
    );
  }

  async function useKey(tx: Queryable, key: KeyRow): Promise<void> {
    if (key.revoked_at) throw new ApiErrors.provisioning('provisioning key was revoked');
    if (key.expires_at && key.expires_at.getTime() <= Date.now()) throw new ApiErrors.provisioning('provisioning key has expired');
    const res = await tx.query(
      'UPDATE provisioning_keys SET uses = uses + 1 WHERE id = $1 AND (max_uses IS NULL OR uses < max_uses) RETURNING uses',
      [key.id],
    );
    if (res.rowCount === 0) throw new ApiErrors.provisioning(`provisioning key has been used ${key.max_uses} times, its maximum`);
  }

  function connectionInfo(req: FastifyRequest) {
    const ports = app.roost.ports?.() ?? {};
    const host = config.ROOST_PUBLIC_HOST ?? req.hostname.replace(/:\d+$/, '');
    return {
      host,
      ports: { mqtt: ports.mqtt ?? null, mqtts: ports.mqtts ?? null, ws: ports.ws ?? null, wss: ports.wss ?? null },
      ws_path: config.ROOST_WS_PATH,
      ca_certificate: config.ROOST_PUBLIC_CA_CERT ? readFileSync(config.ROOST_PUBLIC_CA_CERT, 'utf8') : null,
    };
  }

  app.post<{ Body: { device: string; reprovision?: boolean; name?: string; type?: string; attributes?: Record<string, unknown> } }>('/provision', {
    config: { rateLimit: { max: 30, timeWindow: '1 minute' } },
    schema: {
      tags: ['provisioning'],
      description: 'Device-facing: exchange a provisioning key (Authorization: Bearer rpk_…) or a signed request for credentials.',
      body: {
        type: 'object',
        required: ['device'],
        additionalProperties: false,
        properties: {
          // Becomes the username and fills {device} in topic templates: no MQTT separators or wildcards.
          device: { type: 'string', minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9._:-]+$' },
          reprovision: { type: 'boolean' },
          name: { type: 'string', maxLength: 200 },
          type: { type: 'string', maxLength: 100 },
          attributes: { type: 'object', additionalProperties: true },
        },
      },
      response: {
        200: {
          type: 'object',
          properties: {
            username: { type: 'string' },
            password: { type: 'string' },
            reprovisioned: { type: 'boolean' },
            host: { type: 'string' },
            ports: { type: 'object', additionalProperties: { type: ['integer', 'null'] } },
            ws_path: { type: 'string' },
            ca_certificate: { type: ['string', 'null'] },
          },
        },
        ...err,
        429: { $ref: 'error#' },
      },
    },
  }, async (req) => {
    const key = await keyOf(req);
    const username = req.body.device;
    const password = generatePassword();
    const passwordHash = await hasher.hash(password);
    const reprovisioned = await db.transaction(async (tx) => {
      await useKey(tx, key);
      const exists = await tx.query<{ provisioned_by: string | null; superuser: boolean; enabled: boolean }>(
        'SELECT provisioned_by::text, superuser, enabled FROM devices WHERE username = $1 FOR UPDATE',
        [username],
      );
      const device = exists.rows[0];
      if (device) {
        if (!req.body.reprovision) throw new ApiErrors.conflict(`device ${username} exists; to replace its credentials send "reprovision": true`);
        if (!key.allow_reprovision) throw new ApiErrors.provisioning('this provisioning key may not re-provision existing devices');
        // A key replaces only the credentials it handed out: never an admin's device or a superuser.
        if (device.provisioned_by !== String(key.id) || device.superuser) throw new ApiErrors.provisioning(`this provisioning key did not provision device ${username}`);
        if (!device.enabled) throw new ApiErrors.provisioningForbidden(`device ${username} is disabled; an admin must enable it before it is re-provisioned`);
        await updateDevice(tx, username, { passwordHash });
        return true;
      }
      await createDevice(tx, { username, passwordHash, name: req.body.name ?? null, type: req.body.type ?? null, attributes: req.body.attributes ?? {} });
      await tx.query('UPDATE devices SET provisioned_by = $2 WHERE username = $1', [username, key.id]);
      if (key.role) await assignRole(tx, username, key.role);
      for (const t of key.acl_template) await addRule(tx, { device: username, pattern: t.pattern.replaceAll('{device}', username), access: t.access });
      return false;
    });
    await auditAs(db, `provisioning:${key.name}`, req.ip, reprovisioned ? 'device.reprovision' : 'device.provision', username);
    return { username, password, reprovisioned, ...connectionInfo(req) };
  });
};

export default provisioningRoutes;
