import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

export type LogFormat = 'json' | 'pretty';

/** Fields every line has, shown in the pretty line's fixed columns (or not at all). */
const FIXED_FIELDS = new Set(['level', 'time', 'msg', 'component', 'service', 'pid', 'hostname']);
const LEVEL_NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };

/**
 * Logs on stdout: JSON lines for machines, or one readable line per event for a person at a
 * terminal (`format` unset: pretty on a TTY, JSON otherwise). pino's own redaction runs before
 * either, so secrets are kept out of both.
 */
export function createLogger(level: string, format?: LogFormat, destination: DestinationStream = process.stdout): Logger {
  const chosen = format ?? (process.stdout.isTTY ? 'pretty' : 'json');
  const options = {
    level,
    base: { service: 'roost' },
    redact: { paths: ['password', '*.password', 'token', '*.token', 'req.headers.authorization'], censor: '[redacted]' },
  };
  if (chosen === 'json') return pino(options, destination);
  return pino(options, { write: (line: string) => destination.write(prettyLine(line)) });
}

/**
 * `12:04:31.207 INFO  [store] message key=value …` from one pino JSON line. A formatter of a few
 * lines rather than pino-pretty: the same output without 13 more packages in the image.
 */
export function prettyLine(jsonLine: string): string {
  const event = JSON.parse(jsonLine) as Record<string, unknown>;
  const at = new Date(event.time as number);
  const time = `${at.toTimeString().slice(0, 8)}.${String(at.getMilliseconds()).padStart(3, '0')}`;
  const level = (LEVEL_NAMES[event.level as number] ?? String(event.level)).padEnd(5);
  const component = event.component ? ` [${String(event.component)}]` : '';
  const fields = Object.entries(event)
    .filter(([key]) => !FIXED_FIELDS.has(key))
    .map(([key, value]) => `${key}=${fieldValue(value)}`);
  return [`${time} ${level}${component} ${String(event.msg ?? '')}`, ...fields].join(' ') + '\n';
}

/** A value on one line: bare when it is a plain word, JSON otherwise; an error as its type and message. */
function fieldValue(value: unknown): string {
  if (value && typeof value === 'object' && 'message' in value && 'type' in value) return JSON.stringify(`${String(value.type)}: ${String(value.message)}`);
  if (typeof value === 'string' && /^[\w.:/@-]+$/.test(value)) return value;
  return JSON.stringify(value);
}
