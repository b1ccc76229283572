package alert

import (
	"fmt"
	"time"

	"github.com/netmeter/netmeter/internal/health"
	"github.com/netmeter/netmeter/internal/output"
	"github.com/netmeter/netmeter/internal/quota"
)

// quotaCheck fires for each quota whose latest status is one of the rule's
// statuses; the status is a label, so a quota going from warning to
// exceeded resolves the warning and fires the exceeded alert.
type quotaCheck struct {
	c    *compiled
	last []quota.Result
}

func newQuotaCheck(c *compiled) *quotaCheck { return &quotaCheck{c: c} }

func (q *quotaCheck) stats() (int, uint64) { return len(q.last), 0 }

var quotaSeverity = map[quota.Status]string{
	quota.StatusExceeded: SeverityCritical,
	quota.StatusWarning:  SeverityWarning,
	quota.StatusForecast: SeverityInfo,
}

func (q *quotaCheck) check(in *input) []instance {
	if in.quotas != nil {
		q.last = append(q.last[:0], in.quotas...)
	}
	var out []instance
	for _, r := range q.last {
		if !q.c.set[string(r.Status)] || !q.c.matches(r.Name) {
			continue
		}
		used := fmt.Sprintf("%s used of %s (%.1f %%) since %s", output.FormatBytes(r.Used), output.FormatBytes(r.Limit),
			r.Percent, r.PeriodStart.Format(time.DateOnly))
		var summary, why string
		switch r.Status {
		case quota.StatusExceeded:
			summary = fmt.Sprintf("quota %s exceeded: %s of %s", r.Name, output.FormatBytes(r.Used), output.FormatBytes(r.Limit))
			why = "the limit is reached"
		case quota.StatusWarning:
			summary = fmt.Sprintf("quota %s at %.0f %% of %s", r.Name, r.Percent, output.FormatBytes(r.Limit))
			why = fmt.Sprintf("over the %v %% warning threshold", r.Threshold)
		default:
			summary = fmt.Sprintf("quota %s forecast to reach %s of %s", r.Name, output.FormatBytes(r.Estimate), output.FormatBytes(r.Limit))
			why = "the end-of-period estimate is over the limit"
		}
		est := ""
		if r.EstimateValid {
			est = fmt.Sprintf("; estimate at the period's end (%s): %s", r.PeriodEnd.Format(time.DateOnly), output.FormatBytes(r.Estimate))
		}
		out = append(out, instance{
			labels:      map[string]string{"quota": r.Name, "entity": r.Entity, "direction": r.Direction, "status": string(r.Status)},
			severity:    quotaSeverity[r.Status],
			summary:     summary,
			description: fmt.Sprintf("quota %s (%s, %s): %s%s — %s.", r.Name, r.Entity, r.Direction, used, est, why),
		})
	}
	return out
}

// healthCheck fires for a remote group or monitor that health reported
// degraded in `intervals` consecutive reports. The state is not a label,
// so a change between kinds of degradation (network → this host) keeps one
// alert; the description names the state when it fired.
type healthCheck struct {
	c    *compiled
	subs map[healthKey]*healthSub
}

type healthKey struct{ subject, name string }

type healthSub struct {
	count int
	st    health.Status
}

func newHealthCheck(c *compiled) *healthCheck {
	return &healthCheck{c: c, subs: map[healthKey]*healthSub{}}
}

func (h *healthCheck) stats() (int, uint64) { return len(h.subs), 0 }

func (h *healthCheck) check(in *input) []instance {
	if r := in.report; r != nil {
		seen := map[healthKey]bool{}
		for _, s := range []struct {
			subject string
			list    []health.Status
		}{{"group", r.Groups}, {"monitor", r.Monitors}} {
			if !h.c.set[s.subject] {
				continue
			}
			for _, st := range s.list {
				if !h.c.matches(st.Name) {
					continue
				}
				k := healthKey{s.subject, st.Name}
				seen[k] = true
				sub := h.subs[k]
				if sub == nil {
					sub = &healthSub{}
					h.subs[k] = sub
				}
				sub.st = st
				if st.State.Degraded() {
					sub.count++
				} else {
					sub.count = 0
				}
			}
		}
		for k := range h.subs {
			if !seen[k] {
				delete(h.subs, k)
			}
		}
	}
	var out []instance
	for k, sub := range h.subs {
		if sub.count < h.c.Intervals {
			continue
		}
		out = append(out, instance{
			labels:   map[string]string{k.subject: k.name},
			startsAt: sub.st.Since,
			summary:  fmt.Sprintf("%s %s: %s", k.subject, k.name, sub.st.State),
			description: fmt.Sprintf("%s %s has been %s for %d reports: %s (signals: %v; rule: %d reports).",
				k.subject, k.name, sub.st.State, sub.count, sub.st.Explanation, sub.st.Evidence.Signals, h.c.Intervals),
		})
	}
	return out
}
