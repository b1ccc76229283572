package chart

import (
	"fmt"
	"math"
	"strconv"
)

// Units a chart's values can have.
const (
	UnitBytes       = "bytes"   // binary prefixes: B, KiB, MiB, …
	UnitBytesPerSec = "bytes/s" // B/s, KiB/s, MiB/s, …
	UnitBitsPerSec  = "bits/s"  // decimal prefixes: bit/s, kbit/s, Mbit/s, …
)

// prefix is one step of a unit ladder.
type prefix struct {
	name   string
	factor float64
}

type unitLadder []prefix

func ladder(unit string) (unitLadder, error) {
	switch unit {
	case UnitBytes:
		return binaryLadder(""), nil
	case UnitBytesPerSec:
		return binaryLadder("/s"), nil
	case UnitBitsPerSec:
		names := []string{"bit/s", "kbit/s", "Mbit/s", "Gbit/s", "Tbit/s", "Pbit/s", "Ebit/s"}
		l := make(unitLadder, len(names))
		for i, n := range names {
			l[i] = prefix{n, math.Pow(1000, float64(i))}
		}
		return l, nil
	}
	return nil, fmt.Errorf("chart unit %q: want %q, %q or %q", unit, UnitBytes, UnitBytesPerSec, UnitBitsPerSec)
}

func binaryLadder(suffix string) unitLadder {
	names := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	l := make(unitLadder, len(names))
	for i, n := range names {
		l[i] = prefix{n + suffix, math.Pow(1024, float64(i))}
	}
	return l
}

// pick returns the largest prefix not above v (the first for v < 1).
func (l unitLadder) pick(v float64) prefix {
	p := l[0]
	for _, q := range l[1:] {
		if v >= q.factor {
			p = q
		}
	}
	return p
}

// human formats v with the best prefix and up to two decimals: "1.5 GiB".
func (l unitLadder) human(v float64) string {
	p := l.pick(v)
	x := v / p.factor
	if p.factor == 1 {
		return strconv.FormatFloat(math.Round(x*100)/100, 'f', -1, 64) + " " + p.name
	}
	return strconv.FormatFloat(x, 'f', 2, 64) + " " + p.name
}

// axis is a value axis from 0 to top with ticks every step, labelled in
// one prefix.
type axis struct {
	top, step float64 // in base units (bytes, bits/s)
	prefix    prefix
}

// niceAxis returns an axis from 0 covering maxV with about target ticks,
// each a round number (1, 2, 2.5 or 5 times a power of ten) of the prefix
// that suits maxV; steps of less than one base unit are not used.
func niceAxis(l unitLadder, maxV float64, target int) axis {
	if !(maxV > 0) {
		return axis{top: 1, step: 1, prefix: l[0]}
	}
	p := l.pick(maxV)
	raw := maxV / p.factor / float64(target)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := 10 * mag
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= raw*(1-1e-12) {
			step = m * mag
			break
		}
	}
	step *= p.factor
	if step < 1 {
		step = 1
	}
	top := math.Ceil(maxV/step*(1-1e-12)) * step
	return axis{top: top, step: step, prefix: p}
}

// ticks returns the tick values from 0 to top.
func (a axis) ticks() []float64 {
	n := int(math.Round(a.top / a.step))
	t := make([]float64, n+1)
	for i := range t {
		t[i] = float64(i) * a.step
	}
	return t
}

// label formats tick value v in the axis' prefix: "512 MiB", "2.5 GiB".
func (a axis) label(v float64) string {
	if v == 0 {
		return "0"
	}
	x := math.Round(v/a.prefix.factor*1000) / 1000
	return strconv.FormatFloat(x, 'f', -1, 64) + " " + a.prefix.name
}
