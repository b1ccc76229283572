// Ranking of flows (api/v1/flows: one local entity × one remote group over
// a window) by process, container, account or remote group. Pure functions,
// tested with node --test (web/test/).

const SEVERITY = { '': 0, healthy: 1, unknown: 2 };
const severity = (s) => (s && s.startsWith('degraded') ? 3 : SEVERITY[s || ''] ?? 0);

/** worst returns the more severe of two health states. */
export const worst = (a, b) => (severity(b) > severity(a) ? b : a);

function empty(id, kind, name) {
  return {
    id, kind, name, account: '', pids: new Set(), members: new Set(), flows: [],
    tx_bytes: 0, rx_bytes: 0, tx_payload_bytes: 0, rx_payload_bytes: 0,
    tx_bytes_per_second: 0, rx_bytes_per_second: 0, last_bytes_per_second: 0,
    connections: 0, segs_out: 0, retrans_segs: 0, rto_events: 0, resets_received: 0,
    rtt_sum: 0, rtt_samples: 0, srtt_sum: 0, srtt_n: 0, drops: 0, socket_drops: 0,
    health: '', window_ms: 0,
  };
}

/** keyOf says which entity a flow counts for, per tab; null: not at all. */
const keyOf = {
  processes: (f) => (f.local.kind === 'process' ? [f.local.id, 'process', f.local.name, f.group_id] : null),
  containers: (f) => (f.local.kind === 'container' ? [f.local.id, 'container', f.local.name, f.group_id] : null),
  accounts: (f) => (f.local.kind === 'container' ? [`account:${f.local.account || f.local.name}`, 'account', f.local.account || f.local.name, f.local.id] : null),
  groups: (f) => [f.group_id, 'group', f.group, f.local.id],
};

export const TABS = Object.keys(keyOf);

/** aggregate sums flows into one row per entity of the tab's kind. */
export function aggregate(flows, tab) {
  const key = keyOf[tab];
  const rows = new Map();
  for (const f of flows) {
    const k = key(f);
    if (!k) continue;
    const [id, kind, name, member] = k;
    let r = rows.get(id);
    if (!r) rows.set(id, (r = empty(id, kind, name)));
    r.members.add(member);
    r.flows.push(f);
    for (const p of f.local.pids || []) r.pids.add(p);
    if (kind === 'container') r.account = f.local.account || '';
    for (const fld of ['tx_bytes', 'rx_bytes', 'tx_payload_bytes', 'rx_payload_bytes', 'tx_bytes_per_second', 'rx_bytes_per_second', 'last_bytes_per_second', 'connections', 'segs_out', 'retrans_segs', 'rto_events', 'resets_received', 'drops', 'socket_drops']) {
      r[fld] += f[fld] || 0;
    }
    if (f.rtt_samples) {
      r.rtt_sum += f.rtt_mean_us * f.rtt_samples;
      r.rtt_samples += f.rtt_samples;
    } else if (f.rtt_mean_us) {
      r.srtt_sum += f.rtt_mean_us;
      r.srtt_n++;
    }
    r.health = worst(r.health, f.health || '');
    r.window_ms = Math.max(r.window_ms, f.window_ms || 0);
  }
  return [...rows.values()].map((r) => ({
    ...r,
    pids: [...r.pids].sort((a, b) => a - b),
    members: r.members.size,
    retrans_percent: r.segs_out ? (100 * r.retrans_segs) / r.segs_out : 0,
    rtt_mean_us: r.rtt_samples ? Math.round(r.rtt_sum / r.rtt_samples) : r.srtt_n ? Math.round(r.srtt_sum / r.srtt_n) : 0,
    rtt_source: r.rtt_samples ? 'samples' : r.srtt_n ? 'srtt' : '',
  }));
}

const total = (r) => r.tx_bytes + r.rx_bytes;

/** ORDERS mirror the agent's flow orders (internal/health flowOrders). */
export const ORDERS = {
  bytes: (a, b) => total(b) - total(a),
  rate: (a, b) => b.last_bytes_per_second - a.last_bytes_per_second,
  retrans: (a, b) => b.retrans_segs - a.retrans_segs || b.retrans_percent - a.retrans_percent,
  rtt: (a, b) => b.rtt_mean_us - a.rtt_mean_us,
  drops: (a, b) => b.drops - a.drops,
};

/** rank sorts rows by one key; ties go to more bytes, then to the id. */
export function rank(rows, by) {
  const order = ORDERS[by] || ORDERS.bytes;
  return rows.slice().sort((a, b) => order(a, b) || ORDERS.bytes(a, b) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}
