package vnstat

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/netmeter/netmeter/internal/history"
)

// ErrImported is returned when an interface of a database was imported into
// the store before: importing it again would count its traffic twice.
var ErrImported = errors.New("already imported")

// Imported says what Import wrote for one interface.
type Imported struct {
	Interface string `json:"interface"` // vnStat's name
	Entity    string `json:"entity"`    // the store's interface name
	RxBytes   uint64 `json:"rx_bytes"`  // written to the store
	TxBytes   uint64 `json:"tx_bytes"`
	// Pieces is the number of records written; Mismatches counts vnStat
	// rows whose finer rows summed to more than the row itself (the finer
	// rows win; vnStat's own tables then disagree).
	Pieces     int `json:"pieces"`
	Mismatches int `json:"mismatches"`
	// RxUnplaced and TxUnplaced are lifetime bytes no row holds any more
	// (deleted by vnStat's retention): not imported, since no time is known.
	RxUnplaced uint64 `json:"rx_unplaced_bytes"`
	TxUnplaced uint64 `json:"tx_unplaced_bytes"`
}

// piece is traffic at one instant, written as one Record.
type piece struct {
	t      time.Time
	rx, tx uint64
}

// Import writes a vnStat database's history into st, interface by interface
// (names maps a vnStat name to the store's; missing names keep vnStat's).
//
// vnStat keeps the same traffic at several resolutions; the store rolls every
// record up to all of its resolutions itself, so each byte must be written
// once: the finest rows are taken as they are (5-minute), and each coarser
// row (hour, day, month, year) adds only what its finer rows inside it do
// not already hold, at the row's start. The store's totals at every
// resolution then equal vnStat's, as far back as vnStat kept rows.
// Days, months and years fall where the store's Location puts them: read
// the database in the same zone (WithLocation).
func Import(st *history.Store, d *Database, names map[string]string) ([]Imported, error) {
	var out []Imported
	for i := range d.Interfaces {
		ifc := &d.Interfaces[i]
		name := ifc.Name
		if n, ok := names[ifc.Name]; ok {
			name = n
		}
		key := "import/vnstat/" + name + "/" + strconv.FormatInt(ifc.Created.Unix(), 10)
		if b, err := st.State(key); err != nil {
			return out, err
		} else if len(b) > 0 {
			return out, fmt.Errorf("vnStat interface %q (created %s) into %q: %w on %s", ifc.Name, ifc.Created.Format(time.RFC3339), name, ErrImported, b)
		}
		pieces, mism := placeRows(ifc, d.Location)
		res := Imported{Interface: ifc.Name, Entity: name, Pieces: len(pieces), Mismatches: mism}
		e := history.Entity{Kind: history.KindInterface, Name: name}
		for _, p := range pieces {
			if err := st.Record(p.t, map[history.Entity]history.Counters{e: {RxBytes: p.rx, TxBytes: p.tx}}); err != nil {
				return out, fmt.Errorf("import %q at %s: %w", ifc.Name, p.t.Format(time.RFC3339), err)
			}
			res.RxBytes += p.rx
			res.TxBytes += p.tx
		}
		res.RxUnplaced = ifc.Rx - min(ifc.Rx, res.RxBytes)
		res.TxUnplaced = ifc.Tx - min(ifc.Tx, res.TxBytes)
		if err := st.SetState(key, []byte(time.Now().UTC().Format(time.RFC3339))); err != nil {
			return out, err
		}
		out = append(out, res)
	}
	return out, nil
}

// placeRows turns an interface's tables into pieces, finest first.
func placeRows(ifc *Interface, loc *time.Location) ([]piece, int) {
	if loc == nil {
		loc = time.Local
	}
	end := map[Table]func(time.Time) time.Time{
		FiveMinute: func(t time.Time) time.Time { return t.Add(5 * time.Minute) },
		Hour:       func(t time.Time) time.Time { return t.Add(time.Hour) },
		Day: func(t time.Time) time.Time {
			t = t.In(loc)
			return time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, loc)
		},
		Month: func(t time.Time) time.Time {
			t = t.In(loc)
			return time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, loc)
		},
		Year: func(t time.Time) time.Time { t = t.In(loc); return time.Date(t.Year()+1, 1, 1, 0, 0, 0, 0, loc) },
	}
	var pieces []piece // kept sorted by time
	mism := 0
	for _, tab := range []Table{FiveMinute, Hour, Day, Month, Year} {
		var add []piece
		for _, r := range ifc.Rows(tab) {
			from, to := r.Time, end[tab](r.Time)
			lo := sort.Search(len(pieces), func(i int) bool { return !pieces[i].t.Before(from) })
			var rx, tx uint64
			for j := lo; j < len(pieces) && pieces[j].t.Before(to); j++ {
				rx += pieces[j].rx
				tx += pieces[j].tx
			}
			if rx > r.Rx || tx > r.Tx {
				mism++
			}
			p := piece{t: from, rx: r.Rx - min(rx, r.Rx), tx: r.Tx - min(tx, r.Tx)}
			if p.rx > 0 || p.tx > 0 {
				add = append(add, p)
			}
		}
		pieces = append(pieces, add...)
		sort.SliceStable(pieces, func(i, j int) bool { return pieces[i].t.Before(pieces[j].t) })
	}
	return pieces, mism
}
