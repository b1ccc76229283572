package main

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/netmeter/netmeter/internal/history"
)

// buildNetmeter's coarse Records leave the same rows as Recording every
// 5-minute slot as it happens (pruning as the agent does): every resolution,
// the top days and the percentile, over five days, which cover its three
// phases (days, hours, 5-minute slots) and the start of a month.
func TestBuildMatchesRecord(t *testing.T) {
	end := time.Date(2025, 3, 3, 0, 0, 0, 0, time.UTC) // a month begins within the range
	s := series{from: end.AddDate(0, 0, -5), end: end, ifaces: 3}
	dir := t.TempDir()
	built := filepath.Join(dir, "built.db")
	n, err := buildNetmeter(built, s, s.rollups())
	if err != nil {
		t.Fatal(err)
	}
	if want := 1 + 48 + 576; n != want {
		t.Errorf("%d Records, want %d", n, want)
	}

	var clock time.Time
	live, err := history.Open(history.Options{Path: filepath.Join(dir, "live.db"), Location: time.UTC, Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	for n := range s.slots() {
		clock = s.from.Add(time.Duration(n)*5*time.Minute + time.Minute)
		d := map[history.Entity]history.Counters{}
		for e := range s.ifaces {
			d[history.Entity{Kind: history.KindInterface, Name: ifaceName(e)}] = traffic(e, n)
		}
		if err := live.Record(clock, d); err != nil {
			t.Fatal(err)
		}
		if n%12 == 11 {
			if err := live.Prune(clock); err != nil {
				t.Fatal(err)
			}
		}
	}
	clock = s.end
	if err := live.Prune(s.end); err != nil {
		t.Fatal(err)
	}

	st, err := history.Open(history.Options{Path: built, Location: time.UTC, Now: func() time.Time { return s.end }})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for e := range s.ifaces {
		ent := []history.Entity{{Kind: history.KindInterface, Name: ifaceName(e)}}
		for _, res := range history.Resolutions {
			a, err1 := st.Query(history.Query{Entities: ent, Resolution: res})
			b, err2 := live.Query(history.Query{Entities: ent, Resolution: res})
			if err1 != nil || err2 != nil || len(a) == 0 || fmt.Sprint(a) != fmt.Sprint(b) {
				t.Errorf("%s %s: built %d rows, live %d (%v, %v)", ent[0], res, len(a), len(b), err1, err2)
			}
		}
		a, err1 := st.Top(ent, 100)
		b, err2 := live.Top(ent, 100)
		if err1 != nil || err2 != nil || len(a) != 5 || fmt.Sprint(a) != fmt.Sprint(b) {
			t.Errorf("%s top days: built %v, live %v (%v, %v)", ent[0], a, b, err1, err2)
		}
		p1, err1 := st.Percentile(ent, s.from, s.end, 95)
		p2, err2 := live.Percentile(ent, s.from, s.end, 95)
		if err1 != nil || err2 != nil || p1 != p2 || p1.Samples != 576 {
			t.Errorf("%s p95: built %+v, live %+v (%v, %v)", ent[0], p1, p2, err1, err2)
		}
	}
}
