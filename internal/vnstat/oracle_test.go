package vnstat

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestDatesMatchVnStat uses vnStat itself as the oracle for turning stored
// labels into instants: a database filled the way vnstatd fills it (labels
// formatted from real instants in the zone, every hour and 5-minute bin
// around each 2026 DST transition, every day, month and year) is read by
// Read and by `vnstat --json` under the same TZ, and every timestamp must
// agree. The only allowed difference is a label the zone skipped (Beirut's
// day whose midnight is skipped, Lord Howe's hour whose first half is),
// which the package doc describes; it is logged.
func TestDatesMatchVnStat(t *testing.T) {
	vnstat, _ := requireVnStat(t)
	for _, zone := range []string{"Europe/Berlin", "America/New_York", "America/Santiago", "Asia/Beirut", "Australia/Lord_Howe", "Asia/Kathmandu", "UTC"} {
		t.Run(zone, func(t *testing.T) {
			if _, err := os.Stat(filepath.Join("/usr/share/zoneinfo", zone)); err != nil {
				t.Skipf("vnstat needs the system's tzdata for %s: %v", zone, err)
			}
			t.Parallel()
			loc := loadZone(t, zone)
			f := newFixture(t)
			// updated is repeated by Berlin's fall-back; neither label is in a gap.
			f.addInterface(1, "eth0", "oracle", "2026-03-28 23:59:59", "2026-10-25 02:30:00", 1, 2)
			labels := vnStatLabels(loc)
			for _, tab := range Tables {
				for i, l := range labels[tab] {
					f.addRow(tab, 1, l, i+1, 2*i+1)
				}
			}
			f.close()

			d, err := Read(f.Path, WithLocation(loc))
			if err != nil {
				t.Fatal(err)
			}
			j := runVnStatJSON(t, vnstat, zone, "--dbdir", filepath.Dir(f.Path), "--json", "--limit", "0")
			if len(j.Interfaces) != 1 || len(d.Interfaces) != 1 {
				t.Fatalf("interfaces: vnstat %d, Read %d", len(j.Interfaces), len(d.Interfaces))
			}
			ours, theirs := d.Interfaces[0], j.Interfaces[0]
			if ours.Name != theirs.Name || ours.Alias != theirs.Alias || ours.Rx != theirs.Traffic.Total.Rx || ours.Tx != theirs.Traffic.Total.Tx {
				t.Errorf("Read %q %q %d/%d, vnstat %q %q %d/%d", ours.Name, ours.Alias, ours.Rx, ours.Tx,
					theirs.Name, theirs.Alias, theirs.Traffic.Total.Rx, theirs.Traffic.Total.Tx)
			}
			if ours.Created.Unix() != theirs.Created.Timestamp || ours.Updated.Unix() != theirs.Updated.Timestamp {
				t.Errorf("created/updated: Read %d/%d, vnstat %d/%d", ours.Created.Unix(), ours.Updated.Unix(),
					theirs.Created.Timestamp, theirs.Updated.Timestamp)
			}
			compared, gaps := 0, 0
			for _, tab := range Tables {
				got, want := ourRows(ours.Rows(tab)), j.rowsOf(0, tab)
				if len(got) != len(want) || len(got) != len(labels[tab]) {
					t.Errorf("%s: Read %d rows, vnstat %d, stored %d", tab, len(got), len(want), len(labels[tab]))
					continue
				}
				for i := range got {
					compared++
					r := ours.Rows(tab)[i]
					gap := inGap(tab, r.Time.In(loc))
					if gap {
						gaps++
					}
					switch {
					case got[i] == want[i]:
					case gap && got[i].Rx == want[i].Rx && got[i].Tx == want[i].Tx:
						t.Logf("%s row %d: label skipped by DST: Read %v, vnstat %v (%+d s)", tab, i,
							r.Time.In(loc), time.Unix(want[i].Timestamp, 0).In(loc), want[i].Timestamp-got[i].Timestamp)
					default:
						t.Errorf("%s row %d: Read %+v (%v), vnstat %+v", tab, i, got[i], r.Time.In(loc), want[i])
					}
				}
			}
			t.Logf("%d rows compared with vnStat %s, %d in a DST gap", compared, j.VnStatVersion, gaps)
		})
	}
}

// inGap reports whether a row of table tab that starts at t (in its zone)
// has a label the zone skipped: its first instant is not on the label's
// hour (hour rows) or midnight (day, top, month and year rows).
func inGap(tab Table, t time.Time) bool {
	h, m, s := t.Clock()
	switch tab {
	case FiveMinute:
		return false // labels of real instants floored in UTC, never skipped
	case Hour:
		return m != 0 || s != 0
	}
	return h != 0 || m != 0 || s != 0
}

// vnStatLabels returns, per table, the distinct labels vnstatd would have
// written in loc for traffic at every minute around each DST transition of
// 2026, and every day, month and year from 2025-12 to 2027-01.
func vnStatLabels(loc *time.Location) map[Table][]string {
	seen := map[Table]map[string]bool{}
	out := map[Table][]string{}
	add := func(t Table, s string) {
		if seen[t] == nil {
			seen[t] = map[string]bool{}
		}
		if !seen[t][s] {
			seen[t][s] = true
			out[t] = append(out[t], s)
		}
	}
	record := func(at time.Time) {
		l := at.In(loc)
		// fiveminute floors in UTC, then converts (db_get_date_generator).
		bin := at.UTC().Truncate(5 * time.Minute).In(loc)
		add(FiveMinute, bin.Format(time.DateTime))
		add(Hour, l.Format("2006-01-02 15:00:00"))
		add(Day, l.Format(time.DateOnly))
		add(Top, l.Format(time.DateOnly))
		add(Month, l.Format("2006-01")+"-01")
		add(Year, l.Format("2006")+"-01-01")
	}
	var transitions []time.Time
	for t := time.Date(2026, 1, 1, 0, 0, 0, 0, loc); t.Year() < 2027; {
		_, end := t.ZoneBounds()
		if end.IsZero() || end.Year() > 2026 {
			break
		}
		transitions = append(transitions, end)
		t = end
	}
	for _, tr := range transitions {
		for m := -3 * 60; m < 3*60; m += 1 {
			record(tr.Add(time.Duration(m) * time.Minute))
		}
	}
	for t := time.Date(2025, 12, 1, 12, 0, 0, 0, loc); t.Before(time.Date(2027, 1, 2, 0, 0, 0, 0, loc)); t = t.Add(6 * time.Hour) {
		l := t.In(loc)
		add(Day, l.Format(time.DateOnly))
		add(Month, l.Format("2006-01")+"-01")
		add(Year, l.Format("2006")+"-01-01")
	}
	for _, tr := range transitions { // the day of each transition, into top too
		add(Top, tr.In(loc).Format(time.DateOnly))
	}
	return out
}
