package history

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

type probe struct {
	res  Resolution
	at   time.Time
	kept bool
}

// present reports whether the bucket of res containing at has a row.
func present(t *testing.T, s *Store, res Resolution, at time.Time) bool {
	t.Helper()
	return len(mustQuery(t, s, Query{Entities: []Entity{eth0}, Resolution: res, Begin: at, End: at.Add(time.Nanosecond)})) > 0
}

func TestPruneBoundaries(t *testing.T) {
	loc := berlin(t)
	at := func(y int, m time.Month, d, h, min int) time.Time { return time.Date(y, m, d, h, min, 0, 0, loc) }
	now := at(2026, 6, 15, 12, 0) // a Monday
	for _, tt := range []struct {
		name   string
		ret    Retention
		probes []probe
	}{
		{"defaults", Retention{}, []probe{
			// 48 h of 5-minute rows: the row ending at now−48h goes.
			{Res5Min, at(2026, 6, 13, 11, 57), false},
			{Res5Min, at(2026, 6, 13, 12, 2), true},
			// 96 h of hours (UTC hours: Berlin is UTC+2 in June).
			{ResHour, at(2026, 6, 11, 11, 30), false},
			{ResHour, at(2026, 6, 11, 12, 30), true},
			// 62 days: today and the 61 before it, from 15 April.
			{ResDay, at(2026, 4, 14, 23, 30), false},
			{ResDay, at(2026, 4, 15, 0, 30), true},
			// 104 weeks: this one (from Monday 15 June 2026) and 103 before it.
			{ResWeek, at(2024, 6, 23, 23, 0), false},
			{ResWeek, at(2024, 6, 24, 1, 0), true},
			// 25 months: June 2026 and the 24 before it.
			{ResMonth, at(2024, 5, 31, 23, 0), false},
			{ResMonth, at(2024, 6, 1, 1, 0), true},
			// Years: forever.
			{ResYear, at(1999, 7, 1, 0, 0), true},
		}},
		{"custom", Retention{FiveMin: time.Hour, Hour: 3 * time.Hour, Days: 1, Weeks: 1, Months: 1, Years: 2}, []probe{
			{Res5Min, at(2026, 6, 15, 10, 57), false},
			{Res5Min, at(2026, 6, 15, 11, 2), true},
			{ResHour, at(2026, 6, 15, 8, 30), false},
			{ResHour, at(2026, 6, 15, 9, 30), true},
			{ResDay, at(2026, 6, 14, 23, 59), false},
			{ResDay, at(2026, 6, 15, 0, 0), true},
			{ResWeek, at(2026, 6, 14, 23, 59), false},
			{ResWeek, at(2026, 6, 15, 0, 1), true},
			{ResMonth, at(2026, 5, 31, 23, 59), false},
			{ResMonth, at(2026, 6, 1, 0, 1), true},
			{ResYear, at(2024, 12, 31, 23, 59), false},
			{ResYear, at(2025, 1, 1, 0, 0), true},
		}},
		{"forever", Retention{FiveMin: -1, Hour: -1, Days: -1, Weeks: -1, Months: -1}, []probe{
			{Res5Min, at(2020, 1, 1, 0, 0), true},
			{ResHour, at(2020, 1, 1, 0, 0), true},
			{ResDay, at(2020, 1, 1, 0, 0), true},
			{ResWeek, at(2020, 1, 1, 0, 0), true},
			{ResMonth, at(2020, 1, 1, 0, 0), true},
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := &clock{}
			s := openTest(t, Options{Location: loc, Retention: tt.ret, Now: c.Now})
			for _, p := range tt.probes {
				c.Set(p.at) // written when it happened
				mustRecord(t, s, p.at, map[Entity]Counters{eth0: {RxBytes: 1}})
				if !present(t, s, p.res, p.at) {
					t.Fatalf("%s row at %v not written", p.res, p.at)
				}
			}
			c.Set(now)
			for range 2 { // a second Prune changes nothing
				if err := s.Prune(now); err != nil {
					t.Fatal(err)
				}
				for _, p := range tt.probes {
					if got := present(t, s, p.res, p.at); got != p.kept {
						t.Errorf("%s row at %v: kept %v, want %v", p.res, p.at.Format(time.RFC3339), got, p.kept)
					}
				}
			}
		})
	}
}

// Record does not write a bucket that the retention already excludes: the
// next Prune would delete a row holding only part of its bucket.
func TestRecordSkipsExpiredBuckets(t *testing.T) {
	now := time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC)
	s := openTest(t, Options{Location: time.UTC, Now: func() time.Time { return now }})
	old := now.AddDate(0, 0, -100)
	mustRecord(t, s, old, map[Entity]Counters{eth0: {RxBytes: 9}})
	for _, res := range Resolutions {
		want := res == ResWeek || res == ResMonth || res == ResYear
		if got := present(t, s, res, old); got != want {
			t.Errorf("%s row 100 days back: written %v, want %v", res, got, want)
		}
	}
	if top, err := s.Top([]Entity{eth0}, 5); err != nil || len(top) != 0 {
		t.Errorf("top day 100 days back: %+v, %v", top, err)
	}
}

func topString(rows []Row) string {
	var out []string
	for _, r := range rows {
		out = append(out, fmt.Sprintf("%s=%d", r.Start.Format("01-02"), r.RxBytes+r.TxBytes))
	}
	return strings.Join(out, " ")
}

func TestTopDaysSurviveDailyRetention(t *testing.T) {
	c := &clock{}
	s := openTest(t, Options{Location: time.UTC, Retention: Retention{Days: 3, TopDays: 2}, Now: c.Now})
	d0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	eth0Daily := []uint64{5, 100, 3, 50, 7, 1, 2, 8, 4, 6}
	for d, v := range eth0Daily {
		for h, part := range []uint64{v / 2, v - v/2} { // two Records a day: a top day is a sum
			at := d0.AddDate(0, 0, d).Add(time.Duration(6+h*12) * time.Hour)
			c.Set(at)
			mustRecord(t, s, at, map[Entity]Counters{eth0: {RxBytes: part}, eth1: {TxBytes: 5}})
		}
	}
	now := d0.AddDate(0, 0, 9).Add(20 * time.Hour)
	if err := s.Prune(now); err != nil {
		t.Fatal(err)
	}
	days := mustQuery(t, s, Query{Entities: []Entity{eth0}, Resolution: ResDay})
	if len(days) != 3 || !days[0].Start.Equal(d0.AddDate(0, 0, 7)) {
		t.Fatalf("daily retention 3 days: %s", topString(days))
	}
	for _, tt := range []struct {
		set  []Entity
		n    int
		want string
	}{
		// The two busiest days of all survive; the last three days are there
		// because the daily retention still keeps them.
		{[]Entity{eth0}, 3, "03-02=100 03-04=50 03-08=8"},
		{[]Entity{eth0}, 10, "03-02=100 03-04=50 03-08=8 03-10=6 03-09=4"},
		// Ties: the older day ranks first (and was kept).
		{[]Entity{eth1}, 10, "03-01=10 03-02=10 03-08=10 03-09=10 03-10=10"},
		// A merged set is exact within the daily retention; an older day
		// holds the members for which it was a top day (3-1: eth1 only,
		// 3-4: eth0 only).
		{[]Entity{eth0, eth1}, 10, "03-02=110 03-04=50 03-08=18 03-10=16 03-09=14 03-01=10"},
	} {
		got, err := s.Top(tt.set, tt.n)
		if err != nil || topString(got) != tt.want {
			t.Errorf("Top(%v, %d) = %s, %v; want %s", tt.set, tt.n, topString(got), err, tt.want)
		}
	}
	if _, err := s.Top([]Entity{eth0}, 0); err == nil {
		t.Error("Top of 0 days accepted")
	}
}

func TestRunPrunesUntilCancelled(t *testing.T) {
	var prunes atomic.Int32
	c := &clock{}
	start := time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC)
	c.Set(start)
	s := openTest(t, Options{Location: time.UTC, Now: func() time.Time { prunes.Add(1); return c.Now() },
		PruneEvery: 10 * time.Millisecond, Retention: Retention{FiveMin: time.Hour}})
	mustRecord(t, s, start, map[Entity]Counters{eth0: {RxBytes: 1}})
	c.Set(start.Add(2 * time.Hour))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for present(t, s, Res5Min, start) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if present(t, s, Res5Min, start) {
		t.Error("Run did not prune")
	}
	for prunes.Load() < 5 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run returned %v after cancel", err)
	}
}
