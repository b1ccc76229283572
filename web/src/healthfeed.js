// Polls api/v1/health and keeps each indicator's evidence over time (the
// API gives only the current evidence of remote groups; monitors also have
// points server-side, see api/v1/monitors).
import { ApiError, get, unavailable } from './api.js';
import { emit } from './bus.js';

export const CAPACITY = 900;

export class HealthFeed {
  constructor(live, periodMs = 2000) {
    this.live = live;
    this.periodMs = periodMs;
    this.subs = new Set();
    this.last = null;
    this.error = null;
    this.off = false; // no analyzer on this agent: stop asking
    this.history = new Map(); // "group:NAME" | "monitor:NAME" → [{t, state, evidence}]
  }

  subscribe(fn) {
    this.subs.add(fn);
    if (this.last || this.error) fn(this.last, this.error);
    return () => this.subs.delete(fn);
  }

  notify() {
    for (const fn of this.subs) fn(this.last, this.error);
  }

  async start() {
    if (this.timer || this.starting) return;
    this.starting = true;
    const off = await this.live.engineOff();
    if (off) {
      this.off = true;
      this.error = new ApiError(503, off);
      this.notify();
      return;
    }
    const tick = async () => {
      try {
        const h = await get('health');
        this.error = null;
        if (!this.last || h.time !== this.last.time) this.record(h);
        this.last = h;
        emit('health', h);
      } catch (e) {
        this.error = e;
        if (unavailable(e)) this.off = true;
      }
      this.notify();
      if (!this.off) this.timer = setTimeout(tick, this.periodMs);
    };
    this.timer = setTimeout(tick, 0);
  }

  record(h) {
    const t = Date.parse(h.time) / 1000;
    const add = (kind, st) => {
      const key = `${kind}:${st.name}`;
      let a = this.history.get(key);
      if (!a) this.history.set(key, (a = []));
      a.push({ t, state: st.state, ev: st.evidence || {} });
      if (a.length > CAPACITY) a.splice(0, a.length - CAPACITY);
    };
    for (const g of h.groups || []) add('group', g);
    for (const m of h.monitors || []) add('monitor', m);
  }
}
