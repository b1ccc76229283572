// Topology: local processes and containers → remote groups over a window;
// edge width by bytes, colour by the group's health; filter and focus.
// Drawn as SVG (d3-force lays it out) so nodes are focusable, labelled and
// testable through the DOM.
import { forceCollide, forceLink, forceManyBody, forceSimulation, forceX, forceY } from 'd3-force';
import { ApiError, get, unavailable } from '../api.js';
import { h, s, clear, fill, select, stateBadge, stateClass, notice } from '../dom.js';
import * as fmt from '../format.js';
import { table } from '../table.js';
import { historyEntity } from './top.js';

export const title = 'Topology';

const WINDOWS = [['10s', '10 s'], ['30s', '30 s'], ['1m', '1 min'], ['2m', '2 min']];
const MAX_EDGES = [[50, '50'], [100, '100'], [200, '200'], [1000, '1000']];
const KINDS = [['process', 'Processes'], ['container', 'Containers'], ['other', 'Other']];

const healthClass = (st) => (!st ? 'none' : stateClass(st));
const total = (x) => (x.tx_bytes || 0) + (x.rx_bytes || 0);

export function mount(root, params, ctx) {
  const st = {
    window: params.get('window') || '30s',
    q: params.get('q') || '',
    focus: params.get('focus') || '',
    max: Number(params.get('max')) || 100,
    kinds: new Set((params.get('kinds') || 'process,container,other').split(',')),
    loopback: params.get('loopback') !== '0',
    paused: false,
  };
  let topo = null;
  let error = null;
  let timer = null;
  let ctrl = null;
  let view = { k: 1, x: 0, y: 0 };
  let userMoved = false;
  let ticks = 0;
  const pos = new Map(); // node id → simulation node (positions persist across refreshes)
  let W = 800;
  let H = 520;

  const save = () => ctx.setParams({
    window: st.window === '30s' ? '' : st.window, q: st.q, focus: st.focus, max: st.max === 100 ? '' : st.max,
    kinds: st.kinds.size === 3 ? '' : [...st.kinds].join(','), loopback: st.loopback ? '' : '0',
  });

  const controls = h('div', { class: 'controls' },
    select('topo-window', 'Window', WINDOWS, st.window, (v) => { st.window = v; save(); refresh(); }),
    h('label', { class: 'field', for: 'topo-q' }, h('span', {}, 'Filter'), h('input', { id: 'topo-q', type: 'search', value: st.q, placeholder: 'node name', oninput: (e) => { st.q = e.target.value; save(); update(); } })),
    h('fieldset', { class: 'checks' }, h('legend', {}, 'Local'),
      KINDS.map(([k, label]) => h('label', { class: 'check' }, h('input', { type: 'checkbox', checked: st.kinds.has(k), onchange: (e) => { e.target.checked ? st.kinds.add(k) : st.kinds.delete(k); save(); update(); } }), ` ${label}`)),
      h('label', { class: 'check' }, h('input', { type: 'checkbox', checked: st.loopback, onchange: (e) => { st.loopback = e.target.checked; save(); update(); } }), ' Loopback')),
    select('topo-max', 'Edges', MAX_EDGES, st.max, (v) => { st.max = Number(v); save(); update(); }),
    h('label', { class: 'check' }, h('input', { type: 'checkbox', onchange: (e) => { st.paused = e.target.checked; if (!st.paused) refresh(); } }), ' Pause'),
  );

  const focusBar = h('p', { class: 'focusbar', hidden: true });
  const info = h('p', { class: 'muted small' });
  const svg = s('svg', { class: 'graph', role: 'group', 'aria-label': 'Topology graph: local entities on the left, remote groups on the right' });
  const defs = s('defs');
  const layer = s('g');
  const gEdges = s('g', { class: 'edges' });
  const gNodes = s('g', { class: 'nodes' });
  layer.append(gEdges, gNodes);
  svg.append(defs, layer);
  const zoomBar = h('div', { class: 'zoombar' },
    h('button', { type: 'button', 'aria-label': 'Zoom in', onclick: () => zoomBy(1.25) }, '+'),
    h('button', { type: 'button', 'aria-label': 'Zoom out', onclick: () => zoomBy(0.8) }, '−'),
    h('button', { type: 'button', onclick: () => { userMoved = false; fit(); } }, 'Fit'));
  const legend = h('p', { class: 'legend small' },
    h('span', { class: 'key process' }, 'process'), h('span', { class: 'key container' }, 'container'), h('span', { class: 'key group' }, 'remote group'),
    ' · edge colour: ', h('span', { class: 'key-line ok' }, 'healthy'), h('span', { class: 'key-line bad' }, 'degraded'), h('span', { class: 'key-line unknown' }, 'unknown / no TCP'),
    ' · width: bytes');
  const stage = h('div', { class: 'stage' }, svg, zoomBar);
  const msg = h('div');
  const aside = h('aside', { class: 'detail', 'aria-label': 'Node details', hidden: true });
  const edgeTable = h('div');
  root.append(h('h1', { tabindex: -1 }, 'Topology'), controls, focusBar, info, msg,
    h('div', { class: 'split' }, h('div', { class: 'panel' }, stage, legend), aside),
    h('details', { class: 'edges-table' }, h('summary', {}, 'Edges as a table'), edgeTable));

  const sim = forceSimulation([])
    .force('link', forceLink([]).id((d) => d.id).distance(() => Math.max(160, W * 0.4)).strength(0.05))
    .force('charge', forceManyBody().strength(-200))
    .force('x', forceX((d) => (d.kind === 'group' ? W * 0.72 : W * 0.28)).strength(0.2))
    .force('y', forceY(() => H / 2).strength(0.05))
    .force('collide', forceCollide((d) => d.r + 14))
    .on('tick', () => {
      draw();
      // Keep the settling graph in view until the user pans or zooms.
      if (!userMoved && ++ticks % 30 === 0) fit();
    })
    .on('end', () => { if (!userMoved) fit(); })
    .stop();

  let nodes = [];
  let edges = [];
  let nodeEls = new Map();
  let edgeEls = new Map();

  function visible() {
    if (!topo) return { ns: [], es: [] };
    const byId = new Map(topo.nodes.map((n) => [n.id, n]));
    let es = topo.edges.filter((e) => {
      const a = byId.get(e.source);
      const b = byId.get(e.target);
      if (!a || !b || !st.kinds.has(a.kind === 'process' || a.kind === 'container' ? a.kind : 'other')) return false;
      if (!st.loopback && b.name === 'loopback') return false;
      return true;
    });
    if (st.focus) es = es.filter((e) => e.source === st.focus || e.target === st.focus);
    if (st.q) {
      const q = st.q.toLowerCase();
      es = es.filter((e) => byId.get(e.source).name.toLowerCase().includes(q) || byId.get(e.target).name.toLowerCase().includes(q));
    }
    es = es.slice().sort((a, b) => total(b) - total(a) || (a.id < b.id ? -1 : 1)).slice(0, st.max);
    const ids = new Set(es.flatMap((e) => [e.source, e.target]));
    if (st.focus && byId.has(st.focus)) ids.add(st.focus);
    return { ns: [...ids].map((id) => byId.get(id)).filter(Boolean), es, byId };
  }

  function update() {
    if (error) {
      fill(msg, unavailable(error) ? notice('info', error.message) : notice('error', `Could not load the topology: ${error.message}`));
    } else clear(msg);
    const { ns, es, byId } = visible();
    const maxN = Math.max(1, ...ns.map(total));
    const maxE = Math.max(1, ...es.map(total));
    let changed = ns.length !== nodes.length || es.length !== edges.length;
    let fresh = 0;

    nodes = ns.map((n) => {
      let p = pos.get(n.id);
      if (!p) {
        changed = true;
        fresh++;
        p = { id: n.id, x: (n.kind === 'group' ? 0.72 : 0.28) * W + (Math.random() - 0.5) * 40, y: H / 2 + (Math.random() - 0.5) * H * 0.6 };
        pos.set(n.id, p);
      }
      Object.assign(p, { kind: n.kind, name: n.name, data: n, r: 7 + 15 * Math.sqrt(total(n) / maxN) });
      return p;
    });
    const old = new Set(edges.map((e) => e.id));
    edges = es.map((e) => {
      if (!old.has(e.id)) changed = true;
      return { id: e.id, source: e.source, target: e.target, data: e, w: 1 + 9 * Math.sqrt(total(e) / maxE) };
    });
    const keep = new Set(ns.map((n) => n.id));
    for (const id of pos.keys()) if (!keep.has(id)) pos.delete(id);

    // Rebuild the SVG elements (cheap at these sizes); positions come from the simulation.
    clear(gEdges);
    clear(gNodes);
    edgeEls = new Map();
    nodeEls = new Map();
    for (const e of edges) {
      const a = byId.get(e.source);
      const b = byId.get(e.target);
      const el = s('line', { class: `edge ${healthClass(e.data.health)}`, 'stroke-width': e.w.toFixed(2), dataset: { edge: e.id } },
        s('title', {}, `${a.name} → ${b.name}: ${fmt.bytes(total(e.data))}, ${e.data.connections} conn., RTT ${fmt.micros(e.data.rtt_mean_us)}, ${e.data.health || 'no TCP'}`));
      gEdges.append(el);
      edgeEls.set(e.id, el);
    }
    for (const n of nodes) {
      const d = n.data;
      const shape = n.kind === 'group'
        ? s('path', { d: `M0,${-n.r * 1.2}L${n.r * 1.2},0L0,${n.r * 1.2}L${-n.r * 1.2},0Z` })
        : n.kind === 'container'
          ? s('rect', { x: -n.r, y: -n.r, width: 2 * n.r, height: 2 * n.r, rx: 3 })
          : s('circle', { r: n.r });
      const label = `${n.kind} ${n.name}: ${fmt.bytes(total(d))}${d.health ? `, ${d.health}` : ''}`;
      const g = s('g', {
        class: `node ${n.kind} ${n.kind === 'group' ? healthClass(d.health) : ''} ${n.id === st.focus ? 'focused' : ''}`,
        tabindex: 0, role: 'button', 'aria-label': label, 'aria-pressed': String(n.id === st.focus), dataset: { node: n.id },
        onkeydown: (ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); setFocus(n.id === st.focus ? '' : n.id); } },
      }, shape, s('text', { x: n.kind === 'group' ? n.r * 1.2 + 5 : -(n.r + 5), y: 4, 'text-anchor': n.kind === 'group' ? 'start' : 'end' }, n.name), s('title', {}, label));
      g.addEventListener('pointerdown', (ev) => dragStart(ev, n));
      gNodes.append(g);
      nodeEls.set(n.id, g);
    }

    sim.nodes(nodes);
    sim.force('link').links(edges);
    if (changed) sim.alpha(fresh > nodes.length / 2 ? 1 : 0.3).restart();
    else draw();

    const windowS = topo ? topo.window_ms / 1000 : 0;
    info.textContent = topo ? `${nodes.length} nodes, ${edges.length} of ${topo.edges.length} edges · IP bytes over the last ${fmt.seconds(windowS)} · updated ${fmt.time(Date.now())}` : 'Loading…';
    focusBar.hidden = !st.focus;
    if (st.focus) {
      const fn = byId && byId.get(st.focus);
      fill(focusBar, 'Focused on ', h('strong', {}, fn ? `${fn.kind} ${fn.name}` : st.focus), fn ? '' : ' (no traffic in this window)', ' ',
        h('button', { type: 'button', onclick: () => setFocus('') }, 'Show all'));
    }
    renderDetail(byId);
    renderEdgeTable(byId);
  }

  function draw() {
    for (const e of edges) {
      const el = edgeEls.get(e.id);
      if (!el || typeof e.source !== 'object') continue;
      el.setAttribute('x1', e.source.x.toFixed(1));
      el.setAttribute('y1', e.source.y.toFixed(1));
      el.setAttribute('x2', e.target.x.toFixed(1));
      el.setAttribute('y2', e.target.y.toFixed(1));
    }
    for (const n of nodes) {
      const el = nodeEls.get(n.id);
      if (el) el.setAttribute('transform', `translate(${n.x.toFixed(1)},${n.y.toFixed(1)})`);
    }
  }

  function applyView() {
    layer.setAttribute('transform', `translate(${view.x.toFixed(1)},${view.y.toFixed(1)}) scale(${view.k.toFixed(3)})`);
  }

  function fit() {
    if (!nodes.length) return;
    const pad = 40;
    const xs = nodes.map((n) => n.x);
    const ys = nodes.map((n) => n.y);
    const x0 = Math.min(...xs) - 160, x1 = Math.max(...xs) + 160;
    const y0 = Math.min(...ys) - pad, y1 = Math.max(...ys) + pad;
    const k = Math.min(1, W / (x1 - x0), H / (y1 - y0)); // shrink to fit, never blow up a small graph
    view = { k, x: (W - k * (x0 + x1)) / 2, y: (H - k * (y0 + y1)) / 2 };
    applyView();
  }

  function zoomBy(f, cx = W / 2, cy = H / 2) {
    userMoved = true;
    const k = Math.min(8, Math.max(0.1, view.k * f));
    view = { k, x: cx - ((cx - view.x) * k) / view.k, y: cy - ((cy - view.y) * k) / view.k };
    applyView();
  }

  const local = (ev) => {
    const r = svg.getBoundingClientRect();
    return [((ev.clientX - r.left) * W) / r.width, ((ev.clientY - r.top) * H) / r.height];
  };

  function dragStart(ev, n) {
    ev.stopPropagation();
    const [sx, sy] = local(ev);
    let moved = false;
    const el = ev.currentTarget;
    el.setPointerCapture(ev.pointerId);
    const move = (e) => {
      const [x, y] = local(e);
      if (!moved && Math.hypot(x - sx, y - sy) < 4) return;
      moved = true;
      n.fx = (x - view.x) / view.k;
      n.fy = (y - view.y) / view.k;
      sim.alphaTarget(0.2).restart();
    };
    const up = () => {
      el.removeEventListener('pointermove', move);
      el.removeEventListener('pointerup', up);
      el.removeEventListener('pointercancel', up);
      sim.alphaTarget(0);
      n.fx = null;
      n.fy = null;
      if (!moved) setFocus(n.id === st.focus ? '' : n.id);
    };
    el.addEventListener('pointermove', move);
    el.addEventListener('pointerup', up);
    el.addEventListener('pointercancel', up);
  }

  svg.addEventListener('pointerdown', (ev) => {
    const [sx, sy] = local(ev);
    const start = { ...view };
    svg.setPointerCapture(ev.pointerId);
    const move = (e) => {
      const [x, y] = local(e);
      userMoved = true;
      view = { ...start, x: start.x + x - sx, y: start.y + y - sy };
      applyView();
    };
    const up = () => {
      svg.removeEventListener('pointermove', move);
      svg.removeEventListener('pointerup', up);
    };
    svg.addEventListener('pointermove', move);
    svg.addEventListener('pointerup', up);
  });
  svg.addEventListener('wheel', (ev) => {
    ev.preventDefault();
    const [x, y] = local(ev);
    zoomBy(ev.deltaY < 0 ? 1.15 : 1 / 1.15, x, y);
  }, { passive: false });

  function setFocus(id) {
    st.focus = id;
    userMoved = false;
    save();
    update();
  }

  function renderDetail(byId) {
    const n = st.focus && byId && byId.get(st.focus);
    aside.hidden = !n;
    if (!n) return;
    const es = topo.edges.filter((e) => e.source === n.id || e.target === n.id).sort((a, b) => total(b) - total(a));
    const hist = historyEntity(n.id);
    fill(aside, 
      h('header', {}, h('h2', {}, h('span', { class: 'muted' }, `${n.kind} `), n.name),
        h('button', { type: 'button', class: 'close', 'aria-label': 'Close details and show all', onclick: () => setFocus('') }, '×')),
      h('dl', { class: 'kv' },
        h('div', {}, h('dt', {}, 'Sent'), h('dd', {}, fmt.bytes(n.tx_bytes))),
        h('div', {}, h('dt', {}, 'Received'), h('dd', {}, fmt.bytes(n.rx_bytes))),
        n.pids && n.pids.length ? h('div', {}, h('dt', {}, 'PIDs'), h('dd', {}, n.pids.join(', '))) : null,
        n.account ? h('div', {}, h('dt', {}, 'Account'), h('dd', {}, n.account)) : null,
        n.health ? h('div', {}, h('dt', {}, 'Health'), h('dd', {}, stateBadge(n.health))) : null),
      h('p', { class: 'links' },
        h('a', { href: `#/top?tab=${n.kind === 'group' ? 'groups' : n.kind === 'container' ? 'containers' : 'processes'}&detail=${encodeURIComponent(n.id)}` }, 'Top details →'), ' ',
        hist ? h('a', { href: `#/history?entity=${encodeURIComponent(hist)}` }, 'History →') : null),
      h('h3', {}, `Edges (${es.length})`),
      table({
        caption: `Edges of ${n.name}`,
        columns: [
          { key: 'o', label: 'Peer', header: true, cell: (e) => { const o = byId.get(e.source === n.id ? e.target : e.source); return o ? o.name : '?'; } },
          { key: 'b', label: 'Bytes', num: true, cell: (e) => fmt.bytes(total(e)) },
          { key: 'r', label: 'RTT', num: true, cell: (e) => fmt.micros(e.rtt_mean_us) },
          { key: 'h', label: 'Health', cell: (e) => (e.health ? stateBadge(e.health) : '–') },
        ],
        rows: es,
      }));
  }

  function renderEdgeTable(byId) {
    fill(edgeTable, table({
      caption: 'Edges of the graph',
      columns: [
        { key: 's', label: 'Local', header: true, cell: (e) => byId.get(e.source.id || e.source)?.name },
        { key: 't', label: 'Remote group', cell: (e) => byId.get(e.target.id || e.target)?.name },
        { key: 'tx', label: 'Sent', num: true, cell: (e) => fmt.bytes(e.data.tx_bytes) },
        { key: 'rx', label: 'Received', num: true, cell: (e) => fmt.bytes(e.data.rx_bytes) },
        { key: 'c', label: 'Conns', num: true, cell: (e) => fmt.count(e.data.connections) },
        { key: 'r', label: 'RTT', num: true, cell: (e) => fmt.micros(e.data.rtt_mean_us) },
        { key: 'rt', label: 'Retrans', num: true, cell: (e) => `${fmt.count(e.data.retrans_segs)} (${fmt.percent(e.data.retrans_percent)})` },
        { key: 'd', label: 'Drops', num: true, cell: (e) => fmt.count(e.data.drops) },
        { key: 'h', label: 'Health', cell: (e) => (e.data.health ? stateBadge(e.data.health) : '–') },
      ],
      rows: edges,
      empty: 'No edge matches.',
    }));
  }

  function resize() {
    const w = Math.round(stage.clientWidth) || 800;
    const hh = Math.round(Math.min(720, Math.max(320, window.innerHeight * 0.6)));
    if (w === W && hh === H) return;
    W = w;
    H = hh;
    svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
    svg.setAttribute('width', W);
    svg.setAttribute('height', H);
    sim.force('x').x((d) => (d.kind === 'group' ? W * 0.72 : W * 0.28));
    sim.force('link').distance(() => Math.max(160, W * 0.4));
    sim.force('y').y(H / 2);
    if (!userMoved) fit();
  }
  const ro = new ResizeObserver(resize);
  ro.observe(stage);
  resize();

  async function refresh() {
    clearTimeout(timer);
    if (ctrl) ctrl.abort();
    ctrl = new AbortController();
    const signal = ctrl.signal;
    const off = await ctx.live.engineOff();
    if (signal.aborted) return;
    if (off) {
      error = new ApiError(503, off);
      update();
      return;
    }
    try {
      topo = await get('topology', { window: st.window }, { signal: ctrl.signal });
      error = null;
    } catch (e) {
      if (e.name === 'AbortError') return;
      error = e;
    }
    update();
    if (!st.paused && !(error && unavailable(error))) timer = setTimeout(refresh, 5000);
  }
  refresh();

  return {
    update(p) {
      // Another window or filter: mount afresh. The focus changes in place.
      if ((p.get('window') || '30s') !== st.window || (p.get('q') || '') !== st.q) return false;
      const f = p.get('focus') || '';
      if (f !== st.focus) setFocus(f);
      return true;
    },
    unmount() {
      clearTimeout(timer);
      if (ctrl) ctrl.abort();
      sim.stop();
      ro.disconnect();
    },
  };
}
