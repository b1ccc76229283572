// Turns api/v1/history answers into aligned, stackable series, CSV and
// JSON. Pure functions, tested with node --test (web/test/).

const DIRS = { rxtx: ['rx', 'tx'], rx: ['rx'], tx: ['tx'], total: ['total'] };

const secs = (iso) => Date.parse(iso) / 1000;

function value(row, dir, unit, now) {
  const kind = unit === 'packets' ? 'packets' : 'bytes';
  const v = dir === 'total' ? row[`rx_${kind}`] + row[`tx_${kind}`] : row[`${dir}_${kind}`];
  if (unit !== 'rate') return v;
  const span = Math.min(row.e, now) - row.s; // the current bucket: its elapsed part
  return span > 0 ? v / span : 0;
}

/**
 * build aligns every result on one x axis of bucket starts (seconds).
 * A bucket without a row had no traffic: where nothing starts at a
 * bucket's end, a zero point is added so a stepped chart drops to zero.
 * results: [{label, rows}], metric: rxtx|rx|tx|total, unit: bytes|packets|rate.
 */
export function build(results, { metric = 'rxtx', unit = 'bytes', now = Date.now() / 1000 } = {}) {
  const parsed = results.map((r) => r.rows.map((row) => ({ ...row, s: secs(row.start), e: secs(row.end) })));
  const starts = new Set();
  for (const rows of parsed) for (const r of rows) starts.add(r.s);
  const xs = new Set(starts);
  for (const rows of parsed) for (const r of rows) if (!starts.has(r.e)) xs.add(r.e);
  const x = [...xs].sort((a, b) => a - b);
  const index = new Map(x.map((t, i) => [t, i]));
  const dirs = DIRS[metric] || DIRS.rxtx;
  const layers = [];
  parsed.forEach((rows, k) => {
    for (const dir of dirs) {
      const values = new Array(x.length).fill(0);
      for (const r of rows) values[index.get(r.s)] = value(r, dir, unit, now);
      const label = results.length === 1 ? dir : `${results[k].label} ${dir}`;
      layers.push({ label, dir, entity: results[k].label, values });
    }
  });
  return { x, layers };
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
