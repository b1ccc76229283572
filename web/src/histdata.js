// Turns api/v1/history answers into aligned, stackable series, CSV and
// JSON. Pure functions, tested with node --test (web/test/).

const DIRS = { rxtx: ['rx', 'tx'], rx: ['rx'], tx: ['tx'], total: ['total'] };

const secs = (iso) => Date.parse(iso) / 1000;

/** times parses each row's start and end once (seconds), cached on the result. */
function times(result) {
  if (!result._s || result._s.length !== result.rows.length) {
    const n = result.rows.length;
    result._s = new Float64Array(n);
    result._e = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      result._s[i] = secs(result.rows[i].start);
      result._e[i] = secs(result.rows[i].end);
    }
  }
  return [result._s, result._e];
}

/** uniq sorts a typed array and drops repeats. */
function uniq(a) {
  a.sort();
  let k = 0;
  for (let i = 0; i < a.length; i++) if (i === 0 || a[i] !== a[k - 1]) a[k++] = a[i];
  return a.subarray(0, k);
}

/** find returns the index of t in the sorted array a, or -1. */
function find(a, t) {
  let lo = 0;
  let hi = a.length - 1;
  while (lo <= hi) {
    const m = (lo + hi) >>> 1;
    if (a[m] < t) lo = m + 1;
    else if (a[m] > t) hi = m - 1;
    else return m;
  }
  return -1;
}

/**
 * build aligns every result on one x axis of bucket starts (seconds).
 * A bucket without a row had no traffic: where nothing starts at a
 * bucket's end, a zero point is added so a stepped chart drops to zero.
 * results: [{label, rows}], metric: rxtx|rx|tx|total, unit: bytes|packets|rate.
 * A year of 5-minute rows for two entities takes tens of milliseconds.
 */
export function build(results, { metric = 'rxtx', unit = 'bytes', now = Date.now() / 1000 } = {}) {
  const ts = results.map(times);
  const starts = bucketStarts(results);
  const dangling = [];
  for (const [, e] of ts) for (let i = 0; i < e.length; i++) if (find(starts, e[i]) < 0) dangling.push(e[i]);
  let x = starts;
  if (dangling.length) {
    x = new Float64Array(starts.length + dangling.length);
    x.set(starts);
    x.set(dangling, starts.length);
    x = uniq(x);
  }
  const dirs = DIRS[metric] || DIRS.rxtx;
  const kind = unit === 'packets' ? 'packets' : 'bytes';
  const layers = [];
  results.forEach((r, j) => {
    const [s, e] = ts[j];
    const at = new Int32Array(s.length);
    for (let i = 0; i < s.length; i++) at[i] = find(x, s[i]);
    for (const dir of dirs) {
      const values = new Array(x.length).fill(0);
      const rx = `rx_${kind}`;
      const key = dir === 'total' ? `tx_${kind}` : `${dir}_${kind}`;
      for (let i = 0; i < s.length; i++) {
        const row = r.rows[i];
        let v = dir === 'total' ? row[rx] + row[key] : row[key];
        if (unit === 'rate') {
          const span = Math.min(e[i], now) - s[i]; // the current bucket: its elapsed part
          v = span > 0 ? v / span : 0;
        }
        values[at[i]] = v;
      }
      const label = results.length === 1 ? dir : `${r.label} ${dir}`;
      layers.push({ label, dir, entity: r.label, values });
    }
  });
  return { x: Array.from(x), layers };
}

/** totals sums rx and tx bytes and packets over results. */
export function totals(results) {
  const t = { rx_bytes: 0, tx_bytes: 0, rx_packets: 0, tx_packets: 0, buckets: 0 };
  for (const r of results) {
    for (const row of r.rows) {
      for (const k of ['rx_bytes', 'tx_bytes', 'rx_packets', 'tx_packets']) t[k] += row[k];
      t.buckets++;
    }
  }
  return t;
}

const csvField = (v) => (/[",\n\r]/.test(String(v)) ? `"${String(v).replace(/"/g, '""')}"` : String(v));

/** csv writes one line per entity and bucket. */
export function csv(results, resolution) {
  const lines = ['entity,resolution,start,end,rx_bytes,tx_bytes,rx_packets,tx_packets'];
  for (const r of results) {
    for (const row of r.rows) {
      lines.push([r.entity, resolution, row.start, row.end, row.rx_bytes, row.tx_bytes, row.rx_packets, row.tx_packets].map(csvField).join(','));
    }
  }
  return lines.join('\n') + '\n';
}

/** bucketStarts returns every result's bucket starts, merged and sorted (seconds). */
export function bucketStarts(results) {
  const ts = results.map(times);
  const all = new Float64Array(ts.reduce((a, [s]) => a + s.length, 0));
  let k = 0;
  for (const [s] of ts) {
    all.set(s, k);
    k += s.length;
  }
  return uniq(all);
}

/** rowAt returns the result's row that starts at t (seconds), or null. */
export function rowAt(result, t) {
  const [s] = times(result);
  const i = find(s, t);
  return i < 0 ? null : result.rows[i];
}
