import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as fmt from '../src/format.js';

test('bytes, rates, RTT, percent, wall time', () => {
  assert.equal(fmt.bytes(0), '0 B');
  assert.equal(fmt.bytes(999), '999 B');
  assert.equal(fmt.bytes(1023), '1.00 KiB');
  assert.equal(fmt.bytes(1030000), '0.98 MiB');
  assert.equal(fmt.bytes(1536), '1.50 KiB');
  assert.equal(fmt.bytes(10 * 1024 ** 3), '10.0 GiB');
  assert.equal(fmt.bytes(undefined), '–');
  assert.equal(fmt.rate(2048), '2.00 KiB/s');
  assert.equal(fmt.micros(850), '850 µs');
  assert.equal(fmt.micros(56000), '56.0 ms');
  assert.equal(fmt.micros(0), '–');
  assert.equal(fmt.percent(1.234), '1.23 %');
  assert.equal(fmt.seconds(300), '5 min');
  assert.equal(fmt.wall('2026-11-23T10:05:00+01:00'), '2026-11-23 10:05 +01:00');
  assert.equal(fmt.wall('2026-11-23T10:05:00Z'), '2026-11-23 10:05 UTC');
});
