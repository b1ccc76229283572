// Top contributors: processes, containers, accounts, remote groups and
// flows over a chosen window, ranked by bytes, rate, retransmissions, RTT
// or drops; a row opens its details.
import { ApiError, get, unavailable } from '../api.js';
import { aggregate, rank } from '../aggregate.js';
import { Chart, rateOptions } from '../charts.js';
import { h, clear, fill, select, stateBadge, notice } from '../dom.js';
import * as fmt from '../format.js';
import { table } from '../table.js';

export const title = 'Top contributors';

const TABS = [
  ['processes', 'Processes'],
  ['containers', 'Containers'],
  ['accounts', 'Accounts'],
  ['groups', 'Remote groups'],
  ['flows', 'Flows'],
];
const WINDOWS = [['10s', '10 s'], ['30s', '30 s'], ['1m', '1 min'], ['2m', '2 min']];
const BYS = [['bytes', 'Bytes'], ['rate', 'Rate now'], ['retrans', 'Retransmits'], ['rtt', 'RTT'], ['drops', 'Drops']];
const LIMITS = [10, 25, 50, 100, 500];
const BY_COLUMN = { bytes: 'total', rate: 'now', retrans: 'retrans', rtt: 'rtt', drops: 'drops' };

export const historyEntity = (id) => {
  const [kind, ...rest] = id.split(':');
  const name = rest.join(':');
  return ['process', 'container', 'account', 'group'].includes(kind) ? `${kind}:${name}` : '';
};

function flowRow(f) {
  return { ...f, kind: 'flow', name: `${f.local.name} → ${f.group}`, pids: f.local.pids || [], members: 1 };
}

export function mount(root, params, ctx) {
  const st = {
    tab: TABS.some(([t]) => t === params.get('tab')) ? params.get('tab') : 'processes',
    by: params.get('by') || 'bytes',
    window: params.get('window') || '10s',
    limit: Number(params.get('limit')) || 25,
    q: params.get('q') || '',
    detail: params.get('detail') || '',
    paused: false,
  };
  let flows = null;
  let error = null;
  let timer = null;
  let ctrl = null;
  let sparkline = null;

  const link = (over) => {
    const p = { tab: st.tab, by: st.by, window: st.window, limit: st.limit, q: st.q, detail: st.detail, ...over };
    for (const [k, v] of Object.entries(p)) if (v === '' || v == null) delete p[k];
    return `#/top?${new URLSearchParams(p)}`;
  };
  const save = () => ctx.setParams({ tab: st.tab, by: st.by === 'bytes' ? '' : st.by, window: st.window === '10s' ? '' : st.window, limit: st.limit === 25 ? '' : st.limit, q: st.q, detail: st.detail });

  const tablist = h('div', { class: 'tabs', role: 'tablist', 'aria-label': 'What to rank' },
    TABS.map(([id, label]) => h('button', {
      type: 'button', role: 'tab', id: `tab-${id}`, 'aria-controls': 'top-panel', 'aria-selected': String(id === st.tab), tabindex: id === st.tab ? 0 : -1,
      onclick: () => setTab(id),
      onkeydown: (e) => {
        const i = TABS.findIndex(([t]) => t === st.tab);
        const j = e.key === 'ArrowRight' ? i + 1 : e.key === 'ArrowLeft' ? i - 1 : -2;
        if (j === -2) return;
        const next = TABS[(j + TABS.length) % TABS.length][0];
        setTab(next);
        tablist.querySelector(`#tab-${next}`).focus();
      },
    }, label)));

  const status = h('p', { class: 'muted small', 'aria-live': 'off' });
  const panel = h('div', { id: 'top-panel', role: 'tabpanel', 'aria-labelledby': `tab-${st.tab}`, class: 'panel' });
  const aside = h('aside', { class: 'detail', 'aria-label': 'Details', hidden: !st.detail });
  const controls = h('div', { class: 'controls' },
    select('top-window', 'Window', WINDOWS, st.window, (v) => { st.window = v; save(); refresh(); }),
    select('top-by', 'Rank by', BYS, st.by, (v) => { st.by = v; save(); render(); }),
    select('top-limit', 'Show', LIMITS.map((n) => [n, `top ${n}`]), st.limit, (v) => { st.limit = Number(v); save(); render(); }),
    h('label', { class: 'field', for: 'top-q' }, h('span', {}, 'Filter'), h('input', { id: 'top-q', type: 'search', value: st.q, placeholder: 'name, PID, group', oninput: (e) => { st.q = e.target.value; save(); render(); } })),
    h('label', { class: 'check' }, h('input', { type: 'checkbox', id: 'top-pause', onchange: (e) => { st.paused = e.target.checked; if (!st.paused) refresh(); } }), ' Pause'),
  );

  root.append(h('h1', { tabindex: -1 }, 'Top contributors'), controls, tablist, status, h('div', { class: 'split' }, panel, aside));

  function setTab(id) {
    st.tab = id;
    for (const b of tablist.querySelectorAll('[role=tab]')) {
      const on = b.id === `tab-${id}`;
      b.setAttribute('aria-selected', String(on));
      b.tabIndex = on ? 0 : -1;
    }
    panel.setAttribute('aria-labelledby', `tab-${id}`);
    save();
    render();
  }

  function rows() {
    if (!flows) return [];
    let rs = st.tab === 'flows' ? flows.map(flowRow) : aggregate(flows, st.tab);
    if (st.q) {
      const q = st.q.toLowerCase();
      rs = rs.filter((r) => r.name.toLowerCase().includes(q) || (r.account || '').toLowerCase().includes(q) || r.pids.some((p) => String(p) === q) || (r.group || '').toLowerCase().includes(q));
    }
    return rank(rs, st.by);
  }

  const secs = () => (flows && flows.length ? Math.max(...flows.map((f) => f.window_ms)) / 1000 : 0);

  function columns() {
    const name = {
      key: 'name', label: { processes: 'Program', containers: 'Container', accounts: 'Account', groups: 'Remote group', flows: 'Local → remote group' }[st.tab], header: true,
      cell: (r) => h('a', { href: link({ detail: r.id }), 'aria-current': r.id === st.detail ? 'true' : null, dataset: { entity: r.id } }, r.name),
    };
    const extra = {
      processes: { key: 'pids', label: 'PIDs', opt: true, cell: (r) => r.pids.slice(0, 4).join(', ') + (r.pids.length > 4 ? ` +${r.pids.length - 4}` : '') },
      containers: { key: 'account', label: 'Account', cell: (r) => r.account || '–' },
      accounts: { key: 'members', label: 'Containers', num: true, cell: (r) => fmt.count(r.members) },
      groups: { key: 'members', label: 'Local entities', num: true, cell: (r) => fmt.count(r.members) },
      flows: { key: 'conns-src', label: 'RTT from', cell: (r) => r.rtt_source || '–' },
    }[st.tab];
    const cols = [name, extra,
      { key: 'tx', label: 'Sent', num: true, opt: true, field: 'tx-bytes', value: (r) => r.tx_bytes, payload: (r) => r.tx_payload_bytes, cell: (r) => fmt.bytes(r.tx_bytes) },
      { key: 'rx', label: 'Received', num: true, opt: true, field: 'rx-bytes', value: (r) => r.rx_bytes, payload: (r) => r.rx_payload_bytes, cell: (r) => fmt.bytes(r.rx_bytes) },
      { key: 'total', label: 'Total', num: true, field: 'bytes', value: (r) => r.tx_bytes + r.rx_bytes, cell: (r) => fmt.bytes(r.tx_bytes + r.rx_bytes) },
      { key: 'avg', label: 'Avg rate', num: true, opt: true, title: 'IP bytes per second over the window', cell: (r) => fmt.rate(r.tx_bytes_per_second + r.rx_bytes_per_second) },
      { key: 'now', label: 'Rate now', num: true, title: 'in the latest interval', field: 'rate', value: (r) => r.last_bytes_per_second, cell: (r) => fmt.rate(r.last_bytes_per_second) },
      { key: 'conns', label: 'Conns', num: true, opt: true, cell: (r) => fmt.count(r.connections) },
      { key: 'retrans', label: 'Retrans', num: true, title: 'retransmitted segments (share of segments sent)', field: 'retrans', value: (r) => r.retrans_segs, cell: (r) => (r.segs_out ? `${fmt.count(r.retrans_segs)} (${fmt.percent(r.retrans_percent)})` : '–') },
      { key: 'rtt', label: 'RTT', num: true, field: 'rtt', value: (r) => r.rtt_mean_us, cell: (r) => fmt.micros(r.rtt_mean_us) },
      { key: 'drops', label: 'Drops', num: true, field: 'drops', value: (r) => r.drops, cell: (r) => fmt.count(r.drops), cls: (r) => (r.drops ? 'alarm' : '') },
      { key: 'health', label: 'Health', cell: (r) => (r.health ? stateBadge(r.health) : '–') },
    ];
    return cols;
  }

  function render() {
    if (error) {
      fill(panel, unavailable(error) ? notice('info', error.message) : notice('error', `Could not load flows: ${error.message}`));
      renderDetail();
      return;
    }
    if (!flows) {
      fill(panel, h('p', { class: 'muted' }, 'Loading…'));
      return;
    }
    const rs = rows();
    const label = TABS.find(([t]) => t === st.tab)[1];
    // The table is rebuilt every refresh: keep keyboard focus on the same row.
    const focused = panel.contains(document.activeElement) ? document.activeElement.dataset.entity : null;
    status.textContent = `${rs.length} ${label.toLowerCase()} in the last ${fmt.seconds(secs())} · IP bytes · updated ${fmt.time(Date.now())}`;
    fill(panel, table({
      caption: `${label} ranked by ${BYS.find(([b]) => b === st.by)[1].toLowerCase()}`,
      columns: columns(),
      rows: rs.slice(0, st.limit),
      sorted: BY_COLUMN[st.by],
      rowAttrs: (r) => ({ dataset: { id: r.id }, class: r.id === st.detail ? 'selected' : '' }),
      empty: st.tab === 'containers' || st.tab === 'accounts' ? 'No container traffic in this window.' : 'No traffic in this window.',
    }));
    if (focused) [...panel.querySelectorAll('a[data-entity]')].find((a) => a.dataset.entity === focused)?.focus();
    renderDetail();
  }

  function renderDetail() {
    if (sparkline) {
      sparkline.destroy();
      sparkline = null;
    }
    aside.hidden = !st.detail;
    if (!st.detail) return clear(aside);
    const id = st.detail;
    const [kind, ...rest] = id.split(':');
    const name = kind === 'flow' ? id : rest.join(':');
    const snap = ctx.live.last || {};
    const mine = (flows || []).filter((f) => f.id === id || f.local.id === id || f.group_id === id || (kind === 'account' && f.local.kind === 'container' && (f.local.account || f.local.name) === name));
    const hist = historyEntity(id);
    const close = h('a', { href: link({ detail: '' }), class: 'close', 'aria-label': 'Close details' }, '×');
    const body = [];
    const facts = [];
    const fact = (k, v, wide) => facts.push(h('div', { class: wide ? 'wide' : '' }, h('dt', {}, k), h('dd', {}, v)));

    if (kind === 'process') {
      const ps = (snap.processes || []).filter((p) => p.comm === name);
      const p0 = ps.find((p) => !p.exited) || ps[0];
      if (p0) {
        const alive = ps.filter((p) => !p.exited).map((p) => p.pid);
        const exited = ps.length - alive.length;
        fact('PIDs', `${alive.slice(0, 12).join(', ') || 'none running'}${alive.length > 12 ? ` and ${alive.length - 12} more` : ''}${exited ? ` (${exited} exited in the last minute)` : ''}`, true);
        fact('Executable', h('code', { class: 'wrap' }, p0.exe || '–'), true);
        fact('Command line', h('code', { class: 'wrap' }, p0.cmdline || '–'), true);
        fact('User', `${p0.user || ''} (${p0.uid})`);
        if (p0.cgroup) fact('Cgroup', h('code', { class: 'wrap' }, p0.cgroup));
        const sum = (f) => ps.reduce((a, p) => a + f(p), 0);
        fact('Since netmeter saw it', `${fmt.bytes(sum((p) => p.total.tx_bytes))} sent, ${fmt.bytes(sum((p) => p.total.rx_bytes))} received`);
        fact('Sockets', fmt.count(sum((p) => p.sockets)));
        const n = Math.max(...ps.map((p) => (p.tx_recent || []).length));
        if (n > 1) {
          const step = snap.interval_ns / 1e9 || 1;
          const t0 = Date.parse(snap.time) / 1000;
          const xs = [], rx = [], tx = [];
          for (let i = 0; i < n; i++) {
            xs.push(t0 - (n - 1 - i) * step);
            const at = (arr) => (arr && arr.length >= n - i ? arr[arr.length - (n - i)] : 0);
            rx.push(ps.reduce((a, p) => a + at(p.rx_recent), 0));
            tx.push(ps.reduce((a, p) => a + at(p.tx_recent), 0));
          }
          const el = h('div', { class: 'chart', role: 'img', 'aria-label': `Rates of ${name} over the last ${n} intervals` });
          body.push(h('h3', {}, 'Recent rate'), el);
          queueMicrotask(() => { sparkline = new Chart(el, rateOptions(), [xs, rx, tx], 120); });
        }
        const conns = (snap.connections || []).filter((c) => c.owner.comm === name || (c.peer && c.peer.comm === name));
        body.push(h('h3', {}, `Connections (${conns.length})`), connTable(conns.sort((a, b) => b.total.tx_bytes + b.total.rx_bytes - a.total.tx_bytes - a.total.rx_bytes).slice(0, 50)));
      } else {
        body.push(h('p', { class: 'muted' }, 'Not in the latest snapshot.'));
      }
    } else if (kind === 'container') {
      const c = (snap.containers || []).find((c) => c.name === name);
      if (c) {
        fact('ID', h('code', {}, c.id.slice(0, 12)));
        fact('Runtime / image', `${c.runtime || '–'} · ${c.image || '–'}`);
        fact('Account', c.account || '–');
        if (c.pod_name) fact('Pod', `${c.pod_namespace}/${c.pod_name}`);
        fact('Addresses', (c.addresses || []).join(', ') || (c.host_network ? 'host network' : '–'));
        fact('Processes / sockets', `${c.processes} / ${c.sockets}`);
        fact('Connections accepted / opened', `${fmt.count(c.connections_accepted)} / ${fmt.count(c.connections_opened)}`);
        body.push(h('h3', {}, 'Traffic since netmeter saw it, by peer'), table({
          caption: 'Traffic by peer',
          columns: [
            { key: 'k', label: 'Peer', header: true, cell: (r) => r[0] },
            { key: 'tx', label: 'Sent', num: true, cell: (r) => fmt.bytes(r[1].tx_bytes) },
            { key: 'rx', label: 'Received', num: true, cell: (r) => fmt.bytes(r[1].rx_bytes) },
          ],
          rows: [['Other hosts', c.external], ['Other containers', c.container_to_container], ['This host', c.container_to_host], ['Inside', c.internal], ['Unclassified', c.unclassified]].filter((r) => r[1]),
        }));
        if (c.ports && c.ports.length) {
          body.push(h('h3', {}, 'Ports'), table({
            caption: 'Listening ports',
            columns: [
              { key: 'p', label: 'Port', header: true, cell: (p) => `${p.proto}/${p.port}` },
              { key: 'a', label: 'Accepted', num: true, cell: (p) => fmt.count(p.connections_accepted) },
              { key: 'b', label: 'Bytes', num: true, cell: (p) => fmt.bytes(p.total.tx_bytes + p.total.rx_bytes) },
              { key: 'r', label: 'HTTP requests', cell: (p) => Object.entries(p.http_requests || {}).map(([m, n]) => `${m} ${n}`).join(', ') || '–' },
            ],
            rows: c.ports,
          }));
        }
      } else {
        body.push(h('p', { class: 'muted' }, 'Not in the latest snapshot.'));
      }
    } else if (kind === 'account') {
      const cs = (snap.containers || []).filter((c) => (c.account || c.name) === name);
      fact('Containers', cs.map((c) => c.name).join(', ') || '–');
    }

    const other = (f) => (f.group_id === id ? f.local.name : f.local.id === id ? f.group : `${f.local.name} → ${f.group}`);
    body.push(h('h3', {}, `Flows in the last ${fmt.seconds(secs())}`), table({
      caption: `Flows of ${name}`,
      columns: [
        { key: 'o', label: kind === 'group' ? 'Local entity' : 'Remote group', header: true, cell: (f) => h('a', { href: link({ detail: f.group_id === id ? f.local.id : f.group_id }) }, other(f)) },
        { key: 'b', label: 'Bytes', num: true, cell: (f) => fmt.bytes(f.tx_bytes + f.rx_bytes) },
        { key: 'c', label: 'Conns', num: true, cell: (f) => fmt.count(f.connections) },
        { key: 'r', label: 'RTT', num: true, cell: (f) => fmt.micros(f.rtt_mean_us) },
        { key: 't', label: 'Retrans', num: true, cell: (f) => fmt.count(f.retrans_segs) },
        { key: 'd', label: 'Drops', num: true, cell: (f) => fmt.count(f.drops) },
        { key: 'h', label: 'Health', cell: (f) => (f.health ? stateBadge(f.health) : '–') },
      ],
      rows: rank(mine, 'bytes'),
      empty: 'No flow in this window.',
    }));

    const links = h('p', { class: 'links' },
      hist ? h('a', { href: `#/history?entity=${encodeURIComponent(hist)}` }, 'History →') : null, ' ',
      kind !== 'account' && kind !== 'flow' ? h('a', { href: `#/topology?focus=${encodeURIComponent(id)}` }, 'Topology →') : null);
    fill(aside, 
      h('header', {}, h('h2', { id: 'detail-title' }, h('span', { class: 'muted' }, `${kind} `), name), close),
      facts.length ? h('dl', { class: 'kv' }, facts) : null,
      links, body);
    aside.setAttribute('aria-labelledby', 'detail-title');
  }

  function connTable(conns) {
    const ep = (e) => (e.addr ? `${e.addr.includes(':') ? `[${e.addr}]` : e.addr}:${e.port}` : e.port ? `*:${e.port}` : '–');
    return table({
      caption: 'Connections',
      columns: [
        { key: 'p', label: 'Proto', cell: (c) => c.proto },
        { key: 'l', label: 'Local', cell: (c) => ep(c.local) },
        { key: 'r', label: 'Remote', cell: (c) => ep(c.remote) },
        { key: 's', label: 'State', cell: (c) => (c.closed ? 'closed' : c.state || '–') },
        { key: 'b', label: 'Bytes', num: true, cell: (c) => fmt.bytes(c.total.tx_bytes + c.total.rx_bytes) },
        { key: 'rate', label: 'Rate', num: true, cell: (c) => fmt.rate((c.tx_bytes_per_second?.current || 0) + (c.rx_bytes_per_second?.current || 0)) },
        { key: 'rtt', label: 'SRTT', num: true, cell: (c) => (c.tcp ? fmt.micros(c.tcp.srtt_us) : '–') },
        { key: 'rt', label: 'Retrans', num: true, cell: (c) => (c.tcp ? fmt.count(c.tcp.total.retrans_segs) : '–') },
      ],
      rows: conns,
      empty: 'No connection in the latest snapshot.',
    });
  }

  async function refresh() {
    clearTimeout(timer);
    if (ctrl) ctrl.abort();
    ctrl = new AbortController();
    const signal = ctrl.signal;
    const off = await ctx.live.engineOff();
    if (signal.aborted) return;
    if (off) {
      error = new ApiError(503, off);
      render();
      return;
    }
    try {
      const r = await get('flows', { window: st.window, by: st.by, limit: 0 }, { signal: ctrl.signal });
      flows = r.flows || [];
      error = null;
    } catch (e) {
      if (e.name === 'AbortError') return;
      error = e;
    }
    render();
    if (!st.paused && !(error && unavailable(error))) timer = setTimeout(refresh, 2000);
  }

  refresh();
  return {
    update(p) {
      // A link to another tab, order or window: mount afresh. Only the
      // detail changes in place.
      if ((p.get('tab') || 'processes') !== st.tab || (p.get('by') || 'bytes') !== st.by || (p.get('window') || '10s') !== st.window
        || (Number(p.get('limit')) || 25) !== st.limit || (p.get('q') || '') !== st.q) return false;
      const opened = (p.get('detail') || '') !== st.detail && p.get('detail');
      st.detail = p.get('detail') || '';
      render();
      // One column (phones): the details are below the table, bring them into view.
      if (opened && !window.matchMedia('(min-width: 1100px)').matches) aside.scrollIntoView({ block: 'start' });
    },
    unmount() {
      clearTimeout(timer);
      if (ctrl) ctrl.abort();
      if (sparkline) sparkline.destroy();
    },
  };
}
