package history

import (
	"fmt"
	"time"
)

// Resolution is the length of a bucket.
type Resolution string

// The resolutions, finest first.
const (
	Res5Min  Resolution = "5min"  // 5 minutes, aligned to UTC
	ResHour  Resolution = "hour"  // 1 hour, aligned to UTC hours
	ResDay   Resolution = "day"   // a calendar day in the store's Location (23–25 h)
	ResWeek  Resolution = "week"  // 7 calendar days from WeekStart, in the store's Location
	ResMonth Resolution = "month" // a calendar month in the store's Location
	ResYear  Resolution = "year"  // a calendar year in the store's Location
)

// Resolutions lists every resolution, finest first.
var Resolutions = []Resolution{Res5Min, ResHour, ResDay, ResWeek, ResMonth, ResYear}

func (r Resolution) valid() bool {
	switch r {
	case Res5Min, ResHour, ResDay, ResWeek, ResMonth, ResYear:
		return true
	}
	return false
}

// ParseResolution returns the Resolution named s ("5min", "hour", "day",
// "week", "month" or "year").
func ParseResolution(s string) (Resolution, error) {
	if r := Resolution(s); r.valid() {
		return r, nil
	}
	return "", fmt.Errorf("resolution %q: want 5min, hour, day, week, month or year", s)
}

// Bucket returns the bucket of resolution r that contains t: [start, end).
func (s *Store) Bucket(r Resolution, t time.Time) (start, end time.Time, err error) {
	if !r.valid() {
		return time.Time{}, time.Time{}, fmt.Errorf("history: unknown resolution %q", r)
	}
	a, b := s.bucket(r, t)
	return time.Unix(a, 0).In(s.loc), time.Unix(b, 0).In(s.loc), nil
}

// bucket returns the bucket of r containing t in Unix seconds.
func (s *Store) bucket(r Resolution, t time.Time) (start, end int64) {
	switch r {
	case Res5Min:
		start = floorTo(t.Unix(), 300)
		return start, start + 300
	case ResHour:
		start = floorTo(t.Unix(), 3600)
		return start, start + 3600
	}
	a, b := s.calendar(r, t, 0)
	return a.Unix(), b.Unix()
}

// calendar returns the calendar bucket of r containing t, moved back by
// `back` buckets.
func (s *Store) calendar(r Resolution, t time.Time, back int) (start, end time.Time) {
	y, m, d := t.In(s.loc).Date()
	switch r {
	case ResDay:
		return s.date(y, m, d-back), s.date(y, m, d-back+1)
	case ResWeek:
		off := (int(t.In(s.loc).Weekday()) - int(s.week) + 7) % 7
		d -= off + 7*back
		return s.date(y, m, d), s.date(y, m, d+7)
	case ResMonth:
		return s.date(y, m-time.Month(back), 1), s.date(y, m-time.Month(back)+1, 1)
	case ResYear:
		return s.date(y-back, 1, 1), s.date(y-back+1, 1, 1)
	}
	panic("history: calendar of " + string(r))
}

// date is local midnight (or the first instant of the day, where a DST
// change skips midnight) of a normalised date.
func (s *Store) date(y int, m time.Month, d int) time.Time {
	return time.Date(y, m, d, 0, 0, 0, 0, s.loc)
}

// floorTo rounds u down to a multiple of n (also before 1970).
func floorTo(u, n int64) int64 {
	q := u / n
	if u%n != 0 && u < 0 {
		q--
	}
	return q * n
}
