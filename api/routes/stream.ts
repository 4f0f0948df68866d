/**
 * Stored messages as a resumable stream, for backends and connectors:
 *   GET /api/messages/stream   Server-Sent Events; each event's id is the stored message id, and
 *                              Last-Event-ID (or after_id) resumes exactly after it: stored rows
 *                              first, then new ones as they are committed, from the same query.
 *   GET /api/messages/pull     the same sequence in pages (after_id, limit) for batch consumers.
 *
 * Both read the messages table in id order. One broker process hands out ids in increasing blocks
 * and commits its batches in id order (broker/store-writer.ts), so once an id is visible every
 * smaller id of that process is final: a reader that moves its cursor only up to the highest
 * visible id never skips a row and never sees one twice. The order is commit order, which keeps
 * each client's publish order. (With several broker nodes writing one database, see docs/webhooks-and-stream.md.)
 */
import type { FastifyPluginAsync } from 'fastify';
import { decideRead, decideSubscribe, type CompiledSubject } from '../../auth/acl.js';
import type { Db } from '../../lib/db/index.js';
import { bearerSecurity } from '../auth.js';
import { ApiErrors } from '../errors.js';
import { historyRateLimit } from '../history-limits.js';
import { followAccess, readerOf } from '../readers.js';
import { topicCondition } from '../topic-sql.js';
import { PROPERTY_COLUMN_NAMES, messageSchema, messageView, type MessageRow } from './messages.js';

const COLUMNS = `m.id::text AS id, m.topic, m.payload, m.payload_json, m.qos, m.retain, m.client_id, m.username, m.received_at, ${PROPERTY_COLUMN_NAMES.map((c) => `m.${c}`).join(', ')}`;
const SSE_PAGE = 500;
/** A reader polls this often when nothing wakes it (no broker in this process, or a quiet one). */
const IDLE_POLL_MS = 250;
/** After a PUBLISH, the time its row needs to be committed (QoS 0 is delivered before it is stored). */
const WAKE_DELAY_MS = 20;
const PING_MS = 15_000;
const ID = /^\d{1,19}$/;
const { $id: _messageId, ...messageItem } = messageSchema;

interface Page {
  rows: MessageRow[];
  /** Every id up to here has been looked at: the next read starts after it. */
  scanned: string;
}

/** The next rows after `after` (matching filter), and how far the read got. */
async function readAfter(db: Db, after: string, filter: string | undefined, limit: number): Promise<Page> {
  const top = await db.query<{ id: string | null }>('SELECT max(id)::text AS id FROM messages');
  const upto = top.rows[0]?.id ?? null;
  if (upto === null || BigInt(upto) <= BigInt(after)) return { rows: [], scanned: after };
  const params: unknown[] = [after, upto];
  let where = 'm.id > $1 AND m.id <= $2';
  if (filter) {
    const c = topicCondition('m.topic', filter, 3);
    params.push(c.param);
    where += ` AND ${c.sql}`;
  }
  params.push(limit);
  const res = await db.query<MessageRow>(`SELECT ${COLUMNS} FROM messages m WHERE ${where} ORDER BY m.id LIMIT $${params.length}`, params);
  const rows = res.rows;
  return { rows, scanned: rows.length === limit ? rows[rows.length - 1].id : upto };
}

async function newestId(db: Db): Promise<string> {
  const res = await db.query<{ id: string | null }>('SELECT coalesce(max(id), 0)::text AS id FROM messages');
  return res.rows[0].id ?? '0';
}

function visibleTo(reader: CompiledSubject | 'all', topic: string): boolean {
  return reader === 'all' || decideRead(reader, topic).allowed;
}

const streamQuery = {
  filter: { type: 'string', minLength: 1, maxLength: 65535, description: 'MQTT topic filter (default #: every topic not starting with $)' },
  after_id: { type: 'string', pattern: '^[0-9]{1,19}$', description: 'start after this stored message id' },
} as const;

const streamRoutes: FastifyPluginAsync = async (app) => {
  const { db, broker } = app.roost;
  const err = { 400: { $ref: 'error#' }, 401: { $ref: 'error#' }, 403: { $ref: 'error#' } };

  /** The reader, refused unless it may read the whole filter (as an MQTT SUBSCRIBE would be). */
  const admit = async (req: Parameters<typeof readerOf>[0], filter: string) => {
    const reader = await readerOf(req);
    if (reader.scope !== 'all' && !decideSubscribe(reader.scope, filter).allowed) throw new ApiErrors.aclDenied(filter);
    return reader;
  };

  app.get<{ Querystring: { filter?: string; after_id?: string; limit: number } }>('/messages/pull', {
    config: historyRateLimit(app.roost.config),
    schema: {
      tags: ['messages'],
      security: bearerSecurity,
      description: 'Stored messages after after_id in id order. Pass next_after_id as after_id to continue. Bearer API token, or Basic device credentials (its read rules apply).',
      querystring: { type: 'object', additionalProperties: false, properties: { ...streamQuery, limit: { type: 'integer', minimum: 1, maximum: 5000, default: 500 } } },
      response: {
        200: { type: 'object', properties: { items: { type: 'array', items: messageItem }, next_after_id: { type: 'string' } } },
        ...err,
      },
    },
  }, async (req) => {
    const filter = req.query.filter ?? '#';
    const reader = await admit(req, filter);
    const got = await readAfter(db, req.query.after_id ?? '0', filter, req.query.limit);
    return { items: got.rows.filter((r) => visibleTo(reader.scope, r.topic)).map(messageView), next_after_id: got.scanned };
  });

  app.get<{ Querystring: { filter?: string; after_id?: string } }>('/messages/stream', {
    schema: {
      tags: ['messages'],
      security: bearerSecurity,
      description:
        'Server-Sent Events of stored messages (event "message", id = stored message id). Resumes after Last-Event-ID, else after_id, ' +
        'else starts with the next message stored. Bearer API token, or Basic device credentials (its read rules apply).',
      querystring: { type: 'object', additionalProperties: false, properties: streamQuery },
      response: { ...err },
    },
  }, async (req, reply) => {
    const filter = req.query.filter ?? '#';
    const reader = await admit(req, filter);
    const lastEventId = req.headers['last-event-id'];
    if (typeof lastEventId === 'string' && !ID.test(lastEventId)) throw new ApiErrors.badRequest('Last-Event-ID must be a stored message id');
    let cursor = (typeof lastEventId === 'string' && lastEventId) || req.query.after_id || (await newestId(db));
    topicCondition('topic', filter, 1); // refuses a bad filter before the stream starts

    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    res.write(`: after ${cursor}\n\n`);

    let open = true;
    let wake: (() => void) | undefined;
    let wakeTimer: NodeJS.Timeout | undefined;
    const onPublish = () => {
      if (wakeTimer || !wake) return;
      wakeTimer = setTimeout(() => {
        wakeTimer = undefined;
        wake?.();
      }, WAKE_DELAY_MS);
    };
    const stopWaking = broker?.on('published', onPublish);
    const ping = setInterval(() => res.write(': ping\n\n'), PING_MS);
    let scope = reader.scope;
    const stop = () => {
      open = false;
      stopFollowing();
      clearInterval(ping);
      clearTimeout(wakeTimer);
      stopWaking?.();
      wake?.();
    };
    const stopFollowing = followAccess(req, reader, { changed: (now) => (scope = now), lost: stop });
    req.raw.on('close', stop);

    const idle = () =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(done, IDLE_POLL_MS);
        function done() {
          clearTimeout(timer);
          wake = undefined;
          resolve();
        }
        wake = done;
      });
    const drained = () => new Promise<void>((resolve) => res.once('drain', resolve).once('close', resolve));

    try {
      while (open) {
        const got = await readAfter(db, cursor, filter, SSE_PAGE);
        for (const row of got.rows) {
          if (!open) break;
          if (!visibleTo(scope, row.topic)) continue;
          if (!res.write(`id: ${row.id}\nevent: message\ndata: ${JSON.stringify(messageView(row))}\n\n`)) await drained();
        }
        cursor = got.scanned;
        if (got.rows.length < SSE_PAGE && open) await idle();
      }
    } catch (e) {
      req.log.warn({ err: (e as Error).message }, 'message stream ended by an error');
    } finally {
      stop();
      res.end();
    }
  });
};

export default streamRoutes;
