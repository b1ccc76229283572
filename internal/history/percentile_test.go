package history

import (
	"math/rand/v2"
	"testing"
	"time"
)

// 100 five-minute samples whose rates are 1..100 B/s, in a shuffled order:
// nearest rank gives the 95th value, 95 B/s.
func TestPercentileNearestRank(t *testing.T) {
	base := time.Date(2026, 5, 4, 0, 0, 0, 0, time.UTC)
	end := base.Add(100 * 5 * time.Minute)
	s := openTest(t, Options{Location: time.UTC, Retention: keepAll, Now: func() time.Time { return end.Add(time.Hour) }})
	rates := rand.New(rand.NewPCG(1, 2)).Perm(100)
	for i, r := range rates {
		r++ // 1..100 B/s
		d := map[Entity]Counters{
			eth0: {RxBytes: uint64(r) * 100},
			eth1: {RxBytes: uint64(r) * 200},
		}
		if r <= 5 { // five samples send 1000 B/s: max(rx, tx) differs from rx
			d[eth1] = Counters{RxBytes: uint64(r) * 200, TxBytes: 1000 * 300}
		}
		// Two Records in the slot: a sample is the slot's sum.
		mustRecord(t, s, base.Add(time.Duration(i)*5*time.Minute), map[Entity]Counters{eth0: {RxBytes: 0}})
		mustRecord(t, s, base.Add(time.Duration(i)*5*time.Minute+time.Minute), d)
	}
	set := []Entity{eth0, eth1}
	for _, tt := range []struct {
		p           float64
		rx, tx, max float64
	}{
		{95, 95, 0, 100}, // max: 6..100 and five times 1000
		{96, 96, 1000, 1000},
		{100, 100, 1000, 1000},
		{50, 50, 0, 55},
		{1, 1, 0, 6},
		{0.5, 1, 0, 6},
	} {
		got, err := s.Percentile(set, base, end, tt.p)
		if err != nil {
			t.Fatal(err)
		}
		want := PercentileResult{Percentile: tt.p, Rx: tt.rx, Tx: tt.tx, Max: tt.max, Samples: 100}
		if got != want {
			t.Errorf("p%v = %+v, want %+v", tt.p, got, want)
		}
	}
	if got, _ := s.Percentile([]Entity{eth0}, base, end, 95); got.Rx != 95.0/3 || got.Samples != 100 {
		t.Errorf("eth0 alone: %+v, want rx 95/3 B/s", got)
	}
	// The last slot is incomplete at end−1 min: not a sample.
	if got, _ := s.Percentile(set, base, end.Add(-time.Minute), 95); got.Samples != 99 {
		t.Errorf("%d samples up to a slot's middle, want 99", got.Samples)
	}
	// A zero end is now (an hour after the last sample); a zero begin is
	// unbounded.
	if got, _ := s.Percentile(set, time.Time{}, time.Time{}, 95); got.Samples != 100 || got.Rx != 95 {
		t.Errorf("unbounded: %+v", got)
	}
	for _, p := range []float64{0, -1, 100.5} {
		if _, err := s.Percentile(set, base, end, p); err == nil {
			t.Errorf("p=%v accepted", p)
		}
	}
}

// A slot in which the recorder ran but these entities had no traffic is a
// 0 B/s sample; a slot in which nothing was recorded (downtime) is none.
func TestPercentileSamplesIdleAndDowntime(t *testing.T) {
	base := time.Date(2026, 5, 4, 0, 0, 0, 0, time.UTC)
	s := openTest(t, Options{Location: time.UTC, Retention: keepAll, Now: func() time.Time { return base.Add(24 * time.Hour) }})
	slot := func(i int) time.Time { return base.Add(time.Duration(i) * 5 * time.Minute) }
	for i := range 5 { // idle for eth0: another entity's traffic, or none
		d := map[Entity]Counters{eth1: {RxBytes: 300}}
		if i == 4 {
			d = nil
		}
		mustRecord(t, s, slot(i), d)
	}
	for i := 5; i < 10; i++ {
		mustRecord(t, s, slot(i), map[Entity]Counters{eth0: {RxBytes: 300 * 10}})
	}
	// Slots 10..19: the agent was down. Slot 20: back.
	mustRecord(t, s, slot(20), map[Entity]Counters{eth0: {RxBytes: 300 * 20}})
	// Sorted: 0 ×5, 10 ×5, 20 (B/s).
	for p, want := range map[float64]float64{45: 0, 50: 10, 95: 20} {
		got, err := s.Percentile([]Entity{eth0}, base, slot(21), p)
		if err != nil {
			t.Fatal(err)
		}
		if got.Samples != 11 || got.Rx != want {
			t.Errorf("p%v = %+v, want 11 samples and %v B/s", p, got, want)
		}
	}
	if got, err := s.Percentile([]Entity{{KindProcess, "never"}}, base, slot(21), 95); err != nil || got.Samples != 11 || got.Max != 0 {
		t.Errorf("an entity never seen: %+v, %v", got, err)
	}
}

func TestPercentileTruncatedByRetention(t *testing.T) {
	base := time.Date(2026, 5, 4, 0, 0, 0, 0, time.UTC)
	c := &clock{}
	s := openTest(t, Options{Location: time.UTC, Retention: Retention{FiveMin: time.Hour}, Now: c.Now})
	newcomer := Entity{KindContainer, "new"}
	for i := range 36 { // three hours
		at := base.Add(time.Duration(i) * 5 * time.Minute)
		c.Set(at)
		d := map[Entity]Counters{eth0: {RxBytes: 300}}
		if i >= 26 {
			d[newcomer] = Counters{TxBytes: 300}
		}
		mustRecord(t, s, at, d)
	}
	now := base.Add(3 * time.Hour)
	c.Set(now)
	if err := s.Prune(now); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name      string
		e         Entity
		begin     time.Time
		samples   int
		truncated bool
	}{
		{"three hours asked, the last one kept", eth0, base, 12, true},
		{"within the retention", eth0, now.Add(-30 * time.Minute), 6, false},
		{"an entity younger than the retention", newcomer, base, 12, false},
	} {
		got, err := s.Percentile([]Entity{tt.e}, tt.begin, time.Time{}, 95)
		if err != nil {
			t.Fatal(err)
		}
		if got.Samples != tt.samples || got.Truncated != tt.truncated {
			t.Errorf("%s: %+v, want %d samples, truncated %v", tt.name, got, tt.samples, tt.truncated)
		}
	}
}
