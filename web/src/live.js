// The live snapshot feed: Server-Sent Events from api/v1/events (one
// `event: snapshot` per interval), read with fetch so a bearer token can be
// sent, with a fallback to polling api/v1/snapshot once per interval when the
// stream is missing, fails or stalls. Keeps a short per-interface history of
// rates for the overview's charts, so they survive page changes.
import { get, headers, ApiError } from './api.js';
import { emit } from './bus.js';
import { SSEParser } from './sse.js';

export const CAPACITY = 900; // points per interface: 15 minutes at the default 1 s interval

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export class Live {
  constructor() {
    this.subs = new Set();
    this.mode = 'connecting';
    this.detail = '';
    this.last = null;
    this.lastT = null;
    this.series = new Map(); // interface name → {t, rx, tx}
    this.sseMissing = false;
    this.started = false;
    /** ready resolves with the first snapshot. */
    this.ready = new Promise((resolve) => {
      this.resolveReady = resolve;
    });
  }

  /**
   * engineOff resolves to the reason flows and health are unavailable
   * (the first snapshot has no eBPF engine), or '' — so pages need not ask
   * the API for what it can only refuse.
   */
  async engineOff() {
    const snap = await this.ready;
    return snap.engine ? '' : 'Flows, topology and health need the eBPF engine, which is not running on this agent (interfaces and history are available).';
  }

  /** subscribe calls fn with every new snapshot (and the latest at once). */
  subscribe(fn) {
    this.subs.add(fn);
    if (this.last) fn(this.last);
    return () => this.subs.delete(fn);
  }

  setMode(mode, detail = '') {
    if (mode === this.mode && detail === this.detail) return;
    this.mode = mode;
    this.detail = detail;
    emit('live-mode', mode, detail);
  }

  get intervalMs() {
    const ns = this.last && this.last.interval_ns;
    return ns ? Math.max(250, ns / 1e6) : 1000;
  }

  ingest(snap) {
    if (!snap || !snap.time || (this.last && snap.time === this.last.time)) return;
    const t = Date.parse(snap.time) / 1000;
    if (this.lastT != null && t < this.lastT) return; // out of order
    const gap = this.lastT != null && t - this.lastT > (3 * this.intervalMs) / 1000 + 1;
    const seen = new Set();
    for (const ifc of snap.interfaces || []) {
      seen.add(ifc.name);
      let s = this.series.get(ifc.name);
      if (!s) this.series.set(ifc.name, (s = { t: [], rx: [], tx: [] }));
      if (gap && s.t.length) {
        // Break the line where the agent was not heard from.
        s.t.push(this.lastT + this.intervalMs / 1000);
        s.rx.push(null);
        s.tx.push(null);
      }
      s.t.push(t);
      s.rx.push(ifc.rx_bytes_per_second ? ifc.rx_bytes_per_second.current : null);
      s.tx.push(ifc.tx_bytes_per_second ? ifc.tx_bytes_per_second.current : null);
      if (s.t.length > CAPACITY) {
        const n = s.t.length - CAPACITY;
        s.t.splice(0, n);
        s.rx.splice(0, n);
        s.tx.splice(0, n);
      }
    }
    for (const name of this.series.keys()) if (!seen.has(name)) this.series.delete(name);
    this.last = snap;
    this.lastT = t;
    this.lastAt = Date.now();
    this.resolveReady(snap);
    emit('snapshot', snap);
    for (const fn of this.subs) {
      try {
        fn(snap);
      } catch (e) {
        console.warn('netmeter: a view failed to render a snapshot', e); // eslint-disable-line no-console
      }
    }
  }

  start() {
    if (this.started) return;
    this.started = true;
    this.loop();
  }

  async loop() {
    let backoff = 5000;
    for (;;) {
      if (!this.sseMissing) {
        const r = await this.stream();
        if (r === 'missing') this.sseMissing = true; // this agent has no event stream: poll for good
        if (r === 'ended') backoff = 5000;
      }
      // Poll until it is time to try the stream again.
      await this.poll(this.sseMissing ? Infinity : backoff);
      backoff = Math.min(backoff * 2, 60000);
    }
  }

  /** stream reads the event stream until it ends; it returns why it stopped. */
  async stream() {
    const ctrl = new AbortController();
    let res;
    try {
      res = await fetch('api/v1/events', {
        headers: headers({ Accept: 'text/event-stream' }),
        signal: ctrl.signal,
        cache: 'no-store',
      });
    } catch {
      return 'failed';
    }
    const type = res.headers.get('content-type') || '';
    if (res.status === 401) emit('auth-required');
    if (res.status === 404 || res.status === 405 || (res.ok && !type.startsWith('text/event-stream'))) {
      ctrl.abort();
      return 'missing';
    }
    if (!res.ok || !res.body) {
      ctrl.abort();
      return 'failed';
    }
    this.setMode('live');
    let heard = Date.now();
    const parser = new SSEParser(
      (event, data) => {
        heard = Date.now();
        if (event !== 'snapshot' && event !== 'message') return;
        try {
          this.ingest(JSON.parse(data));
        } catch (e) {
          console.warn('netmeter: bad snapshot event', e); // eslint-disable-line no-console
        }
      },
      () => {
        heard = Date.now(); // a keep-alive comment
      },
    );
    // Stalled: nothing for 3 intervals plus 5 s.
    const watchdog = setInterval(() => {
      if (Date.now() - heard > 3 * this.intervalMs + 5000) ctrl.abort();
    }, 1000);
    try {
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        parser.push(value);
      }
    } catch {
      /* aborted or the connection dropped */
    } finally {
      clearInterval(watchdog);
      ctrl.abort();
    }
    return 'ended';
  }

  async poll(duration) {
    const until = Date.now() + duration;
    while (Date.now() < until) {
      const began = Date.now();
      try {
        this.ingest(await get('snapshot'));
        this.setMode('polling');
      } catch (e) {
        if (e instanceof ApiError && e.status === 503) this.setMode('waiting', e.message);
        else if (e instanceof ApiError && e.status === 401) this.setMode('auth', e.message);
        else this.setMode('offline', e.message);
      }
      const wait = this.mode === 'offline' ? 3000 : this.intervalMs;
      await sleep(Math.max(100, wait - (Date.now() - began)));
    }
  }
}
