/**
 * The SQL of the session tables (schema/003_sessions.sql): how a batch of row changes is written,
 * and how the whole state is read back when a broker starts. Batches are passed as arrays and
 * expanded with unnest(), so each statement's text is fixed whatever the batch size.
 */
import type { Queryable } from '../../lib/db/index.js';
import type { QueuedPacket } from './outgoing-queues.js';
import { CANCELLED, type Statement, type TableSpec } from './state-writer.js';

/** A row key from its primary-key parts (U+0000 cannot occur in MQTT strings: MQTT-1.5.4-2). */
export function rowKey(...parts: Array<string | number>): string {
  return parts.join('\u0000');
}

type Delete<K> = K & { kind: 'delete' };

/** Row tuples to one array per column, the parameters of an unnest() statement. */
function columns(rows: unknown[][]): unknown[][] {
  return rows[0].map((_, i) => rows.map((row) => row[i]));
}

type Put<V> = Extract<V, { kind: 'put' }>;
type Del<V> = Extract<V, { kind: 'delete' }>;

/** A table whose changes are puts (an upsert) and deletes, each batch in one statement. */
function putOrDeleteTable<V extends { kind: string }>(table: {
  name: string;
  upsert: string;
  putRow: (change: Put<V>) => unknown[];
  delete: string;
  deleteRow: (change: Del<V>) => unknown[];
}): TableSpec<V> {
  return {
    name: table.name,
    statements(changes) {
      const puts = changes.filter((c): c is Put<V> => c.kind === 'put').map(table.putRow);
      const deletes = changes.filter((c): c is Del<V> => c.kind === 'delete').map(table.deleteRow);
      const out: Statement[] = [];
      if (puts.length > 0) out.push({ sql: table.upsert, params: columns(puts) });
      if (deletes.length > 0) out.push({ sql: table.delete, params: columns(deletes) });
      return out;
    },
  };
}

// --- retained_messages -------------------------------------------------------------------------

export type RetainedChange =
  | { kind: 'put'; topic: string; payload: Buffer; qos: number; json: string }
  | Delete<{ topic: string }>;

const UPSERT_RETAINED = `
  INSERT INTO retained_messages (topic, payload, qos, packet, updated_at)
  SELECT u.topic, u.payload, u.qos, u.packet::jsonb, now()
  FROM unnest($1::text[], $2::bytea[], $3::smallint[], $4::text[]) AS u(topic, payload, qos, packet)
  ON CONFLICT (topic) DO UPDATE
  SET payload = EXCLUDED.payload, qos = EXCLUDED.qos, packet = EXCLUDED.packet, updated_at = EXCLUDED.updated_at`;
const DELETE_RETAINED = 'DELETE FROM retained_messages WHERE topic = ANY($1::text[])';

export const retainedTable = putOrDeleteTable<RetainedChange>({
  name: 'retained_messages',
  upsert: UPSERT_RETAINED,
  putRow: (c) => [c.topic, c.payload, c.qos, c.json],
  delete: DELETE_RETAINED,
  deleteRow: (c) => [c.topic],
});

// --- session_subscriptions ---------------------------------------------------------------------

export type SubscriptionChange =
  | { kind: 'put'; clientId: string; topic: string; qos: number; json: string }
  | Delete<{ clientId: string; topic: string }>;

const UPSERT_SUBSCRIPTIONS = `
  INSERT INTO session_subscriptions (client_id, topic, qos, options, updated_at)
  SELECT u.client_id, u.topic, u.qos, u.options::jsonb, now()
  FROM unnest($1::text[], $2::text[], $3::smallint[], $4::text[]) WITH ORDINALITY AS u(client_id, topic, qos, options, n)
  ORDER BY u.n
  ON CONFLICT (client_id, topic) DO UPDATE
  SET qos = EXCLUDED.qos, options = EXCLUDED.options, updated_at = EXCLUDED.updated_at`;
const DELETE_SUBSCRIPTIONS = `
  DELETE FROM session_subscriptions s USING unnest($1::text[], $2::text[]) AS d(client_id, topic)
  WHERE s.client_id = d.client_id AND s.topic = d.topic`;

export const subscriptionsTable = putOrDeleteTable<SubscriptionChange>({
  name: 'session_subscriptions',
  upsert: UPSERT_SUBSCRIPTIONS,
  putRow: (c) => [c.clientId, c.topic, c.qos, c.json],
  delete: DELETE_SUBSCRIPTIONS,
  deleteRow: (c) => [c.clientId, c.topic],
});

// --- session_outgoing --------------------------------------------------------------------------

export interface OutgoingRow {
  clientId: string;
  seq: number;
  messageId: number | null;
  cmd: string;
  topic: string | null;
  qos: number | null;
  payload: Buffer | null;
  json: string;
}

/** The row of a queued packet; `payload` and `json` come from encodeFields (messageId omitted). */
export function outgoingRow(item: QueuedPacket, payload: Buffer | null, json: string): OutgoingRow {
  const p = item.packet;
  return {
    clientId: item.clientId,
    seq: item.seq,
    messageId: (p.messageId as number | undefined) ?? null,
    cmd: String(p.cmd ?? 'publish'),
    topic: (p.topic as string | undefined) ?? null,
    qos: (p.qos as number | undefined) ?? null,
    payload,
    json,
  };
}

export type OutgoingChange =
  /** `isNew`: the row is not in the database yet (a packet just queued). */
  | { kind: 'put'; row: OutgoingRow; isNew: boolean }
  | { kind: 'messageId'; clientId: string; seq: number; messageId: number | null }
  | Delete<{ clientId: string; seq: number }>;

const UPSERT_OUTGOING = `
  INSERT INTO session_outgoing (client_id, seq, message_id, cmd, topic, qos, payload, packet)
  SELECT u.client_id, u.seq, u.message_id, u.cmd, u.topic, u.qos, u.payload, u.packet::jsonb
  FROM unnest($1::text[], $2::bigint[], $3::integer[], $4::text[], $5::text[], $6::smallint[], $7::bytea[], $8::text[])
    AS u(client_id, seq, message_id, cmd, topic, qos, payload, packet)
  ON CONFLICT (client_id, seq) DO UPDATE
  SET message_id = EXCLUDED.message_id, cmd = EXCLUDED.cmd, topic = EXCLUDED.topic, qos = EXCLUDED.qos,
      payload = EXCLUDED.payload, packet = EXCLUDED.packet`;
const UPDATE_OUTGOING_MESSAGE_ID = `
  UPDATE session_outgoing o SET message_id = u.message_id
  FROM unnest($1::text[], $2::bigint[], $3::integer[]) AS u(client_id, seq, message_id)
  WHERE o.client_id = u.client_id AND o.seq = u.seq`;
const DELETE_OUTGOING = `
  DELETE FROM session_outgoing o USING unnest($1::text[], $2::bigint[]) AS d(client_id, seq)
  WHERE o.client_id = d.client_id AND o.seq = d.seq`;

export const outgoingTable: TableSpec<OutgoingChange> = {
  name: 'session_outgoing',
  statements(changes) {
    const out: Statement[] = [];
    const puts = changes.flatMap((c) => (c.kind === 'put' ? [c.row] : []));
    const ids = changes.flatMap((c) => (c.kind === 'messageId' ? [[c.clientId, c.seq, c.messageId]] : []));
    const deletes = changes.flatMap((c) => (c.kind === 'delete' ? [[c.clientId, c.seq]] : []));
    if (puts.length > 0) {
      const rows = puts.map((r) => [r.clientId, r.seq, r.messageId, r.cmd, r.topic, r.qos, r.payload, r.json]);
      out.push({ sql: UPSERT_OUTGOING, params: columns(rows) });
    }
    if (ids.length > 0) out.push({ sql: UPDATE_OUTGOING_MESSAGE_ID, params: columns(ids) });
    if (deletes.length > 0) out.push({ sql: DELETE_OUTGOING, params: columns(deletes) });
    return out;
  },
  merge(older, newer) {
    if (older.kind !== 'put') return newer;
    // Queued and acknowledged before it was written: the database never needs to see it.
    if (newer.kind === 'delete') return older.isNew ? CANCELLED : newer;
    // A row not yet written keeps being new, and keeps its contents when only its messageId changes.
    if (newer.kind === 'messageId') return { kind: 'put', row: { ...older.row, messageId: newer.messageId }, isNew: older.isNew };
    return { ...newer, isNew: older.isNew };
  },
};

// --- session_incoming --------------------------------------------------------------------------

export type IncomingChange =
  | { kind: 'put'; clientId: string; messageId: number; topic: string; payload: Buffer; json: string }
  | Delete<{ clientId: string; messageId: number }>;

const UPSERT_INCOMING = `
  INSERT INTO session_incoming (client_id, message_id, topic, payload, packet, received_at)
  SELECT u.client_id, u.message_id, u.topic, u.payload, u.packet::jsonb, now()
  FROM unnest($1::text[], $2::integer[], $3::text[], $4::bytea[], $5::text[]) AS u(client_id, message_id, topic, payload, packet)
  ON CONFLICT (client_id, message_id) DO UPDATE
  SET topic = EXCLUDED.topic, payload = EXCLUDED.payload, packet = EXCLUDED.packet, received_at = EXCLUDED.received_at`;
const DELETE_INCOMING = `
  DELETE FROM session_incoming i USING unnest($1::text[], $2::integer[]) AS d(client_id, message_id)
  WHERE i.client_id = d.client_id AND i.message_id = d.message_id`;

export const incomingTable = putOrDeleteTable<IncomingChange>({
  name: 'session_incoming',
  upsert: UPSERT_INCOMING,
  putRow: (c) => [c.clientId, c.messageId, c.topic, c.payload, c.json],
  delete: DELETE_INCOMING,
  deleteRow: (c) => [c.clientId, c.messageId],
});

// --- session_wills -----------------------------------------------------------------------------

export type WillChange =
  | { kind: 'put'; clientId: string; brokerId: string; topic: string; payload: Buffer; json: string }
  | Delete<{ clientId: string }>;

const UPSERT_WILLS = `
  INSERT INTO session_wills (client_id, broker_id, topic, payload, packet, created_at)
  SELECT u.client_id, u.broker_id, u.topic, u.payload, u.packet::jsonb, now()
  FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::text[]) AS u(client_id, broker_id, topic, payload, packet)
  ON CONFLICT (client_id) DO UPDATE
  SET broker_id = EXCLUDED.broker_id, topic = EXCLUDED.topic, payload = EXCLUDED.payload, packet = EXCLUDED.packet,
      created_at = EXCLUDED.created_at`;
const DELETE_WILLS = 'DELETE FROM session_wills WHERE client_id = ANY($1::text[])';

export const willsTable = putOrDeleteTable<WillChange>({
  name: 'session_wills',
  upsert: UPSERT_WILLS,
  putRow: (c) => [c.clientId, c.brokerId, c.topic, c.payload, c.json],
  delete: DELETE_WILLS,
  deleteRow: (c) => [c.clientId],
});

// --- loading at start-up -----------------------------------------------------------------------

export interface StoredState {
  retained: Array<{ topic: string; payload: Buffer; packet: string }>;
  subscriptions: Array<{ client_id: string; topic: string; qos: number; options: string }>;
  outgoing: Array<{ client_id: string; seq: string; message_id: number | null; payload: Buffer | null; packet: string }>;
  incoming: Array<{ client_id: string; message_id: number; payload: Buffer; packet: string }>;
  wills: Array<{ client_id: string; payload: Buffer; packet: string }>;
}

/** Reads every session table (JSON as text: parsed by the packet codec, which restores Buffers). */
export async function loadState(db: Queryable): Promise<StoredState> {
  const [retained, subscriptions, outgoing, incoming, wills] = await Promise.all([
    db.query<StoredState['retained'][number]>('SELECT topic, payload, packet::text AS packet FROM retained_messages ORDER BY topic'),
    db.query<StoredState['subscriptions'][number]>(
      'SELECT client_id, topic, qos, options::text AS options FROM session_subscriptions ORDER BY seq',
    ),
    db.query<StoredState['outgoing'][number]>(
      'SELECT client_id, seq, message_id, payload, packet::text AS packet FROM session_outgoing ORDER BY seq',
    ),
    db.query<StoredState['incoming'][number]>(
      'SELECT client_id, message_id, payload, packet::text AS packet FROM session_incoming ORDER BY client_id, message_id',
    ),
    db.query<StoredState['wills'][number]>('SELECT client_id, payload, packet::text AS packet FROM session_wills ORDER BY client_id'),
  ]);
  return {
    retained: retained.rows,
    subscriptions: subscriptions.rows,
    outgoing: outgoing.rows,
    incoming: incoming.rows,
    wills: wills.rows,
  };
}
