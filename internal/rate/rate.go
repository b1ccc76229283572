// Package rate computes throughput from counter deltas: the current
// per-interval rate, moving windows over wall-clock time (iftop's 2 s, 10 s
// and 40 s), and session minimum, average and maximum.
//
// Windows are measured against the time passed to Stats, not against the
// time of the last sample, so a rate falls to zero when traffic stops even if
// no further samples arrive (nethogs' frozen-rate bug cannot happen).
package rate

import (
	"math"
	"time"

	"github.com/netmeter/netmeter/internal/snapshot"
)

// Windows are the moving-average windows reported in snapshot.Rate.
var Windows = [3]time.Duration{2 * time.Second, 10 * time.Second, 40 * time.Second}

// maxSamples bounds memory per meter whatever the tick interval.
const maxSamples = 4096

// EWMATau is the time constant of Rate.EWMA: after a step change the
// average has moved 63 % of the way in EWMATau.
const EWMATau = 5 * time.Second

// RecentLen is how many per-interval rates Recent keeps.
const RecentLen = 60

type sample struct {
	at    time.Time // end of the interval
	delta uint64
}

// Meter accumulates deltas of one counter. The zero value is not usable;
// call New.
type Meter struct {
	start    time.Time
	samples  []sample // oldest first, pruned to the longest window
	last     sample
	lastRate float64
	min, max float64
	rated    bool // min/max hold at least one interval
	total    uint64
	ewma     float64
	recent   [RecentLen]float64 // ring of per-interval rates
	nRecent  int
}

// New returns a meter whose session starts at start.
func New(start time.Time) *Meter {
	return &Meter{start: start, last: sample{at: start}}
}

// Add records delta units counted between the previous Add (or the start) and
// now. Calls with a time not after the previous one are merged into it.
func (m *Meter) Add(now time.Time, delta uint64) {
	m.total += delta
	elapsed := now.Sub(m.last.at)
	if elapsed <= 0 {
		// No time passed: fold into the newest sample.
		if n := len(m.samples); n > 0 {
			m.samples[n-1].delta += delta
		}
		return
	}
	r := float64(delta) / elapsed.Seconds()
	m.lastRate = r
	if !m.rated || r < m.min {
		m.min = r
	}
	if !m.rated || r > m.max {
		m.max = r
	}
	if m.rated {
		m.ewma += (1 - math.Exp(-elapsed.Seconds()/EWMATau.Seconds())) * (r - m.ewma)
	} else {
		m.ewma = r
	}
	m.recent[m.nRecent%RecentLen] = r
	m.nRecent++
	m.rated = true
	m.last = sample{at: now, delta: delta}
	m.samples = append(m.samples, m.last)
	m.prune(now)
}

func (m *Meter) prune(now time.Time) {
	oldest := now.Add(-Windows[len(Windows)-1])
	i := 0
	for i < len(m.samples) && !m.samples[i].at.After(oldest) {
		i++
	}
	if len(m.samples)-i > maxSamples {
		i = len(m.samples) - maxSamples
	}
	if i > 0 {
		m.samples = append(m.samples[:0], m.samples[i:]...)
	}
}

// Recent returns up to RecentLen of the latest per-interval rates, oldest
// first.
func (m *Meter) Recent() []float64 {
	n := min(m.nRecent, RecentLen)
	out := make([]float64, n)
	for i := range n {
		out[i] = m.recent[(m.nRecent-n+i)%RecentLen]
	}
	return out
}

// Total returns everything added since the start.
func (m *Meter) Total() uint64 { return m.total }

// Window returns the average rate over the last w of wall-clock time before
// now. Early in a session the divisor is the time since the start.
func (m *Meter) Window(now time.Time, w time.Duration) float64 {
	from := now.Add(-w)
	span := w
	if from.Before(m.start) {
		span = now.Sub(m.start)
	}
	if span <= 0 {
		return 0
	}
	var sum uint64
	for i := len(m.samples) - 1; i >= 0 && m.samples[i].at.After(from); i-- {
		if !m.samples[i].at.After(now) {
			sum += m.samples[i].delta
		}
	}
	return float64(sum) / span.Seconds()
}

// Stats returns the rates as of now. The current rate is that of the last
// interval while it is fresh, and zero once a full interval passes without an
// Add.
func (m *Meter) Stats(now time.Time) snapshot.Rate {
	r := snapshot.Rate{
		Window2s:  m.Window(now, Windows[0]),
		Window10s: m.Window(now, Windows[1]),
		Window40s: m.Window(now, Windows[2]),
		Min:       m.min,
		Max:       m.max,
		EWMA:      m.ewma,
	}
	if el := now.Sub(m.start); el > 0 {
		r.Avg = float64(m.total) / el.Seconds()
	}
	if n := len(m.samples); n > 0 {
		interval := m.last.at.Sub(m.start)
		if n > 1 {
			interval = m.last.at.Sub(m.samples[n-2].at)
		}
		if now.Sub(m.last.at) <= interval {
			r.Current = m.lastRate
		}
	}
	return r
}
