// Number and time formatting. Bytes are binary (KiB = 1024 B), like the
// rest of netmeter; rates are bytes per second.

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];

function scaled(n, units, base) {
  if (n == null || !Number.isFinite(n)) return '–';
  let v = Math.abs(n);
  let i = 0;
  // Switch units at 1000 so a value never takes four digits ("1006 KiB" reads "0.98 MiB").
  while (v >= 1000 && i < units.length - 1) {
    v /= base;
    i++;
  }
  const s = i === 0 ? String(Math.round(v)) : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
  return `${n < 0 ? '-' : ''}${s} ${units[i]}`;
}

export const bytes = (n) => scaled(n, UNITS, 1024);
export const rate = (n) => (n == null || !Number.isFinite(n) ? '–' : `${bytes(n)}/s`);
export const packets = (n) => scaled(n, ['', 'k', 'M', 'G', 'T'], 1000).replace(/ $/, '');
export const prate = (n) => (n == null || !Number.isFinite(n) ? '–' : `${packets(n)} pkt/s`);

const nf = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
export const count = (n) => (n == null || !Number.isFinite(n) ? '–' : nf.format(n));

export function percent(x) {
  if (x == null || !Number.isFinite(x)) return '–';
  return `${x === 0 ? '0' : x < 0.1 ? x.toFixed(3) : x < 10 ? x.toFixed(2) : x.toFixed(1)} %`;
}

/** micros formats a duration in microseconds (RTT). */
export function micros(us) {
  if (!us || !Number.isFinite(us)) return '–';
  if (us < 1000) return `${Math.round(us)} µs`;
  if (us < 1e6) return `${(us / 1000).toFixed(us < 1e4 ? 2 : 1)} ms`;
  return `${(us / 1e6).toFixed(2)} s`;
}

/** seconds formats a span in seconds: "45 s", "5 min", "2 h", "3 d". */
export function seconds(sec) {
  if (sec == null || !Number.isFinite(sec)) return '–';
  if (sec < 120) return `${Math.round(sec)} s`;
  if (sec < 7200) return `${Math.round(sec / 60)} min`;
  if (sec < 172800) return `${Math.round(sec / 3600)} h`;
  return `${Math.round(sec / 86400)} d`;
}

const dtf = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
const tf = new Intl.DateTimeFormat(undefined, { timeStyle: 'medium' });
export const dateTime = (d) => (d ? dtf.format(new Date(d)) : '–');
export const time = (d) => (d ? tf.format(new Date(d)) : '–');

/** ago formats how long ago a time was, relative to now (ms since epoch). */
export function ago(d, now = Date.now()) {
  if (!d) return '–';
  const s = Math.max(0, (now - new Date(d).getTime()) / 1000);
  return `${seconds(s)} ago`;
}

/** wall shows an RFC 3339 time in its own offset: "2026-11-23 10:05 +01:00". */
export function wall(iso) {
  const m = /^(\d{4}-\d\d-\d\d)T(\d\d:\d\d)(?::\d\d(?:\.\d+)?)?(Z|[+-]\d\d:\d\d)$/.exec(iso || '');
  if (!m) return iso || '–';
  return `${m[1]} ${m[2]}${m[3] === 'Z' ? ' UTC' : ' ' + m[3]}`;
}
