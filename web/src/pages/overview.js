// Overview: per-interface live rx/tx rates, totals, errors and drops; host
// and health summaries; kernel drops by reason.
import { Chart, rateOptions } from '../charts.js';
import { h, clear, fill, select, stateBadge, notice } from '../dom.js';
import * as fmt from '../format.js';

export const title = 'Overview';

const SPANS = [
  [60, 'Last minute'],
  [300, 'Last 5 minutes'],
  [900, 'Last 15 minutes'],
];

const hidden = (ifc) => !ifc.present || !ifc.admin_up || ifc.oper_state === 'down' || ifc.oper_state === 'lowerlayerdown';

function kv(label, field, extra) {
  return h('div', {}, h('dt', {}, label), h('dd', { dataset: { field } }, '–'), extra);
}

export function mount(root, params, ctx) {
  const state = { all: params.get('all') === '1', span: Number(params.get('span')) || 300 };
  const cards = new Map(); // interface name → {el, chart, dd: {field: el}}
  let seq = 0;

  const summary = h('section', { class: 'cards summary', 'aria-label': 'Summary' });
  const hostCard = h('article', { class: 'card', 'aria-labelledby': 'sum-host' }, h('h2', { id: 'sum-host' }, 'Host'), h('dl', { class: 'kv' }));
  const healthCard = h('article', { class: 'card', 'aria-labelledby': 'sum-health' }, h('h2', { id: 'sum-health' }, h('a', { href: '#/health' }, 'Health')), h('div', { class: 'body' }, 'Loading…'));
  const engineCard = h('article', { class: 'card', 'aria-labelledby': 'sum-engine' }, h('h2', { id: 'sum-engine' }, 'Agent'), h('dl', { class: 'kv' }));
  summary.append(hostCard, healthCard, engineCard);

  const grid = h('div', { class: 'cards ifaces' });
  const waiting = notice('info', 'Waiting for the first reading…');
  const empty = h('p', { class: 'muted', hidden: true }, 'No interface to show.');
  const drops = h('div', { class: 'table-wrap' });

  const controls = h('div', { class: 'controls' },
    h('label', { class: 'check' },
      h('input', { type: 'checkbox', id: 'ov-all', checked: state.all, onchange: (e) => { state.all = e.target.checked; ctx.setParams(paramsOf()); render(ctx.live.last); } }),
      ' Show down and removed interfaces'),
    select('ov-span', 'Chart span', SPANS, state.span, (v) => {
      state.span = Number(v);
      ctx.setParams(paramsOf());
      for (const c of cards.values()) c.chart.rebuild();
    }),
  );

  root.append(
    h('h1', { tabindex: -1 }, 'Overview'),
    summary,
    h('section', { 'aria-labelledby': 'ov-ifaces' }, h('div', { class: 'section-head' }, h('h2', { id: 'ov-ifaces' }, 'Interfaces'), controls), waiting, grid, empty),
    h('section', { 'aria-labelledby': 'ov-drops' }, h('h2', { id: 'ov-drops' }, 'Kernel drops'), drops),
  );

  const paramsOf = () => ({ all: state.all ? '1' : '', span: state.span === 300 ? '' : state.span });

  function card(ifc) {
    const id = `if-${++seq}`;
    const dd = {};
    const chartEl = h('div', { class: 'chart', role: 'img', 'aria-label': `Receive and transmit rate of ${ifc.name}` });
    const dl = h('dl', { class: 'kv' },
      kv('Receive', 'rx-rate'), kv('Transmit', 'tx-rate'),
      kv('Received', 'rx-total'), kv('Sent', 'tx-total'),
      kv('Errors rx / tx', 'errors'), kv('Dropped rx / tx', 'dropped'));
    for (const el of dl.querySelectorAll('dd')) dd[el.dataset.field] = el;
    const meta = h('span', { class: 'meta' });
    const badge = h('span', { class: 'badge' });
    const el = h('article', { class: 'card iface', dataset: { iface: ifc.name }, 'aria-labelledby': id },
      h('header', {}, h('h3', { id }, ifc.name), badge, meta),
      dl, chartEl);
    const s = ctx.live.series.get(ifc.name) || { t: [], rx: [], tx: [] };
    const chart = new Chart(chartEl, (w, th) => rateOptions({ span: state.span })(w, th), [s.t, s.rx, s.tx], 150);
    return { el, chart, dd, meta, badge, chartEl };
  }

  function set(dd, text, value) {
    if (dd.textContent !== text) dd.textContent = text;
    if (value !== undefined) dd.dataset.value = String(value);
  }

  function renderIface(c, ifc) {
    const up = ifc.present && ifc.oper_state !== 'down' && ifc.oper_state !== 'lowerlayerdown';
    c.badge.className = `badge ${up ? 'ok' : 'unknown'}`;
    c.badge.textContent = ifc.present ? ifc.oper_state || 'unknown' : 'removed';
    c.meta.textContent = [ifc.kind, ifc.speed_mbps ? `${ifc.speed_mbps} Mbit/s` : '', ifc.master ? `in ${ifc.master}` : '', ifc.netns ? `netns ${ifc.netns}` : ''].filter(Boolean).join(' · ');
    const rx = ifc.rx_bytes_per_second || {};
    const tx = ifc.tx_bytes_per_second || {};
    const tot = ifc.total || {};
    const d = ifc.delta || {};
    set(c.dd['rx-rate'], fmt.rate(rx.current), rx.current);
    set(c.dd['tx-rate'], fmt.rate(tx.current), tx.current);
    set(c.dd['rx-total'], fmt.bytes(tot.rx_bytes), tot.rx_bytes);
    set(c.dd['tx-total'], fmt.bytes(tot.tx_bytes), tot.tx_bytes);
    set(c.dd.errors, `${fmt.count(tot.rx_errors)} / ${fmt.count(tot.tx_errors)}`, (tot.rx_errors || 0) + (tot.tx_errors || 0));
    set(c.dd.dropped, `${fmt.count(tot.rx_dropped)} / ${fmt.count(tot.tx_dropped)}`, (tot.rx_dropped || 0) + (tot.tx_dropped || 0));
    c.dd.errors.classList.toggle('alarm', (d.rx_errors || 0) + (d.tx_errors || 0) > 0);
    c.dd.dropped.classList.toggle('alarm', (d.rx_dropped || 0) + (d.tx_dropped || 0) > 0);
    c.chartEl.setAttribute('aria-label', `${ifc.name}: receiving ${fmt.rate(rx.current)}, transmitting ${fmt.rate(tx.current)}; chart of the ${fmt.seconds(state.span)} before`);
    const s = ctx.live.series.get(ifc.name);
    if (s) c.chart.setData([s.t, s.rx, s.tx]);
  }

  function renderHost(snap) {
    const ifs = (snap.interfaces || []).filter((i) => i.present && i.kind !== 'loopback');
    const sum = (f) => ifs.reduce((a, i) => a + f(i), 0);
    const dl = hostCard.querySelector('dl');
    fill(dl, 
      h('div', {}, h('dt', {}, 'Receive'), h('dd', { dataset: { field: 'host-rx-rate' } }, fmt.rate(sum((i) => i.rx_bytes_per_second?.current || 0)))),
      h('div', {}, h('dt', {}, 'Transmit'), h('dd', { dataset: { field: 'host-tx-rate' } }, fmt.rate(sum((i) => i.tx_bytes_per_second?.current || 0)))),
      h('div', {}, h('dt', {}, 'Received'), h('dd', {}, fmt.bytes(sum((i) => i.total?.rx_bytes || 0)))),
      h('div', {}, h('dt', {}, 'Sent'), h('dd', {}, fmt.bytes(sum((i) => i.total?.tx_bytes || 0)))),
      h('div', { class: 'wide' }, h('dt', {}, 'Counted'), h('dd', { class: 'muted' }, `${ifs.length} interface${ifs.length === 1 ? '' : 's'} other than loopback, since netmeter saw them`)),
    );
    const eng = snap.engine;
    fill(engineCard.querySelector('dl'), 
      h('div', {}, h('dt', {}, 'Updated'), h('dd', {}, h('time', { datetime: snap.time }, fmt.time(snap.time)))),
      h('div', {}, h('dt', {}, 'Interval'), h('dd', {}, fmt.seconds(snap.interval_ns / 1e9))),
      h('div', {}, h('dt', {}, 'Interfaces from'), h('dd', {}, snap.source || '–')),
      eng
        ? [
            h('div', {}, h('dt', {}, 'Processes'), h('dd', {}, fmt.count((snap.processes || []).filter((p) => !p.exited).length))),
            h('div', {}, h('dt', {}, 'Containers'), h('dd', {}, fmt.count((snap.containers || []).length))),
            h('div', {}, h('dt', {}, 'Sockets'), h('dd', {}, fmt.count(eng.sockets))),
            h('div', {}, h('dt', {}, 'Map full / ring lost'), h('dd', { class: eng.map_full || eng.ring_lost ? 'alarm' : '' }, `${fmt.count(eng.map_full)} / ${fmt.count(eng.ring_lost)}`)),
          ]
        : h('div', { class: 'wide' }, h('dt', {}, 'eBPF engine'), h('dd', {}, 'off: interface counters only')),
    );
  }

  function renderDrops(snap) {
    const rows = (snap.drops || []).slice(0, 10);
    if (!snap.drops) {
      fill(drops, h('p', { class: 'muted' }, snap.engine ? 'No packet dropped by the kernel since netmeter started.' : 'Drop reasons need the eBPF engine with health hooks.'));
      return;
    }
    fill(drops, h('table', { class: 'data' },
      h('caption', { class: 'sr-only' }, 'Kernel drops by reason, busiest first'),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Reason'), h('th', { scope: 'col' }, 'Where'), h('th', { scope: 'col' }, 'Socket owner'), h('th', { scope: 'col', class: 'num' }, 'Last interval'), h('th', { scope: 'col', class: 'num' }, 'Packets'), h('th', { scope: 'col', class: 'num' }, 'Bytes'))),
      h('tbody', {}, rows.map((d) => h('tr', {},
        h('td', {}, h('code', {}, d.reason)),
        h('td', {}, d.interface || (d.ifindex ? `ifindex ${d.ifindex}` : 'socket')),
        h('td', {}, d.container || d.comm ? `${d.container || d.comm}${d.pid ? ` (${d.pid})` : ''}` : '–'),
        h('td', { class: ['num', d.delta_packets ? 'alarm' : ''] }, fmt.count(d.delta_packets)),
        h('td', { class: 'num' }, fmt.count(d.packets)),
        h('td', { class: 'num' }, fmt.bytes(d.bytes))))),
    ));
  }

  function render(snap) {
    if (!snap) return;
    const ifs = (snap.interfaces || []).filter((i) => state.all || !hidden(i));
    const want = new Set(ifs.map((i) => i.name));
    for (const [name, c] of cards) {
      if (!want.has(name)) {
        c.chart.destroy();
        c.el.remove();
        cards.delete(name);
      }
    }
    let prev = null;
    for (const ifc of ifs) {
      let c = cards.get(ifc.name);
      if (!c) cards.set(ifc.name, (c = card(ifc)));
      // Keep the snapshot's order (by name) without moving cards that are in place.
      const want = prev ? prev.nextSibling : grid.firstChild;
      if (want !== c.el) grid.insertBefore(c.el, want);
      renderIface(c, ifc);
      prev = c.el;
    }
    empty.hidden = ifs.length > 0;
    waiting.hidden = true;
    renderHost(snap);
    renderDrops(snap);
  }

  function renderHealth(hl, err) {
    const body = healthCard.querySelector('.body');
    if (err && !hl) {
      fill(body, h('p', { class: 'muted' }, err.message));
      return;
    }
    if (!hl) return;
    const all = [...(hl.groups || []).map((s) => ({ ...s, kind: 'group' })), ...(hl.monitors || []).map((s) => ({ ...s, kind: 'monitor' }))];
    const counts = { healthy: 0, degraded: 0, unknown: 0 };
    for (const s of all) counts[s.state?.startsWith('degraded') ? 'degraded' : s.state === 'healthy' ? 'healthy' : 'unknown']++;
    const bad = all.filter((s) => s.state?.startsWith('degraded')).slice(0, 3);
    fill(body, 
      h('p', { class: 'counts', dataset: { field: 'health-counts' } },
        h('span', { class: 'badge ok' }, `● ${counts.healthy} healthy`), ' ',
        h('span', { class: ['badge', counts.degraded ? 'bad' : 'unknown'] }, `▲ ${counts.degraded} degraded`), ' ',
        h('span', { class: 'badge unknown' }, `○ ${counts.unknown} unknown`)),
      all.length ? null : h('p', { class: 'muted' }, 'No remote group with TCP traffic yet.'),
      bad.length ? h('ul', { class: 'plain' }, bad.map((s) => h('li', {}, stateBadge(s.state), ' ', h('strong', {}, `${s.kind} ${s.name}`), h('br'), h('span', { class: 'muted' }, s.explanation)))) : null,
    );
  }

  const unsubs = [ctx.live.subscribe(render), ctx.health.subscribe(renderHealth)];
  return {
    unmount() {
      for (const u of unsubs) u();
      for (const c of cards.values()) c.chart.destroy();
    },
  };
}
