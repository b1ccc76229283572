// uPlot wrappers: colours from the CSS custom properties (light and dark),
// width from the container, rebuilt when the colour scheme changes.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import * as fmt from './format.js';

export { uPlot };

const live = new Set();

const cssVar = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

export function theme() {
  return {
    fg: cssVar('--fg'),
    muted: cssVar('--muted'),
    grid: cssVar('--grid'),
    rx: cssVar('--rx'),
    tx: cssVar('--tx'),
    ok: cssVar('--ok'),
    bad: cssVar('--bad'),
    unknown: cssVar('--unknown'),
    gap: cssVar('--gap'),
    palette: cssVar('--palette').split(/\s+/).filter(Boolean),
  };
}

/** alpha turns #rrggbb into rgba with opacity a. */
export function alpha(hex, a) {
  const m = /^#?([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex);
  if (!m) return hex;
  return `rgba(${parseInt(m[1], 16)},${parseInt(m[2], 16)},${parseInt(m[3], 16)},${a})`;
}

if (typeof matchMedia === 'function') {
  matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => {
    for (const c of live) c.rebuild();
  });
}

/** Chart owns one uPlot inside el; build(width, theme) returns its options. */
export class Chart {
  constructor(el, build, data, height = 160) {
    this.el = el;
    this.build = build;
    this.data = data;
    this.height = height;
    this.create();
    this.ro = new ResizeObserver(() => this.resize());
    this.ro.observe(el);
    live.add(this);
  }

  create() {
    const width = Math.max(160, this.el.clientWidth || 300);
    this.u = new uPlot({ ...this.build(width, theme()), width, height: this.height }, this.data, this.el);
  }

  setData(data, resetScales = true) {
    this.data = data;
    this.u.setData(data, resetScales);
  }

  resize() {
    const w = this.el.clientWidth;
    if (w && Math.abs(w - this.u.width) > 1) this.u.setSize({ width: w, height: this.height });
  }

  rebuild() {
    this.u.destroy();
    this.create();
  }

  destroy() {
    this.ro.disconnect();
    this.u.destroy();
    live.delete(this);
  }
}

function axes(th, yFmt, ySize = 76) {
  const common = { stroke: th.muted, grid: { stroke: th.grid, width: 1 }, ticks: { stroke: th.grid, width: 1 } };
  return [common, { ...common, size: ySize, values: (u, vals) => vals.map(yFmt) }];
}

/** rateOptions: a live rx/tx rate chart (bytes per second over time). */
export function rateOptions({ span, label = '' } = {}) {
  return (width, th) => ({
    title: label || undefined,
    scales: {
      x: {
        time: true,
        // The last span seconds once there is that much; until then what
        // there is (at least a minute), so a fresh page is not an empty chart.
        range: span ? (u, min, max) => [Math.max(max - span, Math.min(min, max - 60)), max] : undefined,
      },
      y: { range: (u, min, max) => [0, Math.max(max || 0, 1024) * 1.1] },
    },
    axes: axes(th, fmt.rate),
    legend: { live: true },
    cursor: { drag: { x: false, y: false } },
    series: [
      { value: (u, v) => (v == null ? '–' : fmt.time(v * 1000)) },
      { label: 'rx', stroke: th.rx, width: 1.5, fill: alpha(th.rx, 0.12), value: (u, v) => fmt.rate(v) },
      { label: 'tx', stroke: th.tx, width: 1.5, fill: alpha(th.tx, 0.12), value: (u, v) => fmt.rate(v) },
    ],
  });
}

/** lineOptions: generic lines (e.g. evidence over time) with one y formatter. */
export function lineOptions(series, yFmt, { yMin0 = true, minMax = 1 } = {}) {
  // Axis labels: 0 reads "0", fractions of whole counts are left out.
  const tick = (v) => (v === 0 ? '0' : yFmt === fmt.count && !Number.isInteger(v) ? '' : yFmt(v));
  return (width, th) => ({
    scales: {
      // At least a minute wide: a few seconds of samples would get
      // millisecond ticks (":44.500").
      x: { time: true, range: (u, min, max) => (min != null && max != null && max - min < 60 ? [max - 60, max] : [min, max]) },
      y: yMin0 ? { range: (u, min, max) => [0, Math.max(max || 0, minMax) * 1.15] } : {},
    },
    axes: axes(th, tick, 70),
    legend: { live: true },
    cursor: { drag: { x: true, y: false } },
    series: [
      { value: (u, v) => (v == null ? '–' : fmt.time(v * 1000)) },
      ...series.map((s, i) => ({
        label: s.label,
        stroke: s.color ? th[s.color] || s.color : th.palette[i % th.palette.length],
        width: 1.5,
        dash: s.dash,
        spanGaps: false,
        value: (u, v) => (v == null ? '–' : yFmt(v)),
      })),
    ],
  });
}

/**
 * stack sums layers bottom-up for a stacked area chart: layers[i] are the
 * raw values; the result holds the cumulative sums and uPlot bands.
 */
export function stack(layers) {
  const n = layers.length ? layers[0].length : 0;
  const acc = new Float64Array(n);
  const data = layers.map((l) => {
    const out = new Array(n);
    for (let j = 0; j < n; j++) out[j] = acc[j] += l[j] || 0;
    return out;
  });
  const bands = [];
  for (let i = 1; i < layers.length; i++) bands.push({ series: [i + 1, i] });
  return { data, bands };
}

/**
 * stackedOptions: stepped, stacked areas over buckets ([x, next x) holds the
 * value), with downtime gaps shaded. layers: [{label, color}], raw: their
 * unstacked values for the legend, gaps: [{start, end}] in seconds.
 */
export function stackedOptions({ layers, raw, bands, yFmt, gaps = [], timeFmt }) {
  return (width, th) => ({
    scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(max || 0, 1) * 1.08] } },
    axes: axes(th, yFmt),
    bands: bands.map((b) => ({ ...b })),
    legend: { live: true },
    cursor: { drag: { x: true, y: false } }, // drag to zoom, double-click to reset
    series: [
      { value: (u, v) => (v == null ? '–' : timeFmt ? timeFmt(v) : fmt.dateTime(v * 1000)) },
      ...layers.map((l, i) => {
        const c = th[l.color] || l.color || th.palette[i % th.palette.length];
        return {
          label: l.label,
          stroke: c,
          width: 1,
          fill: alpha(c, 0.35),
          paths: uPlot.paths.stepped({ align: 1 }),
          points: { show: false },
          value: (u, v, si, di) => (di == null ? '–' : yFmt(raw[si - 1][di])),
        };
      }),
    ],
    hooks: {
      drawClear: [
        (u) => {
          if (!gaps.length) return;
          const { ctx } = u;
          ctx.save();
          ctx.fillStyle = th.gap;
          for (const g of gaps) {
            const x0 = Math.max(u.bbox.left, u.valToPos(g.start, 'x', true));
            const x1 = Math.min(u.bbox.left + u.bbox.width, u.valToPos(g.end, 'x', true));
            if (x1 > x0) ctx.fillRect(x0, u.bbox.top, Math.max(1, x1 - x0), u.bbox.height);
          }
          ctx.restore();
        },
      ],
    },
  });
}
