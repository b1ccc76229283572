package rate

import (
	"math"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

func at(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9*math.Max(1, math.Abs(b)) }

func TestSteadyRate(t *testing.T) {
	m := New(t0)
	for i := 1; i <= 60; i++ {
		m.Add(at(float64(i)), 1000)
	}
	s := m.Stats(at(60))
	for name, got := range map[string]float64{"current": s.Current, "2s": s.Window2s, "10s": s.Window10s, "40s": s.Window40s, "min": s.Min, "avg": s.Avg, "max": s.Max} {
		if !near(got, 1000) {
			t.Errorf("%s = %v, want 1000", name, got)
		}
	}
	if m.Total() != 60000 {
		t.Errorf("total = %d", m.Total())
	}
}

// TestFallsToZero is nethogs' frozen-rate bug: traffic stops and the rate
// must fall, whether or not samples keep arriving.
func TestFallsToZero(t *testing.T) {
	for _, ticking := range []bool{true, false} {
		m := New(t0)
		for i := 1; i <= 10; i++ {
			m.Add(at(float64(i)), 5000)
		}
		if ticking {
			for i := 11; i <= 51; i++ {
				m.Add(at(float64(i)), 0)
			}
		}
		s := m.Stats(at(51))
		if s.Current != 0 || s.Window2s != 0 || s.Window10s != 0 || s.Window40s != 0 {
			t.Errorf("ticking=%v: rates did not fall to zero: %+v", ticking, s)
		}
		if !near(s.Max, 5000) || !near(s.Avg, 50000.0/51) {
			t.Errorf("ticking=%v: session stats wrong: %+v", ticking, s)
		}
		if ticking && s.Min != 0 {
			t.Errorf("min = %v, want 0", s.Min)
		}
	}
}

func TestWindows(t *testing.T) {
	m := New(t0)
	// 40 s of 100/s, then 8 s of 1100/s, then 2 s of 10100/s.
	for i := 1; i <= 50; i++ {
		d := uint64(100)
		if i > 40 {
			d = 1100
		}
		if i > 48 {
			d = 10100
		}
		m.Add(at(float64(i)), d)
	}
	s := m.Stats(at(50))
	if !near(s.Window2s, 10100) {
		t.Errorf("2s = %v", s.Window2s)
	}
	if want := (2*10100 + 8*1100) / 10.0; !near(s.Window10s, want) {
		t.Errorf("10s = %v, want %v", s.Window10s, want)
	}
	if want := (2*10100 + 8*1100 + 30*100) / 40.0; !near(s.Window40s, want) {
		t.Errorf("40s = %v, want %v", s.Window40s, want)
	}
	if s.Min != 100 || s.Max != 10100 || !near(s.Current, 10100) {
		t.Errorf("min/max/current = %v/%v/%v", s.Min, s.Max, s.Current)
	}
}

func TestEarlySessionDividesByElapsed(t *testing.T) {
	m := New(t0)
	m.Add(at(1), 3000)
	s := m.Stats(at(1))
	if !near(s.Window40s, 3000) || !near(s.Window10s, 3000) {
		t.Errorf("early windows = %+v, want 3000", s)
	}
}

func TestIrregularIntervals(t *testing.T) {
	m := New(t0)
	m.Add(at(0.5), 500)  // 1000/s
	m.Add(at(2.5), 8000) // 4000/s
	s := m.Stats(at(2.5))
	if !near(s.Current, 4000) || !near(s.Min, 1000) || !near(s.Max, 4000) || !near(s.Avg, 8500/2.5) {
		t.Errorf("stats = %+v", s)
	}
	// Zero-length interval folds into the previous sample.
	m.Add(at(2.5), 100)
	if m.Total() != 8600 || !near(m.Window(at(2.5), 2*time.Second), 8100/2.0) {
		t.Errorf("fold: total %d window %v", m.Total(), m.Window(at(2.5), 2*time.Second))
	}
}

func TestBounded(t *testing.T) {
	m := New(t0)
	for i := 1; i <= 100000; i++ {
		m.Add(t0.Add(time.Duration(i)*time.Millisecond), 1)
	}
	if len(m.samples) > maxSamples {
		t.Fatalf("%d samples kept, bound is %d", len(m.samples), maxSamples)
	}
}

func BenchmarkAddStats(b *testing.B) {
	b.ReportAllocs()
	m := New(t0)
	for i := 0; b.Loop(); i++ {
		now := t0.Add(time.Duration(i+1) * time.Second)
		m.Add(now, 1500)
		_ = m.Stats(now)
	}
}

func TestEWMAAndRecent(t *testing.T) {
	m := New(t0)
	for i := 1; i <= 5; i++ {
		m.Add(at(float64(i)), 0)
	}
	for i := 6; i <= 10; i++ { // a step to 1000/s for EWMATau
		m.Add(at(float64(i)), 1000)
	}
	if got, want := m.Stats(at(10)).EWMA, 1000*(1-math.Exp(-5/EWMATau.Seconds())); !near(got, want) {
		t.Errorf("EWMA after one time constant = %v, want %v", got, want)
	}
	r := m.Recent()
	if len(r) != 10 || r[0] != 0 || r[9] != 1000 {
		t.Errorf("Recent = %v", r)
	}
	for i := 11; i <= 100; i++ {
		m.Add(at(float64(i)), uint64(i))
	}
	r = m.Recent()
	if len(r) != RecentLen || r[0] != 41 || r[RecentLen-1] != 100 {
		t.Errorf("Recent after wrap: len %d first %v last %v", len(r), r[0], r[len(r)-1])
	}
}
