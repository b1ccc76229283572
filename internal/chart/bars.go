package chart

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// BarChart is a bar chart of received (rx) and sent (tx) totals per period:
// for each label an rx bar and a tx bar side by side.
type BarChart struct {
	// Title is shown on top and is the document's <title>.
	Title string
	// Unit of Rx and Tx: UnitBytes (the default when empty),
	// UnitBytesPerSec or UnitBitsPerSec.
	Unit string
	// Labels name the periods, oldest first ("2026-11-01"); Rx and Tx hold
	// one value per label.
	Labels []string
	Rx, Tx []uint64
	// Estimate, if set, is the expected total of the last (current,
	// unfinished) period: the part above its bars is drawn hatched.
	Estimate *Estimate
	// Width and Height in pixels; 0 means DefaultWidth, DefaultHeight.
	Width, Height int
	// Dark selects the dark palette.
	Dark bool
}

// Estimate is the expected full-period total of the last bar.
type Estimate struct {
	Rx, Tx uint64
}

// Layout of the plot area, in pixels.
const (
	marginTop    = 58 // title and legend
	marginRight  = 16
	marginBottom = 40 // x labels
	tickLen      = 4
	labelMaxRune = 14 // longer labels are cut with "…" (the tooltip has them whole)
	charWidth    = 6.6
)

// Bars writes c as an SVG document to w. A chart without labels says
// "no data".
func Bars(w io.Writer, c BarChart) error {
	width, height, err := size(c.Width, c.Height)
	if err != nil {
		return err
	}
	if c.Unit == "" {
		c.Unit = UnitBytes
	}
	units, err := ladder(c.Unit)
	if err != nil {
		return err
	}
	n := len(c.Labels)
	if len(c.Rx) != n || len(c.Tx) != n {
		return fmt.Errorf("bar chart: %d labels, %d rx and %d tx values: want one of each per label", n, len(c.Rx), len(c.Tx))
	}
	if c.Estimate != nil && n == 0 {
		return errors.New("bar chart: an estimate needs a period to belong to")
	}
	p := paletteFor(c.Dark)
	d := newDoc(width, height, "bars\x00"+c.Title+"\x00"+strings.Join(c.Labels, "\x00"))
	d.header(width, p, c.Title, "Received and sent traffic per period", barsDesc(c, units))
	if n == 0 {
		d.noData(width, height, p)
		return d.finish(w)
	}

	maxV := 0.0
	for i := range n {
		maxV = math.Max(maxV, math.Max(float64(c.Rx[i]), float64(c.Tx[i])))
	}
	if e := c.Estimate; e != nil {
		maxV = math.Max(maxV, math.Max(float64(e.Rx), float64(e.Tx)))
	}
	plotH := float64(height - marginTop - marginBottom)
	ax := niceAxis(units, maxV, max(2, min(6, int(plotH/40))))
	left := float64(axisWidth(ax)) + 10
	x0, x1 := left, float64(width-marginRight)
	y0, y1 := float64(marginTop), float64(height-marginBottom)
	yOf := func(v float64) float64 { return y1 - v/ax.top*(y1-y0) }

	var hatchRx, hatchTx string
	if c.Estimate != nil {
		d.open("defs")
		hatchRx, hatchTx = d.hatch("hatch-rx", p.rx), d.hatch("hatch-tx", p.tx)
		d.close("defs")
	}
	items := []legendItem{{"received (rx)", p.rx, "1", "none"}, {"sent (tx)", p.tx, "1", "none"}}
	if c.Estimate != nil {
		items = append(items, legendItem{"estimate", hatchRx, "1", p.rx})
	}
	d.legend(x0, 44, p, items)
	d.valueAxis(ax, p, x0, x1, yOf)

	// Bars: per label a group of two, 80 % of the slot wide.
	slot := (x1 - x0) / float64(n)
	bw := slot * 0.8 / 2
	d.open("g", "class", "bars")
	for i := range n {
		gx := x0 + float64(i)*slot + slot*0.1
		label := c.Labels[i]
		for k, s := range []struct {
			class, dir, fill, hatch string
			v                       uint64
			est                     func(*Estimate) uint64
		}{
			{"rx", "received", p.rx, hatchRx, c.Rx[i], func(e *Estimate) uint64 { return e.Rx }},
			{"tx", "sent", p.tx, hatchTx, c.Tx[i], func(e *Estimate) uint64 { return e.Tx }},
		} {
			x := gx + float64(k)*bw
			v := float64(s.v)
			text := fmt.Sprintf("%s: %s %s", label, s.dir, units.human(v))
			d.titled("rect", fmt.Sprintf("%s (%s %s)", text, strconv.FormatUint(s.v, 10), c.Unit),
				"class", "bar "+s.class, "x", num(x), "y", num(yOf(v)), "width", num(bw), "height", num(y1-yOf(v)),
				"fill", s.fill, "role", "img", "aria-label", text)
			if c.Estimate != nil && i == n-1 {
				if e := s.est(c.Estimate); e > s.v {
					et := fmt.Sprintf("%s: estimated %s %s", label, s.dir, units.human(float64(e)))
					d.titled("rect", fmt.Sprintf("%s (%s %s)", et, strconv.FormatUint(e, 10), c.Unit),
						"class", "estimate "+s.class, "x", num(x), "y", num(yOf(float64(e))), "width", num(bw),
						"height", num(yOf(v)-yOf(float64(e))), "fill", s.hatch, "stroke", s.fill,
						"stroke-width", "1", "stroke-dasharray", "3 2", "role", "img", "aria-label", et)
				}
			}
		}
	}
	d.close("g")

	// Period labels under the bars, every k-th so that they do not overlap.
	longest := 0
	for _, l := range c.Labels {
		longest = max(longest, min(labelMaxRune, utf8.RuneCountInString(l)))
	}
	every := int(math.Ceil(float64(longest)*charWidth/(slot-4) + 1e-9))
	every = max(1, every)
	d.open("g", "class", "x-labels", "font-size", "11", "fill", p.text, "text-anchor", "middle", "aria-hidden", "true")
	for i := 0; i < n; i += every {
		cx := x0 + (float64(i)+0.5)*slot
		d.leaf("line", "x1", num(cx), "y1", num(y1), "x2", num(cx), "y2", num(y1+tickLen), "stroke", p.axis)
		d.text("text", ellipsis(c.Labels[i], labelMaxRune), "x", num(cx), "y", num(y1+17))
	}
	d.close("g")
	return d.finish(w)
}

// axisWidth is the room the value axis' labels need, in pixels.
func axisWidth(ax axis) int {
	w := 0
	for _, v := range ax.ticks() {
		w = max(w, utf8.RuneCountInString(ax.label(v)))
	}
	return int(float64(w)*charWidth) + tickLen + 4
}

// valueAxis draws grid lines, ticks and labels of ax left of x0 and the
// baseline.
func (d *doc) valueAxis(ax axis, p palette, x0, x1 float64, yOf func(float64) float64) {
	d.open("g", "class", "y-axis", "font-size", "11", "fill", p.muted, "text-anchor", "end", "aria-hidden", "true")
	for _, v := range ax.ticks() {
		y := yOf(v)
		stroke := p.grid
		if v == 0 {
			stroke = p.axis
		}
		d.leaf("line", "class", "grid", "x1", num(x0-tickLen), "y1", num(y), "x2", num(x1), "y2", num(y),
			"stroke", stroke, "stroke-width", "1")
		d.text("text", ax.label(v), "class", "tick", "x", num(x0-tickLen-3), "y", num(y+4))
	}
	d.close("g")
}

// barsDesc summarises the chart for screen readers.
func barsDesc(c BarChart, units unitLadder) string {
	n := len(c.Labels)
	if n == 0 {
		return "Bar chart of received and sent traffic: no data."
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Bar chart of received (rx) and sent (tx) traffic for %d period", n)
	if n > 1 {
		fmt.Fprintf(&b, "s from %s to %s", c.Labels[0], c.Labels[n-1])
	} else {
		fmt.Fprintf(&b, ", %s", c.Labels[0])
	}
	b.WriteString(".")
	for _, s := range []struct {
		name string
		v    []uint64
	}{{"Received", c.Rx}, {"Sent", c.Tx}} {
		var sum float64
		top := 0
		for i, v := range s.v {
			sum += float64(v)
			if v > s.v[top] {
				top = i
			}
		}
		fmt.Fprintf(&b, " %s %s in total, most %s on %s.", s.name, units.human(sum), units.human(float64(s.v[top])), c.Labels[top])
	}
	if e := c.Estimate; e != nil {
		fmt.Fprintf(&b, " Estimate for %s: received %s, sent %s.", c.Labels[n-1], units.human(float64(e.Rx)), units.human(float64(e.Tx)))
	}
	return b.String()
}
