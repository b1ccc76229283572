// Package quota checks named traffic quotas against the history store: an
// entity (or a merged set), a direction, a limit and a billing period that
// starts on a given day, in the store's time zone. It reports period-to-date
// usage, the share of the limit, a guarded end-of-period estimate and a
// status that scripts can act on (netmeter quota check's exit codes).
package quota

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Quota is one named limit. YAML keys are those of the config file's
// quotas: section.
type Quota struct {
	Name string `yaml:"name" json:"name"`
	// Entity is "kind:name" — interface:eth0, process:nginx,
	// container:web, account:acme — and a merged set joins names with "+"
	// (interface:eth0+eth1).
	Entity string `yaml:"entity" json:"entity"`
	// Direction is "rx", "tx" or "total" (default total).
	Direction string `yaml:"direction" json:"direction"`
	// Limit is bytes, with an optional unit: "500GiB", "1.5TB", "1000000".
	Limit string `yaml:"limit" json:"limit"`
	// Period is "day", "week", "month" (default) or "year"; StartDay is the
	// day of the month (1–28) a month starts on (default 1).
	Period   string `yaml:"period" json:"period"`
	StartDay int    `yaml:"start_day" json:"start_day,omitempty"`
	// Warn lists percentages of the limit that raise a warning (default
	// 80 and 90).
	Warn []float64 `yaml:"warn" json:"warn,omitempty"`
}

// Parsed is a validated Quota.
type Parsed struct {
	Quota
	Kind      string
	Names     []string
	LimitB    uint64
	Direction string
	Period    string
	StartDay  int
	Warn      []float64
}

// Parse validates q with messages that name the quota and the field.
func Parse(q Quota) (Parsed, error) {
	p := Parsed{Quota: q, Direction: q.Direction, Period: q.Period, StartDay: q.StartDay, Warn: q.Warn}
	bad := func(field string, err error) error {
		return fmt.Errorf("quota %q: %s: %w", q.Name, field, err)
	}
	if q.Name == "" {
		return p, errors.New("quota without a name")
	}
	kind, names, ok := strings.Cut(q.Entity, ":")
	switch kind {
	case "interface", "process", "container", "account":
	default:
		return p, bad("entity", fmt.Errorf("%q: want kind:name with kind interface, process, container or account", q.Entity))
	}
	if !ok || names == "" {
		return p, bad("entity", fmt.Errorf("%q has no name after %q", q.Entity, kind+":"))
	}
	p.Kind, p.Names = kind, strings.Split(names, "+")
	if p.Direction == "" {
		p.Direction = "total"
	}
	if p.Direction != "rx" && p.Direction != "tx" && p.Direction != "total" {
		return p, bad("direction", fmt.Errorf("%q: want rx, tx or total", q.Direction))
	}
	n, err := ParseBytes(q.Limit)
	if err != nil {
		return p, bad("limit", err)
	}
	if n == 0 {
		return p, bad("limit", errors.New("must be more than 0"))
	}
	p.LimitB = n
	if p.Period == "" {
		p.Period = "month"
	}
	switch p.Period {
	case "day", "week", "month", "year":
	default:
		return p, bad("period", fmt.Errorf("%q: want day, week, month or year", q.Period))
	}
	if p.StartDay == 0 {
		p.StartDay = 1
	}
	if p.StartDay < 1 || p.StartDay > 28 {
		return p, bad("start_day", fmt.Errorf("%d: want 1 to 28", q.StartDay))
	}
	if len(p.Warn) == 0 {
		p.Warn = []float64{80, 90}
	}
	for _, w := range p.Warn {
		if w <= 0 || w >= 100 {
			return p, bad("warn", fmt.Errorf("%v%%: want between 0 and 100", w))
		}
	}
	return p, nil
}

var units = map[string]float64{
	"": 1, "B": 1,
	"KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12, "PB": 1e15,
	"KIB": 1 << 10, "MIB": 1 << 20, "GIB": 1 << 30, "TIB": 1 << 40, "PIB": 1 << 50,
	"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40,
}

// ParseBytes reads "500GiB", "1.5 TB", "1000000" (SI units are powers of
// 1000, IEC units and bare K/M/G/T of 1024).
func ParseBytes(s string) (uint64, error) {
	t := strings.TrimSpace(s)
	i := len(t)
	for i > 0 && (t[i-1] < '0' || t[i-1] > '9') && t[i-1] != '.' {
		i--
	}
	num, unit := strings.TrimSpace(t[:i]), strings.ToUpper(strings.TrimSpace(t[i:]))
	mult, ok := units[unit]
	if !ok {
		return 0, fmt.Errorf("%q: unknown unit %q (use B, KB…PB, KiB…PiB)", s, t[i:])
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("%q is not a byte count", s)
	}
	b := v * mult
	if b >= 1<<63 {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return uint64(b), nil
}

// Bounds returns the period containing t: [start, end) in loc.
func (p Parsed) Bounds(t time.Time, loc *time.Location) (start, end time.Time) {
	t = t.In(loc)
	y, m, d := t.Date()
	switch p.Period {
	case "day":
		start = time.Date(y, m, d, 0, 0, 0, 0, loc)
		return start, start.AddDate(0, 0, 1)
	case "week": // ISO weeks, Monday first
		wd := (int(t.Weekday()) + 6) % 7
		start = time.Date(y, m, d-wd, 0, 0, 0, 0, loc)
		return start, start.AddDate(0, 0, 7)
	case "year":
		start = time.Date(y, 1, 1, 0, 0, 0, 0, loc)
		return start, start.AddDate(1, 0, 0)
	}
	start = MonthStart(t, p.StartDay, loc)
	return start, start.AddDate(0, 1, 0)
}

// MonthStart is the start, in loc, of the month-long period t falls in when
// periods begin on day (1–28) of each month: billing months (quotas and the
// billing ledger) follow this one rule.
func MonthStart(t time.Time, day int, loc *time.Location) time.Time {
	t = t.In(loc)
	y, m, d := t.Date()
	start := time.Date(y, m, day, 0, 0, 0, 0, loc)
	if d < day {
		start = start.AddDate(0, -1, 0)
	}
	return start
}

// Status of a quota.
type Status string

// Statuses, from best to worst.
const (
	StatusOK       Status = "ok"
	StatusForecast Status = "forecast_exceeded" // under every threshold, but the estimate is over the limit
	StatusWarning  Status = "warning"           // over a warn threshold
	StatusExceeded Status = "exceeded"
)

// Result is one quota's state at a time.
type Result struct {
	Name        string    `json:"name"`
	Entity      string    `json:"entity"`
	Direction   string    `json:"direction"`
	PeriodStart time.Time `json:"period_start"`
	PeriodEnd   time.Time `json:"period_end"`
	Used        uint64    `json:"used_bytes"`
	Limit       uint64    `json:"limit_bytes"`
	Percent     float64   `json:"percent"`
	// Estimate is the end-of-period projection at the period's average
	// rate so far; EstimateValid is false while too little of the period
	// has passed (less than MinElapsed) to project honestly, and Estimate
	// is then 0.
	Estimate      uint64  `json:"estimate_bytes"`
	EstimateValid bool    `json:"estimate_valid"`
	Status        Status  `json:"status"`
	Threshold     float64 `json:"threshold_percent,omitempty"` // the highest warn threshold crossed
}

// MinElapsed is the least part of a period that must have passed before an
// estimate is given: a tenth of it and at least an hour (a day: 2.4 h; a
// month: 3 days) — an estimate from 7 minutes of data is not one.
func MinElapsed(start, end time.Time) time.Duration {
	return max(end.Sub(start)/10, time.Hour)
}

// Evaluate computes a quota's result from rx and tx used in the period so
// far, at time now.
func (p Parsed) Evaluate(now time.Time, start, end time.Time, rx, tx uint64) Result {
	used := rx + tx
	switch p.Direction {
	case "rx":
		used = rx
	case "tx":
		used = tx
	}
	r := Result{Name: p.Name, Entity: p.Entity, Direction: p.Direction, PeriodStart: start, PeriodEnd: end,
		Used: used, Limit: p.LimitB, Percent: 100 * float64(used) / float64(p.LimitB), Status: StatusOK}
	if el := now.Sub(start); el >= MinElapsed(start, end) && el > 0 {
		r.EstimateValid = true
		r.Estimate = uint64(float64(used) / el.Seconds() * end.Sub(start).Seconds())
	}
	for _, w := range p.Warn {
		if r.Percent >= w && w > r.Threshold {
			r.Threshold = w
		}
	}
	switch {
	case used >= p.LimitB:
		r.Status = StatusExceeded
	case r.Threshold > 0:
		r.Status = StatusWarning
	case r.EstimateValid && r.Estimate > p.LimitB:
		r.Status = StatusForecast
	}
	return r
}
