import { pino, type Logger } from 'pino';

export type { Logger };

/** Structured JSON logs on stdout; pino's own redaction keeps secrets out of them. */
export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { service: 'roost' },
    redact: { paths: ['password', '*.password', 'token', '*.token', 'req.headers.authorization'], censor: '[redacted]' },
  });
}
