/**
 * PostgreSQL's binary COPY format (https://www.postgresql.org/docs/current/sql-copy.html, "Binary
 * Format") for the few column types Roost bulk-loads. Binary instead of text: a payload goes in as
 * its own bytes instead of doubled hex, nothing needs escaping, and the server does not parse
 * numbers and timestamps back from text. Both backends take the same bytes (COPY FROM STDIN on
 * PostgreSQL, COPY FROM '/dev/blob' on PGlite). pg-copy-streams-binary does this too, but drags in
 * five unmaintained stream helpers for what is sixty lines here.
 */
export type CopyType = 'int8' | 'int2' | 'bool' | 'text' | 'bytea' | 'jsonb' | 'timestamptz';

export interface CopyColumn {
  /** A fixed identifier from code, never user input. */
  name: string;
  /**
   * int8: bigint or decimal string; int2: number; bool: boolean; text: string; bytea: Buffer;
   * jsonb: JSON text as string or Buffer (the server checks it); timestamptz: Date.
   */
  type: CopyType;
}

const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
const HEADER_BYTES = SIGNATURE.length + 8; // flags int32 + header extension length int32
const PG_EPOCH_MS = Date.UTC(2000, 0, 1);
const TWO_32 = 2 ** 32;

/** Bytes one value takes after its int32 length word. */
function valueBytes(type: CopyType, value: unknown): number {
  switch (type) {
    case 'int8':
    case 'timestamptz':
      return 8;
    case 'int2':
      return 2;
    case 'bool':
      return 1;
    case 'bytea':
      return (value as Buffer).length;
    case 'text':
      return Buffer.byteLength(value as string);
    case 'jsonb':
      return 1 + (Buffer.isBuffer(value) ? value.length : Buffer.byteLength(value as string));
  }
}

function writeValue(buf: Buffer, at: number, type: CopyType, value: unknown): number {
  switch (type) {
    case 'int8':
      return buf.writeBigInt64BE(typeof value === 'bigint' ? value : BigInt(value as string), at);
    case 'timestamptz': {
      // Microseconds since 2000-01-01 UTC as int64, written as two words (exact below 2^53).
      const us = ((value as Date).getTime() - PG_EPOCH_MS) * 1000;
      const high = Math.floor(us / TWO_32);
      at = buf.writeInt32BE(high, at);
      return buf.writeUInt32BE(us - high * TWO_32, at);
    }
    case 'int2':
      return buf.writeInt16BE(value as number, at);
    case 'bool':
      return buf.writeUInt8(value ? 1 : 0, at);
    case 'bytea':
      return at + (value as Buffer).copy(buf, at);
    case 'text':
      return at + buf.write(value as string, at);
    case 'jsonb':
      at = buf.writeUInt8(1, at); // jsonb binary format version 1: the JSON text follows
      return Buffer.isBuffer(value) ? at + value.copy(buf, at) : at + buf.write(value as string, at);
  }
}

/** One COPY ... WITH (FORMAT binary) input holding all rows; null or undefined is SQL NULL. */
export function encodeCopyBinary(columns: readonly CopyColumn[], rows: readonly (readonly unknown[])[]): Buffer {
  let size = HEADER_BYTES + 2;
  for (const row of rows) {
    size += 2 + 4 * columns.length;
    for (let i = 0; i < columns.length; i++) {
      if (row[i] != null) size += valueBytes(columns[i].type, row[i]);
    }
  }
  const buf = Buffer.allocUnsafe(size);
  let at = SIGNATURE.copy(buf, 0);
  at = buf.writeInt32BE(0, at); // flags: no OIDs
  at = buf.writeInt32BE(0, at); // no header extension
  for (const row of rows) {
    at = buf.writeInt16BE(columns.length, at);
    for (let i = 0; i < columns.length; i++) {
      const value = row[i];
      if (value == null) {
        at = buf.writeInt32BE(-1, at);
        continue;
      }
      const lengthAt = at;
      at = writeValue(buf, at + 4, columns[i].type, value);
      buf.writeInt32BE(at - lengthAt - 4, lengthAt);
    }
  }
  at = buf.writeInt16BE(-1, at); // file trailer
  if (at !== size) throw new Error(`COPY encoding wrote ${at} of ${size} bytes`);
  return buf;
}

/** The COPY statement for these columns; the data comes from `source` (STDIN or '/dev/blob'). */
export function copyStatement(table: string, columns: readonly CopyColumn[], source: string, quote: (id: string) => string): string {
  return `COPY ${quote(table)} (${columns.map((c) => quote(c.name)).join(', ')}) FROM ${source} WITH (FORMAT binary)`;
}
