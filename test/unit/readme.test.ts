import { readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SETTINGS } from '../../lib/config.js';

const CONFIGURATION_PAGE = 'docs/configuration.md';
const TABLE_HEAD = '| setting | default | meaning |\n|---|---|---|\n';

/** The settings table of docs/configuration.md, generated from lib/config.ts. */
function settingsTable(): string {
  const shown = (value: unknown) => (value === undefined ? '—' : value === '' ? '(empty)' : `\`${String(value)}\``);
  const rows = Object.entries(SETTINGS).map(([name, [, fallback, meaning]]) => `| \`${name}\` | ${shown(fallback)} | ${meaning.replaceAll('|', '\\|')} |`);
  return TABLE_HEAD + rows.join('\n') + '\n';
}

describe('README and docs stay true', () => {
  const readme = readFileSync('README.md', 'utf8');

  it(`${CONFIGURATION_PAGE} has the settings table generated from lib/config.ts (ROOST_WRITE_DOCS=1 rewrites it)`, () => {
    const page = readFileSync(CONFIGURATION_PAGE, 'utf8');
    const start = page.indexOf(TABLE_HEAD);
    expect(start, 'the table head').toBeGreaterThan(-1);
    const end = page.indexOf('\n\n', start) + 1;
    const expected = settingsTable();
    if (process.env.ROOST_WRITE_DOCS === '1') writeFileSync(CONFIGURATION_PAGE, page.slice(0, start) + expected + page.slice(end));
    else expect(page.slice(start, end)).toBe(expected);
  });

  it('links every page of docs/ and stays under 200 lines', () => {
    for (const page of ['configuration', 'auth-and-acls', 'storage-and-sizing', 'api', 'webhooks-and-stream', 'tls', 'browsers-and-dashboard', 'cluster', 'limits-and-bans', 'migrating']) {
      expect(readme, page).toContain(`(docs/${page}.md)`);
      expect(readFileSync(`docs/${page}.md`, 'utf8'), page).toContain('](../README.md)');
    }
    expect(readme.split('\n').length).toBeLessThan(200);
  });

  it('names the test command that .ci/run runs', () => {
    const ci = readFileSync('.ci/run', 'utf8');
    expect(readme).toContain('npm test ');
    expect(ci).toMatch(/^npm test \|\| status=\$\?/m);
  });
});
