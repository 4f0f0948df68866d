import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const engines = (JSON.parse(readFileSync('package.json', 'utf8')) as { engines: { node: string } }).engines.node;
const runningMajor = Number(process.versions.node.split('.')[0]);

describe('the Node.js versions Roost runs on (package.json engines)', () => {
  it('runs the tests on a Node.js engines allows, and on the major CI asks for (ROOST_TEST_NODE_MAJOR) if it asks', () => {
    // engines is a lower bound only: every later major is meant to work (.ci/run tests 22 as well).
    const lowest = /^>=(\d+)$/.exec(engines)?.[1];
    expect(lowest, `engines.node "${engines}" is ">=MAJOR"`).toBeDefined();
    expect(runningMajor).toBeGreaterThanOrEqual(Number(lowest));
    const asked = process.env.ROOST_TEST_NODE_MAJOR;
    if (asked) expect(runningMajor, `vitest and its workers run on ${process.execPath}`).toBe(Number(asked));
  });

  it('starts child processes (`node` on PATH, as the CLI tests and the roost shebang do) on the same Node.js', () => {
    expect(execFileSync('node', ['-p', 'process.version'], { encoding: 'utf8' }).trim()).toBe(process.version);
  });

  it('builds the Docker image, both stages, on the LTS major .ci/run tests besides the default', () => {
    const ciMajor = /^NODE_LTS_VERSION=(\d+)\./m.exec(readFileSync('.ci/run', 'utf8'))?.[1];
    const bases = [...readFileSync('Dockerfile', 'utf8').matchAll(/^FROM node:(\d+)-bookworm-slim\b/gm)].map((m) => m[1]);
    expect(bases).toEqual([ciMajor, ciMajor]);
    expect(Number(ciMajor), 'Node 20 is past its end of life').toBeGreaterThanOrEqual(22);
  });
});
