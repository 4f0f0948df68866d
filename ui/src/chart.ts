/** A small time-series chart in SVG: one polyline, min/max and first/last time labels. */
const NS = 'http://www.w3.org/2000/svg';

function svg(tag: string, attrs: Record<string, string | number>, text?: string): SVGElement {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

export function timeSeriesChart(title: string, points: Array<{ t: number; v: number }>, width = 360, height = 140): HTMLElement {
  const pad = { l: 42, r: 8, t: 16, b: 18 };
  const sorted = [...points].sort((a, b) => a.t - b.t);
  const t0 = sorted[0].t;
  const t1 = sorted[sorted.length - 1].t;
  let v0 = Math.min(...sorted.map((p) => p.v));
  let v1 = Math.max(...sorted.map((p) => p.v));
  if (v0 === v1) [v0, v1] = [v0 - 1, v1 + 1];
  const x = (t: number) => pad.l + (t1 === t0 ? 0.5 : (t - t0) / (t1 - t0)) * (width - pad.l - pad.r);
  const y = (v: number) => pad.t + (1 - (v - v0) / (v1 - v0)) * (height - pad.t - pad.b);
  const root = svg('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': `${title} over time` });
  root.append(
    svg('text', { x: pad.l, y: 11 }, `${title} (${sorted.length} points)`),
    svg('text', { x: 2, y: pad.t + 8 }, fmt(v1)),
    svg('text', { x: 2, y: height - pad.b }, fmt(v0)),
    svg('text', { x: pad.l, y: height - 4 }, new Date(t0).toLocaleTimeString()),
    svg('text', { x: width - pad.r, y: height - 4, 'text-anchor': 'end' }, new Date(t1).toLocaleTimeString()),
    svg('polyline', { points: sorted.map((p) => `${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(' ') }),
  );
  const wrap = document.createElement('div');
  wrap.className = 'chart';
  wrap.append(root);
  return wrap;
}

function fmt(v: number): string {
  return Math.abs(v) >= 1000 || Number.isInteger(v) ? String(Math.round(v)) : v.toFixed(2);
}

/** Numeric fields of a JSON payload as dotted paths ({"a":{"b":1}} → a.b), two levels deep. */
export function numericFields(value: unknown, prefix = '', depth = 0, out = new Map<string, number>()): Map<string, number> {
  if (typeof value === 'number' && Number.isFinite(value)) out.set(prefix || 'value', value);
  else if (value && typeof value === 'object' && !Array.isArray(value) && depth < 2) {
    for (const [k, v] of Object.entries(value)) numericFields(v, prefix ? `${prefix}.${k}` : k, depth + 1, out);
  }
  return out;
}
