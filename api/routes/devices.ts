/**
 * Devices: create (password generated and shown once, or given), list with filters and online
 * state, get, update (rename, enable/disable, attributes, rotate password), delete.
 * Disabling or deleting a device disconnects it on every node (auth change notification).
 */
import { randomBytes } from 'node:crypto';
import type { FastifyPluginAsync } from 'fastify';
import { assignRole, createDevice, deleteDevice, getDevice, updateDevice, type Device, type DevicePatch } from '../../auth/admin.js';
import { audit } from '../audit.js';
import { bearerSecurity, requireRole } from '../auth.js';
import { decodeCursor, pageResponseSchema, page, pageQuerySchema } from '../pagination.js';

export const deviceSchema = {
  $id: 'device',
  type: 'object',
  properties: {
    username: { type: 'string' },
    name: { type: ['string', 'null'] },
    type: { type: ['string', 'null'] },
    enabled: { type: 'boolean' },
    superuser: { type: 'boolean' },
    client_id_pattern: { type: ['string', 'null'] },
    attributes: { type: 'object', additionalProperties: true },
    roles: { type: 'array', items: { type: 'string' } },
    password_set: { type: 'boolean' },
    online: { type: 'boolean' },
    last_seen: { type: ['string', 'null'], format: 'date-time' },
    created_at: { type: 'string', format: 'date-time' },
    updated_at: { type: 'string', format: 'date-time' },
  },
} as const;

const writableProperties = {
  name: { type: ['string', 'null'], maxLength: 200 },
  type: { type: ['string', 'null'], maxLength: 100 },
  enabled: { type: 'boolean' },
  superuser: { type: 'boolean' },
  client_id_pattern: { type: ['string', 'null'], maxLength: 256 },
  attributes: { type: 'object', additionalProperties: true },
} as const;

interface DeviceBody {
  username: string;
  password?: string;
  name?: string | null;
  type?: string | null;
  enabled?: boolean;
  superuser?: boolean;
  client_id_pattern?: string | null;
  attributes?: Record<string, unknown>;
  roles?: string[];
}

/** A strong random password: 144 bits, URL-safe. */
export function generatePassword(): string {
  return randomBytes(18).toString('base64url');
}

const deviceRoutes: FastifyPluginAsync = async (app) => {
  const { db, hasher, presence, cluster } = app.roost;
  app.addSchema(deviceSchema);
  const err = { 400: { $ref: 'error#' }, 401: { $ref: 'error#' }, 403: { $ref: 'error#' }, 404: { $ref: 'error#' }, 409: { $ref: 'error#' } };
  const usernameParams = { type: 'object', properties: { username: { type: 'string', minLength: 1, maxLength: 256 } } } as const;

  /** Usernames connected now: on every node in a cluster, else on this process's broker. */
  async function onlineSet(): Promise<Set<string>> {
    if (cluster) return new Set((await cluster.clients()).flatMap((c) => (c.username ? [c.username] : [])));
    return presence?.onlineUsernames() ?? new Set();
  }

  const view = (d: Device, online: boolean) => ({
    username: d.username,
    name: d.name,
    type: d.type,
    enabled: d.enabled,
    superuser: d.superuser,
    client_id_pattern: d.clientIdPattern,
    attributes: d.attributes,
    roles: d.roles,
    password_set: d.passwordKind !== 'none',
    online,
    last_seen: d.lastSeen,
    created_at: d.createdAt,
    updated_at: d.updatedAt,
  });

  const patchOf = (body: Partial<DeviceBody>): DevicePatch => ({
    name: body.name,
    type: body.type,
    enabled: body.enabled,
    superuser: body.superuser,
    clientIdPattern: body.client_id_pattern,
    attributes: body.attributes,
  });

  app.post<{ Body: DeviceBody }>('/devices', {
    onRequest: requireRole('admin'),
    schema: {
      tags: ['devices'],
      security: bearerSecurity,
      body: {
        type: 'object',
        required: ['username'],
        additionalProperties: false,
        properties: {
          username: { type: 'string', minLength: 1, maxLength: 256 },
          password: { type: 'string', minLength: 8, maxLength: 256 },
          roles: { type: 'array', items: { type: 'string', minLength: 1 }, maxItems: 50 },
          ...writableProperties,
        },
      },
      response: {
        201: { type: 'object', properties: { device: { $ref: 'device#' }, password: { type: 'string' } } },
        ...err,
      },
    },
  }, async (req, reply) => {
    const password = req.body.password ?? generatePassword();
    const passwordHash = await hasher.hash(password);
    const device = await db.transaction(async (tx) => {
      await createDevice(tx, { username: req.body.username, passwordHash, ...patchOf(req.body) });
      for (const role of req.body.roles ?? []) await assignRole(tx, req.body.username, role);
      return getDevice(tx, req.body.username);
    });
    await audit(db, req, 'device.create', device.username, { roles: device.roles });
    // The password is returned this once and stored only as a bcrypt hash.
    return reply.code(201).send({ device: view(device, false), password });
  });

  app.get<{ Querystring: { limit: number; cursor?: string; enabled?: boolean; online?: boolean; role?: string; name_prefix?: string } }>('/devices', {
    onRequest: requireRole('viewer'),
    schema: {
      tags: ['devices'],
      security: bearerSecurity,
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: {
          ...pageQuerySchema,
          enabled: { type: 'boolean' },
          online: { type: 'boolean' },
          role: { type: 'string', maxLength: 256 },
          name_prefix: { type: 'string', maxLength: 256 },
        },
      },
      response: { 200: pageResponseSchema({ $ref: 'device#' }), ...err },
    },
  }, async (req) => {
    const q = req.query;
    const after = decodeCursor(q.cursor, 1);
    const online = [...(await onlineSet())];
    // name_prefix matches the display name or the username, literally (LIKE wildcards escaped).
    const prefix = q.name_prefix === undefined ? null : q.name_prefix.replace(/[\\%_]/g, '\\$&') + '%';
    const res = await db.query<{ username: string }>(
      `SELECT d.username FROM devices d
        WHERE ($1::text IS NULL OR d.username > $1)
          AND ($2::boolean IS NULL OR d.enabled = $2)
          AND ($3::text IS NULL OR EXISTS (SELECT 1 FROM device_roles dr JOIN roles r ON r.id = dr.role_id WHERE dr.device_id = d.id AND r.name = $3))
          AND ($4::text IS NULL OR d.name LIKE $4 OR d.username LIKE $4)
          AND ($5::boolean IS NULL OR (d.username = ANY($6::text[])) = $5)
        ORDER BY d.username LIMIT $7`,
      [after?.[0] ?? null, q.enabled ?? null, q.role ?? null, prefix, q.online ?? null, online, q.limit + 1],
    );
    const result = page(res.rows, q.limit, (r) => [r.username]);
    const onlineNow = new Set(online);
    const items = await Promise.all(result.items.map(async (r) => view(await getDevice(db, r.username), onlineNow.has(r.username))));
    return { items, next_cursor: result.next_cursor };
  });

  app.get<{ Params: { username: string } }>('/devices/:username', {
    onRequest: requireRole('viewer'),
    schema: { tags: ['devices'], security: bearerSecurity, params: usernameParams, response: { 200: { $ref: 'device#' }, ...err } },
  }, async (req) => {
    const device = await getDevice(db, req.params.username);
    return view(device, (await onlineSet()).has(device.username));
  });

  app.patch<{ Params: { username: string }; Body: Partial<DeviceBody> & { rotate_password?: boolean; password?: string } }>('/devices/:username', {
    onRequest: requireRole('admin'),
    schema: {
      tags: ['devices'],
      security: bearerSecurity,
      params: usernameParams,
      body: {
        type: 'object',
        additionalProperties: false,
        minProperties: 1,
        properties: { ...writableProperties, password: { type: 'string', minLength: 8, maxLength: 256 }, rotate_password: { type: 'boolean' } },
      },
      response: { 200: { type: 'object', properties: { device: { $ref: 'device#' }, password: { type: 'string' } } }, ...err },
    },
  }, async (req) => {
    const patch = patchOf(req.body);
    let password: string | undefined;
    if (req.body.rotate_password || req.body.password) {
      password = req.body.password ?? generatePassword();
      patch.passwordHash = await hasher.hash(password);
    }
    const device = await updateDevice(db, req.params.username, patch);
    const changed = Object.keys(req.body).filter((k) => k !== 'password');
    await audit(db, req, req.body.enabled === false ? 'device.disable' : 'device.update', device.username, { changed });
    // A generated password is shown once; one the admin chose is not echoed back.
    return { device: view(device, (await onlineSet()).has(device.username)), ...(req.body.rotate_password && !req.body.password ? { password } : {}) };
  });

  app.delete<{ Params: { username: string } }>('/devices/:username', {
    onRequest: requireRole('admin'),
    schema: { tags: ['devices'], security: bearerSecurity, params: usernameParams, response: { 204: { type: 'null' }, ...err } },
  }, async (req, reply) => {
    await deleteDevice(db, req.params.username);
    await audit(db, req, 'device.delete', req.params.username);
    return reply.code(204).send();
  });
};

export default deviceRoutes;
