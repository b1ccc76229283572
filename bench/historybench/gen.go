package main

import (
	"cmp"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" driver, as internal/history uses

	"github.com/netmeter/netmeter/internal/history"
)

// series is the benchmark's traffic: ifaces interfaces, every 5-minute slot
// from `from` to `end` (UTC midnights).
type series struct {
	from, end time.Time
	ifaces    int
}

func (s series) slots() int64 { return int64(s.end.Sub(s.from) / (5 * time.Minute)) }

func ifaceName(i int) string { return fmt.Sprintf("eth%d", i) }

// traffic is interface e's traffic in 5-minute slot n (from series.from):
// the formula of the store internal/history's benchmarks build
// (benchTraffic) — pseudo-random, busier by day, with a few very busy days.
func traffic(e int, n int64) history.Counters {
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
	return history.Counters{RxBytes: rx, TxBytes: tx, RxPackets: rx/1200 + 1, TxPackets: tx/900 + 1}
}

func add(a, b history.Counters) history.Counters {
	return history.Counters{RxBytes: a.RxBytes + b.RxBytes, TxBytes: a.TxBytes + b.TxBytes,
		RxPackets: a.RxPackets + b.RxPackets, TxPackets: a.TxPackets + b.TxPackets}
}

// period is one bucket's bytes, as both tools report them.
type period struct {
	Start int64  `json:"start"` // Unix seconds
	Rx    uint64 `json:"rx"`
	Tx    uint64 `json:"tx"`
}

// ifaceTruth is what the generator put into one interface.
type ifaceTruth struct {
	Name   string   `json:"name"`
	Year   period   `json:"year"`
	Months []period `json:"months"`
	Top    []period `json:"top"` // the 10 busiest days by rx+tx, busiest first, ties: older first
}

type truthFile struct {
	From       time.Time    `json:"from"`
	End        time.Time    `json:"end"`
	Interfaces []ifaceTruth `json:"interfaces"`
}

// rollups are the series summed per interface and hour, day, month.
type rollups struct {
	hours, days [][]history.Counters // [iface][hour or day from series.from]
	months      []map[int64]history.Counters
	year        []history.Counters
}

func (s series) rollups() rollups {
	nh := int(s.end.Sub(s.from) / time.Hour)
	r := rollups{hours: make([][]history.Counters, s.ifaces), days: make([][]history.Counters, s.ifaces),
		months: make([]map[int64]history.Counters, s.ifaces), year: make([]history.Counters, s.ifaces)}
	for e := range s.ifaces {
		r.hours[e] = make([]history.Counters, nh)
		r.days[e] = make([]history.Counters, nh/24)
		r.months[e] = map[int64]history.Counters{}
		for n := range s.slots() {
			r.hours[e][n/12] = add(r.hours[e][n/12], traffic(e, n))
		}
		for h, c := range r.hours[e] {
			r.days[e][h/24] = add(r.days[e][h/24], c)
			t := s.from.Add(time.Duration(h) * time.Hour)
			m := time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC).Unix()
			r.months[e][m] = add(r.months[e][m], c)
			r.year[e] = add(r.year[e], c)
		}
	}
	return r
}

// topDays returns interface e's n busiest days, busiest first (rx+tx; ties:
// the older day first — the order of both tools).
func (s series) topDays(r rollups, e, n int) []period {
	var ps []period
	for d, c := range r.days[e] {
		ps = append(ps, period{s.from.AddDate(0, 0, d).Unix(), c.RxBytes, c.TxBytes})
	}
	sortTop(ps)
	return ps[:min(n, len(ps))]
}

func sortTop(ps []period) {
	slices.SortFunc(ps, func(a, b period) int {
		if c := cmp.Compare(b.Rx+b.Tx, a.Rx+a.Tx); c != 0 {
			return c
		}
		return cmp.Compare(a.Start, b.Start)
	})
}

func (s series) truth(r rollups) truthFile {
	t := truthFile{From: s.from, End: s.end}
	for e := range s.ifaces {
		it := ifaceTruth{Name: ifaceName(e), Year: period{time.Date(s.from.Year(), 1, 1, 0, 0, 0, 0, time.UTC).Unix(), r.year[e].RxBytes, r.year[e].TxBytes},
			Top: s.topDays(r, e, 10)}
		for m, c := range r.months[e] {
			it.Months = append(it.Months, period{m, c.RxBytes, c.TxBytes})
		}
		slices.SortFunc(it.Months, func(a, b period) int { return cmp.Compare(a.Start, b.Start) })
		t.Interfaces = append(t.Interfaces, it)
	}
	return t
}

// dbSize describes one database file.
type dbSize struct {
	AsBuilt     int64            `json:"as_built_bytes"`      // the file (and any -wal) when the build finished
	AsBuiltFree int64            `json:"as_built_free_bytes"` // of which free pages (rows deleted by retention)
	Vacuumed    int64            `json:"vacuumed_bytes"`      // after VACUUM: what the rows need
	PageSize    int64            `json:"page_size"`
	Rows        map[string]int64 `json:"rows"`         // per table (netmeter's traffic per resolution)
	Objects     map[string]int64 `json:"object_bytes"` // bytes per table and index after VACUUM (SQLite's dbstat)
}

type genResult struct {
	From            time.Time         `json:"from"`
	End             time.Time         `json:"end"`
	Interfaces      int               `json:"interfaces"`
	Slots           int64             `json:"slots_per_interface"`
	NetmeterRecords int               `json:"netmeter_records"`
	NetmeterBuildS  float64           `json:"netmeter_build_seconds"`
	VnStatBuildS    float64           `json:"vnstat_build_seconds"`
	Sizes           map[string]dbSize `json:"sizes"`
}

func cmdGen(args []string) error {
	fs := flag.NewFlagSet("gen", flag.ExitOnError)
	nmDir := fs.String("netmeter", "", "netmeter --data-dir to create history.db in (must not hold one)")
	vnDir := fs.String("vnstat", "", "directory holding an empty vnstat.db made by `vnstatd --initdb`")
	out := fs.String("out", "", "directory for truth.json and gen.json")
	endS := fs.String("end", "2026-01-01", "the year's end: a date, UTC midnight (the year before it is generated)")
	ifaces := fs.Int("interfaces", 50, "interfaces")
	fs.Parse(args)
	if *nmDir == "" || *vnDir == "" || *out == "" {
		return errors.New("-netmeter, -vnstat and -out are required")
	}
	end, err := time.Parse("2006-01-02", *endS)
	if err != nil {
		return fmt.Errorf("-end: %w", err)
	}
	s := series{from: end.AddDate(-1, 0, 0), end: end, ifaces: *ifaces}
	if history.DefaultHour%(24*time.Hour) != 0 || history.DefaultFiveMin%time.Hour != 0 {
		return errors.New("the build assumes an hourly retention of whole days and a 5-minute one of whole hours")
	}
	r := s.rollups()
	truth := s.truth(r)
	if err := writeJSON(filepath.Join(*out, "truth.json"), truth); err != nil {
		return err
	}
	res := genResult{From: s.from, End: s.end, Interfaces: s.ifaces, Slots: s.slots(), Sizes: map[string]dbSize{}}

	nmPath := filepath.Join(*nmDir, "history.db")
	start := time.Now()
	if res.NetmeterRecords, err = buildNetmeter(nmPath, s, r); err != nil {
		return fmt.Errorf("netmeter store %s: %w", nmPath, err)
	}
	res.NetmeterBuildS = time.Since(start).Seconds()
	vnPath := filepath.Join(*vnDir, "vnstat.db")
	start = time.Now()
	if err := buildVnStat(vnPath, s, r); err != nil {
		return fmt.Errorf("vnStat database %s: %w", vnPath, err)
	}
	res.VnStatBuildS = time.Since(start).Seconds()

	nmRows := `SELECT 'traffic/' || res, count(*) FROM traffic GROUP BY res
		UNION ALL SELECT 'top_day', count(*) FROM top_day UNION ALL SELECT 'slot', count(*) FROM slot
		UNION ALL SELECT 'entity', count(*) FROM entity`
	vnRows := `SELECT 'interface', count(*) FROM interface UNION ALL SELECT 'fiveminute', count(*) FROM fiveminute
		UNION ALL SELECT 'hour', count(*) FROM hour UNION ALL SELECT 'day', count(*) FROM day
		UNION ALL SELECT 'month', count(*) FROM month UNION ALL SELECT 'year', count(*) FROM year
		UNION ALL SELECT 'top', count(*) FROM top`
	for _, d := range []struct{ name, path, rows string }{{"netmeter", nmPath, nmRows}, {"vnstat", vnPath, vnRows}} {
		sz, err := measure(d.path, d.rows)
		if err != nil {
			return fmt.Errorf("size of %s: %w", d.path, err)
		}
		res.Sizes[d.name] = sz
	}
	fmt.Fprintf(os.Stderr, "built %d interfaces × %d slots (%s – %s): netmeter %.1f s (%d Records), vnStat %.1f s\n",
		s.ifaces, s.slots(), s.from.Format("2006-01-02"), s.end.Format("2006-01-02"), res.NetmeterBuildS, res.NetmeterRecords, res.VnStatBuildS)
	return writeJSON(filepath.Join(*out, "gen.json"), res)
}

// buildNetmeter fills a new store through Record, so that after Prune at
// s.end it holds exactly the rows a store with the default retention that
// Recorded every 5-minute slot as it happened holds on s.end. Recording
// 105 120 slots one by one (each a durable transaction) would take many
// minutes, so the older part is Recorded in coarser pieces, each at a clock
// (Options.Now) at which the default retention no longer keeps the finer
// resolutions that piece would distort:
//
//   - before s.end−96 h: one Record per day with the day's sums, at a clock
//     97 h later, so no 5-minute or hourly row is written, only the day,
//     week, month, year and top-day rows (the day's sums are exact);
//   - from s.end−96 h to s.end−48 h: one Record per hour with the hour's
//     sums, at a clock 48 h 10 min later: hour rows and coarser, no
//     5-minute row or slot;
//   - the last 48 h: one Record per 5-minute slot, at its own time.
//
// Prune(s.end) then deletes what the retention drops (days beyond 62, top
// days beyond each entity's 20 busiest), as the agent's background prune
// does. It returns the number of Records.
func buildNetmeter(path string, s series, r rollups) (int, error) {
	if _, err := os.Stat(path); err == nil {
		return 0, errors.New("already exists")
	}
	var clock time.Time
	st, err := history.Open(history.Options{Path: path, Location: time.UTC, Now: func() time.Time { return clock }})
	if err != nil {
		return 0, err
	}
	ents := make([]history.Entity, s.ifaces)
	for e := range ents {
		ents[e] = history.Entity{Kind: history.KindInterface, Name: ifaceName(e)}
	}
	records := 0
	record := func(t, now time.Time, c func(e int) history.Counters) error {
		clock = now
		d := make(map[history.Entity]history.Counters, len(ents))
		for e, ent := range ents {
			d[ent] = c(e)
		}
		records++
		return st.Record(t, d)
	}
	hourCut, fiveCut := s.end.Add(-history.DefaultHour), s.end.Add(-history.DefaultFiveMin)
	for t := s.from; t.Before(hourCut); t = t.Add(24 * time.Hour) {
		day := int(t.Sub(s.from) / (24 * time.Hour))
		if err := record(t, t.Add(history.DefaultHour+time.Hour), func(e int) history.Counters { return r.days[e][day] }); err != nil {
			st.Close()
			return records, err
		}
	}
	for t := hourCut; t.Before(fiveCut); t = t.Add(time.Hour) {
		h := int(t.Sub(s.from) / time.Hour)
		if err := record(t, t.Add(history.DefaultFiveMin+10*time.Minute), func(e int) history.Counters { return r.hours[e][h] }); err != nil {
			st.Close()
			return records, err
		}
	}
	for t := fiveCut; t.Before(s.end); t = t.Add(5 * time.Minute) {
		n := int64(t.Sub(s.from) / (5 * time.Minute))
		at := t.Add(time.Minute)
		if err := record(at, at, func(e int) history.Counters { return traffic(e, n) }); err != nil {
			st.Close()
			return records, err
		}
	}
	clock = s.end
	if err := st.Prune(s.end); err != nil {
		st.Close()
		return records, err
	}
	return records, st.Close()
}

// buildVnStat writes the series into an empty vnStat 2.x database (made by
// `vnstatd --initdb`) as vnstatd with the default retention (5MinuteHours
// 48, HourlyDays 4, DailyDays 62, MonthlyMonths 25, YearlyYears -1,
// TopDayEntries 20) and UseUTC 1 leaves it at s.end: only the rows its
// cleanup (db_removeoldentries) keeps, dated with its labels, rows of all
// interfaces interleaved in time order as the daemon adds them.
func buildVnStat(path string, s series, r rollups) error {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=foreign_keys(1)")
	if err != nil {
		return err
	}
	defer db.Close()
	var version string
	if err := db.QueryRow("SELECT value FROM info WHERE name = 'dbversion'").Scan(&version); err != nil || version != "1" {
		return fmt.Errorf("not an empty vnStat 2.x database (dbversion %q, %v): create it with `vnstatd --initdb`", version, err)
	}
	var n int
	if err := db.QueryRow("SELECT count(*) FROM interface").Scan(&n); err != nil || n != 0 {
		return fmt.Errorf("has %d interfaces (%v), want none", n, err)
	}
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	const dt = "2006-01-02 15:04:05"
	for e := range s.ifaces {
		if _, err := tx.Exec(`INSERT INTO interface (id, name, alias, active, created, updated, rxcounter, txcounter, rxtotal, txtotal)
			VALUES (?, ?, NULL, 1, ?, ?, 0, 0, ?, ?)`, e+1, ifaceName(e), s.from.Format(dt), s.end.Format(dt),
			int64(r.year[e].RxBytes), int64(r.year[e].TxBytes)); err != nil {
			return err
		}
	}
	insert := func(table, date string, e int, c history.Counters) error {
		_, err := tx.Exec("INSERT INTO "+table+" (interface, date, rx, tx) VALUES (?, ?, ?, ?)", e+1, date, int64(c.RxBytes), int64(c.TxBytes))
		return err
	}
	// fiveminute: date >= datetime(now, '-48 hours') is kept.
	for t := s.end.Add(-48 * time.Hour); t.Before(s.end); t = t.Add(5 * time.Minute) {
		n := int64(t.Sub(s.from) / (5 * time.Minute))
		for e := range s.ifaces {
			if err := insert("fiveminute", t.Format(dt), e, traffic(e, n)); err != nil {
				return err
			}
		}
	}
	// hour: date >= datetime(now, '-4 days').
	for t := s.end.AddDate(0, 0, -4); t.Before(s.end); t = t.Add(time.Hour) {
		h := int(t.Sub(s.from) / time.Hour)
		for e := range s.ifaces {
			if err := insert("hour", t.Format(dt), e, r.hours[e][h]); err != nil {
				return err
			}
		}
	}
	// day: date >= date(now, '-62 days').
	for t := s.end.AddDate(0, 0, -62); t.Before(s.end); t = t.AddDate(0, 0, 1) {
		d := int(t.Sub(s.from) / (24 * time.Hour))
		for e := range s.ifaces {
			if err := insert("day", t.Format("2006-01-02"), e, r.days[e][d]); err != nil {
				return err
			}
		}
	}
	// month: date >= date(now, '-25 months'): all twelve. year: forever.
	for t := s.from; t.Before(s.end); t = t.AddDate(0, 1, 0) {
		for e := range s.ifaces {
			if err := insert("month", t.Format("2006-01-02"), e, r.months[e][t.Unix()]); err != nil {
				return err
			}
		}
	}
	for e := range s.ifaces {
		if err := insert("year", s.from.Format("2006-01-02"), e, r.year[e]); err != nil {
			return err
		}
	}
	// top: each interface's 20 busiest days (today, s.end, has no traffic),
	// in the order the daemon added them.
	var tops [][2]int64
	for e := range s.ifaces {
		for _, p := range s.topDays(r, e, 20) {
			tops = append(tops, [2]int64{p.Start, int64(e)})
		}
	}
	slices.SortFunc(tops, func(a, b [2]int64) int { return cmp.Or(cmp.Compare(a[0], b[0]), cmp.Compare(a[1], b[1])) })
	for _, t := range tops {
		e, d := int(t[1]), int(time.Unix(t[0], 0).Sub(s.from)/(24*time.Hour))
		if err := insert("top", time.Unix(t[0], 0).UTC().Format("2006-01-02"), e, r.days[e][d]); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// measure returns a database's size as built and after VACUUM, its rows per
// table (rowsSQL returns name, count) and its bytes per table and index.
func measure(path, rowsSQL string) (dbSize, error) {
	sz := dbSize{Rows: map[string]int64{}, Objects: map[string]int64{}}
	fileSize := func() int64 {
		var n int64
		for _, p := range []string{path, path + "-wal"} {
			if fi, err := os.Stat(p); err == nil {
				n += fi.Size()
			}
		}
		return n
	}
	sz.AsBuilt = fileSize()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		return sz, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	var free int64
	if err := db.QueryRow("PRAGMA page_size").Scan(&sz.PageSize); err != nil {
		return sz, err
	}
	if err := db.QueryRow("PRAGMA freelist_count").Scan(&free); err != nil {
		return sz, err
	}
	sz.AsBuiltFree = free * sz.PageSize
	rows, err := db.Query(rowsSQL)
	if err != nil {
		return sz, err
	}
	for rows.Next() {
		var name string
		var n int64
		if err := rows.Scan(&name, &n); err != nil {
			rows.Close()
			return sz, err
		}
		sz.Rows[name] = n
	}
	rows.Close()
	if _, err := db.Exec("VACUUM"); err != nil {
		return sz, err
	}
	var mode string
	if err := db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil {
		return sz, err
	}
	if mode == "wal" {
		if _, err := db.Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
			return sz, err
		}
	}
	// dbstat is optional in SQLite builds: no breakdown without it.
	if rows, err := db.Query("SELECT name, sum(pgsize) FROM dbstat GROUP BY name"); err == nil {
		for rows.Next() {
			var name string
			var n int64
			if rows.Scan(&name, &n) == nil {
				sz.Objects[name] = n
			}
		}
		rows.Close()
	}
	if err := db.Close(); err != nil {
		return sz, err
	}
	sz.Vacuumed = fileSize()
	return sz, nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
