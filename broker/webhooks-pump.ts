/**
 * message.publish events: copies committed rows of `messages` into the webhook outbox, for every
 * enabled hook whose topic filter matches, in one transaction with the move of the pump's cursor.
 * So an event is enqueued exactly once, even across a crash, and never on the MQTT path: the pump
 * reads what the store writer has already committed.
 *
 * Ordering: ids are handed out per process in blocks (store-writer.ts), and one process commits
 * its batches in id order, so "every id up to the highest visible one is committed" holds for a
 * single broker process. With several broker nodes writing one database, a row committed late by
 * another node with a lower id than the cursor would be missed (README: "Ordering guarantees").
 */
import type { Db } from '../lib/db/index.js';

/** Most messages read per pump transaction. */
const PUMP_BATCH = 5000;

export interface PumpResult {
  /** Messages looked at (0: caught up). */
  scanned: number;
  /** Outbox rows written. */
  enqueued: number;
}

/**
 * The message as a webhook event's data; the same shape as the API's stored messages (messageView
 * in api/routes/messages.ts), `properties` included: the present ones, or null.
 */
const EVENT_DATA_SQL = `jsonb_build_object(
    'id', m.id::text, 'topic', m.topic, 'qos', m.qos, 'retain', m.retain,
    'client_id', m.client_id, 'username', m.username, 'received_at', m.received_at,
    'encoding', CASE WHEN m.payload_json IS NULL THEN 'base64' ELSE 'json' END,
    'payload', coalesce(m.payload_json, to_jsonb(translate(encode(m.payload, 'base64'), E'\\n', ''))),
    'properties', CASE WHEN num_nonnulls(m.content_type, m.payload_format, m.user_properties, m.response_topic, m.correlation_data, m.message_expiry_interval) > 0
      THEN jsonb_strip_nulls(jsonb_build_object(
        'content_type', m.content_type, 'payload_format', m.payload_format, 'user_properties', m.user_properties,
        'response_topic', m.response_topic, 'correlation_data', translate(encode(m.correlation_data, 'base64'), E'\\n', ''),
        'message_expiry_interval', m.message_expiry_interval)) END)`;

export async function pumpMessages(db: Db, hasMessageHooks: boolean): Promise<PumpResult> {
  return db.transaction(async (tx) => {
    // FOR UPDATE: pumps of several processes take turns.
    const cursorRow = await tx.query<{ last_message_id: string | null }>('SELECT last_message_id FROM webhook_pump FOR UPDATE');
    const cursor = cursorRow.rows[0]?.last_message_id ?? null;
    if (cursor === null || !hasMessageHooks) {
      // Nothing listens (or first run): start from the newest message, history is not replayed.
      await tx.query('UPDATE webhook_pump SET last_message_id = (SELECT coalesce(max(id), 0) FROM messages)');
      return { scanned: 0, enqueued: 0 };
    }
    const upto = await tx.query<{ upto: string | null; n: string }>(
      'SELECT max(id)::text AS upto, count(*)::text AS n FROM (SELECT id FROM messages WHERE id > $1 ORDER BY id LIMIT $2) s',
      [cursor, PUMP_BATCH],
    );
    const last = upto.rows[0]?.upto ?? null;
    if (last === null) return { scanned: 0, enqueued: 0 };
    const inserted = await tx.query(
      `INSERT INTO webhook_outbox (hook_id, event, payload, created_at)
       SELECT h.id, 'message.publish', ${EVENT_DATA_SQL}, m.received_at
         FROM messages m
         JOIN webhooks h ON h.enabled AND 'message.publish' = ANY (h.events)
                        AND m.received_at >= h.created_at AND m.topic ~ h.topic_regex
        WHERE m.id > $1 AND m.id <= $2
        ORDER BY m.id, h.id`,
      [cursor, last],
    );
    await tx.query('UPDATE webhook_pump SET last_message_id = $1', [last]);
    return { scanned: Number(upto.rows[0].n), enqueued: inserted.rowCount };
  });
}
