import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../lib/config.js';

describe('the loopback-only mode is on exactly while no address or anonymous policy is configured', () => {
  it('binds 127.0.0.1 and is on with nothing configured (empty variables count as unset)', () => {
    const config = loadConfig({ ROOST_HOST: '' });
    expect([config.ROOST_HOST, config.ROOST_API_HOST, config.loopbackOnly]).toEqual(['127.0.0.1', '127.0.0.1', true]);
  });

  it.each([
    ['ROOST_HOST', '0.0.0.0'],
    ['ROOST_API_HOST', '0.0.0.0'],
    ['ROOST_HOST', '127.0.0.1'],
    ['ROOST_ALLOW_ANONYMOUS', 'false'],
  ])('is off once %s=%s is set', (name, value) => {
    expect(loadConfig({ [name]: value }).loopbackOnly).toBe(false);
  });

  it('is off when the ROOST_CONFIG file sets an address', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'roost-config-'));
    try {
      const file = path.join(dir, 'roost.json');
      writeFileSync(file, JSON.stringify({ ROOST_HOST: '0.0.0.0' }));
      const config = loadConfig({ ROOST_CONFIG: file });
      expect([config.ROOST_HOST, config.ROOST_API_HOST, config.loopbackOnly]).toEqual(['0.0.0.0', '127.0.0.1', false]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
