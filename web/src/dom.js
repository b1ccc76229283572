// A tiny DOM builder instead of a framework: h('a', {href, class, onclick}, children…).

const SVGNS = 'http://www.w3.org/2000/svg';

function apply(el, props, isSVG) {
  if (!props) return;
  for (const [k, v] of Object.entries(props)) {
    if (v == null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.setAttribute('class', Array.isArray(v) ? v.filter(Boolean).join(' ') : v);
    else if (k === 'dataset') {
      for (const [dk, dv] of Object.entries(v)) if (dv != null) el.dataset[dk] = dv;
    }
    else if (k === 'style') Object.assign(el.style, v); // CSSOM: allowed by the CSP, unlike a style attribute
    else if (k === 'text') el.textContent = v;
    else if (!isSVG && ['value', 'checked', 'selected', 'disabled', 'hidden', 'open', 'multiple'].includes(k)) el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c == null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
}

/** h creates an HTML element. */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  apply(el, props, false);
  append(el, children);
  return el;
}

/** s creates an SVG element. */
export function s(tag, props, ...children) {
  const el = document.createElementNS(SVGNS, tag);
  apply(el, props, true);
  append(el, children);
  return el;
}

/** clear removes every child of el and returns it. */
export function clear(el) {
  el.replaceChildren();
  return el;
}

/** select builds a labelled <select>; options are [value, label] pairs or values. */
export function select(id, label, options, value, onchange, extra = {}) {
  return h('label', { class: 'field', for: id },
    h('span', {}, label),
    h('select', { id, onchange: (e) => onchange(e.target.value), ...extra },
      options.map((o) => {
        const [v, l] = Array.isArray(o) ? o : [o, o];
        return h('option', { value: v, selected: String(v) === String(value) }, l);
      })));
}

/** stateBadge shows a health state as text and colour (never colour alone). */
/** stateClass is a health state's CSS class: bad (degraded: …), ok (healthy) or unknown. */
export const stateClass = (st) => (st && st.startsWith('degraded') ? 'bad' : st === 'healthy' ? 'ok' : 'unknown');

export function stateBadge(state) {
  const st = state || 'unknown';
  const cls = stateClass(st);
  const glyph = cls === 'bad' ? '▲' : cls === 'ok' ? '●' : '○';
  return h('span', { class: ['badge', cls], dataset: { state: st } }, h('span', { 'aria-hidden': 'true' }, glyph + ' '), st);
}

/** notice is an inline message box: kind is info, warn or error. */
export function notice(kind, ...children) {
  return h('p', { class: ['notice', kind], role: kind === 'error' ? 'alert' : null }, ...children);
}

/** fill replaces el's children (arrays are flattened, null and false skipped). */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** add appends children to el like h does. */
export function add(el, ...children) {
  append(el, children);
  return el;
}
