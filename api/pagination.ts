/** Opaque cursors for every list: the sort key of the last item returned, base64url JSON. */
import { ApiErrors } from './errors.js';

export function encodeCursor(key: unknown[]): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url');
}

export function decodeCursor(cursor: string | undefined, arity: number): unknown[] | undefined {
  if (!cursor) return undefined;
  try {
    const key = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(key) && key.length === arity && key.every((v) => typeof v === 'string' || typeof v === 'number')) return key;
  } catch {
    // fall through
  }
  throw new ApiErrors.badCursor();
}

/** A cursor whose one key is a row id: anything else is refused with 400, never passed to SQL. */
export function decodeIdCursor(cursor: string | undefined): string | null {
  const key = decodeCursor(cursor, 1);
  if (!key) return null;
  const id = String(key[0]);
  if (!/^[0-9]{1,18}$/.test(id)) throw new ApiErrors.badCursor();
  return id;
}

/** Items plus the cursor of the next page (null when this is the last page). */
export function page<T>(rows: T[], limit: number, keyOf: (row: T) => unknown[]): { items: T[]; next_cursor: string | null } {
  const items = rows.slice(0, limit);
  const more = rows.length > limit;
  return { items, next_cursor: more && items.length > 0 ? encodeCursor(keyOf(items[items.length - 1])) : null };
}

export const pageQuerySchema = {
  limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
  cursor: { type: 'string', maxLength: 512 },
} as const;

export const nextCursorSchema = { type: ['string', 'null'] } as const;

/** The response of every list: a page of `items` and the cursor of the next page. */
export function pageResponseSchema<I extends object>(items: I) {
  return { type: 'object', properties: { items: { type: 'array', items }, next_cursor: nextCursorSchema } } as const;
}
