import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { LAUNCH_ENV, LAUNCH_ENV_WORDS, NODE_FLAGS } from '../../cli/node-flags.js';
import { roostChildEnv } from '../../bench/targets.js';

const read = (file: string) => readFileSync(file, 'utf8');
const flags = NODE_FLAGS.join(' ');
const envWords = LAUNCH_ENV_WORDS.join(' ');

describe('every way of launching Roost passes the same V8 flags and environment (LAUNCH_ENV)', () => {
  it('npm start', () => {
    const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string> };
    expect(pkg.scripts.start).toBe(`${envWords} node ${flags} dist/cli/cli.js start`);
  });

  it('the roost command (the shebang of cli/cli.ts, kept by tsc)', () => {
    expect(read('cli/cli.ts').split('\n')[0]).toBe(`#!/usr/bin/env -S ${envWords} node ${flags}`);
  });

  it('the Docker image', () => {
    const cmd = /^CMD (.*)$/m.exec(read('Dockerfile'))?.[1];
    expect(JSON.parse(cmd ?? '[]')).toEqual(['node', ...NODE_FLAGS, 'dist/cli/cli.js', 'start']);
  });
  it('the Docker image sets the environment in its final stage', () => {
    const final = read('Dockerfile').split(/^FROM /m).pop()!;
    for (const word of LAUNCH_ENV_WORDS) expect(final).toMatch(new RegExp(`^ENV ${word}$`, 'm'));
  });

  it('the bench', () => {
    expect(roostChildEnv(1883, {})).toMatchObject(LAUNCH_ENV);
  });

  it('the environment takes effect: the roost command runs with it', () => {
    // `env -S` of the shebang splits the words and sets the variables before node starts.
    const script = 'process.stdout.write(process.env.GLIBC_TUNABLES ?? "")';
    const shebang = read('cli/cli.ts').split('\n')[0].replace(/^#!/, '');
    const [envCommand, ...args] = shebang.split(' ');
    const seen = execFileSync(envCommand, [...args, '-e', script], { env: { PATH: process.env.PATH } }).toString();
    expect(seen).toBe(LAUNCH_ENV.GLIBC_TUNABLES);
  });

  it('the flags take effect: under survivors the young generation grows to 64 MB (two 32 MB semi-spaces), no further', () => {
    // Objects that live a while (like messages in flight) make V8 grow new space up to its maximum.
    // Without the flag that maximum is 32 MB on Node 20 and 22 and, on Node 24, sized from the heap
    // limit (128 MB with a 4 GB heap): in (32, 64] MB only with the flag, on every major.
    const script = `
      const keep = [];
      for (let i = 0; i < 3e6; i++) { keep.push({ i, s: 'x' + i }); if (keep.length > 200000) keep.splice(0, 100000); }
      const s = require('v8').getHeapSpaceStatistics().find((x) => x.space_name === 'new_space');
      process.stdout.write(String(s.space_size));`;
    const grown = (args: string[]) => Number(execFileSync(process.execPath, [...args, '-e', script]));
    const withFlags = grown([...NODE_FLAGS]);
    expect(withFlags).toBeGreaterThan(32 * 2 ** 20);
    expect(withFlags).toBeLessThanOrEqual(64 * 2 ** 20);
  });
});
