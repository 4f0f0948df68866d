import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SETTINGS } from '../../lib/config.js';

describe('README stays true', () => {
  const readme = readFileSync('README.md', 'utf8');
  it('documents every setting in the configuration table', () => {
    for (const name of Object.keys(SETTINGS)) expect(readme, name).toContain(`| \`${name}\` |`);
  });
  it('names the test command that .ci/run runs', () => {
    const ci = readFileSync('.ci/run', 'utf8');
    expect(readme).toContain('npm test ');
    expect(ci).toMatch(/^npm test \|\| status=\$\?/m);
  });
});
