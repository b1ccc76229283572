package tui

import (
	"math"
	"strings"
)

// levels are the eighth-blocks of a bar; a zero sample is a blank.
var levels = []rune("▁▂▃▄▅▆▇█")

// bars draws the last width samples as a bar chart height rows tall, newest
// on the right, each bar scaled to the largest of the samples shown (which
// is returned, for the scale label). A chart narrower than width is padded
// on the left; NaN, infinite and negative samples count as zero. Rows are
// returned top first.
func bars(samples []float64, width, height int) ([]string, float64) {
	if width <= 0 || height <= 0 {
		return nil, 0
	}
	if len(samples) > width {
		samples = samples[len(samples)-width:]
	}
	peak := 0.0
	for _, v := range samples {
		if valid(v) && v > peak {
			peak = v
		}
	}
	steps := height * len(levels)
	lv := make([]int, len(samples))
	for i, v := range samples {
		if !valid(v) || v <= 0 || peak <= 0 {
			continue
		}
		lv[i] = max(1, min(steps, int(math.Ceil(v/peak*float64(steps)))))
	}
	rows := make([]string, height)
	var b strings.Builder
	for r := range height {
		b.Reset()
		b.WriteString(strings.Repeat(" ", width-len(samples)))
		floor := (height - 1 - r) * len(levels) // eighths below this row
		for _, l := range lv {
			switch n := l - floor; {
			case n <= 0:
				b.WriteByte(' ')
			case n >= len(levels):
				b.WriteRune(levels[len(levels)-1])
			default:
				b.WriteRune(levels[n-1])
			}
		}
		rows[r] = b.String()
	}
	return rows, peak
}

func valid(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) && v >= 0 }
