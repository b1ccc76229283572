package main

import (
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/netmeter/netmeter/internal/history"
)

// stat summarises repeated timings.
type stat struct {
	N      int     `json:"n"`
	Median float64 `json:"median_ms"`
	Min    float64 `json:"min_ms"`
	P90    float64 `json:"p90_ms"`
}

func summarise(ds []time.Duration) stat {
	if len(ds) == 0 {
		return stat{}
	}
	xs := make([]float64, len(ds))
	for i, d := range ds {
		xs[i] = float64(d) / 1e6
	}
	slices.Sort(xs)
	med := xs[len(xs)/2]
	if len(xs)%2 == 0 {
		med = (xs[len(xs)/2-1] + xs[len(xs)/2]) / 2
	}
	return stat{N: len(xs), Median: med, Min: xs[0], P90: xs[(len(xs)*9)/10]}
}

// timeOp runs op a few times to warm up, then until it has run for minTime
// (at least 10, at most maxN times), and summarises the runs.
func timeOp(minTime time.Duration, maxN int, op func() error) (stat, error) {
	for range 3 {
		if err := op(); err != nil {
			return stat{}, err
		}
	}
	var ds []time.Duration
	var total time.Duration
	for len(ds) < 10 || (total < minTime && len(ds) < maxN) {
		t := time.Now()
		if err := op(); err != nil {
			return stat{}, err
		}
		d := time.Since(t)
		ds = append(ds, d)
		total += d
	}
	return summarise(ds), nil
}

type inprocOp struct {
	Name string `json:"name"`
	Desc string `json:"desc"`
	stat
}

// queries are what the two tools ask of their databases for one interface.
type queries struct {
	nmPath, vnPath string
	ent            []history.Entity
	iface          string
}

func (q queries) open() (*history.Store, error) {
	return history.Open(history.Options{Path: q.nmPath, Location: time.UTC})
}

// monthRows is the month rows alone: what vnStat's -m reads.
func (q queries) monthRows(st *history.Store) ([]history.Row, error) {
	rows, err := st.Query(history.Query{Entities: q.ent, Resolution: history.ResMonth})
	if err == nil && len(rows) != 12 {
		err = fmt.Errorf("%d months, want 12", len(rows))
	}
	return rows, err
}

// month is what cmd/netmeter/report.go asks for `report -m -i IF`: the
// rows, the 95th percentile over them (5-minute data exists) and the gaps.
func (q queries) month(st *history.Store) error {
	rows, err := q.monthRows(st)
	if err != nil {
		return err
	}
	if err := q.p95(st, rows); err != nil {
		return err
	}
	_, err = st.Gaps(rows[0].Start, rows[len(rows)-1].End)
	return err
}

func (q queries) p95(st *history.Store, rows []history.Row) error {
	end := rows[len(rows)-1].End
	if now := time.Now(); now.Before(end) {
		end = now
	}
	p, err := st.Percentile(q.ent, rows[0].Start, end, 95)
	if err == nil && p.Samples != 576 {
		err = fmt.Errorf("p95 of %d samples, want 576", p.Samples)
	}
	return err
}

// top is `report --top --limit 10 -i IF`: the days and the gaps.
func (q queries) top(st *history.Store) error {
	rows, err := st.Top(q.ent, 10)
	if err != nil {
		return err
	}
	if len(rows) != 10 {
		return fmt.Errorf("%d top days, want 10", len(rows))
	}
	_, err = st.Gaps(rows[0].Start, rows[len(rows)-1].End)
	return err
}

func (q queries) withOpen(f func(*history.Store) error) func() error {
	return func() error {
		st, err := q.open()
		if err != nil {
			return err
		}
		if err := f(st); err != nil {
			st.Close()
			return err
		}
		return st.Close()
	}
}

// vnStat 2.10's data queries (src/dbsql.c, db_getdata_range) for
// `vnstat -m` and `vnstat -t 10`.
const (
	vnMonthSQL = `select id, strftime('%s', date, 'utc') as unixdate, sum(rx), sum(tx) from month where interface in (?) group by date order by unixdate desc`
	vnTopSQL   = `select * from (select id, strftime('%s', date, 'utc') as unixdate, sum(rx) as rx, sum(tx) as tx from top where interface in (?) group by date order by rx+tx desc, unixdate asc limit 10) order by rx+tx asc, unixdate desc`
)

// vnOpen opens the vnStat database read-only, as the vnstat command does.
func (q queries) vnOpen() (*sql.DB, error) {
	db, err := sql.Open("sqlite", "file:"+q.vnPath+"?mode=ro")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

// vnQuery runs what vnstat runs for one table of one interface:
// db_getinterfacecountbyname, db_getinterfaceinfo, db_getinterfaceidin and
// db_getdata.
func (q queries) vnQuery(db *sql.DB, data string) error {
	var n, id int64
	if err := db.QueryRow("select count(*) from interface where name=?", q.iface).Scan(&n); err != nil || n != 1 {
		return fmt.Errorf("interface %s: %d, %v", q.iface, n, err)
	}
	if err := db.QueryRow("select id from interface where name=?", q.iface).Scan(&id); err != nil {
		return err
	}
	var name string
	var alias sql.NullString
	var active, created, updated, rxc, txc, rxt, txt int64
	if err := db.QueryRow(`select name, alias, active, strftime('%s', created, 'utc'), strftime('%s', updated, 'utc'),
		rxcounter, txcounter, rxtotal, txtotal from interface where id=?`, id).Scan(&name, &alias, &active, &created, &updated, &rxc, &txc, &rxt, &txt); err != nil {
		return err
	}
	var in string
	if err := db.QueryRow(`select group_concat(id) from interface where name in (?)`, q.iface).Scan(&in); err != nil {
		return err
	}
	rows, err := db.Query(data, id) // vnStat splices in, the ids it got, into the SQL
	if err != nil {
		return err
	}
	k := 0
	for rows.Next() {
		var rid, ts, rx, tx int64
		if err := rows.Scan(&rid, &ts, &rx, &tx); err != nil {
			rows.Close()
			return err
		}
		k++
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if k == 0 {
		return errors.New("no rows")
	}
	return nil
}

func (q queries) vnWithOpen(data string) func() error {
	return func() error {
		db, err := q.vnOpen()
		if err != nil {
			return err
		}
		if err := q.vnQuery(db, data); err != nil {
			db.Close()
			return err
		}
		return db.Close()
	}
}

// cold maps the names `once -what` takes to operations that open their
// database, query and close it.
func (q queries) cold() map[string]func() error {
	return map[string]func() error{
		"netmeter/month":   q.withOpen(q.month),
		"netmeter/top":     q.withOpen(q.top),
		"vnstat-sql/month": q.vnWithOpen(vnMonthSQL),
		"vnstat-sql/top":   q.vnWithOpen(vnTopSQL),
	}
}

func queryFlags(fs *flag.FlagSet) func() (queries, error) {
	nmDir := fs.String("netmeter", "", "netmeter --data-dir holding history.db")
	vnDir := fs.String("vnstat", "", "directory holding vnstat.db")
	iface := fs.String("i", "eth0", "interface")
	return func() (queries, error) {
		if *nmDir == "" || *vnDir == "" {
			return queries{}, errors.New("-netmeter and -vnstat are required")
		}
		return queries{nmPath: filepath.Join(*nmDir, "history.db"), vnPath: filepath.Join(*vnDir, "vnstat.db"),
			ent: []history.Entity{{Kind: history.KindInterface, Name: *iface}}, iface: *iface}, nil
	}
}

// cmdOnce runs one cold operation — open, query, close — as the first thing
// this process does, and prints how long it took in nanoseconds: the cost a
// fresh `netmeter report` pays that a warm loop does not (the SQLite
// library's first use, code paged in).
func cmdOnce(args []string) error {
	fs := flag.NewFlagSet("once", flag.ExitOnError)
	get := queryFlags(fs)
	what := fs.String("what", "netmeter/month", "netmeter/month, netmeter/top, vnstat-sql/month or vnstat-sql/top")
	fs.Parse(args)
	q, err := get()
	if err != nil {
		return err
	}
	op := q.cold()[*what]
	if op == nil {
		return fmt.Errorf("-what %q: unknown", *what)
	}
	start := time.Now()
	if err := op(); err != nil {
		return err
	}
	fmt.Println(time.Since(start).Nanoseconds())
	return nil
}

// cmdNoop does nothing: the start-up of a Go binary that links the history
// package and its SQLite driver, a reference for `netmeter version`.
func cmdNoop([]string) error { return nil }

// cmdInproc times, in this process, what `netmeter report -m -i IF` and
// `netmeter report --top --limit 10 -i IF` ask of the history store (on an
// open store, with Open and Close, and once in a fresh process), and, on the
// vnStat database through the same SQLite driver, the queries vnStat 2.10
// runs for `vnstat -m -i IF` and `vnstat -t -i IF` — not vnStat's C code,
// but the same data layout read by the same engine.
func cmdInproc(args []string) error {
	fs := flag.NewFlagSet("inproc", flag.ExitOnError)
	get := queryFlags(fs)
	minTime := fs.Duration("min-time", 400*time.Millisecond, "time each operation at least this long")
	maxN := fs.Int("max-n", 3000, "at most this many runs of an operation")
	fresh := fs.Int("fresh", 11, "runs of each operation in a fresh process")
	out := fs.String("out", "", "write the results here (JSON)")
	fs.Parse(args)
	q, err := get()
	if err != nil {
		return err
	}
	st, err := q.open()
	if err != nil {
		return err
	}
	defer st.Close()
	vdb, err := q.vnOpen()
	if err != nil {
		return err
	}
	defer vdb.Close()
	rows, err := q.monthRows(st)
	if err != nil {
		return err
	}
	cold := q.cold()
	ops := []struct {
		name, desc string
		op         func() error
	}{
		{"netmeter/month", "netmeter report -m: Query(month) + Percentile(95) + Gaps, store open", func() error { return q.month(st) }},
		{"netmeter/month-rows", "of which the month rows alone: Query(month)", func() error { _, err := q.monthRows(st); return err }},
		{"netmeter/month-p95", "of which the 95th percentile alone (576 5-minute slots)", func() error { return q.p95(st, rows) }},
		{"netmeter/top", "netmeter report --top: Top(10) + Gaps, store open", func() error { return q.top(st) }},
		{"netmeter/month+open", "netmeter/month with history.Open and Close", cold["netmeter/month"]},
		{"netmeter/top+open", "netmeter/top with history.Open and Close", cold["netmeter/top"]},
		{"vnstat-sql/month", "vnStat's SQL for -m (interface lookups + month rows), same driver, db open", func() error { return q.vnQuery(vdb, vnMonthSQL) }},
		{"vnstat-sql/top", "vnStat's SQL for -t (interface lookups + top 10), same driver, db open", func() error { return q.vnQuery(vdb, vnTopSQL) }},
		{"vnstat-sql/month+open", "vnstat-sql/month with sql.Open (mode=ro) and Close", cold["vnstat-sql/month"]},
		{"vnstat-sql/top+open", "vnstat-sql/top with sql.Open (mode=ro) and Close", cold["vnstat-sql/top"]},
	}
	var res []inprocOp
	for _, o := range ops {
		s, err := timeOp(*minTime, *maxN, o.op)
		if err != nil {
			return fmt.Errorf("%s: %w", o.name, err)
		}
		fmt.Fprintf(os.Stderr, "  %-24s median %8.3f ms  (n=%d)\n", o.name, s.Median, s.N)
		res = append(res, inprocOp{o.name, o.desc, s})
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	for _, what := range []string{"netmeter/month", "netmeter/top", "vnstat-sql/month", "vnstat-sql/top"} {
		var ds []time.Duration
		for range *fresh {
			b, err := exec.Command(self, "once", "-netmeter", filepath.Dir(q.nmPath), "-vnstat", filepath.Dir(q.vnPath),
				"-i", q.iface, "-what", what).Output()
			if err != nil {
				return fmt.Errorf("once %s: %w", what, err)
			}
			ns, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
			if err != nil {
				return fmt.Errorf("once %s: %w", what, err)
			}
			ds = append(ds, time.Duration(ns))
		}
		s := summarise(ds)
		name := what + "+open, fresh process"
		fmt.Fprintf(os.Stderr, "  %-24s median %8.3f ms  (n=%d)\n", name, s.Median, s.N)
		res = append(res, inprocOp{name, "the first open+query+close of a new process (measured inside it)", s})
	}
	if *out != "" {
		return writeJSON(*out, res)
	}
	return nil
}
