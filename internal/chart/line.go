package chart

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// LineChart is a received (rx) and sent (tx) rate over time, one point per
// interval (5 minutes, an hour).
type LineChart struct {
	// Title is shown on top and is the document's <title>.
	Title string
	// Unit of Rx and Tx: UnitBytesPerSec (the default when empty),
	// UnitBitsPerSec or UnitBytes.
	Unit string
	// Times are the points' times, strictly increasing; the time axis is
	// labelled in the first one's Location. Rx and Tx hold one rate per
	// time: finite and not negative, or NaN for "no sample", which breaks
	// the line. The line also breaks where two points are more than 1.5
	// times the usual (median) interval apart: a missing interval.
	Times  []time.Time
	Rx, Tx []float64
	// Width and Height in pixels; 0 means DefaultWidth, DefaultHeight.
	Width, Height int
	// Dark selects the dark palette.
	Dark bool
}

// Line writes c as an SVG document to w. A chart without points (or only
// NaN ones) says "no data".
func Line(w io.Writer, c LineChart) error {
	width, height, err := size(c.Width, c.Height)
	if err != nil {
		return err
	}
	if c.Unit == "" {
		c.Unit = UnitBytesPerSec
	}
	units, err := ladder(c.Unit)
	if err != nil {
		return err
	}
	n := len(c.Times)
	if len(c.Rx) != n || len(c.Tx) != n {
		return fmt.Errorf("line chart: %d times, %d rx and %d tx values: want one of each per time", n, len(c.Rx), len(c.Tx))
	}
	maxV, samples := 0.0, 0
	for i := range n {
		if i > 0 && !c.Times[i].After(c.Times[i-1]) {
			return fmt.Errorf("line chart: time %d (%v) is not after time %d (%v)", i, c.Times[i], i-1, c.Times[i-1])
		}
		for _, v := range []float64{c.Rx[i], c.Tx[i]} {
			if math.IsNaN(v) {
				continue
			}
			if math.IsInf(v, 0) || v < 0 {
				return fmt.Errorf("line chart: value %v at %v: want a finite rate ≥ 0 (or NaN for none)", v, c.Times[i])
			}
			maxV = math.Max(maxV, v)
			samples++
		}
	}
	p := paletteFor(c.Dark)
	key := "line\x00" + c.Title
	if n > 0 {
		key += "\x00" + c.Times[0].String() + "\x00" + c.Times[n-1].String()
	}
	d := newDoc(width, height, key)
	d.header(width, p, c.Title, "Received and sent rate over time", lineDesc(c, units, samples))
	if samples == 0 {
		d.noData(width, height, p)
		return d.finish(w)
	}

	plotH := float64(height - marginTop - marginBottom)
	ax := niceAxis(units, maxV, max(2, min(6, int(plotH/40))))
	x0 := float64(axisWidth(ax)) + 10
	x1 := float64(width - marginRight)
	y0, y1 := float64(marginTop), float64(height-marginBottom)
	t0, t1 := c.Times[0], c.Times[n-1]
	span := t1.Sub(t0)
	xOf := func(t time.Time) float64 {
		if span <= 0 {
			return (x0 + x1) / 2
		}
		return x0 + float64(t.Sub(t0))/float64(span)*(x1-x0)
	}
	yOf := func(v float64) float64 { return y1 - v/ax.top*(y1-y0) }

	d.legend(x0, 44, p, []legendItem{{"received (rx)", p.rx, "1", "none"}, {"sent (tx)", p.tx, "1", "none"}})
	d.valueAxis(ax, p, x0, x1, yOf)
	d.timeAxis(c.Times, p, x0, x1, y1, xOf)

	gap := usualStep(c.Times) * 3 / 2
	for _, s := range []struct {
		class, dir, colour string
		v                  []float64
	}{{"rx", "received", p.rx, c.Rx}, {"tx", "sent", p.tx, c.Tx}} {
		var path, dots strings.Builder
		peak := -1
		prev := -1 // index of the previous point drawn, -1 after a NaN
		for i, v := range s.v {
			if math.IsNaN(v) {
				prev = -1
				continue
			}
			if peak < 0 || v > s.v[peak] {
				peak = i
			}
			pt := num(xOf(c.Times[i])) + "," + num(yOf(v))
			if prev < 0 || c.Times[i].Sub(c.Times[prev]) > gap {
				if path.Len() > 0 {
					path.WriteByte(' ')
				}
				path.WriteString("M" + pt)
			} else {
				path.WriteString(" L" + pt)
			}
			prev = i
			if isLone(s.v, c.Times, i, gap) {
				fmt.Fprintf(&dots, " M%s h0", pt)
			}
		}
		if peak < 0 {
			continue // this direction has no sample at all
		}
		label := fmt.Sprintf("%s rate, peak %s at %s", s.dir, units.human(s.v[peak]), timeLabel(c.Times[peak], span))
		d.titled("path", label, "class", "line "+s.class, "d", path.String(), "fill", "none", "stroke", s.colour,
			"stroke-width", "1.75", "stroke-linejoin", "round", "stroke-linecap", "round", "role", "img", "aria-label", label)
		if dots.Len() > 0 {
			// Points with no neighbour on either side: a round dot each.
			d.leaf("path", "class", "dots "+s.class, "d", strings.TrimSpace(dots.String()), "fill", "none",
				"stroke", s.colour, "stroke-width", "4", "stroke-linecap", "round", "aria-hidden", "true")
		}
	}
	return d.finish(w)
}

// isLone reports whether point i has a value but no drawn neighbour: the
// points around it are NaN, missing or more than gap away.
func isLone(v []float64, ts []time.Time, i int, gap time.Duration) bool {
	if math.IsNaN(v[i]) {
		return false
	}
	linked := func(j int) bool {
		if j < 0 || j >= len(v) || math.IsNaN(v[j]) {
			return false
		}
		d := ts[i].Sub(ts[j])
		return d.Abs() <= gap
	}
	return !linked(i-1) && !linked(i+1)
}

// usualStep is the median interval between points (1 h if fewer than two).
func usualStep(ts []time.Time) time.Duration {
	if len(ts) < 2 {
		return time.Hour
	}
	d := make([]time.Duration, len(ts)-1)
	for i := range d {
		d[i] = ts[i+1].Sub(ts[i])
	}
	slices.Sort(d)
	return d[len(d)/2]
}

// timeSteps are the candidate intervals between time-axis ticks.
var timeSteps = []time.Duration{
	time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour,
	24 * time.Hour, 48 * time.Hour, 7 * 24 * time.Hour, 14 * 24 * time.Hour,
}

// timeTicks returns tick times in [t0, t1], on round wall-clock times of
// t0's Location (hh:00, midnights), at most maxTicks of them.
func timeTicks(t0, t1 time.Time, maxTicks int) ([]time.Time, time.Duration) {
	span := t1.Sub(t0)
	// Longer than the candidates cover: whole days, few enough.
	step := (span/time.Duration(max(1, maxTicks-1))/(24*time.Hour) + 1) * 24 * time.Hour
	for _, s := range timeSteps {
		if span/s < time.Duration(maxTicks) {
			step = s
			break
		}
	}
	loc := t0.Location()
	y, m, d := t0.Date()
	var ticks []time.Time
	if step < 24*time.Hour {
		mins := int(step / time.Minute)
		for k := 0; ; k++ {
			t := time.Date(y, m, d, 0, k*mins, 0, 0, loc)
			if t.After(t1) {
				break
			}
			if !t.Before(t0) && (len(ticks) == 0 || t.After(ticks[len(ticks)-1])) {
				ticks = append(ticks, t)
			}
		}
		return ticks, step
	}
	days := int(step / (24 * time.Hour))
	for k := 0; ; k++ {
		t := time.Date(y, m, d+k*days, 0, 0, 0, 0, loc)
		if t.After(t1) {
			break
		}
		if !t.Before(t0) {
			ticks = append(ticks, t)
		}
	}
	return ticks, step
}

// timeAxis draws the time ticks and labels under the plot.
func (d *doc) timeAxis(ts []time.Time, p palette, x0, x1, y1 float64, xOf func(time.Time) float64) {
	t0, t1 := ts[0], ts[len(ts)-1]
	ticks, step := timeTicks(t0, t1, max(2, int((x1-x0)/75)))
	if len(ticks) == 0 {
		ticks = []time.Time{t0}
	}
	d.open("g", "class", "x-labels", "font-size", "11", "fill", p.text, "text-anchor", "middle", "aria-hidden", "true")
	for _, t := range ticks {
		x := xOf(t)
		d.leaf("line", "class", "grid", "x1", num(x), "y1", num(marginTop), "x2", num(x), "y2", num(y1),
			"stroke", p.grid, "stroke-width", "1")
		d.leaf("line", "x1", num(x), "y1", num(y1), "x2", num(x), "y2", num(y1+tickLen), "stroke", p.axis)
		d.text("text", tickLabel(t, step), "class", "time", "x", num(x), "y", num(y1+17))
	}
	d.close("g")
}

// tickLabel is "15:04", or the date at midnight and for steps of days
// (with the year for steps of months).
func tickLabel(t time.Time, step time.Duration) string {
	if step >= 60*24*time.Hour {
		return t.Format("Jan 2 2006")
	}
	if step >= 24*time.Hour || t.Hour() == 0 && t.Minute() == 0 {
		return t.Format("Jan 2")
	}
	return t.Format("15:04")
}

// timeLabel formats a point's time for text: with the date unless the
// chart spans less than a day.
func timeLabel(t time.Time, span time.Duration) string {
	if span < 24*time.Hour {
		return t.Format("15:04 MST")
	}
	return t.Format("2006-01-02 15:04 MST")
}

// lineDesc summarises the chart for screen readers.
func lineDesc(c LineChart, units unitLadder, samples int) string {
	if samples == 0 {
		return "Line chart of received and sent rate: no data."
	}
	n := len(c.Times)
	var b strings.Builder
	fmt.Fprintf(&b, "Line chart of received (rx) and sent (tx) rate, %d points from %s to %s.",
		n, c.Times[0].Format("2006-01-02 15:04 MST"), c.Times[n-1].Format("2006-01-02 15:04 MST"))
	for _, s := range []struct {
		name string
		v    []float64
	}{{"Received", c.Rx}, {"Sent", c.Tx}} {
		peak := -1
		for i, v := range s.v {
			if !math.IsNaN(v) && (peak < 0 || v > s.v[peak]) {
				peak = i
			}
		}
		if peak < 0 {
			fmt.Fprintf(&b, " %s: no samples.", s.name)
			continue
		}
		fmt.Fprintf(&b, " %s peak %s at %s.", s.name, units.human(s.v[peak]), c.Times[peak].Format("2006-01-02 15:04 MST"))
	}
	return b.String()
}
