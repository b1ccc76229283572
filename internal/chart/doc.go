// Package chart draws traffic charts as standalone SVG 1.1 documents, like
// vnStat's vnstati images: [Bars] for per-period totals (days, months, …)
// with an optional estimate of the current period, and [Line] for a rate
// time series (5-minute or hourly points).
//
// Both write one <svg> document with role="img", a <title> and a <desc>
// that summarise the data for screen readers (aria-labelledby and
// aria-describedby point at them), an aria-label and a tooltip <title> on
// every bar and line, a legend, a light or dark palette, and a value axis
// in human units (KiB, MiB, … for bytes; kbit/s, Mbit/s, … for bits) with
// round tick values. Styling is in presentation attributes, not CSS, so the
// file renders the same in browsers, image viewers and converters.
//
// Labels and titles are untrusted (interface, process and container names):
// all text goes through XML escaping, which also replaces bytes that are
// not valid UTF-8 or not allowed in XML, so the output is well-formed
// whatever the input. Element ids carry a prefix derived from the chart's
// content, so several charts can be inlined into one HTML page.
//
// Only the standard library is used, and the output is deterministic (the
// same input gives the same bytes), so it can be compared with golden
// files.
package chart
