package vnstat

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/netmeter/netmeter/internal/history"
)

func openStore(t *testing.T, loc *time.Location, now time.Time) *history.Store {
	t.Helper()
	st, err := history.Open(history.Options{Path: filepath.Join(t.TempDir(), "h.db"), Location: loc,
		Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func storeRows(t *testing.T, st *history.Store, name string, res history.Resolution) map[time.Time][2]uint64 {
	t.Helper()
	rows, err := st.Query(history.Query{Entities: []history.Entity{{Kind: history.KindInterface, Name: name}}, Resolution: res})
	if err != nil {
		t.Fatal(err)
	}
	out := map[time.Time][2]uint64{}
	for _, r := range rows {
		out[r.Start.UTC()] = [2]uint64{r.RxBytes, r.TxBytes}
	}
	return out
}

// vnStat's tables hold the same bytes at several resolutions; imported,
// every resolution of the store equals vnStat's rows where vnStat has them.
func TestImportEveryResolution(t *testing.T) {
	loc := time.UTC
	at := func(y int, m time.Month, d, h, mi int) time.Time { return time.Date(y, m, d, h, mi, 0, 0, loc) }
	ifc := Interface{Name: "eth0", Created: at(2024, 6, 1, 0, 0), Rx: 100_000, Tx: 50_000,
		// 5-minute rows only for the last part of 2026-03-10 10:00.
		FiveMinute: []Row{{at(2026, 3, 10, 10, 30), 10, 1}, {at(2026, 3, 10, 10, 35), 20, 2}},
		Hour:       []Row{{at(2026, 3, 10, 9, 0), 100, 10}, {at(2026, 3, 10, 10, 0), 70, 7}},
		Day:        []Row{{at(2026, 3, 9, 0, 0), 1000, 100}, {at(2026, 3, 10, 0, 0), 500, 50}},
		Month:      []Row{{at(2026, 2, 1, 0, 0), 20_000, 2000}, {at(2026, 3, 1, 0, 0), 9_000, 900}},
		Year:       []Row{{at(2025, 1, 1, 0, 0), 60_000, 40_000}, {at(2026, 1, 1, 0, 0), 40_000, 10_000}},
	}
	d := &Database{Location: loc, Interfaces: []Interface{ifc}}
	st := openStore(t, loc, at(2026, 3, 10, 11, 0)) // within every retention
	res, err := Import(st, d, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res[0].RxBytes != 100_000 || res[0].TxBytes != 50_000 || res[0].Mismatches != 0 || res[0].RxUnplaced != 0 {
		t.Errorf("imported %+v", res[0])
	}
	for tab, sr := range map[Table]history.Resolution{FiveMinute: history.Res5Min, Hour: history.ResHour, Day: history.ResDay, Month: history.ResMonth, Year: history.ResYear} {
		got := storeRows(t, st, "eth0", sr)
		for _, r := range ifc.Rows(tab) {
			if g := got[r.Time.UTC()]; g != [2]uint64{r.Rx, r.Tx} {
				t.Errorf("%s %s: store %v, vnStat %d/%d", tab, r.Time.Format(time.RFC3339), g, r.Rx, r.Tx)
			}
		}
	}
	if _, err := Import(st, d, nil); !errors.Is(err, ErrImported) {
		t.Errorf("second import: %v, want ErrImported", err)
	}
	// Renamed into another entity: allowed, counted there.
	if _, err := Import(st, d, map[string]string{"eth0": "old-eth0"}); err != nil {
		t.Fatal(err)
	}
	if y := storeRows(t, st, "old-eth0", history.ResYear); y[ifc.Year[1].Time] != [2]uint64{40_000, 10_000} {
		t.Errorf("renamed import: %v", y)
	}
}
