// Quotas and billing: each configured quota's period-to-date usage against
// its limit (with the end-of-period estimate and a cumulative chart), and
// the billing ledger's traffic per account for a chosen billing period.
import { get, unavailable } from '../api.js';
import { Chart, lineOptions } from '../charts.js';
import { h, fill, select, notice } from '../dom.js';
import * as fmt from '../format.js';
import { table } from '../table.js';

export const title = 'Quotas & billing';

const STATUS = {
  ok: ['ok', '●', 'under its limit'],
  forecast_exceeded: ['unknown', '◆', 'estimate over the limit'],
  warning: ['bad', '▲', 'warning'],
  exceeded: ['bad', '■', 'limit reached'],
};

function statusBadge(s) {
  const [cls, glyph, text] = STATUS[s] || ['unknown', '○', s];
  return h('span', { class: ['badge', cls], dataset: { state: s } }, h('span', { 'aria-hidden': 'true' }, `${glyph} `), text);
}

/** used picks the quota's direction from a history row. */
const used = (row, dir) => (dir === 'rx' ? row.rx_bytes : dir === 'tx' ? row.tx_bytes : row.rx_bytes + row.tx_bytes);

const historyLink = (entity, begin) => `#/history?entity=${encodeURIComponent(entity)}&res=day${begin ? `&range=custom&begin=${encodeURIComponent(begin)}` : ''}`;

export function mount(root, params, ctx) {
  let period = params.get('period') || '';
  const charts = [];
  const ctrl = new AbortController();
  const quotaBox = h('div', { 'aria-live': 'polite' }, 'Loading…');
  const ledgerHead = h('div', { class: 'controls' });
  const ledgerBox = h('div', { 'aria-live': 'polite' }, 'Loading…');
  root.append(h('h1', { tabindex: -1 }, 'Quotas & billing'),
    h('section', { 'aria-labelledby': 'quotas-h' }, h('h2', { id: 'quotas-h' }, 'Quotas'),
      h('p', { class: 'muted small' }, 'Period-to-date usage from the history, as ', h('code', {}, 'netmeter quota check'), ' computes it; the estimate projects the period’s average rate so far to its end (once a tenth of the period has passed).'),
      quotaBox),
    h('section', { 'aria-labelledby': 'ledger-h' }, h('h2', { id: 'ledger-h' }, 'Billing ledger'),
      h('p', { class: 'muted small' }, 'Container traffic per billing account (label netmeter.account, compose project/service, pod, else the name), per billing period.'),
      ledgerHead, ledgerBox));

  async function loadQuotas() {
    let doc;
    try {
      doc = await get('quotas', {}, { signal: ctrl.signal });
    } catch (e) {
      if (e.name === 'AbortError') return;
      fill(quotaBox, notice(unavailable(e) ? 'info' : 'error', `Quotas unavailable: ${e.message}`));
      return;
    }
    const qs = doc.quotas || [];
    if (!qs.length) {
      fill(quotaBox, notice('info', 'No quotas configured. Add a quotas: list to the config file (docs/HISTORY.md).'));
      return;
    }
    const cards = qs.map((q) => {
      const pct = Math.min(100, q.percent);
      const chartBox = h('div', { class: 'chart', role: 'img', 'aria-label': `Cumulative ${q.direction} usage of ${q.entity} this period against the ${fmt.bytes(q.limit_bytes)} limit` });
      const card = h('article', { class: 'card quota', dataset: { quota: q.name, used: q.used_bytes, limit: q.limit_bytes, status: q.status } },
        h('header', {}, h('h3', {}, q.name), statusBadge(q.status)),
        h('p', {}, h('a', { href: historyLink(q.entity, q.period_start) }, q.entity), ` · ${q.direction} · ${fmt.wall(q.period_start)} – ${fmt.wall(q.period_end)}`),
        h('div', { class: 'meter', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': pct.toFixed(1), 'aria-label': `${q.name}: ${fmt.percent(q.percent)} of the limit used` },
          h('span', { class: ['fill', q.status === 'ok' ? 'ok' : 'bad'], style: { width: `${pct}%` } })),
        h('dl', { class: 'facts' },
          h('dt', {}, 'Used'), h('dd', { dataset: { field: 'used', value: q.used_bytes } }, `${fmt.bytes(q.used_bytes)} (${fmt.percent(q.percent)})`),
          h('dt', {}, 'Limit'), h('dd', {}, fmt.bytes(q.limit_bytes)),
          h('dt', {}, 'Estimate at period end'), h('dd', { dataset: { field: 'estimate', value: q.estimate_valid ? q.estimate_bytes : '' } }, q.estimate_valid ? fmt.bytes(q.estimate_bytes) : 'not yet (too early in the period)'),
          h('dt', {}, 'Left'), h('dd', {}, fmt.bytes(Math.max(0, q.limit_bytes - q.used_bytes)))),
        chartBox);
      drawQuota(q, chartBox);
      return card;
    });
    fill(quotaBox, h('div', { class: 'cards quotas' }, cards));
  }

  // drawQuota charts the period so far day by day (cumulative), the limit,
  // and the straight line to the estimate.
  async function drawQuota(q, box) {
    let rows;
    try {
      const a = await get('history', { entity: q.entity, resolution: 'day', begin: q.period_start }, { signal: ctrl.signal });
      rows = (a.rows || []).filter((r) => Date.parse(r.start) >= Date.parse(q.period_start));
    } catch (e) {
      if (e.name !== 'AbortError') fill(box, h('p', { class: 'muted' }, `No chart: ${e.message}`));
      return;
    }
    const start = Date.parse(q.period_start) / 1000;
    const end = Date.parse(q.period_end) / 1000;
    const now = Math.min(Date.now() / 1000, end);
    const x = [start];
    const cum = [0];
    let sum = 0;
    for (const r of rows) {
      sum += used(r, q.direction);
      x.push(Math.min(Date.parse(r.end) / 1000, now));
      cum.push(sum);
    }
    if (x[x.length - 1] < now) {
      x.push(now);
      cum.push(sum);
    }
    x.push(end);
    cum.push(null);
    const limit = x.map(() => q.limit_bytes);
    const est = x.map(() => null);
    if (q.estimate_valid) {
      est[est.length - 2] = sum;
      est[est.length - 1] = q.estimate_bytes;
    }
    box.dataset.cumulative = String(sum);
    charts.push(new Chart(box, lineOptions([
      { label: 'used', color: 'rx' },
      { label: 'limit', color: 'bad', dash: [6, 4] },
      { label: 'estimate', color: 'unknown', dash: [2, 4] },
    ], fmt.bytes), [x, cum, limit, est], 180));
  }

  async function loadLedger() {
    let doc;
    try {
      doc = await get('ledger', { period }, { signal: ctrl.signal });
    } catch (e) {
      if (e.name === 'AbortError') return;
      fill(ledgerHead);
      fill(ledgerBox, notice(unavailable(e) ? 'info' : 'error', `Billing ledger unavailable: ${e.message}`));
      return;
    }
    period = doc.period;
    fill(ledgerHead, select('ledger-period', 'Billing period', doc.periods.slice().reverse(), doc.period, (v) => {
      period = v;
      ctx.setParams({ period: v });
      loadLedger();
    }), h('span', { class: 'muted small' }, ` periods start on day ${doc.billing_day} of the month`));
    const total = doc.entries.reduce((s, e) => s + e.total.tx_bytes + e.total.rx_bytes, 0);
    fill(ledgerBox, table({
      caption: `Traffic per account in billing period ${doc.period}, busiest first`,
      empty: `No container traffic booked in ${doc.period}.`,
      sorted: 'total',
      rows: doc.entries,
      rowAttrs: (e) => ({ dataset: { account: e.account } }),
      columns: [
        { key: 'account', label: 'Account', header: true, cell: (e) => h('a', { href: historyLink(`account:${e.account}`) }, e.account) },
        { key: 'tx', label: 'Sent', num: true, field: 'tx-bytes', value: (e) => e.total.tx_bytes, payload: (e) => e.total.tx_payload_bytes, cell: (e) => fmt.bytes(e.total.tx_bytes) },
        { key: 'rx', label: 'Received', num: true, field: 'rx-bytes', value: (e) => e.total.rx_bytes, payload: (e) => e.total.rx_payload_bytes, cell: (e) => fmt.bytes(e.total.rx_bytes) },
        { key: 'total', label: 'Total', num: true, cell: (e) => fmt.bytes(e.total.tx_bytes + e.total.rx_bytes) },
        { key: 'share', label: 'Share', num: true, opt: true, cell: (e) => fmt.percent(total ? (100 * (e.total.tx_bytes + e.total.rx_bytes)) / total : 0) },
      ],
    }));
  }

  loadQuotas();
  loadLedger();
  return {
    unmount() {
      ctrl.abort();
      for (const c of charts) c.destroy();
    },
  };
}
