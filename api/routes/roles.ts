/**
 * Roles, ACL rules, and the ACL check: "may device D publish to / subscribe to T?", answered with
 * the rule that decided (the same decision functions the broker runs).
 */
import type { FastifyPluginAsync } from 'fastify';
import { addRule, assignRole, createRole, deleteRole, listRoles, listRules, removeRule, unassignRole } from '../../auth/admin.js';
import { compileSubject, decidePublish, decideRead, decideSubscribe } from '../../auth/acl.js';
import { loadDevice } from '../../auth/store.js';
import { audit } from '../audit.js';
import { bearerSecurity, requireRole } from '../auth.js';
import { ApiErrors } from '../errors.js';
import { decodeCursor, pageResponseSchema, page, pageQuerySchema } from '../pagination.js';

const ruleSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    device: { type: ['string', 'null'] },
    role: { type: ['string', 'null'] },
    pattern: { type: 'string' },
    access: { type: 'string', enum: ['read', 'write', 'readwrite'] },
    effect: { type: 'string', enum: ['allow', 'deny'] },
    ordering: { type: 'integer' },
  },
} as const;

const roleSchema = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    description: { type: ['string', 'null'] },
    devices: { type: 'integer' },
    rules: { type: 'integer' },
  },
} as const;

const roleRoutes: FastifyPluginAsync = async (app) => {
  const { db } = app.roost;
  const err = { 400: { $ref: 'error#' }, 401: { $ref: 'error#' }, 403: { $ref: 'error#' }, 404: { $ref: 'error#' }, 409: { $ref: 'error#' } };
  const nameParams = { type: 'object', properties: { name: { type: 'string', minLength: 1, maxLength: 256 } } } as const;
  /** Giving a device a role, or taking it away. */
  const assignmentSchema = {
    tags: ['acl'],
    security: bearerSecurity,
    params: { type: 'object', properties: { name: { type: 'string' }, username: { type: 'string' } } },
    response: { 204: { type: 'null' }, ...err },
  } as const;

  app.post<{ Body: { name: string; description?: string } }>('/roles', {
    onRequest: requireRole('admin'),
    schema: {
      tags: ['acl'],
      security: bearerSecurity,
      body: {
        type: 'object',
        required: ['name'],
        additionalProperties: false,
        properties: { name: { type: 'string', minLength: 1, maxLength: 256 }, description: { type: 'string', maxLength: 1000 } },
      },
      response: { 201: roleSchema, ...err },
    },
  }, async (req, reply) => {
    const role = await createRole(db, req.body.name, req.body.description ?? null);
    await audit(db, req, 'role.create', role.name);
    return reply.code(201).send(role);
  });

  app.get<{ Querystring: { limit: number; cursor?: string } }>('/roles', {
    onRequest: requireRole('viewer'),
    schema: {
      tags: ['acl'],
      security: bearerSecurity,
      querystring: { type: 'object', additionalProperties: false, properties: pageQuerySchema },
      response: { 200: pageResponseSchema(roleSchema), ...err },
    },
  }, async (req) => {
    const after = decodeCursor(req.query.cursor, 1)?.[0] as string | undefined;
    const roles = (await listRoles(db)).filter((r) => after === undefined || r.name > after);
    return page(roles, req.query.limit, (r) => [r.name]);
  });

  app.delete<{ Params: { name: string } }>('/roles/:name', {
    onRequest: requireRole('admin'),
    schema: { tags: ['acl'], security: bearerSecurity, params: nameParams, response: { 204: { type: 'null' }, ...err } },
  }, async (req, reply) => {
    await deleteRole(db, req.params.name);
    await audit(db, req, 'role.delete', req.params.name);
    return reply.code(204).send();
  });

  app.put<{ Params: { name: string; username: string } }>('/roles/:name/devices/:username', {
    onRequest: requireRole('admin'),
    schema: assignmentSchema,
  }, async (req, reply) => {
    await assignRole(db, req.params.username, req.params.name);
    await audit(db, req, 'role.assign', req.params.username, { role: req.params.name });
    return reply.code(204).send();
  });

  app.delete<{ Params: { name: string; username: string } }>('/roles/:name/devices/:username', {
    onRequest: requireRole('admin'),
    schema: assignmentSchema,
  }, async (req, reply) => {
    if (!(await unassignRole(db, req.params.username, req.params.name))) {
      throw new ApiErrors.notFound(`role ${req.params.name} on device ${req.params.username}`);
    }
    await audit(db, req, 'role.unassign', req.params.username, { role: req.params.name });
    return reply.code(204).send();
  });

  app.post<{ Body: { device?: string; role?: string; pattern: string; access: 'read' | 'write' | 'readwrite'; effect?: 'allow' | 'deny'; ordering?: number } }>('/rules', {
    onRequest: requireRole('admin'),
    schema: {
      tags: ['acl'],
      security: bearerSecurity,
      body: {
        type: 'object',
        required: ['pattern', 'access'],
        additionalProperties: false,
        properties: {
          device: { type: 'string', minLength: 1 },
          role: { type: 'string', minLength: 1 },
          pattern: { type: 'string', minLength: 1, maxLength: 1024 },
          access: { type: 'string', enum: ['read', 'write', 'readwrite'] },
          effect: { type: 'string', enum: ['allow', 'deny'] },
          ordering: { type: 'integer' },
        },
      },
      response: { 201: ruleSchema, ...err },
    },
  }, async (req, reply) => {
    const rule = await addRule(db, req.body);
    await audit(db, req, 'rule.create', rule.id, { ...req.body });
    return reply.code(201).send(rule);
  });

  app.get<{ Querystring: { device?: string; role?: string; limit: number; cursor?: string } }>('/rules', {
    onRequest: requireRole('viewer'),
    schema: {
      tags: ['acl'],
      security: bearerSecurity,
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: { ...pageQuerySchema, device: { type: 'string' }, role: { type: 'string' } },
      },
      response: { 200: pageResponseSchema(ruleSchema), ...err },
    },
  }, async (req) => {
    const after = decodeCursor(req.query.cursor, 1)?.[0];
    const rules = (await listRules(db, { device: req.query.device, role: req.query.role }))
      .sort((a, b) => Number(a.id) - Number(b.id))
      .filter((r) => after === undefined || Number(r.id) > Number(after));
    return page(rules, req.query.limit, (r) => [r.id]);
  });

  app.delete<{ Params: { id: string } }>('/rules/:id', {
    onRequest: requireRole('admin'),
    schema: {
      tags: ['acl'],
      security: bearerSecurity,
      params: { type: 'object', properties: { id: { type: 'string', pattern: '^[0-9]{1,18}$' } } },
      response: { 204: { type: 'null' }, ...err },
    },
  }, async (req, reply) => {
    await removeRule(db, req.params.id);
    await audit(db, req, 'rule.delete', req.params.id);
    return reply.code(204).send();
  });

  app.get<{ Querystring: { device: string; action: 'publish' | 'subscribe' | 'read'; topic: string; client_id?: string } }>('/acl/check', {
    onRequest: requireRole('viewer'),
    schema: {
      tags: ['acl'],
      security: bearerSecurity,
      querystring: {
        type: 'object',
        required: ['device', 'action', 'topic'],
        additionalProperties: false,
        properties: {
          device: { type: 'string', minLength: 1 },
          action: { type: 'string', enum: ['publish', 'subscribe', 'read'] },
          topic: { type: 'string', minLength: 1, maxLength: 65535 },
          client_id: { type: 'string', description: 'client id for %c rules (default: the username)' },
        },
      },
      response: {
        200: {
          type: 'object',
          properties: {
            allowed: { type: 'boolean' },
            decision: { type: 'string', enum: ['allow', 'deny'] },
            reason: { type: 'string' },
            rule: { type: ['object', 'null'], properties: { id: { type: 'string' }, pattern: { type: 'string' }, access: { type: 'string' }, effect: { type: 'string' }, source: { type: 'string' } } },
            partial_deny: { type: ['object', 'null'], properties: { id: { type: 'string' }, pattern: { type: 'string' }, source: { type: 'string' } } },
          },
        },
        ...err,
      },
    },
  }, async (req) => {
    const device = await loadDevice(db, req.query.device);
    if (!device) throw new ApiErrors.notFound(`device ${req.query.device}`);
    const subject = compileSubject({ username: device.username, clientId: req.query.client_id ?? device.username, superuser: device.superuser, rules: device.rules });
    const decide = { publish: decidePublish, subscribe: decideSubscribe, read: decideRead }[req.query.action];
    const d = decide(subject, req.query.topic);
    return {
      allowed: d.allowed,
      decision: d.allowed ? 'allow' : 'deny',
      reason: d.reason,
      rule: d.rule ?? null,
      partial_deny: d.partialDeny ?? null,
    };
  });
};

export default roleRoutes;
