package history

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// The benchmark store: a year (2026) of 5-minute traffic of 50 entities,
// as a store with the default retention holds it on 1 January 2027: the
// last 48 h of 5-minute rows, 96 h of hours, 62 days, every week, month and
// year, the recent days and each entity's 20 top days. Recording 105 120
// five-minute intervals one by one takes minutes, so buildStore writes the
// rollups of the same series directly (TestBenchStoreMatchesRecord checks
// that they equal what Record writes), once per `go test` run, in a
// temporary directory that TestMain removes.
var (
	benchNow   = time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	benchFrom  = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	benchStore struct {
		once  sync.Once
		dir   string
		path  string
		size  int64 // bytes, as built (checkpointed: no WAL)
		build time.Duration
		err   error
	}
)

func benchEntities() []Entity {
	var es []Entity
	for i := range 5 {
		es = append(es, Entity{KindInterface, fmt.Sprintf("eth%d", i)})
	}
	for i := range 30 {
		es = append(es, Entity{KindProcess, fmt.Sprintf("program-%02d", i)})
	}
	for i := range 10 {
		es = append(es, Entity{KindContainer, fmt.Sprintf("web-%02d", i)})
	}
	for i := range 5 {
		es = append(es, Entity{KindAccount, fmt.Sprintf("customer-%d", i)})
	}
	return es
}

// benchTraffic is entity e's traffic in 5-minute slot n (from benchFrom):
// pseudo-random, busier in the day, with a few very busy days.
func benchTraffic(e int, n int64) Counters {
	x := uint64(n)*0x9E3779B97F4A7C15 ^ uint64(e+1)*0xBF58476D1CE4E5B9
	x ^= x >> 31
	x *= 0x94D049BB133111EB
	x ^= x >> 29
	hour := (n / 12) % 24
	scale := uint64(1 + 4*(hour/8)) // 1, 5, 9 through the day
	if (n/288)%97 == int64(e)%97 {
		scale *= 20 // a busy day
	}
	rx := (x % 2_000_000) * scale
	tx := (x >> 21 % 500_000) * scale
	return Counters{RxBytes: rx, TxBytes: tx, RxPackets: rx/1200 + 1, TxPackets: tx/900 + 1}
}

// buildStore writes what Record would have written for traffic(e, n) in
// every 5-minute slot n from `from` (an hour boundary) to `to`, Recorded
// when it happened, then Prunes at to. Entity ids follow es's order.
func buildStore(s *Store, es []Entity, from, to time.Time, traffic func(e int, n int64) Counters) error {
	if err := writeRollups(s, es, from, to, traffic); err != nil {
		return err
	}
	return s.Prune(to) // the top days beyond the daily retention
}

func writeRollups(s *Store, es []Entity, from, to time.Time, traffic func(e int, n int64) Counters) error {
	now := to
	slots := int64(to.Sub(from) / (5 * time.Minute))
	hours := (slots + 11) / 12
	hourly := make([][]Counters, len(es))
	var traf, tops [][]any
	var slotRows [][]any
	ids := make([]int64, len(es))
	cut5, lim5 := s.cutoff(Res5Min, now)
	add := func(res Resolution, id int64, a, b int64, c Counters) {
		if c == (Counters{}) {
			return
		}
		traf = append(traf, []any{string(res), id, a, b, int64(c.RxBytes), int64(c.TxBytes), int64(c.RxPackets), int64(c.TxPackets)})
	}
	ctx := context.Background()
	s.mu.Lock()
	defer s.mu.Unlock()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	created := map[Entity]int64{}
	for i, e := range es {
		if ids[i], err = s.entityID(ctx, tx, e, created); err != nil {
			return err
		}
		hourly[i] = make([]Counters, hours)
	}
	for n := range slots {
		a := from.Unix() + n*300
		keep := !lim5 || a+300 > cut5
		if keep {
			slotRows = append(slotRows, []any{a})
		}
		for i := range es {
			c := traffic(i, n)
			hourly[i][n/12] = hourly[i][n/12].add(c)
			if keep {
				add(Res5Min, ids[i], a, a+300, c)
			}
		}
	}
	type key struct {
		res  Resolution
		a, b int64
	}
	var order []key
	calendar := map[key][]Counters{}
	cutH, limH := s.cutoff(ResHour, now)
	for h := range hours {
		start := from.Add(time.Duration(h) * time.Hour)
		for i := range es {
			if !limH || start.Unix()+3600 > cutH {
				add(ResHour, ids[i], start.Unix(), start.Unix()+3600, hourly[i][h])
			}
		}
		for _, r := range []Resolution{ResDay, ResWeek, ResMonth, ResYear} {
			a, b := s.bucket(r, start)
			if cut, ok := s.cutoff(r, now); ok && b <= cut && r != ResDay {
				continue
			}
			k := key{r, a, b}
			sums, ok := calendar[k]
			if !ok {
				sums = make([]Counters, len(es))
				calendar[k] = sums
				order = append(order, k)
			}
			for i := range es {
				sums[i] = sums[i].add(hourly[i][h])
			}
		}
	}
	cutD, limD := s.cutoff(ResDay, now)
	for _, k := range order {
		for i := range es {
			c := calendar[k][i]
			if k.res == ResDay {
				if c != (Counters{}) {
					tops = append(tops, []any{ids[i], k.a, k.b, int64(c.RxBytes), int64(c.TxBytes), int64(c.RxPackets), int64(c.TxPackets)})
				}
				if limD && k.b <= cutD {
					continue
				}
			}
			add(k.res, ids[i], k.a, k.b, c)
		}
	}
	if err := s.upsert(ctx, tx, sqlTraffic, traf); err != nil {
		return err
	}
	if err := s.upsert(ctx, tx, sqlTopDay, tops); err != nil {
		return err
	}
	for _, r := range slotRows {
		if _, err := tx.ExecContext(ctx, sqlSlot, r...); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	for e, id := range created {
		s.ids[e] = id
	}
	return nil
}

func openBenchStore(b *testing.B) *Store {
	b.Helper()
	bs := &benchStore
	bs.once.Do(func() {
		start := time.Now()
		if bs.dir, bs.err = os.MkdirTemp("", "netmeter-history-bench-"); bs.err != nil {
			return
		}
		bs.path = filepath.Join(bs.dir, "history.db")
		s, err := Open(Options{Path: bs.path, Location: time.UTC, Now: func() time.Time { return benchNow }})
		if err != nil {
			bs.err = err
			return
		}
		bs.err = buildStore(s, benchEntities(), benchFrom, benchNow, benchTraffic)
		if bs.err == nil {
			_, bs.err = s.w.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
		}
		if err := s.Close(); bs.err == nil {
			bs.err = err
		}
		bs.build = time.Since(start)
		if fi, err := os.Stat(bs.path); err == nil {
			bs.size = fi.Size()
		}
	})
	if bs.err != nil {
		b.Fatalf("build the benchmark store: %v", bs.err)
	}
	s, err := Open(Options{Path: bs.path, Location: time.UTC, Now: func() time.Time { return benchNow }})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// reportStore reports the store's file size and how long it took to build.
// Call it after the loop: ResetTimer drops metrics.
func reportStore(b *testing.B) {
	b.ReportMetric(float64(benchStore.size)/1e6, "file-MB")
	b.ReportMetric(benchStore.build.Seconds(), "build-s")
}

func cleanupBenchStore() {
	if benchStore.dir != "" {
		os.RemoveAll(benchStore.dir)
	}
}

// BenchmarkRecord: one interval of 50 entities into the year store (each
// Record is one durable transaction: synchronous=FULL).
func BenchmarkRecord(b *testing.B) {
	s := openBenchStore(b)
	es := benchEntities()
	d := make(map[Entity]Counters, len(es))
	for i, e := range es {
		d[e] = benchTraffic(i, 1)
	}
	at := benchNow.Add(-time.Minute)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if err := s.Record(at.Add(time.Duration(i%60)*time.Second), d); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(es)), "entities/op")
	reportStore(b)
}

// BenchmarkMonthReport: what `netmeter report -m` reads for one interface:
// the months, the 95th percentile over the range and the gaps.
func BenchmarkMonthReport(b *testing.B) {
	s := openBenchStore(b)
	eth := []Entity{{KindInterface, "eth0"}}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		rows, err := s.Query(Query{Entities: eth, Resolution: ResMonth})
		if err != nil || len(rows) != 12 {
			b.Fatalf("%d months, %v", len(rows), err)
		}
		p, err := s.Percentile(eth, rows[0].Start, rows[len(rows)-1].End, 95)
		if err != nil || p.Samples != 576 || !p.Truncated {
			b.Fatalf("p95 %+v, %v", p, err)
		}
		if _, err := s.Gaps(rows[0].Start, rows[len(rows)-1].End); err != nil {
			b.Fatal(err)
		}
	}
	reportStore(b)
}

// BenchmarkTopDays: `netmeter report --top` for one interface and for a
// merged set of all five.
func BenchmarkTopDays(b *testing.B) {
	s := openBenchStore(b)
	all := benchEntities()[:5]
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		for _, set := range [][]Entity{all[:1], all} {
			rows, err := s.Top(set, 10)
			if err != nil || len(rows) != 10 {
				b.Fatalf("%d top days, %v", len(rows), err)
			}
		}
	}
	reportStore(b)
}

// buildStore, which makes the benchmark store, writes what Recording every
// 5-minute slot writes: same rows at every resolution, same top days, same
// percentile.
func TestBenchStoreMatchesRecord(t *testing.T) {
	now := time.Date(2026, 3, 1, 6, 0, 0, 0, time.UTC) // a day and a month begin within the range
	from := now.Add(-12 * time.Hour)
	es := benchEntities()[:3]
	built := openTest(t, Options{Location: time.UTC, Retention: Retention{FiveMin: 6 * time.Hour, Hour: 8 * time.Hour, Days: 1, TopDays: 1},
		Now: func() time.Time { return now }})
	if err := buildStore(built, es, from, now, benchTraffic); err != nil {
		t.Fatal(err)
	}
	c := &clock{}
	recorded := openTest(t, Options{Location: time.UTC, Retention: built.ret, Now: c.Now})
	for n := range int64(12 * 12) {
		at := from.Add(time.Duration(n)*5*time.Minute + time.Minute)
		c.Set(at)
		d := map[Entity]Counters{}
		for i, e := range es {
			d[e] = benchTraffic(i, n)
		}
		mustRecord(t, recorded, at, d)
	}
	if err := recorded.Prune(now); err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		for _, res := range Resolutions {
			a := mustQuery(t, built, Query{Entities: []Entity{e}, Resolution: res})
			b := mustQuery(t, recorded, Query{Entities: []Entity{e}, Resolution: res})
			if fmt.Sprint(a) != fmt.Sprint(b) || len(a) == 0 {
				t.Errorf("%s %s: built %d rows, recorded %d:\n%v\n%v", e, res, len(a), len(b), a, b)
			}
		}
		a, err1 := built.Top([]Entity{e}, 10)
		b, err2 := recorded.Top([]Entity{e}, 10)
		if err1 != nil || err2 != nil || fmt.Sprint(a) != fmt.Sprint(b) {
			t.Errorf("%s top days: built %v, recorded %v (%v, %v)", e, a, b, err1, err2)
		}
		p1, err1 := built.Percentile([]Entity{e}, from, now, 95)
		p2, err2 := recorded.Percentile([]Entity{e}, from, now, 95)
		if err1 != nil || err2 != nil || p1 != p2 || p1.Samples != 72 {
			t.Errorf("%s p95: built %+v, recorded %+v (%v, %v)", e, p1, p2, err1, err2)
		}
	}
}
