package chart

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Default and minimum chart sizes in pixels (user units of the SVG).
const (
	DefaultWidth  = 720
	DefaultHeight = 320
	MinWidth      = 240
	MinHeight     = 160
)

// palette is one colour scheme.
type palette struct {
	bg, text, muted, grid, axis, rx, tx string
}

var (
	light = palette{bg: "#ffffff", text: "#1f2328", muted: "#57606a", grid: "#d8dee4", axis: "#8c959f", rx: "#1f6fd1", tx: "#d9600b"}
	dark  = palette{bg: "#0d1117", text: "#e6edf3", muted: "#9da7b3", grid: "#30363d", axis: "#6e7681", rx: "#58a6ff", tx: "#f0883e"}
)

func paletteFor(darkMode bool) palette {
	if darkMode {
		return dark
	}
	return light
}

// size applies the defaults and checks the minimum.
func size(w, h int) (int, int, error) {
	if w == 0 {
		w = DefaultWidth
	}
	if h == 0 {
		h = DefaultHeight
	}
	if w < MinWidth || h < MinHeight {
		return 0, 0, fmt.Errorf("chart size %d×%d: want at least %d×%d (or 0 for the default %d×%d)",
			w, h, MinWidth, MinHeight, DefaultWidth, DefaultHeight)
	}
	return w, h, nil
}

// doc builds one SVG document.
type doc struct {
	b  bytes.Buffer
	id string // prefix of element ids
}

// newDoc starts an SVG document of w×h whose ids derive from key.
func newDoc(w, h int, key string) *doc {
	hs := fnv.New32a()
	io.WriteString(hs, key)
	d := &doc{id: fmt.Sprintf("nm%08x", hs.Sum32())}
	d.b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	d.open("svg",
		"xmlns", "http://www.w3.org/2000/svg",
		"version", "1.1",
		"width", strconv.Itoa(w), "height", strconv.Itoa(h),
		"viewBox", fmt.Sprintf("0 0 %d %d", w, h),
		"role", "img",
		"aria-labelledby", d.id+"-title",
		"aria-describedby", d.id+"-desc",
		"font-family", "DejaVu Sans, Verdana, Arial, sans-serif")
	return d
}

// attrs writes name="value" pairs, escaped.
func (d *doc) attrs(kv []string) {
	for i := 0; i+1 < len(kv); i += 2 {
		d.b.WriteByte(' ')
		d.b.WriteString(kv[i])
		d.b.WriteString(`="`)
		escape(&d.b, kv[i+1])
		d.b.WriteByte('"')
	}
}

func (d *doc) open(name string, kv ...string) {
	d.b.WriteByte('<')
	d.b.WriteString(name)
	d.attrs(kv)
	d.b.WriteString(">\n")
}

func (d *doc) close(name string) {
	d.b.WriteString("</")
	d.b.WriteString(name)
	d.b.WriteString(">\n")
}

// leaf writes an empty element.
func (d *doc) leaf(name string, kv ...string) {
	d.b.WriteByte('<')
	d.b.WriteString(name)
	d.attrs(kv)
	d.b.WriteString("/>\n")
}

// text writes an element holding escaped text.
func (d *doc) text(name, content string, kv ...string) {
	d.b.WriteByte('<')
	d.b.WriteString(name)
	d.attrs(kv)
	d.b.WriteByte('>')
	escape(&d.b, content)
	d.b.WriteString("</")
	d.b.WriteString(name)
	d.b.WriteString(">\n")
}

// titled writes an empty-looking element with a tooltip <title> child.
func (d *doc) titled(name, tooltip string, kv ...string) {
	d.b.WriteByte('<')
	d.b.WriteString(name)
	d.attrs(kv)
	d.b.WriteString("><title>")
	escape(&d.b, tooltip)
	d.b.WriteString("</title></")
	d.b.WriteString(name)
	d.b.WriteString(">\n")
}

// header writes the document's title (fallback if title is empty) and
// description, the background and the visible title.
func (d *doc) header(w int, p palette, title, fallback, desc string) {
	name := title
	if strings.TrimSpace(name) == "" {
		name = fallback
	}
	d.text("title", name, "id", d.id+"-title")
	d.text("desc", desc, "id", d.id+"-desc")
	d.leaf("rect", "class", "background", "width", "100%", "height", "100%", "fill", p.bg)
	if title != "" {
		d.text("text", ellipsis(title, max(8, (w-24)/8)), "class", "title", "x", "12", "y", "22",
			"font-size", "15", "font-weight", "bold", "fill", p.text, "aria-hidden", "true")
	}
}

// noData writes the centred "no data" notice of an empty chart.
func (d *doc) noData(w, h int, p palette) {
	d.text("text", "no data", "class", "no-data", "x", num(float64(w)/2), "y", num(float64(h)/2),
		"text-anchor", "middle", "font-size", "16", "fill", p.muted)
}

// legend writes swatches and names left to right from x at baseline y.
func (d *doc) legend(x, y float64, p palette, items []legendItem) {
	d.open("g", "class", "legend", "font-size", "12", "fill", p.text)
	for _, it := range items {
		d.leaf("rect", "x", num(x), "y", num(y-10), "width", "12", "height", "12", "fill", it.fill,
			"fill-opacity", it.opacity, "stroke", it.stroke)
		d.text("text", it.name, "x", num(x+17), "y", num(y))
		x += 17 + float64(utf8.RuneCountInString(it.name))*7 + 18
	}
	d.close("g")
}

type legendItem struct{ name, fill, opacity, stroke string }

// hatch defines a diagonal hatch pattern over colour c, id d.id+"-"+name.
func (d *doc) hatch(name, c string) string {
	id := d.id + "-" + name
	d.open("pattern", "id", id, "patternUnits", "userSpaceOnUse", "width", "6", "height", "6",
		"patternTransform", "rotate(45)")
	d.leaf("rect", "width", "6", "height", "6", "fill", c, "fill-opacity", "0.3")
	d.leaf("line", "x1", "0", "y1", "0", "x2", "0", "y2", "6", "stroke", c, "stroke-width", "3")
	d.close("pattern")
	return "url(#" + id + ")"
}

// finish closes the document and writes it to w.
func (d *doc) finish(w io.Writer) error {
	d.close("svg")
	_, err := w.Write(d.b.Bytes())
	return err
}

// escape writes s as XML character data, safe in attributes too: it
// escapes markup and quotes and replaces invalid UTF-8 and characters XML
// does not allow with U+FFFD.
func escape(b *bytes.Buffer, s string) {
	xml.EscapeText(b, []byte(s)) // writes to a bytes.Buffer never fail
}

// ellipsis shortens s to at most n runes, ending in "…" if cut.
func ellipsis(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	if n <= 1 {
		return "…"
	}
	i, k := 0, 0
	for i = range s {
		if k == n-1 {
			break
		}
		k++
	}
	return strings.TrimRightFunc(s[:i], func(r rune) bool { return r == ' ' }) + "…"
}

// num formats a coordinate with at most two decimals.
func num(v float64) string {
	v = math.Round(v*100) / 100
	if v == 0 {
		v = 0 // no "-0"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}
