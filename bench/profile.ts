/**
 * Where the time goes: sums self time per function and per origin (package, Roost directory,
 * Node internals, GC) from a V8 .cpuprofile written by `node --cpu-prof`.
 *   node dist/bench/profile.js FILE.cpuprofile [top]
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface SelfTime {
  name: string;
  ms: number;
  share: number;
}

export interface ProfileSummary {
  totalMs: number;
  functions: SelfTime[];
  origins: SelfTime[];
}

/** node_modules/<pkg>, Roost's own directory under dist/, a Node module, or V8's pseudo-frames. */
export function originOf(url: string, functionName: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  const pkg = url.match(/node_modules\/((?:@[^/]+\/)?[^/]+)/);
  if (pkg) return pkg[1];
  if (url.startsWith('node:')) return url.split('/').slice(0, 2).join('/');
  const own = url.match(/\/dist\/([^/]+)\//);
  if (own) return `roost ${own[1]}/`;
  return url;
}

/** A span of the profile, counted back from its end (the end is when the process exited). */
export interface ProfileWindow {
  fromEndMs: number;
  toEndMs: number;
}

export function summariseProfile(file: string, top = 15, window?: ProfileWindow): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  const from = window ? profile.endTime - window.fromEndMs * 1000 : -Infinity;
  const to = window ? profile.endTime - window.toEndMs * 1000 : Infinity;
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    const delta = profile.timeDeltas[i] ?? 0;
    t += delta;
    if (t < from || t > to) continue;
    const id = profile.samples[i];
    selfUs.set(id, (selfUs.get(id) ?? 0) + delta);
  }
  const functions = new Map<string, number>();
  const origins = new Map<string, number>();
  let total = 0;
  for (const [id, us] of selfUs) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    if (functionName === '(idle)') continue; // waiting for I/O is not work
    total += us;
    const where = url ? `${url.replace(/^.*\/(node_modules|dist)\//, '$1/')}:${lineNumber + 1}` : '';
    const key = `${functionName || '(anonymous)'}${where ? ` ${where}` : ''}`;
    functions.set(key, (functions.get(key) ?? 0) + us);
    const origin = originOf(url, functionName);
    origins.set(origin, (origins.get(origin) ?? 0) + us);
  }
  const rank = (m: Map<string, number>, n: number): SelfTime[] =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([name, us]) => ({ name, ms: us / 1000, share: us / total }));
  return { totalMs: total / 1000, functions: rank(functions, top), origins: rank(origins, 12) };
}

export function profileMarkdown(title: string, s: ProfileSummary): string {
  const pct = (x: number) => `${(x * 100).toFixed(1)} %`;
  const lines = [
    `#### ${title}: ${(s.totalMs / 1000).toFixed(1)} s of CPU (idle excluded)`,
    '',
    '| self time | origin |',
    '|---:|---|',
    ...s.origins.map((o) => `| ${pct(o.share)} | ${o.name} |`),
    '',
    '| self time | function |',
    '|---:|---|',
    ...s.functions.map((f) => `| ${pct(f.share)} | \`${f.name.replace(/\|/g, '\\|')}\` |`),
    '',
  ];
  return lines.join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write('usage: node dist/bench/profile.js FILE.cpuprofile [top]\n');
    process.exit(2);
  }
  process.stdout.write(profileMarkdown(file, summariseProfile(file, Number(process.argv[3] ?? 15))));
}
