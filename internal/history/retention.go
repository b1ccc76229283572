package history

import (
	"context"
	"time"
)

// Retention says how much of each resolution Prune keeps. A zero field takes
// its default (the package doc); a negative one keeps that resolution
// forever.
type Retention struct {
	// FiveMin and Hour keep the rows that end after now minus the duration
	// (default 48 h and 96 h).
	FiveMin time.Duration `yaml:"five_minutes"`
	Hour    time.Duration `yaml:"hours"`
	// Days, Weeks, Months and Years keep the bucket that contains now and
	// the N−1 before it (default 62 days, 104 weeks, 25 months and every
	// year: Years 0 keeps all).
	Days   int `yaml:"days"`
	Weeks  int `yaml:"weeks"`
	Months int `yaml:"months"`
	Years  int `yaml:"years"`
	// TopDays is how many of each entity's busiest days are kept beyond the
	// daily retention (default 20).
	TopDays int `yaml:"top_days"`
}

// The default retention: vnStat's, and two years of weeks.
const (
	DefaultFiveMin = 48 * time.Hour
	DefaultHour    = 96 * time.Hour
	DefaultDays    = 62
	DefaultWeeks   = 104
	DefaultMonths  = 25
	DefaultTopDays = 20
)

// forever is the internal "keep everything" value of a resolved Retention.
const forever = -1

func (r Retention) withDefaults() Retention {
	dur := func(d *time.Duration, def time.Duration) {
		switch {
		case *d == 0:
			*d = def
		case *d < 0:
			*d = forever
		}
	}
	n := func(v *int, def int) {
		switch {
		case *v == 0:
			*v = def
		case *v < 0:
			*v = forever
		}
	}
	dur(&r.FiveMin, DefaultFiveMin)
	dur(&r.Hour, DefaultHour)
	n(&r.Days, DefaultDays)
	n(&r.Weeks, DefaultWeeks)
	n(&r.Months, DefaultMonths)
	n(&r.Years, forever)
	n(&r.TopDays, DefaultTopDays)
	return r
}

// Retention returns the retention in force, defaults filled in (-1: forever).
func (s *Store) Retention() Retention { return s.ret }

// cutoff returns the Unix time before which rows of r are deleted at now:
// a row is kept while its end is after the cutoff. ok is false when r is
// kept forever.
func (s *Store) cutoff(r Resolution, now time.Time) (cut int64, ok bool) {
	var n int
	switch r {
	case Res5Min, ResHour:
		d := s.ret.FiveMin
		if r == ResHour {
			d = s.ret.Hour
		}
		if d == forever {
			return 0, false
		}
		return now.Add(-d).Unix(), true
	case ResDay:
		n = s.ret.Days
	case ResWeek:
		n = s.ret.Weeks
	case ResMonth:
		n = s.ret.Months
	case ResYear:
		n = s.ret.Years
	}
	if n == forever {
		return 0, false
	}
	start, _ := s.calendar(r, now, n-1)
	return start.Unix(), true
}

// Prune deletes what the retention no longer keeps at now: rows of each
// resolution, 5-minute slots, and top days that ended before the daily
// retention and are not among their entity's TopDays busiest. Gaps and
// state are kept.
func (s *Store) Prune(now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx := context.Background()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return s.writeErr("prune", err)
	}
	defer tx.Rollback()
	for _, r := range Resolutions {
		cut, ok := s.cutoff(r, now)
		if !ok {
			continue
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM traffic WHERE res = ? AND end_unix <= ?", string(r), cut); err != nil {
			return s.writeErr("prune "+string(r), err)
		}
		if r == Res5Min {
			if _, err := tx.ExecContext(ctx, "DELETE FROM slot WHERE start_unix + 300 <= ?", cut); err != nil {
				return s.writeErr("prune 5-minute slots", err)
			}
		}
	}
	if cut, ok := s.cutoff(ResDay, now); ok && s.ret.TopDays != forever {
		// Ranked like Top: by rx+tx, then the older day first. rx+tx beyond
		// int64 turns into a real in SQLite, which still orders right.
		if _, err := tx.ExecContext(ctx, `DELETE FROM top_day WHERE end_unix <= ?1 AND (entity, start_unix) NOT IN (
			SELECT entity, start_unix FROM (
				SELECT entity, start_unix, row_number() OVER (
					PARTITION BY entity ORDER BY rx_bytes + tx_bytes DESC, start_unix) AS rank
				FROM top_day)
			WHERE rank <= ?2)`, cut, s.ret.TopDays); err != nil {
			return s.writeErr("prune top days", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return s.writeErr("prune", err)
	}
	return nil
}

// Run prunes at once and then every Options.PruneEvery until ctx is done;
// it returns nil then. A failed prune goes to Options.OnPruneError and is
// retried at the next tick.
func (s *Store) Run(ctx context.Context) error {
	every := s.opt.PruneEvery
	if every <= 0 {
		every = defaultPruneEvery
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := s.Prune(s.now()); err != nil && s.opt.OnPruneError != nil {
			s.opt.OnPruneError(err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
