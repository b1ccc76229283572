import assert from 'node:assert/strict';
import { test } from 'node:test';
import { build, csv, totals } from '../src/histdata.js';

const row = (start, end, rx, tx) => ({ start, end, rx_bytes: rx, tx_bytes: tx, rx_packets: 1, tx_packets: 2 });
const a = {
  label: 'eth0', entity: 'interface:eth0',
  rows: [row('2026-01-01T00:00:00Z', '2026-01-01T01:00:00Z', 10, 1), row('2026-01-01T02:00:00Z', '2026-01-01T03:00:00Z', 20, 2)],
};
const b = { label: 'eth1', entity: 'interface:eth1', rows: [row('2026-01-01T01:00:00+00:00', '2026-01-01T02:00:00+00:00', 5, 5)] };
const t0 = Date.parse('2026-01-01T00:00:00Z') / 1000;

test('one entity: rx and tx layers, a zero point where a bucket has no row', () => {
  const { x, layers } = build([a], { metric: 'rxtx' });
  assert.deepEqual(x, [t0, t0 + 3600, t0 + 7200, t0 + 10800]);
  assert.deepEqual(layers.map((l) => l.label), ['rx', 'tx']);
  assert.deepEqual(layers[0].values, [10, 0, 20, 0]);
  assert.deepEqual(layers[1].values, [1, 0, 2, 0]);
});

test('several entities aligned; total; average rate', () => {
  const { x, layers } = build([a, b], { metric: 'total' });
  assert.equal(x.length, 4);
  assert.deepEqual(layers.map((l) => [l.label, l.values]), [['eth0 total', [11, 0, 22, 0]], ['eth1 total', [0, 10, 0, 0]]]);
  const r = build([a], { metric: 'rx', unit: 'rate', now: t0 + 7200 + 1800 });
  assert.deepEqual(r.layers[0].values, [10 / 3600, 0, 20 / 1800, 0]); // the current bucket: its elapsed half
});

test('totals and CSV', () => {
  assert.deepEqual(totals([a, b]), { rx_bytes: 35, tx_bytes: 8, rx_packets: 3, tx_packets: 6, buckets: 3 });
  const lines = csv([a], 'hour').trim().split('\n');
  assert.equal(lines[0], 'entity,resolution,start,end,rx_bytes,tx_bytes,rx_packets,tx_packets');
  assert.equal(lines[1], 'interface:eth0,hour,2026-01-01T00:00:00Z,2026-01-01T01:00:00Z,10,1,1,2');
  assert.equal(csv([{ ...a, entity: 'process:a,"b"' }], 'hour').split('\n')[1].split(',hour')[0], '"process:a,""b"""');
});
