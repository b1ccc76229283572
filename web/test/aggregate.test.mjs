import assert from 'node:assert/strict';
import { test } from 'node:test';
import { aggregate, rank, worst } from '../src/aggregate.js';

const flow = (local, group, o = {}) => ({
  id: `${local.id}->group:${group}`, local, group, group_id: `group:${group}`, window_ms: 10000,
  tx_bytes: 0, rx_bytes: 0, last_bytes_per_second: 0, segs_out: 0, retrans_segs: 0, rtt_mean_us: 0, rtt_samples: 0, drops: 0, connections: 1, ...o,
});
const curl = { id: 'process:curl', kind: 'process', name: 'curl', pids: [7, 3] };
const web = { id: 'container:web', kind: 'container', name: 'web', account: 'shop/web', pids: [9] };
const api = { id: 'container:api', kind: 'container', name: 'api', account: 'shop/web' };
const flows = [
  flow(curl, '10.0.0.0/24', { tx_bytes: 100, rx_bytes: 900, segs_out: 100, retrans_segs: 2, rtt_mean_us: 1000, rtt_samples: 10, health: 'healthy' }),
  flow(curl, 'loopback', { tx_bytes: 50, rx_bytes: 50, rtt_mean_us: 4000, rtt_samples: 30, drops: 3, health: 'unknown' }),
  flow(web, '10.0.0.0/24', { tx_bytes: 5000, last_bytes_per_second: 10, health: 'degraded: network' }),
  flow(api, '10.0.0.0/24', { tx_bytes: 10, last_bytes_per_second: 99 }),
];

test('processes: bytes summed, RTT sample-weighted, retrans percent, PIDs, worst health', () => {
  const [p] = aggregate(flows, 'processes');
  assert.equal(p.id, 'process:curl');
  assert.equal(p.tx_bytes + p.rx_bytes, 1100);
  assert.equal(p.rtt_mean_us, Math.round((1000 * 10 + 4000 * 30) / 40));
  assert.equal(p.retrans_percent, 2);
  assert.deepEqual(p.pids, [3, 7]);
  assert.equal(p.members, 2);
  assert.equal(p.drops, 3);
  assert.equal(p.health, 'unknown');
});

test('accounts, groups and ranking', () => {
  const accts = aggregate(flows, 'accounts');
  assert.deepEqual(accts.map((a) => [a.name, a.members, a.tx_bytes]), [['shop/web', 2, 5010]]);
  const groups = rank(aggregate(flows, 'groups'), 'bytes');
  assert.deepEqual(groups.map((g) => [g.name, g.members, g.health]), [['10.0.0.0/24', 3, 'degraded: network'], ['loopback', 1, 'unknown']]);
  assert.deepEqual(rank(aggregate(flows, 'containers'), 'rate').map((c) => c.name), ['api', 'web']);
  assert.deepEqual(rank(aggregate(flows, 'containers'), 'bytes').map((c) => c.name), ['web', 'api']);
});

test('worst', () => {
  assert.equal(worst('healthy', 'degraded: remote'), 'degraded: remote');
  assert.equal(worst('unknown', 'healthy'), 'unknown');
  assert.equal(worst('', 'healthy'), 'healthy');
});
