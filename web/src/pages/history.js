// History explorer: entity, metric, resolution and range; a stacked chart,
// a table, CSV and JSON downloads; downtime gaps shaded.
import { get } from '../api.js';
import { Chart, stack, stackedOptions } from '../charts.js';
import { h, clear, fill, select, notice } from '../dom.js';
import * as fmt from '../format.js';
import { bucketStarts, build, csv, rowAt, totals } from '../histdata.js';

export const title = 'History';

const KINDS = [['interface', 'Interfaces'], ['process', 'Programs'], ['container', 'Containers'], ['account', 'Accounts'], ['group', 'Remote groups'], ['monitor', 'Monitors']];
const RESOLUTIONS = [['5min', '5 minutes'], ['hour', 'Hour'], ['day', 'Day'], ['week', 'Week'], ['month', 'Month'], ['year', 'Year']];
const RANGES = [['6h', 'Last 6 hours'], ['24h', 'Last 24 hours'], ['48h', 'Last 48 hours'], ['7d', 'Last 7 days'], ['30d', 'Last 30 days'], ['90d', 'Last 90 days'], ['1y', 'Last year'], ['all', 'Everything'], ['custom', 'Custom…']];
const DEFAULT_RANGE = { '5min': '48h', hour: '7d', day: '90d', week: '1y', month: 'all', year: 'all' };
const METRICS = [['rxtx', 'Received + sent'], ['rx', 'Received'], ['tx', 'Sent'], ['total', 'Total']];
const UNITS = [['bytes', 'Bytes per bucket'], ['rate', 'Average rate'], ['packets', 'Packets per bucket']];
const PAGE = 50;

const DUR = { h: 3600, d: 86400, y: 365 * 86400 };
const rfc3339 = (d) => new Date(d).toISOString().replace(/\.\d{3}Z$/, 'Z');
const localInput = (d) => {
  const t = new Date(d);
  t.setMinutes(t.getMinutes() - t.getTimezoneOffset());
  return t.toISOString().slice(0, 16);
};

export function mount(root, params, ctx) {
  const fromLink = params.get('entity') || '';
  const [lk, ln] = fromLink.includes(':') ? [fromLink.slice(0, fromLink.indexOf(':')), fromLink.slice(fromLink.indexOf(':') + 1)] : ['', ''];
  const st = {
    kind: lk || params.get('kind') || 'interface',
    names: ln ? ln.split('+') : params.getAll('e'),
    mode: params.get('mode') || (ln.includes('+') ? 'sum' : 'stack'),
    metric: params.get('metric') || 'rxtx',
    unit: params.get('unit') || 'bytes',
    res: params.get('res') || 'hour',
    range: params.get('range') || '',
    begin: params.get('begin') || '',
    end: params.get('end') || '',
    page: 0,
  };
  if (!st.range) st.range = st.begin || st.end ? 'custom' : DEFAULT_RANGE[st.res];
  let entities = [];
  let results = null; // [{label, entity, rows, gaps}]
  let error = null;
  let chart = null;
  let ctrl = null;
  let loadedAt = 0;

  const save = () => ctx.setParams({
    kind: st.kind, e: st.names, mode: st.mode === 'stack' ? '' : st.mode, metric: st.metric === 'rxtx' ? '' : st.metric,
    unit: st.unit === 'bytes' ? '' : st.unit, res: st.res, range: st.range === DEFAULT_RANGE[st.res] ? '' : st.range,
    begin: st.range === 'custom' ? st.begin : '', end: st.range === 'custom' ? st.end : '',
  });

  const entSelect = h('select', { id: 'hist-entities', multiple: true, size: 5, 'aria-describedby': 'hist-entities-help', onchange: (e) => { st.names = [...e.target.selectedOptions].map((o) => o.value); load(); } });
  const customBox = h('div', { class: 'controls custom', hidden: st.range !== 'custom' },
    h('label', { class: 'field', for: 'hist-begin' }, h('span', {}, 'From'), h('input', { id: 'hist-begin', type: 'datetime-local', value: st.begin ? localInput(st.begin) : '', onchange: (e) => { st.begin = e.target.value ? rfc3339(e.target.value) : ''; load(); } })),
    h('label', { class: 'field', for: 'hist-end' }, h('span', {}, 'To'), h('input', { id: 'hist-end', type: 'datetime-local', value: st.end ? localInput(st.end) : '', onchange: (e) => { st.end = e.target.value ? rfc3339(e.target.value) : ''; load(); } })));
  const rangeSel = select('hist-range', 'Range', RANGES, st.range, (v) => { st.range = v; customBox.hidden = v !== 'custom'; load(); });

  const form = h('form', { class: 'history-form', onsubmit: (e) => { e.preventDefault(); load(); } },
    h('div', { class: 'controls' },
      select('hist-kind', 'Entity kind', KINDS, st.kind, (v) => { st.kind = v; st.names = []; loadEntities(); }),
      h('label', { class: 'field entities', for: 'hist-entities' }, h('span', {}, 'Entities'), entSelect,
        h('small', { id: 'hist-entities-help', class: 'muted' }, 'Ctrl/⌘-click to pick several')),
      h('fieldset', { class: 'checks' }, h('legend', {}, 'Several entities'),
        ['stack', 'sum'].map((m) => h('label', { class: 'check' }, h('input', { type: 'radio', name: 'hist-mode', value: m, checked: st.mode === m, onchange: () => { st.mode = m; load(); } }), m === 'stack' ? ' Stacked' : ' Summed'))),
    ),
    h('div', { class: 'controls' },
      select('hist-metric', 'Metric', METRICS, st.metric, (v) => { st.metric = v; save(); render(); }),
      select('hist-unit', 'Unit', UNITS, st.unit, (v) => { st.unit = v; save(); render(); }),
      select('hist-res', 'Resolution', RESOLUTIONS, st.res, (v) => {
        st.res = v;
        if (st.range !== 'custom') {
          st.range = DEFAULT_RANGE[v];
          rangeSel.querySelector('select').value = st.range;
        }
        load();
      }),
      rangeSel,
      h('button', { type: 'submit', class: 'primary' }, 'Reload'),
    ),
    customBox);

  const summary = h('div', { class: 'summary-line', 'aria-live': 'polite' });
  const chartBox = h('div', { class: 'chart big', role: 'img', 'aria-label': 'History chart' });
  const gapsBox = h('div');
  const tableBox = h('div');
  const downloads = h('p', { class: 'links' },
    h('button', { type: 'button', onclick: () => download('csv') }, 'Download CSV'), ' ',
    h('button', { type: 'button', onclick: () => download('json') }, 'Download JSON'));
  root.append(h('div', { class: 'section-head' }, h('h1', { tabindex: -1 }, 'History'), h('a', { href: '#/billing' }, 'Quotas and billing periods →')), form, summary,
    h('section', { 'aria-label': 'Chart' }, chartBox, h('p', { class: 'muted small' }, 'Drag across the chart to zoom, double-click to zoom out. Shaded: the agent was not running.')),
    gapsBox, h('section', { 'aria-labelledby': 'hist-table' }, h('div', { class: 'section-head' }, h('h2', { id: 'hist-table' }, 'Table'), downloads), tableBox));

  function range() {
    if (st.range === 'custom') return { begin: st.begin, end: st.end };
    if (st.range === 'all') return {};
    const m = /^(\d+)([hdy])$/.exec(st.range);
    return m ? { begin: rfc3339(Date.now() - Number(m[1]) * DUR[m[2]] * 1000) } : {};
  }

  async function loadEntities() {
    try {
      entities = await get('entities', { kind: st.kind });
      error = null;
    } catch (e) {
      entities = [];
      error = e;
    }
    const names = entities.map((e) => e.name);
    st.names = st.names.filter((n) => names.includes(n));
    if (!st.names.length && names.length) st.names = [names.find((n) => n !== 'lo') || names[0]];
    fill(entSelect, ...names.map((n) => h('option', { value: n, selected: st.names.includes(n) }, n)));
    if (!names.length) entSelect.append(h('option', { disabled: true }, 'none recorded'));
    load();
  }

  async function load() {
    save();
    st.page = 0;
    if (ctrl) ctrl.abort();
    ctrl = new AbortController();
    if (!st.names.length) {
      results = [];
      render();
      return;
    }
    const q = { resolution: st.res, ...range() };
    const sets = st.mode === 'sum' ? [st.names] : st.names.map((n) => [n]);
    fill(summary, 'Loading…');
    try {
      const t0 = performance.now();
      const answers = await Promise.all(sets.map((names) => get('history', { entity: `${st.kind}:${names.join('+')}`, ...q }, { signal: ctrl.signal })));
      loadedAt = performance.now() - t0;
      results = answers.map((a, i) => ({ label: sets[i].join(' + '), entity: a.entity, rows: a.rows || [], gaps: a.gaps || [], resolution: a.resolution }));
      error = null;
    } catch (e) {
      if (e.name === 'AbortError') return;
      error = e;
      results = null;
    }
    render();
  }

  function yFormat() {
    return st.unit === 'rate' ? fmt.rate : st.unit === 'packets' ? fmt.packets : fmt.bytes;
  }

  function render() {
    if (chart) {
      chart.destroy();
      chart = null;
    }
    clear(chartBox);
    clear(gapsBox);
    clear(tableBox);
    if (error) {
      fill(summary, error.status === 503 ? notice('info', error.message) : notice('error', `Could not load history: ${error.message}`));
      return;
    }
    if (!results) return;
    if (!results.length) {
      fill(summary, notice('info', entities.length ? 'Pick an entity.' : `No ${st.kind} recorded yet.`));
      return;
    }
    const t = totals(results);
    const data = build(results, { metric: st.metric, unit: st.unit });
    const periods = bucketStarts(results).length;
    const first = results.find((r) => r.rows.length);
    const zone = first && /([+-]\d\d:\d\d|Z)$/.exec(first.rows[0].start)?.[1];
    fill(summary, 
      h('span', { dataset: { field: 'periods', value: periods } }, `${fmt.count(periods)} periods with traffic`), ' · ',
      h('span', { dataset: { field: 'rx-bytes', value: t.rx_bytes } }, `received ${fmt.bytes(t.rx_bytes)}`), ' · ',
      h('span', { dataset: { field: 'tx-bytes', value: t.tx_bytes } }, `sent ${fmt.bytes(t.tx_bytes)}`), ' · ',
      `total ${fmt.bytes(t.rx_bytes + t.tx_bytes)}`,
      zone ? ` · periods in the agent's zone (${zone === 'Z' ? 'UTC' : `UTC${zone}`})` : '',
      h('span', { class: 'muted' }, ` · loaded in ${Math.round(loadedAt)} ms`));

    if (data.x.length) {
      const single = results.length === 1 && st.metric === 'rxtx';
      const layers = data.layers.map((l) => ({ label: l.label, color: single ? l.dir : undefined }));
      const raw = data.layers.map((l) => l.values);
      const { data: stacked, bands } = stack(raw);
      const gaps = dedupeGaps(results).map((g) => ({ start: Date.parse(g.start) / 1000, end: Date.parse(g.end) / 1000 }));
      chartBox.setAttribute('aria-label', `${st.metric === 'rxtx' ? 'Received and sent' : st.metric} ${st.unit === 'rate' ? 'average rate' : st.unit} of ${st.kind} ${st.names.join(', ')} per ${st.res}, ${data.x.length} points`);
      chart = new Chart(chartBox, stackedOptions({ layers, raw, bands, yFmt: yFormat(), gaps }), [data.x, ...stacked], 300);
    } else {
      chartBox.append(h('p', { class: 'muted' }, 'No traffic recorded in this range.'));
    }
    renderGaps();
    renderTable();
  }

  function dedupeGaps(rs) {
    const seen = new Map();
    for (const r of rs) for (const g of r.gaps) seen.set(`${g.start}|${g.end}`, g);
    return [...seen.values()].sort((a, b) => Date.parse(a.start) - Date.parse(b.start));
  }

  function renderGaps() {
    const gaps = dedupeGaps(results);
    if (!gaps.length) return;
    gapsBox.append(h('details', {}, h('summary', {}, `${gaps.length} gap${gaps.length === 1 ? '' : 's'}: the agent was not recording`),
      h('ul', {}, gaps.map((g) => h('li', {}, `${fmt.wall(g.start)} – ${fmt.wall(g.end)} (${fmt.seconds((Date.parse(g.end) - Date.parse(g.start)) / 1000)})${g.reason ? `: ${g.reason}` : ''}`)))));
  }

  function renderTable() {
    // One row per bucket, newest first; per entity its rx and tx in the chosen unit.
    const starts = bucketStarts(results);
    const pages = Math.max(1, Math.ceil(starts.length / PAGE));
    st.page = Math.min(st.page, pages - 1);
    const rows = [];
    for (let j = st.page * PAGE; j < Math.min(starts.length, (st.page + 1) * PAGE); j++) {
      const t = starts[starts.length - 1 - j];
      const cells = results.map((r) => rowAt(r, t));
      const any = cells.find(Boolean);
      rows.push({ start: any.start, end: any.end, cells });
    }
    const now = Date.now() / 1000;
    const val = (row, dir) => {
      if (!row) return 0;
      const kind = st.unit === 'packets' ? 'packets' : 'bytes';
      const v = row[`${dir}_${kind}`];
      if (st.unit !== 'rate') return v;
      const span = Math.min(Date.parse(row.end) / 1000, now) - Date.parse(row.start) / 1000;
      return span > 0 ? v / span : 0;
    };
    const f = yFormat();
    const multi = results.length > 1;
    const head = [h('th', { scope: 'col' }, 'Period start'), h('th', { scope: 'col' }, 'End')];
    for (const r of results) for (const d of ['Received', 'Sent']) head.push(h('th', { scope: 'col', class: 'num' }, multi ? `${r.label} ${d.toLowerCase()}` : d));
    head.push(h('th', { scope: 'col', class: 'num' }, 'Total'));
    const pager = pages > 1 ? h('p', { class: 'pager' },
      h('button', { type: 'button', disabled: st.page === 0, onclick: () => { st.page--; renderTablePage(); } }, '← Newer'),
      ` page ${st.page + 1} of ${pages} `,
      h('button', { type: 'button', disabled: st.page >= pages - 1, onclick: () => { st.page++; renderTablePage(); } }, 'Older →')) : null;
    fill(tableBox, 
      starts.length ? h('div', { class: 'table-wrap' }, h('table', { class: 'data', id: 'history-table' },
        h('caption', { class: 'sr-only' }, `History of ${st.kind} ${st.names.join(', ')} per ${st.res}, newest first`),
        h('thead', {}, h('tr', {}, head)),
        h('tbody', {}, rows.map((e) => {
          let sum = 0;
          const cells = [];
          results.forEach((r, k) => {
            for (const d of ['rx', 'tx']) {
              const v = val(e.cells[k], d);
              sum += v;
              cells.push(h('td', { class: 'num', dataset: { value: v } }, f(v)));
            }
          });
          return h('tr', {}, h('th', { scope: 'row' }, fmt.wall(e.start)), h('td', {}, fmt.wall(e.end)), cells, h('td', { class: 'num' }, f(sum)));
        })))) : h('p', { class: 'muted' }, 'No rows.'),
      pager);
  }

  function renderTablePage() {
    renderTable();
    tableBox.querySelector('.pager button:not([disabled])')?.focus();
  }

  function download(kind) {
    if (!results || !results.length) return;
    const base = `netmeter-${st.kind}-${st.names.join('+')}-${st.res}`.replace(/[^\w.+-]+/g, '_');
    const blob = kind === 'csv'
      ? new Blob([csv(results, st.res)], { type: 'text/csv' })
      : new Blob([JSON.stringify(results.length === 1 ? strip(results[0]) : results.map(strip), null, 1)], { type: 'application/json' });
    const a = h('a', { href: URL.createObjectURL(blob), download: `${base}.${kind}` });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  }
  const strip = (r) => ({ entity: r.entity, resolution: r.resolution, rows: r.rows, gaps: r.gaps });

  loadEntities();
  return {
    unmount() {
      if (ctrl) ctrl.abort();
      if (chart) chart.destroy();
    },
  };
}
