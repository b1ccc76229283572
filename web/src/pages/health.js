// Health: the Network Health Indicator of every monitor and remote group,
// with its evidence now and over time (monitors: the agent's points;
// groups: sampled by this page since the dashboard opened).
import { get, unavailable } from '../api.js';
import { Chart, lineOptions } from '../charts.js';
import { h, s, clear, fill, stateBadge, stateClass, notice } from '../dom.js';
import * as fmt from '../format.js';

export const title = 'Health';

const rank = (st) => (st && st.startsWith('degraded') ? 0 : st === 'unknown' || !st ? 1 : 2);

function evidenceRows(ev) {
  const vs = (a, b) => `${a} (baseline ${b})`;
  return [
    ['RTT', ev.rtt_samples || ev.rtt_us ? vs(fmt.micros(ev.rtt_us), fmt.micros(ev.rtt_baseline_us)) + (ev.rtt_source ? `, ${fmt.count(ev.rtt_samples)} samples, from ${ev.rtt_source}` : '') : '–', 'rtt_high'],
    ['Retransmitted', vs(`${fmt.percent(ev.retrans_percent)} of ${fmt.count(ev.segs_out)} segments`, fmt.percent(ev.retrans_baseline_percent)), 'retrans_high'],
    ['RTO events', vs(fmt.count(ev.rto_events), (ev.rto_baseline || 0).toFixed(2)), 'rto_high'],
    ['Resets received', vs(fmt.count(ev.resets_received), (ev.resets_baseline || 0).toFixed(2)), 'resets_received'],
    ['Zero receive window', `${fmt.count(ev.zero_rcv_window)} conn.-intervals in ${fmt.count(ev.zero_rcv_window_intervals)} intervals`, 'zero_rcv_window'],
    ['Zero send window', `${fmt.count(ev.zero_snd_window)} conn.-intervals in ${fmt.count(ev.zero_snd_window_intervals)} intervals`, 'zero_snd_window'],
    ['Receive queue', `${fmt.bytes(ev.rcv_queue_bytes)}${ev.rcv_queue_growing ? ', growing' : ''}`, 'rcv_queue_growing'],
    ['Socket drops', `${fmt.count(ev.socket_drops)} (host-wide, not charged: ${fmt.count(ev.host_socket_drops)})`, 'socket_drops'],
    ['All drops', fmt.count(ev.drops), ''],
    ['Connections', fmt.count(ev.connections), ''],
    ['Groups active / degraded', `${fmt.count(ev.groups_active)} / ${fmt.count(ev.groups_degraded)}`, 'host_wide'],
    ['Baseline', `${fmt.count(ev.learned_intervals)} learned intervals, window ${fmt.count(ev.window_intervals)}`, ''],
  ];
}

function strip(points) {
  const n = points.length;
  const svg = s('svg', { class: 'strip', viewBox: `0 0 ${Math.max(n, 1)} 1`, preserveAspectRatio: 'none', role: 'img', 'aria-label': `State over the last ${n} samples: ${summarize(points)}` });
  points.forEach((p, i) => svg.append(s('rect', { x: i, y: 0, width: 1.02, height: 1, class: stateClass(p.state) }, s('title', {}, `${fmt.time(p.t * 1000)}: ${p.state || 'no data'}`))));
  return svg;
}

function summarize(points) {
  const c = {};
  for (const p of points) c[p.state || 'no data'] = (c[p.state || 'no data'] || 0) + 1;
  return Object.entries(c).map(([k, v]) => `${v} ${k}`).join(', ') || 'no samples';
}

export function mount(root, params, ctx) {
  let monitors = null;
  let monError = null;
  let timer = null;
  const cards = new Map(); // key → {el, charts, …}

  const summary = h('div', { class: 'summary-line' });
  const monBox = h('div', { class: 'indicators' });
  const grpBox = h('div', { class: 'indicators' });
  const msg = h('div');
  root.append(
    h('h1', { tabindex: -1 }, 'Health'),
    h('p', { class: 'muted' }, 'Each remote group and monitor is compared with its own baseline of RTT, retransmissions, timeouts and resets; receiver evidence (zero windows, growing queues, socket drops) tells this host and the remote apart from the network. A status turns degraded after 2 degraded intervals and healthy after 5 healthy ones.'),
    msg, summary,
    h('section', { 'aria-labelledby': 'h-mon' }, h('h2', { id: 'h-mon' }, 'Monitors'), monBox),
    h('section', { 'aria-labelledby': 'h-grp' }, h('h2', { id: 'h-grp' }, 'Remote groups'), grpBox),
  );

  function card(key, kind, name) {
    const id = `ind-${cards.size + 1}`;
    const el = h('article', { class: 'card indicator', dataset: { indicator: key }, 'aria-labelledby': id });
    const c = { el, id, kind, name, charts: [], open: false };
    const details = h('details', {
      ontoggle: () => {
        c.open = details.open;
        if (c.open) drawCharts(c);
        else destroyCharts(c);
      },
    }, h('summary', {}, 'Evidence over time'));
    c.details = details;
    c.head = h('header', {}, h('h3', { id }, h('span', { class: 'muted' }, `${kind} `), name));
    c.body = h('div');
    c.stripBox = h('div', { class: 'strip-box' });
    c.chartsBox = h('div', { class: 'charts' });
    details.append(c.chartsBox);
    el.append(c.head, c.body, c.stripBox, details);
    cards.set(key, c);
    return c;
  }

  function destroyCharts(c) {
    for (const ch of c.charts) ch.destroy();
    c.charts = [];
    clear(c.chartsBox);
  }

  function series(c) {
    if (c.kind === 'monitor') {
      const m = (monitors || []).find((x) => x.name === c.name);
      return (m ? m.points : []).map((p) => ({
        t: Date.parse(p.time) / 1000, state: p.health, rtt: p.rtt_mean_us || null, rttBase: null,
        retr: p.segs_out ? (100 * p.retrans_segs) / p.segs_out : null, retrBase: null, drops: p.drops, rto: p.rto_events,
      }));
    }
    return (ctx.health.history.get(`group:${c.name}`) || []).map((p) => ({
      t: p.t, state: p.state, rtt: p.ev.rtt_us || null, rttBase: p.ev.rtt_baseline_us || null,
      retr: p.ev.segs_out ? p.ev.retrans_percent : null, retrBase: p.ev.learned_intervals ? p.ev.retrans_baseline_percent : null,
      drops: p.ev.drops, rto: p.ev.rto_events,
    }));
  }

  function chartData(pts) {
    const t = pts.map((p) => p.t);
    return [
      [t, pts.map((p) => p.rtt), pts.map((p) => p.rttBase)],
      [t, pts.map((p) => p.retr), pts.map((p) => p.retrBase)],
      [t, pts.map((p) => p.drops), pts.map((p) => p.rto)],
    ];
  }

  function drawCharts(c) {
    destroyCharts(c);
    const pts = series(c);
    if (pts.length < 2) {
      c.chartsBox.append(h('p', { class: 'muted' }, c.kind === 'group' ? 'Collecting: groups are sampled while this dashboard is open.' : 'No points yet.'));
      return;
    }
    const data = chartData(pts);
    const defs = [
      ['RTT', [{ label: 'RTT', color: 'rx' }, { label: 'baseline', color: 'muted', dash: [4, 4] }], fmt.micros, 1000],
      ['Retransmitted segments', [{ label: 'retransmitted %', color: 'tx' }, { label: 'baseline %', color: 'muted', dash: [4, 4] }], fmt.percent, 1],
      ['Drops and timeouts', [{ label: 'drops', color: 'bad' }, { label: 'RTO events', color: 'tx' }], fmt.count, 1],
    ];
    defs.forEach(([label, ser, f, minMax], i) => {
      const el = h('div', { class: 'chart', role: 'img', 'aria-label': `${label} of ${c.kind} ${c.name} over time` });
      c.chartsBox.append(h('figure', {}, h('figcaption', {}, label), el));
      c.charts.push(new Chart(el, lineOptions(ser, f, { minMax }), data[i], 130));
    });
  }

  function renderCard(c, status) {
    const ev = status.evidence || {};
    fill(c.head, h('h3', { id: c.id }, h('span', { class: 'muted' }, `${c.kind} `), c.name), stateBadge(status.state),
      status.since ? h('span', { class: 'muted small' }, ` since ${fmt.dateTime(status.since)}`) : null);
    const sig = new Set(ev.signals || []);
    fill(c.body, 
      h('p', { class: 'explanation' }, status.explanation || '–'),
      sig.size ? h('p', { class: 'signals' }, [...sig].map((x) => h('span', { class: 'chip' }, x))) : null,
      h('div', { class: 'table-wrap' }, h('table', { class: 'data evidence' },
        h('caption', { class: 'sr-only' }, `Evidence of ${c.kind} ${c.name}`),
        h('tbody', {}, evidenceRows(ev).map(([k, v, s]) => h('tr', { class: s && sig.has(s) ? 'crossed' : '' }, h('th', { scope: 'row' }, k), h('td', {}, v, s && sig.has(s) ? h('span', { class: 'chip' }, ' threshold crossed') : null)))))));
    const pts = series(c);
    fill(c.stripBox, pts.length ? strip(pts) : h('span', { class: 'muted small' }, 'No samples yet.'));
    if (c.open) {
      if (c.charts.length === 3 && pts.length >= 2) chartData(pts).forEach((d, i) => c.charts[i].setData(d));
      else drawCharts(c);
    }
  }

  function render() {
    const hl = ctx.health.last;
    const err = ctx.health.error;
    clear(msg);
    if (err && unavailable(err)) {
      msg.append(notice('info', err.message));
    } else if (err) msg.append(notice('error', `Could not load health: ${err.message}`));
    if (monError && !unavailable(monError)) msg.append(notice('error', `Could not load monitors: ${monError.message}`));
    if (!hl) return;
    const lim = hl.limits || {};
    const all = [...(hl.groups || []), ...(hl.monitors || [])];
    fill(summary, 
      ['healthy', 'degraded', 'unknown'].map((k) => h('span', { class: ['badge', k === 'degraded' ? 'bad' : k === 'healthy' ? 'ok' : 'unknown'], dataset: { count: k } },
        `${all.filter((s) => (k === 'degraded' ? s.state?.startsWith('degraded') : k === 'unknown' ? !s.state || s.state === 'unknown' : s.state === k)).length} ${k}`)),
      h('span', { class: 'muted small' }, ` · ${lim.intervals}/${lim.capacity} intervals · ${lim.flows}/${lim.max_flows} flows · ${lim.groups}/${lim.max_groups} groups${lim.overflow_connections ? ` · ${fmt.count(lim.overflow_connections)} connections over the limits` : ''} · updated ${fmt.time(hl.time)}`));

    const place = (box, kind, list) => {
      const keys = new Set();
      list = list.slice().sort((a, b) => rank(a.state) - rank(b.state) || (a.name < b.name ? -1 : 1));
      let prev = null;
      for (const stt of list) {
        const key = `${kind}:${stt.name}`;
        keys.add(key);
        const c = cards.get(key) || card(key, kind, stt.name);
        renderCard(c, stt);
        const want = prev ? prev.nextSibling : box.firstChild;
        if (want !== c.el) box.insertBefore(c.el, want);
        prev = c.el;
      }
      for (const [key, c] of cards) {
        if (key.startsWith(`${kind}:`) && !keys.has(key)) {
          destroyCharts(c);
          c.el.remove();
          cards.delete(key);
        }
      }
      for (const n of [...box.children]) if (!n.classList.contains('indicator')) n.remove();
      if (!list.length) box.append(h('p', { class: 'muted' }, kind === 'monitor' ? 'No monitor configured (config file, health: monitors:).' : 'No remote group with TCP traffic yet.'));
    };
    place(monBox, 'monitor', hl.monitors || []);
    place(grpBox, 'group', hl.groups || []);
  }

  async function pollMonitors() {
    const off = await ctx.live.engineOff();
    if (off) {
      render();
      return;
    }
    try {
      monitors = await get('monitors');
      monError = null;
    } catch (e) {
      monError = e;
    }
    render();
    if (!(monError && unavailable(monError))) timer = setTimeout(pollMonitors, 3000);
  }

  const unsub = ctx.health.subscribe(render);
  pollMonitors();
  return {
    unmount() {
      unsub();
      clearTimeout(timer);
      for (const c of cards.values()) destroyCharts(c);
    },
  };
}
