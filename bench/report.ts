/**
 * The results table: one row per figure, one column per target, and beside them each target's
 * ratio to Mosquitto and (for Roost) to plain Aedes.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import type { LoadResult, ScenarioName } from './loadgen.js';
import { TARGET_LABELS, type TargetName } from './targets.js';

export interface Cell {
  target: TargetName;
  scenario: ScenarioName;
  result?: LoadResult;
  error?: string;
  /** CPU the broker's processes used in the window, in cores (PostgreSQL's included for roost-pg). */
  brokerCpu?: number;
  rows?: number;
  /** Rows committed per second in the window (counted live), or, when the target can't be asked
   *  while running, rows / time from the first publish until the store was drained at shutdown. */
  rowsPerSec?: number;
  rowsPerSecIsLowerBound?: boolean;
  /** Wall-clock start and end of the measured window, and when the broker had stopped. */
  windowAt?: [number, number];
  stoppedAt?: number;
  notes: string[];
}

interface Figure {
  scenario: ScenarioName;
  label: string;
  /** 'higher' or 'lower' is better; undefined: no ratio. */
  better?: 'higher' | 'lower';
  value(cell: Cell): number | undefined;
  format?(v: number, cell: Cell): string;
}

const int = (v: number) => Math.round(v).toLocaleString('en-US');
const ms = (v: number) => (v < 10 ? v.toFixed(2) : v.toFixed(1));
const cores = (v: number) => v.toFixed(2);

const FIGURES: Figure[] = [
  { scenario: 'qos0', label: 'QoS 0 fan-in: delivered msg/s', better: 'higher', value: (c) => c.result?.deliveredPerSec, format: int },
  {
    scenario: 'qos0',
    label: 'QoS 0 fan-in: persisted rows/s',
    better: 'higher',
    value: (c) => c.rowsPerSec,
    format: (v, c) => (c.rowsPerSecIsLowerBound ? '≥ ' : '') + int(v),
  },
  { scenario: 'qos0', label: 'QoS 0 fan-in: broker CPU (cores)', value: (c) => c.brokerCpu, format: cores },
  { scenario: 'qos0', label: 'QoS 0 fan-in: generator CPU (cores)', value: (c) => c.result?.generatorCpu, format: cores },
  { scenario: 'qos1', label: 'QoS 1, 16 in flight: acked msg/s', better: 'higher', value: (c) => c.result?.ackedPerSec, format: int },
  { scenario: 'qos1', label: 'QoS 1, 16 in flight: PUBACK p50 ms', better: 'lower', value: (c) => c.result?.latencyMs?.p50, format: ms },
  { scenario: 'qos1', label: 'QoS 1, 16 in flight: PUBACK p99 ms', better: 'lower', value: (c) => c.result?.latencyMs?.p99, format: ms },
  {
    scenario: 'qos1',
    label: 'QoS 1, 16 in flight: persisted rows/s',
    better: 'higher',
    value: (c) => c.rowsPerSec,
    format: (v, c) => (c.rowsPerSecIsLowerBound ? '≥ ' : '') + int(v),
  },
  { scenario: 'qos1', label: 'QoS 1, 16 in flight: broker CPU (cores)', value: (c) => c.brokerCpu, format: cores },
  { scenario: 'qos1', label: 'QoS 1, 16 in flight: generator CPU (cores)', value: (c) => c.result?.generatorCpu, format: cores },
  { scenario: 'qos0-v5', label: 'MQTT 5, QoS 0 fan-in: delivered msg/s', better: 'higher', value: (c) => c.result?.deliveredPerSec, format: int },
  { scenario: 'qos0-v5', label: 'MQTT 5, QoS 0 fan-in: broker CPU (cores)', value: (c) => c.brokerCpu, format: cores },
  { scenario: 'qos1-v5', label: 'MQTT 5, QoS 1, 16 in flight: acked msg/s', better: 'higher', value: (c) => c.result?.ackedPerSec, format: int },
  { scenario: 'qos1-v5', label: 'MQTT 5, QoS 1, 16 in flight: PUBACK p99 ms', better: 'lower', value: (c) => c.result?.latencyMs?.p99, format: ms },
  { scenario: 'qos1-v5', label: 'MQTT 5, QoS 1, 16 in flight: broker CPU (cores)', value: (c) => c.brokerCpu, format: cores },
  { scenario: 'qos1-rate', label: 'QoS 1 at a fixed rate: acked msg/s', value: (c) => c.result?.ackedPerSec, format: int },
  { scenario: 'qos1-rate', label: 'QoS 1 at a fixed rate: PUBACK p50 ms', better: 'lower', value: (c) => c.result?.latencyMs?.p50, format: ms },
  { scenario: 'qos1-rate', label: 'QoS 1 at a fixed rate: PUBACK p99 ms', better: 'lower', value: (c) => c.result?.latencyMs?.p99, format: ms },
  {
    scenario: 'qos1-rate',
    label: 'QoS 1 at a fixed rate: PUBACK p99 ms in the warm-up (cold start)',
    better: 'lower',
    value: (c) => c.result?.warmupLatencyMs?.p99,
    format: ms,
  },
  { scenario: 'qos1-rate', label: 'QoS 1 at a fixed rate: broker CPU (cores)', value: (c) => c.brokerCpu, format: cores },
  { scenario: 'connect', label: 'Connect, cold: connections/s', better: 'higher', value: (c) => c.result?.passes?.[0]?.perSec, format: int },
  { scenario: 'connect', label: 'Connect, cold: CONNACK p99 ms', better: 'lower', value: (c) => c.result?.passes?.[0]?.latencyMs.p99, format: ms },
  { scenario: 'connect', label: 'Connect, warm: connections/s', better: 'higher', value: (c) => c.result?.passes?.[1]?.perSec, format: int },
  { scenario: 'connect', label: 'Connect, warm: CONNACK p99 ms', better: 'lower', value: (c) => c.result?.passes?.[1]?.latencyMs.p99, format: ms },
  { scenario: 'connect', label: 'Connect: broker CPU (cores)', value: (c) => c.brokerCpu, format: cores },
];

/** The figure that ranks a scenario's repeated runs (the one its target is stated in). */
const HEADLINE: Record<ScenarioName, string> = {
  qos0: 'QoS 0 fan-in: delivered msg/s',
  qos1: 'QoS 1, 16 in flight: acked msg/s',
  'qos0-v5': 'MQTT 5, QoS 0 fan-in: delivered msg/s',
  'qos1-v5': 'MQTT 5, QoS 1, 16 in flight: acked msg/s',
  'qos1-rate': 'QoS 1 at a fixed rate: PUBACK p99 ms',
  connect: 'Connect, warm: connections/s',
};
const headline = (s: ScenarioName) => FIGURES.find((f) => f.label === HEADLINE[s])!;

/**
 * With --repeat N, each (scenario, target) ran N times, interleaved with the other targets: the
 * table shows the run with the median headline figure, whole (its other figures come from the same run).
 */
export function medianCells(cells: Cell[]): Cell[] {
  const groups = new Map<string, Cell[]>();
  for (const c of cells) {
    const key = `${c.scenario} ${c.target}`;
    groups.set(key, [...(groups.get(key) ?? []), c]);
  }
  return [...groups.values()].map((runs) => {
    const ok = runs.filter((c) => !c.error && headline(c.scenario).value(c) !== undefined);
    if (ok.length === 0) return runs[0];
    const f = headline(runs[0].scenario);
    ok.sort((a, b) => f.value(a)! - f.value(b)!);
    return ok[(ok.length - 1) >> 1];
  });
}

/** Every run's headline figure and each Roost run's ratio to the Aedes run of the same round. */
export function spreadList(cells: Cell[], targets: TargetName[], scenarios: ScenarioName[]): string {
  const lines: string[] = [];
  for (const s of scenarios) {
    const f = headline(s);
    for (const t of targets) {
      const runs = cells.filter((c) => c.scenario === s && c.target === t);
      if (runs.length < 2) continue;
      const aedes = cells.filter((c) => c.scenario === s && c.target === 'aedes');
      const values = runs.map((c, i) => {
        if (c.error) return 'failed';
        const v = f.value(c);
        if (v === undefined) return '—';
        const ref = t.startsWith('roost') && aedes[i] && !aedes[i].error ? ratio(v, f.value(aedes[i])) : '';
        return (f.format ?? int)(v, c) + (ref ? ` (${ref} Aedes)` : '');
      });
      lines.push(`- ${f.label}, ${TARGET_LABELS[t]}: ${values.join(' · ')}`);
    }
  }
  return lines.join('\n');
}

export interface RunInfo {
  startedAt: Date;
  finishedAt: Date;
  command: string;
  durationSec: number;
  rate: number;
  brokerCpus: string;
  loadCpus: string;
  pgCpus: string;
  loadBefore: number[];
  loadAfter: number[];
}

export function machine(): string {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const model = cpuinfo.match(/^model name\s*:\s*(.*)$/m)?.[1] ?? 'unknown CPU';
  return `${os.availableParallelism()} × ${model}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Linux ${os.release()}, Node.js ${process.version}`;
}

function ratio(v: number | undefined, ref: number | undefined): string {
  if (v === undefined || ref === undefined || !Number.isFinite(v) || !Number.isFinite(ref) || ref === 0) return '';
  return `${(v / ref).toFixed(2)}×`;
}

export function resultsTable(cells: Cell[], targets: TargetName[], scenarios: ScenarioName[]): string {
  const cell = (t: TargetName, s: ScenarioName) => cells.find((c) => c.target === t && c.scenario === s);
  const columns: Array<{ head: string; get(f: Figure): string }> = [];
  for (const t of targets) {
    columns.push({
      head: TARGET_LABELS[t],
      get(f) {
        const c = cell(t, f.scenario);
        if (!c) return '';
        if (c.error) return 'failed';
        const v = f.value(c);
        return v === undefined || !Number.isFinite(v) ? '—' : (f.format ?? int)(v, c);
      },
    });
    const refs: TargetName[] = [];
    if (t !== 'mosquitto' && t !== 'sink' && targets.includes('mosquitto')) refs.push('mosquitto');
    if (t.startsWith('roost') && targets.includes('aedes')) refs.push('aedes');
    for (const ref of refs) {
      columns.push({
        head: `÷ ${ref === 'mosquitto' ? 'Mosquitto' : 'Aedes'}`,
        get(f) {
          if (!f.better) return '';
          const a = cell(t, f.scenario);
          const b = cell(ref, f.scenario);
          return a && b && !a.error && !b.error ? ratio(f.value(a), f.value(b)) : '';
        },
      });
    }
  }
  const rows = FIGURES.filter((f) => scenarios.includes(f.scenario)).filter((f) => targets.some((t) => {
    const c = cell(t, f.scenario);
    return c && f.value(c) !== undefined;
  }));
  const head = `| figure | ${columns.map((c) => c.head).join(' | ')} |`;
  const rule = `|---|${columns.map(() => '---:').join('|')}|`;
  return [head, rule, ...rows.map((f) => `| ${f.label} | ${columns.map((c) => c.get(f)).join(' | ')} |`)].join('\n');
}

export function notesList(cells: Cell[]): string {
  const lines: string[] = [];
  for (const c of cells) {
    const all = [...(c.error ? [`failed: ${c.error}`] : []), ...c.notes, ...(c.result?.notes ?? [])];
    for (const n of all) lines.push(`- ${TARGET_LABELS[c.target]}, ${c.scenario}: ${n}`);
  }
  return lines.length ? lines.join('\n') : '- none';
}

export function rowsList(cells: Cell[]): string {
  const lines: string[] = [];
  for (const c of cells) {
    if (c.rows === undefined || !c.result) continue;
    const offered = c.result.ackedTotal !== undefined ? `${int(c.result.ackedTotal)} acknowledged` : `${int(c.result.sentTotal)} published, ${int(c.result.deliveredTotal)} delivered`;
    // roost-unstored is told not to store the bench's topics: any row there would be the finding.
    const missing =
      c.target === 'roost-unstored'
        ? c.rows > 0
          ? ' — **rows stored although the bench topics are excluded**'
          : ' (not stored, as configured)'
        : c.result.ackedTotal !== undefined && c.rows < c.result.ackedTotal
          ? ' — **fewer rows than acknowledged publishes**'
          : '';
    lines.push(`- ${TARGET_LABELS[c.target]}, ${c.scenario}: ${int(c.rows)} rows for ${offered}${missing}`);
  }
  return lines.join('\n');
}
