package vnstat

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// kathmandu is UTC+05:45: an offset that is not a whole hour shows any
// mix-up of wall clock and UTC.
var kathmandu = time.FixedZone("+0545", 5*3600+45*60)

// sameLocation compares *time.Location by identity (cmp compares
// time.Time by its Equal method, the instant).
var sameLocation = cmp.Comparer(func(a, b *time.Location) bool { return a == b })

func at(loc *time.Location, y, mo, d, h, mi int) time.Time {
	return time.Date(y, time.Month(mo), d, h, mi, 0, 0, loc)
}

func TestReadFixture(t *testing.T) {
	f := newFixture(t)
	f.addInterface(1, "eth0", nil, "2026-01-15 08:30:00", "2026-11-23 19:44:06", int64(5_000_000_000_000), 123)
	f.addInterface(2, "wlan<0>", `home & "wifi"`, "2025-12-31 23:59:59", "2026-01-01 00:00:01", 0, 0)
	f.exec(`UPDATE interface SET active = 0 WHERE id = 2`)
	// Inserted newest first: Read sorts by time.
	f.addRow(FiveMinute, 1, "2026-11-23 19:45:00", 10, 1)
	f.addRow(FiveMinute, 1, "2026-11-23 19:40:00", 20, 2)
	f.addRow(Hour, 1, "2026-11-23 19:00:00", 30, 3)
	f.addRow(Hour, 1, "2026-11-22 00:00:00", 1, 0)
	f.addRow(Day, 1, "2026-11-23", 30, 3)
	f.addRow(Day, 1, "2026-02-28", 7, 7)
	f.addRow(Month, 1, "2026-11-01", 30, 3)
	f.addRow(Year, 1, "2026-01-01", 30, 3)
	f.addRow(Year, 1, "2025-01-01", 1, 1)
	f.addRow(Top, 1, "2026-11-23", 30, 3)
	f.addRow(Day, 2, "2025-12-31", int64(1)<<62, 0)
	f.close()

	before := dirState(t, filepath.Dir(f.Path))
	got, err := Read(f.Path, WithLocation(kathmandu))
	if err != nil {
		t.Fatal(err)
	}
	if after := dirState(t, filepath.Dir(f.Path)); !cmp.Equal(before, after) {
		t.Errorf("Read changed the database directory")
	}
	k := kathmandu
	want := &Database{
		Version:       1,
		VnStatVersion: "2.10",
		Location:      k,
		Interfaces: []Interface{{
			Name: "eth0", Active: true,
			Created: time.Date(2026, 1, 15, 8, 30, 0, 0, k), Updated: time.Date(2026, 11, 23, 19, 44, 6, 0, k),
			Rx: 5_000_000_000_000, Tx: 123,
			FiveMinute: []Row{{at(k, 2026, 11, 23, 19, 40), 20, 2}, {at(k, 2026, 11, 23, 19, 45), 10, 1}},
			Hour:       []Row{{at(k, 2026, 11, 22, 0, 0), 1, 0}, {at(k, 2026, 11, 23, 19, 0), 30, 3}},
			Day:        []Row{{at(k, 2026, 2, 28, 0, 0), 7, 7}, {at(k, 2026, 11, 23, 0, 0), 30, 3}},
			Month:      []Row{{at(k, 2026, 11, 1, 0, 0), 30, 3}},
			Year:       []Row{{at(k, 2025, 1, 1, 0, 0), 1, 1}, {at(k, 2026, 1, 1, 0, 0), 30, 3}},
			Top:        []Row{{at(k, 2026, 11, 23, 0, 0), 30, 3}},
		}, {
			Name: "wlan<0>", Alias: `home & "wifi"`, Active: false,
			Created: time.Date(2025, 12, 31, 23, 59, 59, 0, k), Updated: time.Date(2026, 1, 1, 0, 0, 1, 0, k),
			Day: []Row{{at(k, 2025, 12, 31, 0, 0), 1 << 62, 0}},
		}},
	}
	if diff := cmp.Diff(want, got, sameLocation); diff != "" {
		t.Errorf("Read (-want +got):\n%s", diff)
	}
	// The 19:40 row of Kathmandu began at 13:55 UTC.
	if u := got.Interfaces[0].FiveMinute[0].Time.UTC(); u != time.Date(2026, 11, 23, 13, 55, 0, 0, time.UTC) {
		t.Errorf("19:40 +0545 is %v UTC", u)
	}
	if rs := got.Interfaces[0].Rows(Top); len(rs) != 1 {
		t.Errorf("Rows(Top) = %v", rs)
	}
	if rs := got.Interfaces[0].Rows("nope"); rs != nil {
		t.Errorf("Rows(nope) = %v", rs)
	}

	// The same labels in UTC (a database written with UseUTC 1).
	utc, err := Read(f.Path, WithLocation(time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if a, b := got.Interfaces[0].Hour[1].Time, utc.Interfaces[0].Hour[1].Time; b.Sub(a) != 5*time.Hour+45*time.Minute {
		t.Errorf("hour row in UTC %v, in +0545 %v: want 5h45m apart", b, a)
	}
}

func TestReadDefaultsToLocal(t *testing.T) {
	f := newFixture(t)
	f.addInterface(1, "eth0", nil, "2026-01-15 08:30:00", "2026-01-15 08:30:00", 0, 0)
	f.close()
	d, err := Read(f.Path)
	if err != nil {
		t.Fatal(err)
	}
	if d.Location != time.Local || d.Interfaces[0].Created != time.Date(2026, 1, 15, 8, 30, 0, 0, time.Local) {
		t.Errorf("Location %v, Created %v: want time.Local", d.Location, d.Interfaces[0].Created)
	}
}

// TestReadOrphans: rows of an interface id vnStat does not know, or of
// none, are skipped, as vnStat's queries (by interface id) skip them.
func TestReadOrphans(t *testing.T) {
	f := newFixture(t)
	f.addInterface(1, "eth0", nil, "2026-01-15 08:30:00", "2026-01-15 08:30:00", 0, 0)
	f.addRow(Day, 1, "2026-01-15", 1, 2)
	f.addRow(Day, 7, "2026-01-15", 100, 200)
	f.addRow(Day, nil, "2026-01-16", 100, 200)
	f.close()
	d, err := Read(f.Path, WithLocation(time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if want := []Row{{at(time.UTC, 2026, 1, 15, 0, 0), 1, 2}}; !cmp.Equal(d.Interfaces[0].Day, want) {
		t.Errorf("Day = %v, want %v", d.Interfaces[0].Day, want)
	}
}

func TestReadEmpty(t *testing.T) {
	f := newFixture(t)
	f.close()
	d, err := Read(f.Path)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Interfaces) != 0 || d.Version != 1 {
		t.Errorf("empty database: %+v", d)
	}
}

// TestReadOddPath: the path goes into an SQLite URI; characters that mean
// something there must stay part of the file name.
func TestReadOddPath(t *testing.T) {
	f := newFixture(t)
	f.addInterface(1, "eth0", nil, "2026-01-15 08:30:00", "2026-01-15 08:30:00", 0, 0)
	f.close()
	dir := filepath.Join(t.TempDir(), "a dir?mode=rwc&x=#%41 ü")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	odd := filepath.Join(dir, "vn stat?.db")
	if err := os.Rename(f.Path, odd); err != nil {
		t.Fatal(err)
	}
	before := dirState(t, dir)
	d, err := Read(odd)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Interfaces) != 1 {
		t.Errorf("interfaces: %+v", d.Interfaces)
	}
	if after := dirState(t, dir); !cmp.Equal(before, after) {
		t.Errorf("Read changed the directory: %v", after)
	}
}

// TestReadWAL: vnStat with DatabaseWriteAheadLogging 1 leaves a WAL-mode
// database; reading it read-only must work and leave no -wal or -shm file.
func TestReadWAL(t *testing.T) {
	f := newFixture(t)
	f.exec(`PRAGMA journal_mode = WAL`)
	f.addInterface(1, "eth0", nil, "2026-01-15 08:30:00", "2026-01-15 08:30:00", 3, 4)
	f.close()
	dir := filepath.Dir(f.Path)
	before := dirState(t, dir)
	d, err := Read(f.Path)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Interfaces) != 1 || d.Interfaces[0].Rx != 3 {
		t.Errorf("interfaces: %+v", d.Interfaces)
	}
	if after := dirState(t, dir); !cmp.Equal(before, after) {
		t.Errorf("Read changed the directory: before %d files, after %d", len(before), len(after))
	}
}

func TestReadErrors(t *testing.T) {
	const ok = "2026-01-15 08:30:00"
	tests := []struct {
		name  string
		setup func(f *fixture)
		opts  []Option
		is    error  // errors.Is, if set
		want  string // substring of the message
	}{
		{"no dbversion", func(f *fixture) { f.exec(`DELETE FROM info WHERE name = 'dbversion'`) }, nil,
			ErrNotVnStat, "no dbversion"},
		{"newer dbversion", func(f *fixture) { f.exec(`UPDATE info SET value = '2' WHERE name = 'dbversion'`) }, nil,
			ErrUnsupportedVersion, "dbversion 2 is newer than 1"},
		{"dbversion 0", func(f *fixture) { f.exec(`UPDATE info SET value = '0' WHERE name = 'dbversion'`) }, nil,
			ErrNotVnStat, "dbversion 0"},
		{"dbversion text", func(f *fixture) { f.exec(`UPDATE info SET value = 'one' WHERE name = 'dbversion'`) }, nil,
			ErrNotVnStat, `dbversion "one" is not a number`},
		{"dbversion blob", func(f *fixture) { f.exec(`UPDATE info SET value = x'01' WHERE name = 'dbversion'`) }, nil,
			ErrNotVnStat, "dbversion is blob"},
		{"no table top", func(f *fixture) { f.exec(`DROP TABLE top`) }, nil,
			ErrNotVnStat, `no table "top"`},
		{"no column", func(f *fixture) {
			f.exec(`DROP TABLE hour`)
			f.exec(`CREATE TABLE hour(id INTEGER PRIMARY KEY, interface INTEGER, date DATE, rx INTEGER)`)
		}, nil, ErrNotVnStat, `table "hour" has no column "tx"`},
		{"bad month", func(f *fixture) { f.addRow(Day, 1, "2026-13-01", 1, 1) }, nil,
			nil, `table day, id 1: date "2026-13-01": no month 13`},
		{"30 February", func(f *fixture) { f.addRow(Top, 1, "2026-02-30", 1, 1) }, nil,
			nil, `table top, id 1: date "2026-02-30": no day 30 in 2026-02`},
		{"ISO T", func(f *fixture) { f.addRow(Hour, 1, "2026-01-15T08:00:00", 1, 1) }, nil,
			nil, "want layout YYYY-MM-DD HH:MM:SS"},
		{"day with time", func(f *fixture) { f.addRow(Day, 1, "2026-01-15 00:00:00", 1, 1) }, nil,
			nil, "want layout YYYY-MM-DD"},
		{"hour not on the hour", func(f *fixture) { f.addRow(Hour, 1, "2026-01-15 08:05:00", 1, 1) }, nil,
			nil, "an hour row must start at HH:00:00"},
		{"month not on day 1", func(f *fixture) { f.addRow(Month, 1, "2026-01-15", 1, 1) }, nil,
			nil, "a month row must be on day 01"},
		{"year not on 01-01", func(f *fixture) { f.addRow(Year, 1, "2026-02-01", 1, 1) }, nil,
			nil, "a year row must be on 01-01"},
		{"24:00", func(f *fixture) { f.addRow(FiveMinute, 1, "2026-01-15 24:00:00", 1, 1) }, nil,
			nil, "no time of day 24:00:00"},
		{"year 1899", func(f *fixture) { f.addRow(Year, 1, "1899-01-01", 1, 1) }, nil,
			nil, "year outside 1900–9999"},
		{"integer date", func(f *fixture) { f.addRow(Day, 1, 2461000, 1, 1) }, nil,
			nil, "date is integer, want text"},
		{"real date", func(f *fixture) { f.addRow(Day, 1, 2461000.5, 1, 1) }, nil,
			nil, "date is real, want text"},
		{"huge date", func(f *fixture) { f.addRow(Day, 1, "2026-01-15"+strings.Repeat("x", 1<<20), 1, 1) }, nil,
			nil, "want layout YYYY-MM-DD"},
		{"negative rx", func(f *fixture) { f.addRow(Day, 1, "2026-01-15", -1, 1) }, nil,
			nil, "rx is negative (-1)"},
		{"real tx", func(f *fixture) { f.addRow(Day, 1, "2026-01-15", 1, 1e19) }, nil,
			nil, "tx is real (1e+19), want integer"},
		{"text rx", func(f *fixture) { f.addRow(Day, 1, "2026-01-15", "lots", 1) }, nil,
			nil, "rx is text, want integer"},
		{"text interface", func(f *fixture) { f.addRow(Day, "eth0", "2026-01-15", 1, 1) }, nil,
			nil, "interface is text, want integer"},
		{"negative total", func(f *fixture) { f.exec(`UPDATE interface SET rxtotal = -5`) }, nil,
			nil, "table interface, id 1: rxtotal is negative (-5)"},
		{"long name", func(f *fixture) { f.exec(`UPDATE interface SET name = ?`, strings.Repeat("n", 257)) }, nil,
			nil, "name is longer than 256 bytes"},
		{"huge alias", func(f *fixture) { f.exec(`UPDATE interface SET alias = ?`, strings.Repeat("a", 1<<20)) }, nil,
			nil, "alias is longer than 256 bytes"},
		{"blob name", func(f *fixture) { f.exec(`UPDATE interface SET name = x'6574683000'`) }, nil,
			nil, "name is blob, want text"},
		{"empty name", func(f *fixture) { f.exec(`UPDATE interface SET name = ''`) }, nil,
			nil, "name is empty"},
		{"bad created", func(f *fixture) { f.exec(`UPDATE interface SET created = '2026-01-15'`) }, nil,
			nil, `created: date "2026-01-15": want layout YYYY-MM-DD HH:MM:SS`},
		{"too many rows", func(f *fixture) {
			f.addRow(Day, 1, "2026-01-15", 1, 1)
			f.addRow(Day, 1, "2026-01-16", 1, 1)
		}, []Option{WithMaxRows(2)}, nil, "3 rows, more than the limit of 2 (vnstat.WithMaxRows)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.addInterface(1, "eth0", nil, ok, ok, 0, 0)
			tt.setup(f)
			f.close()
			d, err := Read(f.Path, tt.opts...)
			if err == nil {
				t.Fatalf("Read = %+v, want an error", d)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %q is not %q", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "read vnstat database "+f.Path+": ") {
				t.Errorf("error %q, want it to start with the path and contain %q", err, tt.want)
			}
		})
	}
}

// TestReadDuplicateDate: vnStat's UNIQUE (interface, date) forbids two rows
// of one period; a database without the constraint is refused rather than
// guessed at.
func TestReadDuplicateDate(t *testing.T) {
	ddl := strings.ReplaceAll(vnStatSchema, ",\n  CONSTRAINT u UNIQUE (interface, date)", "")
	f := newFixture(t, ddl)
	f.addInterface(1, "eth0", nil, "2026-01-15 08:30:00", "2026-01-15 08:30:00", 0, 0)
	f.addRow(Day, 1, "2026-01-15", 1, 1)
	f.addRow(Day, 1, "2026-01-15", 2, 2)
	f.close()
	_, err := Read(f.Path)
	if err == nil || !strings.Contains(err.Error(), `interface "eth0" has date 2026-01-15 00:00:00 twice`) {
		t.Errorf("Read: %v", err)
	}
}

func TestReadNotVnStat(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// A vnStat 1.x database starts with its version as a native int.
	legacy := append([]byte{3, 0, 0, 0}, []byte("eth0")...)
	legacy = append(legacy, make([]byte, 4096)...)
	other := newFixture(t, `CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT)`)
	other.close()

	for _, tt := range []struct {
		name, path, want string
	}{
		{"empty file", write("empty.db", nil), `no table "info"`},
		{"text file", write("notes.txt", []byte("hello, world\n")), "not an SQLite database"},
		{"vnStat 1.x", write("vnstat-1.x", legacy), "not an SQLite database (vnStat 1.x files are not supported)"},
		{"other SQLite", other.Path, `no table "info"`},
		{"directory", dir, "not a regular file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var before []byte
			if tt.path != dir {
				var err error
				if before, err = os.ReadFile(tt.path); err != nil {
					t.Fatal(err)
				}
			}
			_, err := Read(tt.path)
			if !errors.Is(err, ErrNotVnStat) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Read: %v, want ErrNotVnStat and %q", err, tt.want)
			}
			if tt.path != dir {
				after, err := os.ReadFile(tt.path)
				if err != nil || string(after) != string(before) {
					t.Errorf("Read changed the file (%v)", err)
				}
			}
		})
	}

	_, err := Read(filepath.Join(dir, "missing.db"))
	if !errors.Is(err, fs.ErrNotExist) || strings.Count(err.Error(), "missing.db") != 1 {
		t.Errorf("missing file: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "missing.db")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Read created the missing file")
	}
}

func TestOptionsValidated(t *testing.T) {
	f := newFixture(t)
	f.close()
	if _, err := Read(f.Path, WithLocation(nil)); err == nil || !strings.Contains(err.Error(), "WithLocation") {
		t.Errorf("WithLocation(nil): %v", err)
	}
	if _, err := Read(f.Path, WithMaxRows(0)); err == nil || !strings.Contains(err.Error(), "WithMaxRows(0)") {
		t.Errorf("WithMaxRows(0): %v", err)
	}
}

// TestReadWALLive: while vnstatd has a WAL-mode database open, its -wal
// and -shm files exist and the last commits may only be in the -wal file:
// Read must see them, and create no file.
func TestReadWALLive(t *testing.T) {
	f := newFixture(t)
	f.exec(`PRAGMA journal_mode = WAL`)
	f.exec(`PRAGMA wal_autocheckpoint = 0`)
	f.addInterface(1, "eth0", nil, "2026-01-15 08:30:00", "2026-01-15 08:30:00", 3, 4)
	f.addRow(Day, 1, "2026-01-15", 3, 4)
	dir := filepath.Dir(f.Path)
	names := func() []string {
		var n []string
		for name := range dirState(t, dir) {
			n = append(n, name)
		}
		slices.Sort(n)
		return n
	}
	before := names()
	if !slices.Contains(before, "vnstat.db-wal") {
		t.Fatalf("writer left no -wal file: %v", before)
	}
	d, err := Read(f.Path)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Interfaces) != 1 || len(d.Interfaces[0].Day) != 1 {
		t.Errorf("Read missed rows only in the -wal file: %+v", d.Interfaces)
	}
	if after := names(); !slices.Equal(before, after) {
		t.Errorf("files before Read %v, after %v", before, after)
	}
}

// TestReadWhileWriting: a reader holding the database (vnstatd between
// saves) does not stop Read, and Read sees the last committed state, not a
// write in progress.
func TestReadWhileWriting(t *testing.T) {
	f := newFixture(t)
	f.addInterface(1, "eth0", nil, "2026-01-15 08:30:00", "2026-01-15 08:30:00", 1, 1)
	tx, err := f.db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`UPDATE interface SET rxtotal = 99`); err != nil {
		t.Fatal(err)
	}
	d, err := Read(f.Path)
	if err != nil {
		t.Fatal(err)
	}
	if d.Interfaces[0].Rx != 1 {
		t.Errorf("Rx = %d, want the committed 1", d.Interfaces[0].Rx)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}
