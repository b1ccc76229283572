package vnstat

import (
	"fmt"
	"time"
)

// Date layouts vnStat writes (see the package doc).
const (
	layoutDate     = "YYYY-MM-DD"
	layoutDateTime = "YYYY-MM-DD HH:MM:SS"
)

// Bounds of an accepted year: vnStat cannot have written earlier or later
// ones, and SQLite's date functions stop at 9999.
const (
	minYear = 1900
	maxYear = 9999
)

// civil is a wall-clock label without a zone, as vnStat stores it.
type civil struct {
	year, month, day, hour, min, sec int
}

func (c civil) String() string {
	return fmt.Sprintf("%04d-%02d-%02d %02d:%02d:%02d", c.year, c.month, c.day, c.hour, c.min, c.sec)
}

// parseCivil parses s, which must have exactly the layout given (layoutDate
// or layoutDateTime), digits where the layout has letters, and name a real
// calendar date and time of day (no 24:00, no leap second).
func parseCivil(s, layout string) (civil, error) {
	if len(s) != len(layout) {
		return civil{}, fmt.Errorf("date %q: want layout %s", s, layout)
	}
	var f [6]int // year, month, day, hour, min, sec
	field := -1
	for i := 0; i < len(layout); i++ {
		l, b := layout[i], s[i]
		switch l {
		case 'Y', 'M', 'D', 'H', 'S':
			if b < '0' || b > '9' {
				return civil{}, fmt.Errorf("date %q: want layout %s", s, layout)
			}
			if i == 0 || layout[i-1] != l {
				field++
			}
			f[field] = f[field]*10 + int(b-'0')
		default:
			if b != l {
				return civil{}, fmt.Errorf("date %q: want layout %s", s, layout)
			}
		}
	}
	c := civil{year: f[0], month: f[1], day: f[2], hour: f[3], min: f[4], sec: f[5]}
	switch {
	case c.year < minYear || c.year > maxYear:
		return civil{}, fmt.Errorf("date %q: year outside %d–%d", s, minYear, maxYear)
	case c.month < 1 || c.month > 12:
		return civil{}, fmt.Errorf("date %q: no month %d", s, c.month)
	case c.day < 1 || c.day > daysIn(c.year, c.month):
		return civil{}, fmt.Errorf("date %q: no day %d in %04d-%02d", s, c.day, c.year, c.month)
	case c.hour > 23 || c.min > 59 || c.sec > 59:
		return civil{}, fmt.Errorf("date %q: no time of day %02d:%02d:%02d", s, c.hour, c.min, c.sec)
	}
	return c, nil
}

func daysIn(year, month int) int {
	return time.Date(year, time.Month(month)+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// parseTableDate parses a date column of table t and checks what vnStat's
// formatting guarantees for that table.
func parseTableDate(t Table, s string) (civil, error) {
	switch t {
	case FiveMinute:
		// Floored in UTC, so the minute and second are only aligned in the
		// writer's zone if its offset is: not checked.
		return parseCivil(s, layoutDateTime)
	case Hour:
		c, err := parseCivil(s, layoutDateTime)
		if err == nil && (c.min != 0 || c.sec != 0) {
			err = fmt.Errorf("date %q: an hour row must start at HH:00:00", s)
		}
		return c, err
	case Day, Top:
		return parseCivil(s, layoutDate)
	case Month:
		c, err := parseCivil(s, layoutDate)
		if err == nil && c.day != 1 {
			err = fmt.Errorf("date %q: a month row must be on day 01", s)
		}
		return c, err
	case Year:
		c, err := parseCivil(s, layoutDate)
		if err == nil && (c.month != 1 || c.day != 1) {
			err = fmt.Errorf("date %q: a year row must be on 01-01", s)
		}
		return c, err
	}
	return civil{}, fmt.Errorf("unknown table %q", t)
}

// in returns the instant at which the wall-clock label c begins in loc.
//
// A label that exists once is the obvious instant, as vnStat's
// strftime('%s', date, 'utc') computes it. A label repeated by a fall-back
// transition is the one time.Date picks, which is the one SQLite picks: both
// start from the label read as UTC. A label skipped by a spring-forward
// transition becomes the transition itself, the first instant whose wall
// clock is at or after the label (time.Date would normalise it an hour
// forward or backward depending on the sign of the offset).
func (c civil) in(loc *time.Location) time.Time {
	t := time.Date(c.year, time.Month(c.month), c.day, c.hour, c.min, c.sec, 0, loc)
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	got := civil{year: y, month: int(mo), day: d, hour: h, min: mi, sec: s}
	switch cmp := got.compare(c); {
	case cmp > 0: // normalised forward: the gap began at this zone's start
		if start, _ := t.ZoneBounds(); !start.IsZero() {
			return start
		}
	case cmp < 0: // normalised backward: the gap begins where this zone ends
		if _, end := t.ZoneBounds(); !end.IsZero() {
			return end
		}
	}
	return t
}

func (c civil) compare(o civil) int {
	a := [6]int{c.year, c.month, c.day, c.hour, c.min, c.sec}
	b := [6]int{o.year, o.month, o.day, o.hour, o.min, o.sec}
	for i := range a {
		if a[i] != b[i] {
			if a[i] < b[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}
