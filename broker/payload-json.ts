/**
 * Is a payload JSON that a jsonb column accepts? Asked for every stored publish, so it reads the
 * bytes once and allocates nothing, where `JSON.parse(payload.toString())` built a string and a
 * throw-away object tree per message (7 % of the broker's CPU in the bench profile).
 *
 * The grammar is RFC 8259's, plus PostgreSQL's refusals: the escape \u0000, a UTF-16 surrogate
 * escape that is not half of a pair, numbers too large for numeric, and nesting deep enough to exhaust its parser's stack (an
 * error that is not a data error, so the batch would be retried forever). Deeper than MAX_DEPTH
 * counts as not JSON: the payload is still stored, as bytes. test/unit/payload-json.test.ts checks
 * this against JSON.parse and these rules.
 */
import { isUtf8 } from 'node:buffer';

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const MINUS = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;
export const MAX_DEPTH = 512;

function skipSpace(b: Uint8Array, i: number): number {
  for (let c = b[i]; c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09; c = b[++i]);
  return i;
}

const isDigit = (c: number | undefined) => c !== undefined && c >= 0x30 && c <= 0x39;

function hexValue(c: number | undefined): number {
  if (c === undefined) return -1;
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/** The four hex digits after "\u" at i, or -1. */
function unicodeEscape(b: Uint8Array, i: number): number {
  const a = hexValue(b[i]), c = hexValue(b[i + 1]), d = hexValue(b[i + 2]), e = hexValue(b[i + 3]);
  return a < 0 || c < 0 || d < 0 || e < 0 ? -1 : (a << 12) | (c << 8) | (d << 4) | e;
}

/** A string starting at the quote at i; the index after its closing quote, or -1. */
function skipString(b: Uint8Array, i: number): number {
  for (i++; ; ) {
    const c = b[i];
    if (c === undefined || c < 0x20) return -1; // unterminated, or a raw control character
    if (c === QUOTE) return i + 1;
    if (c !== BACKSLASH) {
      i++;
      continue;
    }
    const e = b[i + 1];
    if (e === QUOTE || e === BACKSLASH || e === 0x2f || e === 0x62 || e === 0x66 || e === 0x6e || e === 0x72 || e === 0x74) {
      i += 2;
      continue;
    }
    if (e !== 0x75) return -1; // only \u is left
    const unit = unicodeEscape(b, i + 2);
    if (unit <= 0) return -1; // bad hex, or \u0000 (jsonb cannot hold it)
    i += 6;
    if (unit >= 0xdc00 && unit <= 0xdfff) return -1; // a low surrogate with no high one before it
    if (unit >= 0xd800 && unit <= 0xdbff) {
      const low = b[i] === BACKSLASH && b[i + 1] === 0x75 ? unicodeEscape(b, i + 2) : -1;
      if (low < 0xdc00 || low > 0xdfff) return -1;
      i += 6;
    }
  }
}

/** Decimal digits from i on: how many, and where they end. */
function digitsFrom(b: Uint8Array, i: number): number {
  const start = i;
  while (isDigit(b[i])) i++;
  return i - start;
}

// PostgreSQL's numeric (jsonb numbers) holds at most 131,072 digits before the point and 16,383
// after it; the exponent counts in both. A number beyond them is valid JSON that jsonb refuses.
const NUMERIC_INTEGER_DIGITS = 131_072;
const NUMERIC_SCALE = 16_383;

/**
 * A number starting at i: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?; the index after it, or -1
 * (also when jsonb's numeric could not hold it).
 */
function skipNumber(b: Uint8Array, i: number): number {
  if (b[i] === MINUS) i++;
  const integer = b[i] === 0x30 ? 1 : digitsFrom(b, i);
  if (integer === 0) return -1;
  i += integer;
  let fraction = 0;
  if (b[i] === DOT) {
    fraction = digitsFrom(b, i + 1);
    if (fraction === 0) return -1;
    i += 1 + fraction;
  }
  let exponent = 0;
  if (b[i] === 0x65 || b[i] === 0x45) {
    i++;
    const sign = b[i] === MINUS ? -1 : 1;
    if (b[i] === PLUS || b[i] === MINUS) i++;
    const length = digitsFrom(b, i);
    if (length === 0) return -1;
    for (let k = 0; k < length; k++) exponent = Math.min(exponent * 10 + b[i + k] - 0x30, 1e9);
    exponent *= sign;
    i += length;
  }
  if (integer + exponent > NUMERIC_INTEGER_DIGITS || fraction - exponent > NUMERIC_SCALE) return -1;
  return i;
}

function isWord(b: Uint8Array, i: number, word: readonly number[]): boolean {
  for (let k = 0; k < word.length; k++) if (b[i + k] !== word[k]) return false;
  return true;
}

const TRUE = [0x74, 0x72, 0x75, 0x65];
const FALSE = [0x66, 0x61, 0x6c, 0x73, 0x65];
const NULL = [0x6e, 0x75, 0x6c, 0x6c];

/** After "{" or ",": a key and its colon; the index of the value, or -1. */
function skipKey(b: Uint8Array, i: number): number {
  i = skipSpace(b, i);
  if (b[i] !== QUOTE) return -1;
  i = skipString(b, i);
  if (i < 0) return -1;
  i = skipSpace(b, i);
  return b[i] === COLON ? i + 1 : -1;
}

/** Valid JSON text a jsonb column accepts (syntax only: the bytes are assumed to be UTF-8). */
export function isJsonText(b: Uint8Array): boolean {
  const open: number[] = []; // the containers the current value is inside, innermost last
  let i = 0;
  for (;;) {
    // A value.
    i = skipSpace(b, i);
    const c = b[i];
    if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
      if (open.length === MAX_DEPTH) return false; // this container would be level MAX_DEPTH + 1
      const j = skipSpace(b, i + 1);
      if (b[j] === (c === OPEN_OBJECT ? CLOSE_OBJECT : CLOSE_ARRAY)) i = j + 1;
      else {
        open.push(c);
        i = c === OPEN_OBJECT ? skipKey(b, i + 1) : i + 1;
        if (i < 0) return false;
        continue;
      }
    } else if (c === QUOTE) i = skipString(b, i);
    else if (c === MINUS || isDigit(c)) i = skipNumber(b, i);
    else if (isWord(b, i, TRUE) || isWord(b, i, NULL)) i += 4;
    else if (isWord(b, i, FALSE)) i += 5;
    else return false;
    if (i < 0) return false;
    // What follows a value: the end, a comma, or the close of its container.
    for (;;) {
      i = skipSpace(b, i);
      if (open.length === 0) return i === b.length;
      const container = open[open.length - 1];
      if (b[i] === COMMA) {
        i = container === OPEN_OBJECT ? skipKey(b, i + 1) : i + 1;
        if (i < 0) return false;
        break;
      }
      if (b[i] !== (container === OPEN_OBJECT ? CLOSE_OBJECT : CLOSE_ARRAY)) return false;
      open.pop();
      i++;
    }
  }
}

/** Valid UTF-8 JSON that jsonb accepts: stored decoded in payload_json. */
export function isJsonPayload(payload: Buffer): boolean {
  return payload.length > 0 && isJsonText(payload) && isUtf8(payload);
}

/** The payload as JSON text when it is valid UTF-8 JSON that jsonb can hold, else null. */
export function jsonPayload(payload: Buffer): string | null {
  return isJsonPayload(payload) ? payload.toString('utf8') : null;
}

const BOM = [0xef, 0xbb, 0xbf];

/**
 * A payload its publisher declared JSON (MQTT 5 Payload Format Indicator 1 and a JSON content
 * type): the JSON text to store, or null when jsonb would refuse it (the message is still stored,
 * as bytes). It reads past a leading UTF-8 byte order mark, as RFC 8259 §8.1 lets a parser do; the
 * guess (isJsonPayload) does not, as bytes starting with one are not JSON text.
 */
export function declaredJsonPayload(payload: Buffer): Buffer | null {
  const text = isWord(payload, 0, BOM) ? payload.subarray(BOM.length) : payload;
  return isJsonPayload(text) ? text : null;
}
