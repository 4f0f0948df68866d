import { describe, expect, it } from 'vitest';
import type { LoadResult } from '../../bench/loadgen.js';
import { medianCells, resultsTable, spreadList, type Cell } from '../../bench/report.js';
import type { TargetName } from '../../bench/targets.js';

const qos0 = (target: TargetName, delivered: number, rows?: number): Cell => ({
  target,
  scenario: 'qos0',
  result: { deliveredPerSec: delivered } as LoadResult,
  rowsPerSec: rows,
  notes: [],
});

describe('bench report with repeated runs', () => {
  it('shows the run with the median delivered rate, whole, and the ratio of those medians', () => {
    const cells = [
      qos0('aedes', 80_000), qos0('roost-pg', 60_000, 59_000),
      qos0('aedes', 90_000), qos0('roost-pg', 75_000, 74_000),
      qos0('aedes', 70_000), qos0('roost-pg', 90_000, 81_000),
    ];
    const medians = medianCells(cells);
    const roost = medians.find((c) => c.target === 'roost-pg')!;
    expect(roost.result?.deliveredPerSec).toBe(75_000);
    expect(roost.rowsPerSec).toBe(74_000); // from the same run, not the median of each figure
    const table = resultsTable(medians, ['aedes', 'roost-pg'], ['qos0']);
    expect(table).toContain('| QoS 0 fan-in: delivered msg/s | 80,000 | 75,000 | 0.94× |');
  });

  it('lists every run with its ratio to the Aedes run of the same round, and a failed run as failed', () => {
    const failed: Cell = { ...qos0('roost-pg', 0), result: undefined, error: 'boom' };
    const cells = [qos0('aedes', 80_000), qos0('roost-pg', 40_000), qos0('aedes', 50_000), failed];
    expect(spreadList(cells, ['aedes', 'roost-pg'], ['qos0'])).toBe(
      [
        '- QoS 0 fan-in: delivered msg/s, Aedes (in memory): 80,000 · 50,000',
        '- QoS 0 fan-in: delivered msg/s, Roost + PostgreSQL: 40,000 (0.50× Aedes) · failed',
      ].join('\n'),
    );
    // The failed run is never chosen as the median.
    expect(medianCells(cells).find((c) => c.target === 'roost-pg')?.result?.deliveredPerSec).toBe(40_000);
  });
});
