package chart

import (
	"bytes"
	"encoding/xml"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.svg from the current output")

// node is a parsed XML element.
type node struct {
	name  string
	attrs map[string]string
	text  string
	kids  []*node
}

func (n *node) attr(k string) string { return n.attrs[k] }

// find returns the elements under n (n included) for which keep is true.
func (n *node) find(keep func(*node) bool) []*node {
	var out []*node
	if keep(n) {
		out = append(out, n)
	}
	for _, k := range n.kids {
		out = append(out, k.find(keep)...)
	}
	return out
}

func (n *node) withClass(class string) []*node {
	return n.find(func(e *node) bool { return slices.Contains(strings.Fields(e.attr("class")), class) })
}

func (n *node) child(name string) *node {
	for _, k := range n.kids {
		if k.name == name {
			return k
		}
	}
	return nil
}

// parseSVG proves b is one well-formed XML document whose root is an SVG
// 1.1 <svg> and returns its tree.
func parseSVG(t testing.TB, b []byte) *node {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(b))
	dec.Strict = true
	var stack []*node
	var root *node
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, b)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			n := &node{name: tok.Name.Local, attrs: map[string]string{}}
			for _, a := range tok.Attr {
				n.attrs[a.Name.Local] = a.Value
			}
			if len(stack) == 0 {
				if root != nil {
					t.Fatalf("two root elements")
				}
				root = n
				if tok.Name.Space != "http://www.w3.org/2000/svg" {
					t.Fatalf("root namespace %q", tok.Name.Space)
				}
			} else {
				stack[len(stack)-1].kids = append(stack[len(stack)-1].kids, n)
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text += string(tok)
			}
		}
	}
	if root == nil || root.name != "svg" || root.attr("version") != "1.1" {
		t.Fatalf("root is not <svg version=\"1.1\">:\n%s", b)
	}
	return root
}

// checkAccessible: the document names and describes itself, and every
// bar and line has an aria-label and a tooltip.
func checkAccessible(t *testing.T, root *node) {
	t.Helper()
	if root.attr("role") != "img" {
		t.Errorf("svg role %q", root.attr("role"))
	}
	for _, ref := range []string{"aria-labelledby", "aria-describedby"} {
		id := root.attr(ref)
		el := root.find(func(e *node) bool { return e.attr("id") == id && id != "" })
		if len(el) != 1 || strings.TrimSpace(el[0].text) == "" {
			t.Errorf("%s=%q names no element with text", ref, id)
		}
	}
	if root.child("title") == nil || root.child("desc") == nil {
		t.Errorf("no <title> and <desc> under <svg>")
	}
	for _, e := range append(root.withClass("bar"), append(root.withClass("estimate"), root.withClass("line")...)...) {
		if e.attr("aria-label") == "" || e.child("title") == nil || e.child("title").text == "" {
			t.Errorf("<%s class=%q> has no aria-label or title", e.name, e.attr("class"))
		}
	}
}

func attrFloat(t testing.TB, e *node, k string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(e.attr(k), 64)
	if err != nil {
		t.Fatalf("<%s %s=%q>: %v", e.name, k, e.attr(k), err)
	}
	return v
}

// parseTick turns a tick label like "2.5 GiB" back into base units.
func parseTick(t testing.TB, s string) float64 {
	t.Helper()
	if s == "0" {
		return 0
	}
	num, unit, ok := strings.Cut(s, " ")
	if !ok {
		t.Fatalf("tick label %q", s)
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil {
		t.Fatalf("tick label %q: %v", s, err)
	}
	for _, l := range []unitLadder{binaryLadder(""), binaryLadder("/s"), must(ladder(UnitBitsPerSec))} {
		for _, p := range l {
			if p.name == unit {
				return v * p.factor
			}
		}
	}
	t.Fatalf("tick label %q: unknown unit", s)
	return 0
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// yScale reads the value axis: the baseline y and pixels per base unit,
// from the first and last tick.
func yScale(t testing.TB, root *node) (base, perUnit float64, labels []string) {
	t.Helper()
	ticks := root.withClass("tick")
	if len(ticks) < 2 {
		t.Fatalf("%d ticks", len(ticks))
	}
	for _, k := range ticks {
		labels = append(labels, k.text)
	}
	first, last := ticks[0], ticks[len(ticks)-1]
	if parseTick(t, first.text) != 0 {
		t.Fatalf("first tick %q, want 0", first.text)
	}
	base = attrFloat(t, first, "y") - 4
	top := attrFloat(t, last, "y") - 4
	return base, (base - top) / parseTick(t, last.text), labels
}

func days(n int) []string {
	var l []string
	for i := range n {
		l = append(l, time.Date(2026, 11, 1+i, 0, 0, 0, 0, time.UTC).Format(time.DateOnly))
	}
	return l
}

func render(t testing.TB, draw func(io.Writer) error) ([]byte, *node) {
	t.Helper()
	var b bytes.Buffer
	if err := draw(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes(), parseSVG(t, b.Bytes())
}

func TestBars(t *testing.T) {
	c := BarChart{
		Title:  "eth0 — November",
		Labels: days(7),
		Rx:     []uint64{3 << 30, 5 << 29, 0, 1 << 20, 3_700_000_000, 12345, 2 << 30},
		Tx:     []uint64{1 << 30, 1 << 29, 7, 1 << 19, 600_000_000, 1, 1 << 30},
	}
	_, root := render(t, func(w io.Writer) error { return Bars(w, c) })
	checkAccessible(t, root)

	rx, tx := root.withClass("rx"), root.withClass("tx")
	bars := root.withClass("bar")
	if len(bars) != 14 || len(rx) != 7 || len(tx) != 7 {
		t.Fatalf("%d bars (%d rx, %d tx), want 14 (7, 7)", len(bars), len(rx), len(tx))
	}

	// The tallest bar (rx of day 5, 3.7 GB) is as high as its value on the
	// axis' scale, standing on the baseline.
	base, perByte, labels := yScale(t, root)
	if want := []string{"0", "1 GiB", "2 GiB", "3 GiB", "4 GiB"}; !slices.Equal(labels, want) {
		t.Errorf("tick labels %q, want %q", labels, want)
	}
	tallest := bars[0]
	for _, b := range bars {
		if attrFloat(t, b, "height") > attrFloat(t, tallest, "height") {
			tallest = b
		}
	}
	if tallest != rx[4] {
		t.Errorf("tallest bar is %q", tallest.attr("aria-label"))
	}
	if h, want := attrFloat(t, tallest, "height"), 3_700_000_000*perByte; math.Abs(h-want) > 0.02 {
		t.Errorf("tallest bar %v px, want %v px (3.7 GB at %v px/GiB)", h, want, perByte*(1<<30))
	}
	for i, b := range bars {
		if bottom := attrFloat(t, b, "y") + attrFloat(t, b, "height"); math.Abs(bottom-base) > 0.02 {
			t.Errorf("bar %d ends at y=%v, baseline %v", i, bottom, base)
		}
		v := float64(c.Rx[i/2])
		if i%2 == 1 {
			v = float64(c.Tx[i/2])
		}
		if h := attrFloat(t, b, "height"); math.Abs(h-v*perByte) > 0.02 {
			t.Errorf("bar %d (%s) is %v px, want %v", i, b.attr("aria-label"), h, v*perByte)
		}
	}
	// Bars are ordered by label, rx left of tx.
	for i := 1; i < len(bars); i++ {
		if attrFloat(t, bars[i], "x") <= attrFloat(t, bars[i-1], "x") {
			t.Errorf("bar %d is not right of bar %d", i, i-1)
		}
	}
	if got := rx[4].attr("aria-label"); got != "2026-11-05: received 3.45 GiB" {
		t.Errorf("aria-label %q", got)
	}
	if got := tx[2].child("title").text; got != "2026-11-03: sent 7 B (7 bytes)" {
		t.Errorf("tooltip %q", got)
	}
	if desc := root.child("desc").text; !strings.Contains(desc, "7 periods from 2026-11-01 to 2026-11-07") ||
		!strings.Contains(desc, "most 3.45 GiB on 2026-11-05") {
		t.Errorf("desc %q", desc)
	}
	if xl := root.withClass("x-labels")[0].find(func(e *node) bool { return e.name == "text" }); len(xl) != 7 || xl[0].text != "2026-11-01" {
		t.Errorf("x labels: %d, first %q", len(xl), xl[0].text)
	}
}

func TestBarsEstimate(t *testing.T) {
	c := BarChart{Labels: days(3), Rx: []uint64{10 << 20, 20 << 20, 5 << 20}, Tx: []uint64{1 << 20, 1 << 20, 2 << 20},
		Estimate: &Estimate{Rx: 30 << 20, Tx: 1 << 20}} // tx estimate below the actual: nothing to draw
	_, root := render(t, func(w io.Writer) error { return Bars(w, c) })
	checkAccessible(t, root)
	est := root.withClass("estimate")
	if len(est) != 1 || !slices.Contains(strings.Fields(est[0].attr("class")), "rx") {
		t.Fatalf("estimate rects: %d", len(est))
	}
	_, perByte, _ := yScale(t, root)
	bars := root.withClass("bar")
	lastRx := bars[4]
	if h, want := attrFloat(t, est[0], "height"), float64(25<<20)*perByte; math.Abs(h-want) > 0.02 {
		t.Errorf("estimate part %v px, want %v", h, want)
	}
	if top := attrFloat(t, lastRx, "y"); math.Abs(attrFloat(t, est[0], "y")+attrFloat(t, est[0], "height")-top) > 0.02 {
		t.Errorf("estimate does not sit on the bar")
	}
	if !strings.HasPrefix(est[0].attr("fill"), "url(#") {
		t.Errorf("estimate fill %q, want the hatch pattern", est[0].attr("fill"))
	}
	if est[0].attr("aria-label") != "2026-11-03: estimated received 30.00 MiB" {
		t.Errorf("estimate aria-label %q", est[0].attr("aria-label"))
	}
	// The axis covers the estimate.
	if _, _, labels := yScale(t, root); parseTick(t, labels[len(labels)-1]) < 30<<20 {
		t.Errorf("axis %q does not cover the 30 MiB estimate", labels)
	}
}

func TestAxisTicks(t *testing.T) {
	for _, tt := range []struct {
		unit string
		max  float64
		want string
	}{
		{UnitBytes, 0, "0|1 B"},
		{UnitBytes, 3, "0|1 B|2 B|3 B"},
		{UnitBytes, 1000, "0|200 B|400 B|600 B|800 B|1000 B"},
		{UnitBytes, 1536, "0|0.5 KiB|1 KiB|1.5 KiB"},
		{UnitBytes, 3_700_000_000, "0|1 GiB|2 GiB|3 GiB|4 GiB"},
		{UnitBytes, 700 << 20, "0|200 MiB|400 MiB|600 MiB|800 MiB"},
		{UnitBytes, 5 << 40, "0|1 TiB|2 TiB|3 TiB|4 TiB|5 TiB"},
		{UnitBytes, math.MaxUint64, "0|5 EiB|10 EiB|15 EiB|20 EiB"},
		{UnitBytesPerSec, 12.5 * (1 << 20), "0|2.5 MiB/s|5 MiB/s|7.5 MiB/s|10 MiB/s|12.5 MiB/s"},
		{UnitBitsPerSec, 950e6, "0|200 Mbit/s|400 Mbit/s|600 Mbit/s|800 Mbit/s|1000 Mbit/s"},
		{UnitBitsPerSec, 0.4, "0|1 bit/s"},
	} {
		ax := niceAxis(must(ladder(tt.unit)), tt.max, 5)
		var got []string
		for _, v := range ax.ticks() {
			got = append(got, ax.label(v))
		}
		if strings.Join(got, "|") != tt.want {
			t.Errorf("%s max %v: ticks %q, want %q", tt.unit, tt.max, strings.Join(got, "|"), tt.want)
		}
		if ax.top < tt.max {
			t.Errorf("%s max %v: axis top %v below the data", tt.unit, tt.max, ax.top)
		}
	}
}

// hostile is a label from an untrusted name: markup, quotes, an ampersand,
// control characters and bytes that are not UTF-8.
const hostile = "<script>&\"'\x00\x1b\xff]]>"

func TestEscaping(t *testing.T) {
	bars, root := render(t, func(w io.Writer) error {
		return Bars(w, BarChart{Title: hostile, Labels: []string{hostile, "ok"}, Rx: []uint64{1, 2}, Tx: []uint64{3, 4},
			Estimate: &Estimate{Rx: 9, Tx: 9}})
	})
	line, lroot := render(t, func(w io.Writer) error {
		return Line(w, LineChart{Title: hostile, Times: []time.Time{time.Unix(0, 0), time.Unix(300, 0)}, Rx: []float64{1, 2}, Tx: []float64{3, 4}})
	})
	for name, out := range map[string][]byte{"bars": bars, "line": line} {
		if bytes.Contains(out, []byte("<script")) || bytes.Contains(out, []byte("\x00")) || bytes.Contains(out, []byte("\xff")) {
			t.Errorf("%s: hostile text reached the output unescaped", name)
		}
	}
	for _, r := range []*node{root, lroot} {
		if got := r.child("title").text; !strings.HasPrefix(got, "<script>&\"'") {
			t.Errorf("title decodes to %q", got)
		}
	}
	if got := root.withClass("bar")[0].attr("aria-label"); !strings.HasPrefix(got, "<script>&\"'\uFFFD\uFFFD\uFFFD]]>: received") {
		t.Errorf("aria-label decodes to %q", got)
	}
}

func TestEmpty(t *testing.T) {
	for name, draw := range map[string]func(io.Writer) error{
		"bars":      func(w io.Writer) error { return Bars(w, BarChart{Title: "eth0"}) },
		"bars dark": func(w io.Writer) error { return Bars(w, BarChart{Dark: true}) },
		"line":      func(w io.Writer) error { return Line(w, LineChart{Title: "eth0"}) },
		"line NaN": func(w io.Writer) error {
			return Line(w, LineChart{Times: []time.Time{time.Unix(0, 0)}, Rx: []float64{math.NaN()}, Tx: []float64{math.NaN()}})
		},
	} {
		t.Run(name, func(t *testing.T) {
			_, root := render(t, draw)
			nd := root.withClass("no-data")
			if len(nd) != 1 || nd[0].text != "no data" {
				t.Errorf("no \"no data\" notice")
			}
			if len(root.withClass("bar"))+len(root.withClass("line")) != 0 {
				t.Errorf("an empty chart draws data")
			}
			if !strings.Contains(root.child("desc").text, "no data") {
				t.Errorf("desc %q does not say no data", root.child("desc").text)
			}
		})
	}
	// All zeros is data: bars of height 0 on a 0–1 B axis.
	_, root := render(t, func(w io.Writer) error {
		return Bars(w, BarChart{Labels: days(2), Rx: []uint64{0, 0}, Tx: []uint64{0, 0}})
	})
	if bars := root.withClass("bar"); len(bars) != 4 || attrFloat(t, bars[0], "height") != 0 {
		t.Errorf("zero bars: %d", len(bars))
	}
}

func TestErrors(t *testing.T) {
	t0 := time.Unix(1e9, 0)
	for name, err := range map[string]error{
		"labels":     Bars(io.Discard, BarChart{Labels: days(2), Rx: []uint64{1}, Tx: []uint64{1, 2}}),
		"unit":       Bars(io.Discard, BarChart{Unit: "furlongs"}),
		"size":       Bars(io.Discard, BarChart{Width: 100}),
		"negative":   Bars(io.Discard, BarChart{Height: -5}),
		"estimate":   Bars(io.Discard, BarChart{Estimate: &Estimate{}}),
		"line len":   Line(io.Discard, LineChart{Times: []time.Time{t0}, Rx: []float64{1}}),
		"order":      Line(io.Discard, LineChart{Times: []time.Time{t0, t0}, Rx: []float64{1, 2}, Tx: []float64{1, 2}}),
		"infinite":   Line(io.Discard, LineChart{Times: []time.Time{t0}, Rx: []float64{math.Inf(1)}, Tx: []float64{1}}),
		"below zero": Line(io.Discard, LineChart{Times: []time.Time{t0}, Rx: []float64{1}, Tx: []float64{-1}}),
	} {
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestPalettes(t *testing.T) {
	for _, dark := range []bool{false, true} {
		_, root := render(t, func(w io.Writer) error {
			return Bars(w, BarChart{Labels: days(1), Rx: []uint64{1}, Tx: []uint64{2}, Dark: dark})
		})
		want := paletteFor(dark)
		if got := root.withClass("background")[0].attr("fill"); got != want.bg {
			t.Errorf("dark=%v: background %s, want %s", dark, got, want.bg)
		}
		if got := root.withClass("rx")[0].attr("fill"); got != want.rx {
			t.Errorf("dark=%v: rx %s, want %s", dark, got, want.rx)
		}
	}
	if light.bg == dark.bg || light.rx == dark.rx {
		t.Errorf("the palettes do not differ")
	}
}

// pathPoints counts the coordinate pairs of a path and its "M" commands.
func pathPoints(d string) (points, moves int) {
	return len(regexp.MustCompile(`[ML]-?[0-9.]+,-?[0-9.]+`).FindAllString(d, -1)), strings.Count(d, "M")
}

func fiveMinutes(n int, loc *time.Location) []time.Time {
	start := time.Date(2026, 11, 22, 20, 0, 0, 0, loc)
	ts := make([]time.Time, n)
	for i := range ts {
		ts[i] = start.Add(time.Duration(i) * 5 * time.Minute)
	}
	return ts
}

func TestLine(t *testing.T) {
	loc := time.FixedZone("+0545", 5*3600+45*60)
	ts := fiveMinutes(288, loc)
	rx, tx := make([]float64, len(ts)), make([]float64, len(ts))
	for i := range ts {
		rx[i] = float64(i) * 1000
		tx[i] = 500
	}
	for i := 100; i < 110; i++ {
		rx[i] = math.NaN() // a hole: the line breaks
	}
	rx[150], rx[152] = math.NaN(), math.NaN() // point 151 stands alone
	ts = append(ts[:200:200], ts[201:]...)    // a missing interval: the line breaks there too
	rx, tx = append(rx[:200:200], rx[201:]...), append(tx[:200:200], tx[201:]...)
	rx[250] = 400_000

	_, root := render(t, func(w io.Writer) error {
		return Line(w, LineChart{Title: "eth0 — 24 h", Times: ts, Rx: rx, Tx: tx})
	})
	checkAccessible(t, root)
	lines := root.withClass("line")
	if len(lines) != 2 {
		t.Fatalf("%d lines", len(lines))
	}
	for _, l := range lines {
		points, moves := pathPoints(l.attr("d"))
		want, wantMoves := len(ts), 1
		if strings.Contains(l.attr("class"), "rx") {
			want, wantMoves = len(ts)-12, 5 // 12 NaN; breaks at 110, 151, 153 and the missing interval
		} else {
			wantMoves = 2 // the missing interval
		}
		if points != want || moves != wantMoves {
			t.Errorf("%s: %d points in %d pieces, want %d in %d", l.attr("class"), points, moves, want, wantMoves)
		}
	}
	if dots := root.withClass("dots"); len(dots) != 1 || dots[0].attr("d") != fmt.Sprintf("M%s h0", regexp.MustCompile(`M[0-9.]+,[0-9.]+`).FindAllString(lines[0].attr("d"), -1)[2][1:]) {
		t.Errorf("lone point dots: %d", len(dots))
	}

	// The peak (400 kB/s at point 250) is at its value on the axis' scale.
	base, perUnit, labels := yScale(t, root)
	if want := []string{"0", "100 KiB/s", "200 KiB/s", "300 KiB/s", "400 KiB/s"}; !slices.Equal(labels, want) {
		t.Errorf("tick labels %q, want %q", labels, want)
	}
	var peakY float64 = math.Inf(1)
	for _, m := range regexp.MustCompile(`,([0-9.]+)`).FindAllStringSubmatch(lines[0].attr("d"), -1) {
		peakY = math.Min(peakY, must(strconv.ParseFloat(m[1], 64)))
	}
	if h, want := base-peakY, 400_000*perUnit; math.Abs(h-want) > 0.02 {
		t.Errorf("peak %v px above the baseline, want %v", h, want)
	}
	if got := lines[0].attr("aria-label"); got != "received rate, peak 390.62 KiB/s at 16:55 +0545" {
		t.Errorf("aria-label %q", got)
	}

	// Time labels: round hours of the data's zone, the date at midnight.
	var times []string
	var xs []float64
	for _, e := range root.withClass("time") {
		times = append(times, e.text)
		xs = append(xs, attrFloat(t, e, "x"))
	}
	if want := []string{"21:00", "Nov 23", "03:00", "06:00", "09:00", "12:00", "15:00", "18:00"}; !slices.Equal(times, want) {
		t.Errorf("time labels %q, want %q", times, want)
	}
	if !slices.IsSorted(xs) {
		t.Errorf("time labels not left to right: %v", xs)
	}
}

func TestTimeTicks(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip(err)
	}
	for _, tt := range []struct {
		t0, t1 time.Time
		max    int
		want   string
	}{
		{time.Date(2026, 3, 28, 22, 0, 0, 0, berlin), time.Date(2026, 3, 29, 6, 0, 0, 0, berlin), 9, // DST starts 02:00
			"22:00 23:00 Mar 29 01:00 03:00 04:00 05:00 06:00"},
		{time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC), 6,
			"Nov 1 Nov 8 Nov 15 Nov 22 Nov 29"},
		{time.Date(2026, 11, 1, 10, 2, 0, 0, time.UTC), time.Date(2026, 11, 1, 10, 50, 0, 0, time.UTC), 6,
			"10:10 10:20 10:30 10:40 10:50"},
		{time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), 5, // 2192 days
			"Jan 1 2020 Jul 3 2021 Jan 3 2023 Jul 5 2024"},
	} {
		ticks, step := timeTicks(tt.t0, tt.t1, tt.max)
		var got []string
		for _, k := range ticks {
			got = append(got, tickLabel(k, step))
		}
		if len(ticks) > tt.max {
			t.Errorf("%v–%v: %d ticks, want at most %d", tt.t0, tt.t1, len(ticks), tt.max)
		}
		if strings.Join(got, " ") != tt.want {
			t.Errorf("%v–%v: %q, want %q", tt.t0, tt.t1, strings.Join(got, " "), tt.want)
		}
	}
}

func TestDeterministic(t *testing.T) {
	c := BarChart{Title: "a", Labels: days(3), Rx: []uint64{1, 2, 3}, Tx: []uint64{3, 2, 1}}
	a, _ := render(t, func(w io.Writer) error { return Bars(w, c) })
	b, _ := render(t, func(w io.Writer) error { return Bars(w, c) })
	c.Title = "b"
	other, _ := render(t, func(w io.Writer) error { return Bars(w, c) })
	if !bytes.Equal(a, b) {
		t.Errorf("two renderings differ")
	}
	id := regexp.MustCompile(`id="(nm[0-9a-f]+)-title"`)
	if id.FindSubmatch(a)[1] == nil || bytes.Equal(id.FindSubmatch(a)[1], id.FindSubmatch(other)[1]) {
		t.Errorf("charts with other titles share the id prefix")
	}
}

// TestGolden compares one bar chart and one line chart with the files in
// testdata (go test -update rewrites them).
func TestGolden(t *testing.T) {
	loc := time.FixedZone("+0545", 5*3600+45*60)
	ts := fiveMinutes(48, loc)
	rx, tx := make([]float64, len(ts)), make([]float64, len(ts))
	for i := range ts {
		rx[i] = 2e6 * (1 + math.Sin(float64(i)/6))
		tx[i] = 3e5 * (1 + math.Cos(float64(i)/8))
	}
	rx[20] = math.NaN()
	for _, g := range []struct {
		file string
		draw func(io.Writer) error
	}{
		{"bars.golden.svg", func(w io.Writer) error {
			return Bars(w, BarChart{Title: "eth0 — daily", Labels: days(10),
				Rx:       []uint64{1 << 30, 3 << 29, 2 << 30, 900 << 20, 0, 1, 5 << 28, 3 << 30, 2500 << 20, 400 << 20},
				Tx:       []uint64{1 << 28, 1 << 27, 3 << 28, 100 << 20, 0, 1, 1 << 29, 1 << 30, 700 << 20, 100 << 20},
				Estimate: &Estimate{Rx: 1200 << 20, Tx: 300 << 20}})
		}},
		{"line.golden.svg", func(w io.Writer) error {
			return Line(w, LineChart{Title: "eth0 — 4 hours", Times: ts, Rx: rx, Tx: tx, Dark: true})
		}},
	} {
		got, _ := render(t, g.draw)
		path := filepath.Join("testdata", g.file)
		if *update {
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (go test -update writes it)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from the output (go test -update rewrites it); got:\n%s", path, got)
		}
	}
}
