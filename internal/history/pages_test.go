package history

import (
	"os"
	"testing"
	"time"
)

// A Record of 50 entities adds to rows that sit together (the table is
// ordered by resolution and time): it writes a dozen pages to the WAL. With
// entity-first ordering it wrote ~200 (800 KiB per interval, every second).
func TestRecordWritesFewPages(t *testing.T) {
	now := time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)
	s := openTest(t, Options{Location: time.UTC, Now: func() time.Time { return now }})
	es := benchEntities()
	if err := buildStore(s, es, now.AddDate(0, 0, -1), now, benchTraffic); err != nil {
		t.Fatal(err)
	}
	d := map[Entity]Counters{}
	for i, e := range es {
		d[e] = benchTraffic(i, 1)
	}
	for i := range 3 {
		if _, err := s.w.Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
			t.Fatal(err)
		}
		mustRecord(t, s, now.Add(-time.Minute+time.Duration(i)*time.Second), d)
		fi, err := os.Stat(s.path + "-wal")
		if err != nil {
			t.Fatal(err)
		}
		const header, frame = 32, 4096 + 24
		if pages := (fi.Size() - header) / frame; pages > 20 {
			t.Errorf("a Record of %d entities wrote %d pages to the WAL, want at most 20", len(es), pages)
		} else if i == 0 {
			t.Logf("a Record of %d entities wrote %d pages", len(es), pages)
		}
	}
}
