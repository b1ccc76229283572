package vnstat

import (
	"fmt"
	"testing"
	"time"
	_ "time/tzdata" // the zones below, even where the system has no tzdata
)

func loadZone(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// TestCivilIn pins how a wall-clock label becomes an instant around DST
// transitions (the package doc says why).
func TestCivilIn(t *testing.T) {
	utc := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse("2006-01-02 15:04:05", s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tt := range []struct {
		zone, label string
		want        time.Time
		why         string
	}{
		{"Europe/Berlin", "2026-07-01 12:00:00", utc("2026-07-01 10:00:00"), "summer, +02"},
		{"Europe/Berlin", "2026-01-01 00:00:00", utc("2025-12-31 23:00:00"), "winter, +01"},
		{"Europe/Berlin", "2026-03-29 02:00:00", utc("2026-03-29 01:00:00"), "gap 02:00–03:00: the transition"},
		{"Europe/Berlin", "2026-03-29 02:30:00", utc("2026-03-29 01:00:00"), "inside the gap: the transition"},
		{"Europe/Berlin", "2026-03-29 03:00:00", utc("2026-03-29 01:00:00"), "first real wall time after the gap"},
		{"Europe/Berlin", "2026-10-25 02:30:00", utc("2026-10-25 01:30:00"), "repeated: the second (+01), as SQLite"},
		{"America/New_York", "2026-03-08 02:00:00", utc("2026-03-08 07:00:00"), "gap west of UTC: the transition"},
		{"America/New_York", "2026-11-01 01:30:00", utc("2026-11-01 05:30:00"), "repeated: the first (-04), as SQLite"},
		{"America/Santiago", "2026-09-06 00:00:00", utc("2026-09-06 04:00:00"), "day whose midnight is skipped starts at 01:00 -03"},
		{"Asia/Beirut", "2026-03-29 00:00:00", utc("2026-03-28 22:00:00"), "day whose midnight is skipped starts at 01:00 +03"},
		{"Australia/Lord_Howe", "2026-10-04 02:15:00", utc("2026-10-03 15:30:00"), "half-hour gap: the transition"},
		{"Asia/Kathmandu", "2026-11-23 19:40:00", utc("2026-11-23 13:55:00"), "+05:45"},
	} {
		t.Run(fmt.Sprintf("%s %s", tt.zone, tt.label), func(t *testing.T) {
			loc := loadZone(t, tt.zone)
			c, err := parseCivil(tt.label, layoutDateTime)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.in(loc); !got.Equal(tt.want) {
				t.Errorf("%s in %s = %v, want %v (%s)", tt.label, tt.zone, got.UTC(), tt.want, tt.why)
			}
		})
	}
}

// TestCivilInEveryHour: for every quarter hour of a year in zones with DST,
// a label that exists maps to an instant showing that label, and a label in
// a gap maps to the first instant after it.
func TestCivilInEveryHour(t *testing.T) {
	for _, zone := range []string{"Europe/Berlin", "America/New_York", "America/Santiago", "Asia/Beirut", "Australia/Lord_Howe", "UTC"} {
		loc := loadZone(t, zone)
		start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		for i := range 365 * 24 * 4 {
			w := start.Add(time.Duration(i) * 15 * time.Minute) // a wall clock, not an instant
			c := civil{w.Year(), int(w.Month()), w.Day(), w.Hour(), w.Minute(), 0}
			got := c.in(loc)
			l := got.In(loc)
			shown := civil{l.Year(), int(l.Month()), l.Day(), l.Hour(), l.Minute(), l.Second()}
			switch shown.compare(c) {
			case 0:
			case 1: // in a gap: the instant just before must show an earlier label
				p := got.Add(-time.Second).In(loc)
				if (civil{p.Year(), int(p.Month()), p.Day(), p.Hour(), p.Minute(), p.Second()}).compare(c) >= 0 {
					t.Errorf("%s %s: %v is not the first instant after the label", zone, c, got)
				}
			default:
				t.Errorf("%s %s: %v shows the earlier %s", zone, c, got, shown)
			}
		}
	}
}

func TestParseTableDate(t *testing.T) {
	for _, tt := range []struct {
		table Table
		s     string
		ok    bool
	}{
		{FiveMinute, "2026-11-23 19:40:00", true},
		{FiveMinute, "2026-11-23 19:42:00", true}, // not aligned in the writer's zone: allowed
		{FiveMinute, "2026-11-23", false},
		{Hour, "2026-11-23 19:00:00", true},
		{Hour, "2026-11-23 19:00:01", false},
		{Day, "2024-02-29", true},
		{Day, "2026-02-29", false},
		{Day, "2026-1-05", false},
		{Day, "2026-01-05 ", false},
		{Day, "+026-01-05", false},
		{Top, "9999-12-31", true},
		{Top, "0000-01-01", false},
		{Month, "2026-11-01", true},
		{Month, "2026-11-02", false},
		{Year, "2026-01-01", true},
		{Year, "2026-12-01", false},
		{"bogus", "2026-01-01", false},
	} {
		_, err := parseTableDate(tt.table, tt.s)
		if (err == nil) != tt.ok {
			t.Errorf("parseTableDate(%s, %q) error %v, want ok=%v", tt.table, tt.s, err, tt.ok)
		}
	}
}

// FuzzParseTableDate: the date column is untrusted text. Parsing never
// panics; what parses prints back unchanged and converts to an instant in
// any zone without panicking.
func FuzzParseTableDate(f *testing.F) {
	for _, s := range []string{"2026-11-23 19:40:00", "2026-11-23", "2026-11-01", "2026-01-01", "9999-12-31 23:59:59", "1900-01-01", "2026-02-29", "２０２６-01-01", "2026-01-01\x00"} {
		for i := range Tables {
			f.Add(uint8(i), s)
		}
	}
	zones := []*time.Location{time.UTC, loadZone(f, "Asia/Beirut"), loadZone(f, "America/Santiago"), time.FixedZone("odd", -(3*3600 + 7*60 + 13))}
	f.Fuzz(func(t *testing.T, table uint8, s string) {
		tab := Tables[int(table)%len(Tables)]
		c, err := parseTableDate(tab, s)
		if err != nil {
			return
		}
		back := c.String()
		if len(s) == len(layoutDate) {
			back = back[:len(layoutDate)]
		}
		if back != s {
			t.Fatalf("%q parsed as %s", s, c)
		}
		for _, loc := range zones {
			if got := c.in(loc); got.IsZero() || got.Year() < minYear-1 || got.Year() > maxYear+1 {
				t.Fatalf("%q in %v = %v", s, loc, got)
			}
		}
	})
}
