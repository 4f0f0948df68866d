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
   * int8: number (a safe integer), bigint or decimal string; int2: number; bool: boolean;
   * text: string; bytea: Buffer; jsonb: JSON text as string or Buffer (the server checks it);
   * timestamptz: Date or milliseconds since 1970.
   */
  type: CopyType;
}

const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
const HEADER_BYTES = SIGNATURE.length + 8; // flags int32 + header extension length int32
const PG_EPOCH_MS = Date.UTC(2000, 0, 1);
const TWO_32 = 2 ** 32;

/** At most how many bytes one value takes after its length word (a string: 3 bytes a UTF-16 unit). */
function valueBytesAtMost(type: CopyType, value: unknown): number {
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
      return 3 * (value as string).length;
    case 'jsonb':
      return 1 + (Buffer.isBuffer(value) ? value.length : 3 * (value as string).length);
  }
}

/** The output buffer, and a DataView on it: DataView's setters are ten times Buffer's here. */
interface Out {
  buf: Buffer;
  view: DataView;
}

/** A safe integer as int64, in two words (no BigInt per value). */
function writeInt64(out: Out, at: number, value: number): number {
  const high = Math.floor(value / TWO_32);
  out.view.setInt32(at, high);
  out.view.setUint32(at + 4, value - high * TWO_32);
  return at + 8;
}

function writeValue(out: Out, at: number, type: CopyType, value: unknown): number {
  switch (type) {
    case 'int8':
      if (typeof value === 'number') return writeInt64(out, at, value);
      out.view.setBigInt64(at, typeof value === 'bigint' ? value : BigInt(value as string));
      return at + 8;
    case 'timestamptz':
      // Microseconds since 2000-01-01 UTC.
      return writeInt64(out, at, ((typeof value === 'number' ? value : (value as Date).getTime()) - PG_EPOCH_MS) * 1000);
    case 'int2':
      out.view.setInt16(at, value as number);
      return at + 2;
    case 'bool':
      out.buf[at] = value ? 1 : 0;
      return at + 1;
    case 'bytea':
      return at + (value as Buffer).copy(out.buf, at);
    case 'text':
      return at + out.buf.write(value as string, at);
    case 'jsonb':
      out.buf[at++] = 1; // jsonb binary format version 1: the JSON text follows
      return Buffer.isBuffer(value) ? at + value.copy(out.buf, at) : at + out.buf.write(value as string, at);
  }
}

/**
 * One COPY ... WITH (FORMAT binary) input holding all rows; null, undefined or missing (a row
 * shorter than `columns`) is SQL NULL. The result has an ArrayBuffer of its own (not Node's shared
 * pool): it may be transferred to a worker.
 */
export function encodeCopyBinary(columns: readonly CopyColumn[], rows: readonly (readonly unknown[])[]): Buffer {
  const width = columns.length;
  let size = HEADER_BYTES + 2 + rows.length * (2 + 4 * width);
  for (const row of rows) {
    for (let i = 0; i < width; i++) {
      if (row[i] != null) size += valueBytesAtMost(columns[i].type, row[i]);
    }
  }
  const buf = Buffer.allocUnsafeSlow(size);
  const out: Out = { buf, view: new DataView(buf.buffer, buf.byteOffset, buf.byteLength) };
  let at = SIGNATURE.copy(buf, 0);
  out.view.setInt32(at, 0); // flags: no OIDs
  out.view.setInt32(at + 4, 0); // no header extension
  at += 8;
  for (const row of rows) {
    out.view.setInt16(at, width);
    at += 2;
    for (let i = 0; i < width; i++) {
      const value = row[i];
      if (value == null) {
        out.view.setInt32(at, -1);
        at += 4;
        continue;
      }
      const lengthAt = at;
      at = writeValue(out, at + 4, columns[i].type, value);
      out.view.setInt32(lengthAt, at - lengthAt - 4);
    }
  }
  out.view.setInt16(at, -1); // file trailer
  return buf.subarray(0, at + 2);
}

/** The COPY statement for these columns; the data comes from `source` (STDIN or '/dev/blob'). */
export function copyStatement(table: string, columns: readonly CopyColumn[], source: string, quote: (id: string) => string): string {
  return `COPY ${quote(table)} (${columns.map((c) => quote(c.name)).join(', ')}) FROM ${source} WITH (FORMAT binary)`;
}
