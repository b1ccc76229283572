// Data tables with a caption, scoped headers, numeric alignment and an
// aria-sort mark on the ranking column.
import { h } from './dom.js';

/**
 * table renders rows with columns [{key, label, num, opt, cell(row) → node|string}]
 * (opt: left out beside an open detail panel);
 * sorted: the key of the ranking column.
 */
export function table({ caption, columns, rows, sorted, rowAttrs, empty = 'Nothing to show.' }) {
  if (!rows.length) return h('p', { class: 'muted empty' }, empty);
  return h('div', { class: 'table-wrap' },
    h('table', { class: 'data' },
      caption ? h('caption', { class: 'sr-only' }, caption) : null,
      h('thead', {}, h('tr', {}, columns.map((c) => h('th', {
        scope: 'col',
        class: [c.num ? 'num' : '', c.key === sorted ? 'sorted' : '', c.opt ? 'opt' : ''],
        'aria-sort': c.key === sorted ? 'descending' : null,
        title: c.title,
      }, c.label)))),
      h('tbody', {}, rows.map((r, i) => h('tr', rowAttrs ? rowAttrs(r, i) : {}, columns.map((c, j) => {
        const v = c.cell(r, i);
        return j === 0 && c.header ? h('th', { scope: 'row', class: c.num ? 'num' : '' }, v) : h('td', { class: [c.num ? 'num' : '', c.opt ? 'opt' : '', c.cls ? c.cls(r) : ''], dataset: c.field ? { field: c.field, value: c.value ? c.value(r) : '', payload: c.payload ? c.payload(r) : undefined } : null }, v);
      })))),
    ));
}
