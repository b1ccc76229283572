// netmeter's dashboard: hash routes, one page mounted at a time, a shared
// live snapshot feed and health feed.
import './style.css';
import { setToken } from './api.js';
import { on } from './bus.js';
import * as fmt from './format.js';
import { HealthFeed } from './healthfeed.js';
import { Live } from './live.js';
import * as billing from './pages/billing.js';
import * as health from './pages/health.js';
import * as historyPage from './pages/history.js';
import * as overview from './pages/overview.js';
import * as top from './pages/top.js';
import * as topology from './pages/topology.js';

const PAGES = { overview, top, topology, history: historyPage, billing, health };

const live = new Live();
const healthFeed = new HealthFeed(live);
const main = document.getElementById('main');
let current = null; // {id, page}

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const q = raw.indexOf('?');
  const id = (q < 0 ? raw : raw.slice(0, q)) || 'overview';
  return { id, params: new URLSearchParams(q < 0 ? '' : raw.slice(q + 1)) };
}

/** setParams replaces the current route's query without re-rendering. */
function setParams(obj) {
  const { id } = parseHash();
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(obj)) {
    for (const x of Array.isArray(v) ? v : [v]) if (x != null && x !== '') p.append(k, String(x));
  }
  const qs = p.toString();
  window.history.replaceState(null, '', `#/${id}${qs ? `?${qs}` : ''}`);
}

const ctx = { live, health: healthFeed, setParams };

function route(initial) {
  const { id, params } = parseHash();
  const mod = PAGES[id];
  // The same page: it updates in place, or answers false to be mounted afresh.
  if (current && current.id === id && current.page.update && current.page.update(params) !== false) return;
  if (current) current.page.unmount();
  main.replaceChildren();
  for (const a of document.querySelectorAll('nav a[data-page]')) {
    if (a.dataset.page === id) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  if (!mod) {
    document.title = 'Not found · netmeter';
    const h1 = document.createElement('h1');
    h1.textContent = 'Page not found';
    const p = document.createElement('p');
    p.innerHTML = '<a href="#/overview">Go to the overview</a>';
    main.append(h1, p);
    current = null;
    return;
  }
  document.title = `${mod.title} · netmeter`;
  current = { id, page: mod.mount(main, params, ctx) || {} };
  main.dataset.page = id;
  if (!initial) main.querySelector('h1')?.focus({ preventScroll: false });
}

// The connection status in the header.
const status = document.getElementById('status');
const MODES = {
  connecting: 'Connecting…',
  live: 'Live',
  polling: 'Polling',
  waiting: 'Waiting for the first reading',
  offline: 'Agent unreachable',
  auth: 'Token required',
};
on('live-mode', (mode, detail) => {
  status.dataset.mode = mode;
  status.querySelector('.mode').textContent = MODES[mode] || mode;
  status.title = detail || (mode === 'polling' ? 'No event stream: polling api/v1/snapshot every interval' : '');
});
// The classic engine (AF_PACKET + /proc, where eBPF cannot load) gives
// estimates: every page says so while it runs.
const engineNote = document.getElementById('engine-note');
on('snapshot', (snap) => {
  const e = snap.engine;
  engineNote.hidden = !(e && e.approximate);
  if (e && e.approximate) {
    engineNote.textContent = `Approximate numbers: the ${e.kind || 'classic'} engine (packet capture joined to /proc) measures processes and connections instead of eBPF; connections shorter than a /proc scan may be missed${e.capture_dropped ? `, and ${fmt.count(e.capture_dropped)} packets were dropped by the capture ring` : ''}.`;
  }
  const t = status.querySelector('.time');
  t.dateTime = snap.time;
  t.textContent = fmt.time(snap.time);
});

// Bearer token: asked for once when the API answers 401.
const dialog = document.getElementById('token-dialog');
let asking = false;
on('auth-required', () => {
  if (asking || !dialog || typeof dialog.showModal !== 'function') return;
  asking = true;
  dialog.showModal();
});
dialog?.addEventListener('close', () => {
  asking = false;
  if (dialog.returnValue === 'ok') {
    setToken(document.getElementById('token-input').value.trim());
    location.reload();
  }
});

window.addEventListener('hashchange', () => route(false));
route(true);
live.start();
healthFeed.start();
