package history

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

type fed struct {
	t time.Time
	d map[Entity]Counters
}

// feedBerlin records eth0 and eth1 every 30 minutes over days around a year
// boundary, a month boundary and both 2026 DST changes in Europe/Berlin.
func feedBerlin(t *testing.T, s *Store, loc *time.Location) []fed {
	var feed []fed
	i := uint64(0)
	for _, span := range [][2]time.Time{
		{time.Date(2025, 12, 30, 0, 0, 0, 0, loc), time.Date(2026, 1, 2, 0, 0, 0, 0, loc)},
		{time.Date(2026, 1, 30, 0, 0, 0, 0, loc), time.Date(2026, 2, 2, 0, 0, 0, 0, loc)},
		{time.Date(2026, 3, 28, 0, 0, 0, 0, loc), time.Date(2026, 3, 31, 0, 0, 0, 0, loc)},   // DST starts Sun 29 March
		{time.Date(2026, 10, 24, 0, 0, 0, 0, loc), time.Date(2026, 10, 27, 0, 0, 0, 0, loc)}, // DST ends Sun 25 October
	} {
		for at := span[0]; at.Before(span[1]); at = at.Add(30 * time.Minute) {
			i++
			d := map[Entity]Counters{
				eth0: {RxBytes: i, TxBytes: 2 * i, RxPackets: 1, TxPackets: 2},
				eth1: {RxBytes: 1000 * (i%7 + 1), TxBytes: 3, RxPackets: 1, TxPackets: 1},
			}
			mustRecord(t, s, at, d)
			feed = append(feed, fed{at, d})
		}
	}
	return feed
}

// expect sums the fed deltas of es with t in [a, b).
func expect(feed []fed, es []Entity, a, b time.Time) Counters {
	var c Counters
	for _, f := range feed {
		if !f.t.Before(a) && f.t.Before(b) {
			for _, e := range es {
				c = c.add(f.d[e])
			}
		}
	}
	return c
}

// checkBounds checks that a row of res starts and ends where it must.
func checkBounds(t *testing.T, res Resolution, r Row, loc *time.Location, week time.Weekday) {
	t.Helper()
	a, b := r.Start.In(loc), r.End.In(loc)
	midnight := func(x time.Time) bool { return x.Hour() == 0 && x.Minute() == 0 && x.Second() == 0 }
	y, m, d := a.Date()
	var want time.Time
	switch res {
	case Res5Min:
		if r.Start.Unix()%300 != 0 || b.Sub(a) != 5*time.Minute {
			t.Errorf("5min row %v–%v", a, b)
		}
		return
	case ResHour:
		if r.Start.Unix()%3600 != 0 || b.Sub(a) != time.Hour {
			t.Errorf("hour row %v–%v", a, b)
		}
		return
	case ResDay:
		want = time.Date(y, m, d+1, 0, 0, 0, 0, loc)
	case ResWeek:
		if a.Weekday() != week {
			t.Errorf("week row starts on %v, want %v", a.Weekday(), week)
		}
		want = time.Date(y, m, d+7, 0, 0, 0, 0, loc)
	case ResMonth:
		if d != 1 {
			t.Errorf("month row starts on day %d", d)
		}
		want = time.Date(y, m+1, 1, 0, 0, 0, 0, loc)
	case ResYear:
		if d != 1 || m != 1 {
			t.Errorf("year row starts on %v", a)
		}
		want = time.Date(y+1, 1, 1, 0, 0, 0, 0, loc)
	}
	if !midnight(a) || !b.Equal(want) {
		t.Errorf("%s row %v – %v, want local midnight to %v", res, a, b, want)
	}
}

func TestTotalsAtEveryResolutionAcrossDSTAndBoundaries(t *testing.T) {
	loc := berlin(t)
	s := openTest(t, Options{Location: loc, Retention: keepAll})
	feed := feedBerlin(t, s, loc)
	for _, set := range [][]Entity{{eth0}, {eth1}, {eth0, eth1}} {
		all := expect(feed, set, time.Time{}.Add(1), time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC))
		for _, res := range Resolutions {
			rows := mustQuery(t, s, Query{Entities: set, Resolution: res})
			if got := sumRows(rows); got != all {
				t.Errorf("%v %s: total %+v, want %+v", set, res, got, all)
			}
			for i, r := range rows {
				checkBounds(t, res, r, loc, time.Monday)
				if i > 0 && r.Start.Before(rows[i-1].End) {
					t.Errorf("%s rows overlap or are out of order: %v after %v", res, r.Start, rows[i-1].End)
				}
				if want := expect(feed, set, r.Start, r.End); r.Counters != want {
					t.Errorf("%v %s %v: %+v, want %+v", set, res, r.Start, r.Counters, want)
				}
			}
		}
	}

	// Literal expectations, independent of the bucket code.
	day := func(y int, m time.Month, d int) Row {
		rows := mustQuery(t, s, Query{Entities: []Entity{eth0}, Resolution: ResDay,
			Begin: time.Date(y, m, d, 12, 0, 0, 0, loc), End: time.Date(y, m, d, 12, 0, 1, 0, loc)})
		if len(rows) != 1 {
			t.Fatalf("day %d-%d-%d: %d rows", y, m, d, len(rows))
		}
		return rows[0]
	}
	for _, tt := range []struct {
		m, d       int
		start, end string
		records    uint64
	}{
		{3, 28, "2026-03-27T23:00:00Z", "2026-03-28T23:00:00Z", 48},
		{3, 29, "2026-03-28T23:00:00Z", "2026-03-29T22:00:00Z", 46}, // 23 h
		{3, 30, "2026-03-29T22:00:00Z", "2026-03-30T22:00:00Z", 48},
		{10, 25, "2026-10-24T22:00:00Z", "2026-10-25T23:00:00Z", 50}, // 25 h
	} {
		r := day(2026, time.Month(tt.m), tt.d)
		if got := r.Start.UTC().Format(time.RFC3339); got != tt.start {
			t.Errorf("day 2026-%02d-%02d starts %s, want %s", tt.m, tt.d, got, tt.start)
		}
		if got := r.End.UTC().Format(time.RFC3339); got != tt.end {
			t.Errorf("day 2026-%02d-%02d ends %s, want %s", tt.m, tt.d, got, tt.end)
		}
		if r.RxPackets != tt.records {
			t.Errorf("day 2026-%02d-%02d holds %d records, want %d", tt.m, tt.d, r.RxPackets, tt.records)
		}
	}
	years := mustQuery(t, s, Query{Entities: []Entity{eth0}, Resolution: ResYear})
	if len(years) != 2 || years[0].Start.Year() != 2025 || years[0].RxPackets != 2*48 || years[1].RxPackets != 10*48 {
		t.Errorf("years: %+v", years)
	}
	months := mustQuery(t, s, Query{Entities: []Entity{eth0}, Resolution: ResMonth})
	var got []string
	for _, r := range months {
		got = append(got, fmt.Sprintf("%s:%d", r.Start.Format("2006-01"), r.RxPackets))
	}
	// March loses the hour DST skips, October gains the repeated one.
	if want := "2025-12:96 2026-01:144 2026-02:48 2026-03:142 2026-10:146"; strings.Join(got, " ") != want {
		t.Errorf("months: %s, want %s", strings.Join(got, " "), want)
	}
	weeks := mustQuery(t, s, Query{Entities: []Entity{eth0}, Resolution: ResWeek,
		Begin: time.Date(2026, 3, 25, 0, 0, 0, 0, loc), End: time.Date(2026, 3, 25, 0, 0, 1, 0, loc)})
	if len(weeks) != 1 || weeks[0].Start.Format("2006-01-02 15:04 MST") != "2026-03-23 00:00 CET" ||
		weeks[0].End.Sub(weeks[0].Start) != 7*24*time.Hour-time.Hour {
		t.Errorf("the week of the DST change: %+v", weeks)
	}
}

func TestWeekStart(t *testing.T) {
	loc := berlin(t)
	sat := time.Date(2026, 3, 7, 15, 0, 0, 0, loc) // a Saturday
	for _, tt := range []struct {
		opt  time.Weekday
		want string
		day  time.Weekday
	}{
		{0, "2026-03-02", time.Monday}, // the default
		{time.Monday, "2026-03-02", time.Monday},
		{WeekStartSunday, "2026-03-01", time.Sunday},
		{time.Saturday, "2026-03-07", time.Saturday},
		{time.Wednesday, "2026-03-04", time.Wednesday},
	} {
		s := openTest(t, Options{Location: loc, WeekStart: tt.opt, Retention: keepAll})
		mustRecord(t, s, sat, map[Entity]Counters{eth0: {RxBytes: 1}})
		rows := mustQuery(t, s, Query{Entities: []Entity{eth0}, Resolution: ResWeek})
		if len(rows) != 1 || rows[0].Start.Format("2006-01-02") != tt.want {
			t.Errorf("WeekStart %d: %+v, want a week from %s", tt.opt, rows, tt.want)
			continue
		}
		checkBounds(t, ResWeek, rows[0], loc, tt.day)
	}
	if _, err := Open(Options{Path: t.TempDir() + "/h.db", WeekStart: 9}); err == nil {
		t.Error("WeekStart 9 accepted")
	}
}

// In a half-hour zone, hours stay UTC hours and days local days.
func TestHalfHourZone(t *testing.T) {
	loc, err := time.LoadLocation("Asia/Kolkata")
	if err != nil {
		t.Skip("no tzdata:", err)
	}
	s := openTest(t, Options{Location: loc, Retention: keepAll})
	mustRecord(t, s, time.Date(2026, 6, 1, 10, 45, 0, 0, loc), map[Entity]Counters{eth0: {RxBytes: 7}})
	hour := mustQuery(t, s, Query{Entities: []Entity{eth0}, Resolution: ResHour})
	day := mustQuery(t, s, Query{Entities: []Entity{eth0}, Resolution: ResDay})
	if len(hour) != 1 || hour[0].Start.Format("15:04") != "10:30" || hour[0].Start.UTC().Format("15:04") != "05:00" {
		t.Errorf("hour: %+v", hour)
	}
	if len(day) != 1 || day[0].Start.Format("2006-01-02 15:04") != "2026-06-01 00:00" || day[0].Start.UTC().Format("15:04") != "18:30" {
		t.Errorf("day: %+v", day)
	}
}

func TestMergedSetAndQueryRange(t *testing.T) {
	s := openTest(t, Options{Location: time.UTC, Retention: keepAll})
	base := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	for d := range 10 {
		mustRecord(t, s, base.AddDate(0, 0, d).Add(time.Hour), map[Entity]Counters{
			eth0: {RxBytes: 1 << d, TxBytes: 1, RxPackets: 1, TxPackets: 1},
			eth1: {RxBytes: 1000, TxBytes: uint64(d), RxPackets: 2, TxPackets: 2},
		})
	}
	ghost := Entity{KindInterface, "never-seen"}
	merged := mustQuery(t, s, Query{Entities: []Entity{eth0, eth1, eth0, ghost}, Resolution: ResDay})
	if len(merged) != 10 {
		t.Fatalf("%d merged days", len(merged))
	}
	for d, r := range merged {
		want := Counters{RxBytes: 1<<d + 1000, TxBytes: 1 + uint64(d), RxPackets: 3, TxPackets: 3}
		if r.Counters != want || !r.Start.Equal(base.AddDate(0, 0, d)) {
			t.Errorf("day %d: %v %+v, want %+v", d, r.Start, r.Counters, want)
		}
	}
	// Overlap: a range from the middle of day 2 to the middle of day 4
	// selects days 2, 3 and 4; End is exclusive.
	rows := mustQuery(t, s, Query{Entities: []Entity{eth0}, Resolution: ResDay,
		Begin: base.AddDate(0, 0, 2).Add(12 * time.Hour), End: base.AddDate(0, 0, 4).Add(time.Nanosecond)})
	if len(rows) != 3 || rows[0].RxBytes != 4 || rows[2].RxBytes != 16 {
		t.Errorf("range: %+v", rows)
	}
	rows = mustQuery(t, s, Query{Entities: []Entity{eth0}, Resolution: ResDay, End: base.AddDate(0, 0, 2)})
	if len(rows) != 2 {
		t.Errorf("End is exclusive: %d rows", len(rows))
	}
	rows = mustQuery(t, s, Query{Entities: []Entity{eth0}, Resolution: ResDay, Limit: 3})
	if len(rows) != 3 || rows[0].RxBytes != 1<<7 || rows[2].RxBytes != 1<<9 {
		t.Errorf("Limit 3 keeps the newest three, oldest first: %+v", rows)
	}
	if rows := mustQuery(t, s, Query{Entities: []Entity{ghost}, Resolution: ResDay}); len(rows) != 0 {
		t.Errorf("unknown entity: %+v", rows)
	}
	if _, err := s.Query(Query{Resolution: ResDay}); err == nil {
		t.Error("a query without entities succeeded")
	}
	if _, err := s.Query(Query{Entities: []Entity{eth0}, Resolution: "fortnight"}); err == nil {
		t.Error("an unknown resolution succeeded")
	}
}

func TestOverflowIsRefusedAndNothingCommitted(t *testing.T) {
	s := openTest(t, Options{Location: time.UTC, Retention: keepAll})
	at := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	big := uint64(math.MaxInt64)
	if err := s.Record(at, map[Entity]Counters{eth0: {RxBytes: big + 1}}); !errors.Is(err, ErrOverflow) {
		t.Errorf("a delta of 2^63: %v, want ErrOverflow", err)
	}
	// vnStat's +16 EiB: a counter reset read as a wrapped uint64 delta.
	before, after := uint64(1_000_000), uint64(4_096)
	if err := s.Record(at, map[Entity]Counters{eth0: {TxBytes: after - before}}); !errors.Is(err, ErrOverflow) {
		t.Errorf("a wrapped delta of %d: %v, want ErrOverflow", after-before, err)
	}
	mustRecord(t, s, at, map[Entity]Counters{eth0: {RxBytes: big - 10}, eth1: {RxBytes: 1}})
	err := s.RecordWithState(at.Add(time.Minute), map[Entity]Counters{eth0: {RxBytes: 11}, eth1: {RxBytes: 1}},
		map[string][]byte{"k": []byte("v")})
	if !errors.Is(err, ErrOverflow) || !strings.Contains(err.Error(), "interface:eth0") || !strings.Contains(err.Error(), "rx_bytes") {
		t.Errorf("a sum beyond 2^63-1: %v, want ErrOverflow naming eth0's rx_bytes", err)
	}
	for _, res := range Resolutions {
		rows := mustQuery(t, s, Query{Entities: []Entity{eth0, eth1}, Resolution: res})
		if got := sumRows(rows); got.RxBytes != big-9 {
			t.Errorf("%s after the refused Record: %+v, want the first Record only", res, got)
		}
	}
	if v, err := s.State("k"); err != nil || v != nil {
		t.Errorf("state of the refused Record was committed: %q, %v", v, err)
	}
	mustRecord(t, s, at.Add(time.Minute), map[Entity]Counters{eth0: {RxBytes: 10}})
	if rows := mustQuery(t, s, Query{Entities: []Entity{eth0}, Resolution: ResYear}); rows[0].RxBytes != big {
		t.Errorf("exactly 2^63-1: %d", rows[0].RxBytes)
	}
}

func TestRecordWithStateAndState(t *testing.T) {
	s := openTest(t, Options{Location: time.UTC, Retention: keepAll})
	if v, err := s.State("missing"); err != nil || v != nil {
		t.Errorf("missing key: %q, %v", v, err)
	}
	at := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	if err := s.RecordWithState(at, map[Entity]Counters{eth0: {RxBytes: 5}}, map[string][]byte{
		"iface/eth0": []byte(`{"rx":5}`), "empty": {},
	}); err != nil {
		t.Fatal(err)
	}
	if v, err := s.State("iface/eth0"); err != nil || string(v) != `{"rx":5}` {
		t.Errorf("state: %q, %v", v, err)
	}
	if v, err := s.State("empty"); err != nil || v == nil || len(v) != 0 {
		t.Errorf("an empty value: %q (nil %v), %v", v, v == nil, err)
	}
	if err := s.SetState("iface/eth0", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.State("iface/eth0"); string(v) != "x" {
		t.Errorf("SetState: %q", v)
	}
	if err := s.SetState("iface/eth0", nil); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.State("iface/eth0"); v != nil {
		t.Errorf("SetState nil did not delete: %q", v)
	}
	if err := s.SetState("", []byte("x")); err == nil {
		t.Error("an empty key was accepted")
	}
}

func TestRecordValidation(t *testing.T) {
	s := openTest(t, Options{Location: time.UTC})
	now := time.Now()
	for name, err := range map[string]error{
		"unknown kind": s.Record(now, map[Entity]Counters{{Kind: "planet", Name: "x"}: {}}),
		"empty name":   s.Record(now, map[Entity]Counters{{Kind: KindProcess}: {}}),
		"zero time":    s.Record(time.Time{}, map[Entity]Counters{eth0: {}}),
	} {
		if err == nil {
			t.Errorf("%s accepted", name)
		}
	}
	if es, err := s.Entities(""); err != nil || len(es) != 0 {
		t.Errorf("refused Records created entities: %v, %v", es, err)
	}
}

func TestEntities(t *testing.T) {
	s := openTest(t, Options{Location: time.UTC})
	nginx := Entity{KindProcess, "nginx"}
	web := Entity{KindContainer, "web"}
	mustRecord(t, s, time.Now(), map[Entity]Counters{eth1: {RxBytes: 1}, eth0: {}, nginx: {TxBytes: 1}, web: {RxPackets: 1}})
	got, err := s.Entities(KindInterface)
	if err != nil || fmt.Sprint(got) != "[interface:eth0 interface:eth1]" {
		t.Errorf("interfaces: %v, %v", got, err)
	}
	got, err = s.Entities("")
	if err != nil || fmt.Sprint(got) != "[container:web interface:eth0 interface:eth1 process:nginx]" {
		t.Errorf("all: %v, %v", got, err)
	}
}

func TestGaps(t *testing.T) {
	s := openTest(t, Options{Location: time.UTC})
	base := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	for _, g := range []Gap{
		{base.Add(time.Hour), base.Add(2 * time.Hour), "agent not running"},
		{base.Add(5*time.Hour + 300*time.Millisecond), base.Add(6*time.Hour + 200*time.Millisecond), "disk full"},
	} {
		if err := s.AddGap(g); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AddGap(Gap{base, base, "x"}); err == nil {
		t.Error("an empty gap was accepted")
	}
	if err := s.AddGap(Gap{base, base.Add(time.Second), ""}); err == nil {
		t.Error("a gap without a reason was accepted")
	}
	all, err := s.Gaps(time.Time{}, time.Time{})
	if err != nil || len(all) != 2 {
		t.Fatalf("gaps: %+v, %v", all, err)
	}
	if !all[1].Start.Equal(base.Add(5*time.Hour)) || !all[1].End.Equal(base.Add(6*time.Hour+time.Second)) || all[1].Reason != "disk full" {
		t.Errorf("a gap is widened to whole seconds: %+v", all[1])
	}
	for _, tt := range []struct {
		b, e time.Time
		n    int
	}{
		{base, base.Add(time.Hour), 0}, // ends where the first begins
		{base, base.Add(time.Hour + 1), 1},
		{base.Add(90 * time.Minute), base.Add(91 * time.Minute), 1},
		{base.Add(2 * time.Hour), base.Add(5 * time.Hour), 0},
		{base.Add(time.Hour), time.Time{}, 2},
	} {
		if got, err := s.Gaps(tt.b, tt.e); err != nil || len(got) != tt.n {
			t.Errorf("Gaps(%v, %v) = %d gaps, %v; want %d", tt.b, tt.e, len(got), err, tt.n)
		}
	}
}

func TestBucketAndParseResolution(t *testing.T) {
	loc := berlin(t)
	s := openTest(t, Options{Location: loc})
	at := time.Date(2026, 10, 25, 12, 0, 0, 0, loc)
	for _, tt := range []struct {
		res        string
		start, end string
	}{
		{"5min", "2026-10-25 12:00 CET", "2026-10-25 12:05 CET"},
		{"hour", "2026-10-25 12:00 CET", "2026-10-25 13:00 CET"},
		{"day", "2026-10-25 00:00 CEST", "2026-10-26 00:00 CET"},
		{"week", "2026-10-19 00:00 CEST", "2026-10-26 00:00 CET"},
		{"month", "2026-10-01 00:00 CEST", "2026-11-01 00:00 CET"},
		{"year", "2026-01-01 00:00 CET", "2027-01-01 00:00 CET"},
	} {
		r, err := ParseResolution(tt.res)
		if err != nil {
			t.Fatal(err)
		}
		a, b, err := s.Bucket(r, at)
		const f = "2006-01-02 15:04 MST"
		if err != nil || a.Format(f) != tt.start || b.Format(f) != tt.end {
			t.Errorf("Bucket(%s) = %s – %s, %v; want %s – %s", r, a.Format(f), b.Format(f), err, tt.start, tt.end)
		}
	}
	if _, err := ParseResolution("fortnight"); err == nil {
		t.Error("ParseResolution accepted fortnight")
	}
	if _, _, err := s.Bucket("fortnight", at); err == nil {
		t.Error("Bucket accepted fortnight")
	}
}
