import { describe, expect, it } from 'vitest';
import { createLogger, type LogFormat } from '../../lib/log.js';

/** Logs through createLogger into an array of written lines. */
function logged(format: LogFormat, write: (log: ReturnType<typeof createLogger>) => void): string[] {
  const lines: string[] = [];
  const log = createLogger('info', format, { write: (line: string) => lines.push(line) });
  write(log);
  return lines.join('').split('\n').filter(Boolean);
}

const SECRET = 'hunter2-never-logged';

describe('log lines', () => {
  it('pretty: one readable, non-JSON line per event with time, level, component and message', () => {
    const lines = logged('pretty', (log) => {
      log.child({ component: 'auth' }).warn({ ip: '10.0.0.7', username: 'piano-7', reason: 'ROOST_ERR_BAD_CREDENTIALS' }, 'connection refused');
      log.info({ ports: { mqtt: 1883 } }, 'roost started');
    });
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^\d\d:\d\d:\d\d\.\d{3} WARN  \[auth\] connection refused ip=10\.0\.0\.7 username=piano-7 reason=ROOST_ERR_BAD_CREDENTIALS$/);
    expect(lines[1]).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO  roost started ports=\{"mqtt":1883\}$/);
    for (const line of lines) expect(() => JSON.parse(line)).toThrow();
  });

  it('json: one JSON object per event, with level, component and message', () => {
    const [line] = logged('json', (log) => log.child({ component: 'store' }).error({ depth: 3 }, 'write failed'));
    expect(JSON.parse(line)).toMatchObject({ level: 50, component: 'store', msg: 'write failed', depth: 3, service: 'roost' });
  });

  it.each(['json', 'pretty'] as const)('%s: keeps passwords and tokens out, at the top level and one level down', (format) => {
    const lines = logged(format, (log) => {
      log.info({ password: SECRET, token: SECRET }, 'top level');
      log.info({ device: { password: SECRET }, api: { token: SECRET } }, 'nested');
    });
    expect(lines).toHaveLength(2);
    for (const line of lines) {
      expect(line).not.toContain(SECRET);
      expect(line).toContain('[redacted]');
    }
  });
});
