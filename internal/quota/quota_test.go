package quota

import (
	"strings"
	"testing"
	"time"
)

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]uint64{
		"1000": 1000, "500GiB": 500 << 30, "1.5TB": 1_500_000_000_000, "2 MiB": 2 << 20, "10K": 10 << 10, "0": 0, "7B": 7,
	} {
		got, err := ParseBytes(in)
		if err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "GiB", "5 parsecs", "-3", "1e30PB"} {
		if _, err := ParseBytes(in); err == nil {
			t.Errorf("ParseBytes(%q) accepted", in)
		}
	}
}

func TestParseErrorsNameTheField(t *testing.T) {
	for _, tt := range []struct {
		q    Quota
		want string
	}{
		{Quota{Name: "a", Entity: "eth0", Limit: "1G"}, "entity"},
		{Quota{Name: "a", Entity: "interface:", Limit: "1G"}, "entity"},
		{Quota{Name: "a", Entity: "interface:eth0", Limit: "lots"}, "limit"},
		{Quota{Name: "a", Entity: "interface:eth0", Limit: "1G", Direction: "up"}, "direction"},
		{Quota{Name: "a", Entity: "interface:eth0", Limit: "1G", Period: "fortnight"}, "period"},
		{Quota{Name: "a", Entity: "interface:eth0", Limit: "1G", StartDay: 31}, "start_day"},
		{Quota{Name: "a", Entity: "interface:eth0", Limit: "1G", Warn: []float64{120}}, "warn"},
	} {
		_, err := Parse(tt.q)
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), `"a"`) {
			t.Errorf("Parse(%+v) = %v, want an error naming quota a and %s", tt.q, err, tt.want)
		}
	}
	p, err := Parse(Quota{Name: "m", Entity: "interface:eth0+eth1", Limit: "1TiB"})
	if err != nil || p.Kind != "interface" || len(p.Names) != 2 || p.Period != "month" || p.Direction != "total" || p.StartDay != 1 {
		t.Errorf("defaults: %+v, %v", p, err)
	}
}

func TestBounds(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip("no tzdata:", err)
	}
	at := time.Date(2026, 3, 10, 12, 0, 0, 0, berlin)
	for _, tt := range []struct {
		period     string
		day        int
		start, end string
	}{
		{"month", 1, "2026-03-01", "2026-04-01"},
		{"month", 15, "2026-02-15", "2026-03-15"},
		{"month", 10, "2026-03-10", "2026-04-10"},
		{"day", 1, "2026-03-10", "2026-03-11"},
		{"week", 1, "2026-03-09", "2026-03-16"}, // a Monday
		{"year", 1, "2026-01-01", "2027-01-01"},
	} {
		p := Parsed{Period: tt.period, StartDay: tt.day}
		s, e := p.Bounds(at, berlin)
		if s.Format("2006-01-02") != tt.start || e.Format("2006-01-02") != tt.end || s.Hour() != 0 || s.Location() != berlin {
			t.Errorf("%s/%d: [%v, %v), want [%s, %s)", tt.period, tt.day, s, e, tt.start, tt.end)
		}
	}
}

func TestEvaluate(t *testing.T) {
	p, _ := Parse(Quota{Name: "q", Entity: "interface:eth0", Limit: "1000", Period: "month"})
	start := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	end := start.AddDate(0, 1, 0) // 30 days
	at := func(d time.Duration) time.Time { return start.Add(d) }
	for _, tt := range []struct {
		name   string
		now    time.Time
		rx, tx uint64
		want   Status
		est    uint64
		valid  bool
	}{
		{"early: no estimate from 7 minutes", at(7 * time.Minute), 10, 0, StatusOK, 0, false},
		{"day 10: 30 % used, estimate 900", at(10 * 24 * time.Hour), 200, 100, StatusOK, 900, true},
		{"day 10: 40 % → forecast 1200", at(10 * 24 * time.Hour), 400, 0, StatusForecast, 1200, true},
		{"80 % warns", at(20 * 24 * time.Hour), 800, 0, StatusWarning, 1200, true},
		{"at the limit", at(25 * 24 * time.Hour), 600, 400, StatusExceeded, 1200, true},
	} {
		r := p.Evaluate(tt.now, start, end, tt.rx, tt.tx)
		if r.Status != tt.want || r.Estimate != tt.est || r.EstimateValid != tt.valid {
			t.Errorf("%s: %+v, want status %s estimate %d valid %v", tt.name, r, tt.want, tt.est, tt.valid)
		}
	}
	rxOnly, _ := Parse(Quota{Name: "r", Entity: "interface:eth0", Limit: "100", Direction: "rx"})
	if r := rxOnly.Evaluate(start.Add(time.Hour), start, end, 50, 1000); r.Used != 50 || r.Status != StatusOK {
		t.Errorf("rx quota counted %d (%s)", r.Used, r.Status)
	}
}
