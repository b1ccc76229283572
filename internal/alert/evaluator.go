package alert

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/netmeter/netmeter/internal/health"
	"github.com/netmeter/netmeter/internal/quota"
	"github.com/netmeter/netmeter/internal/snapshot"
)

// input is one interval's data as the rules see it.
type input struct {
	now      time.Time
	interval time.Duration      // of the snapshot; 0 when unknown
	snap     *snapshot.Snapshot // nil: no snapshot this interval
	report   *health.Report     // nil: no new report this interval
	quotas   []quota.Result     // nil: no new results this interval
}

// instance is one condition a rule finds true now.
type instance struct {
	labels      map[string]string // the entity's; alertname, severity, kind are added
	severity    string            // "" for the rule's
	summary     string
	description string
	startsAt    time.Time // zero: now
}

// checker is one kind's logic: it sees every interval and returns the
// conditions that are true now. The evaluator turns their appearance and
// disappearance into firing and resolved events.
type checker interface {
	check(in *input) []instance
	stats() (tracked int, refused uint64)
}

// Evaluator runs rules over every interval's data and reports alerts as
// they start and end. It is safe for concurrent use.
type Evaluator struct {
	mu     sync.Mutex
	rules  []*ruleState
	labels map[string]string
	genURL string
	last   time.Time
}

type ruleState struct {
	c      compiled
	chk    checker
	active map[string]Alert // by fingerprint
}

// Option configures an [Evaluator].
type Option func(*evalConfig)

type evalConfig struct {
	labels map[string]string
	genURL string
}

// WithLabels adds labels to every alert, e.g. instance with the host's name.
// Rules' own labels win over them.
func WithLabels(l map[string]string) Option {
	return func(c *evalConfig) { c.labels = maps.Clone(l) }
}

// WithGeneratorURL sets the alerts' generatorURL (a link back to this
// netmeter, e.g. its web view); it must be an absolute URL.
func WithGeneratorURL(u string) Option {
	return func(c *evalConfig) { c.genURL = u }
}

// New validates the rules (each error names its rule and key) and returns
// an evaluator with their kinds' defaults filled in.
func New(rules []Rule, opts ...Option) (*Evaluator, error) {
	var cfg evalConfig
	for _, o := range opts {
		o(&cfg)
	}
	var errs []error
	for k, v := range cfg.labels {
		if !labelNameRE.MatchString(k) || strings.HasPrefix(k, "__") || k == "alertname" || k == "severity" {
			errs = append(errs, fmt.Errorf("alert labels: %q is not a label name an evaluator may set", k))
		} else if !labelValueOK(v) {
			errs = append(errs, fmt.Errorf("alert labels: %s: value is not valid UTF-8", k))
		}
	}
	if cfg.genURL != "" {
		if u, err := url.Parse(cfg.genURL); err != nil || !u.IsAbs() {
			errs = append(errs, fmt.Errorf("alert generator URL %q: want an absolute URL such as http://host:9100/", cfg.genURL))
		}
	}
	e := &Evaluator{labels: cfg.labels, genURL: cfg.genURL}
	seen := map[string]bool{}
	for _, r := range rules {
		c, err := compileRule(r)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if seen[c.Name] {
			errs = append(errs, fmt.Errorf("alert rule %q: name: used by an earlier rule; names must be unique", c.Name))
			continue
		}
		seen[c.Name] = true
		e.rules = append(e.rules, &ruleState{c: c, chk: newChecker(&c), active: map[string]Alert{}})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return e, nil
}

func newChecker(c *compiled) checker {
	switch c.Kind {
	case KindSurge:
		return newSurge(c)
	case KindLinkSaturation:
		return newSaturation(c)
	case KindInterfaceErrors:
		return newIfaceErrors(c)
	case KindQuota:
		return newQuotaCheck(c)
	case KindHealth:
		return newHealthCheck(c)
	case KindNewListener:
		return newAudit(c, listenerItems)
	case KindNewRemote:
		return newAudit(c, remoteItems)
	}
	panic("alert: unknown kind " + string(c.Kind)) // compileRule refused it
}

// Observe evaluates every rule on one interval and returns the alerts that
// started firing and those that were resolved, each once: an alert that
// stays true is not reported again. Call it once per interval with
// increasing now.
//
// s is the interval's snapshot (nil: none). r is the latest health report;
// a zero Report means no new one this interval and keeps the previous
// verdicts (reports may come less often than snapshots). quotas are the
// latest quota results; nil keeps the previous ones (quotas are checked
// less often), a non-nil empty slice means there are none.
func (e *Evaluator) Observe(now time.Time, s *snapshot.Snapshot, r health.Report, quotas []quota.Result) []Alert {
	e.mu.Lock()
	defer e.mu.Unlock()
	in := &input{now: now, snap: s, quotas: quotas}
	if s != nil {
		in.interval = s.Interval
		if in.interval <= 0 && !e.last.IsZero() && now.After(e.last) {
			in.interval = now.Sub(e.last)
		}
		e.last = now
	}
	if !r.Time.IsZero() || len(r.Groups) > 0 || len(r.Monitors) > 0 {
		in.report = &r
	}
	var out []Alert
	for _, rs := range e.rules {
		out = append(out, e.diff(rs, now, rs.chk.check(in))...)
	}
	return out
}

// diff turns a rule's current conditions into events against its active
// alerts. Events are ordered by rule, then resolved before firing, then by
// fingerprint, so the output is deterministic.
func (e *Evaluator) diff(rs *ruleState, now time.Time, insts []instance) []Alert {
	now = now.UTC()
	current := make(map[string]bool, len(insts))
	var fired, resolved []Alert
	for _, in := range insts {
		labels := make(map[string]string, len(e.labels)+len(rs.c.Labels)+len(in.labels)+3)
		maps.Copy(labels, e.labels)
		maps.Copy(labels, rs.c.Labels)
		for k, v := range in.labels {
			labels[k] = cleanLabel(v)
		}
		labels["alertname"] = rs.c.Name
		labels["kind"] = string(rs.c.Kind)
		labels["severity"] = cmp.Or(rs.c.Severity, in.severity, SeverityWarning)
		fp := Fingerprint(labels)
		if current[fp] {
			continue
		}
		current[fp] = true
		if _, ok := rs.active[fp]; ok {
			continue
		}
		start := in.startsAt
		if start.IsZero() || start.After(now) {
			start = now
		}
		a := Alert{
			Status: StatusFiring, Labels: labels, StartsAt: start.UTC(), GeneratorURL: e.genURL, Fingerprint: fp,
			Annotations: map[string]string{"summary": in.summary, "description": in.description},
		}
		rs.active[fp] = a
		fired = append(fired, a.clone())
	}
	for fp, a := range rs.active {
		if current[fp] {
			continue
		}
		delete(rs.active, fp)
		a.Status, a.EndsAt = StatusResolved, now
		resolved = append(resolved, a)
	}
	byFP := func(x, y Alert) int { return strings.Compare(x.Fingerprint, y.Fingerprint) }
	slices.SortFunc(fired, byFP)
	slices.SortFunc(resolved, byFP)
	return append(resolved, fired...)
}

// Active returns the alerts firing now, by rule and fingerprint.
func (e *Evaluator) Active() []Alert {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Alert
	for _, rs := range e.rules {
		n := len(out)
		for _, a := range rs.active {
			out = append(out, a.clone())
		}
		slices.SortFunc(out[n:], func(x, y Alert) int { return strings.Compare(x.Fingerprint, y.Fingerprint) })
	}
	return out
}

// Rules returns the evaluator's rules with their defaults filled in.
func (e *Evaluator) Rules() []Rule {
	out := make([]Rule, len(e.rules))
	for i, rs := range e.rules {
		out[i] = rs.c.Rule
	}
	return out
}

// RuleStats says how much state a rule holds.
type RuleStats struct {
	Name string `json:"name"`
	Kind Kind   `json:"kind"`
	// Tracked counts what the rule remembers: entities (surge,
	// link_saturation, interface_errors, health), quotas, or learned
	// ports and subnets (audit kinds).
	Tracked int `json:"tracked"`
	// Refused counts entities or learned items turned away because a
	// bound (max_entities, max_programs, max_per_program) was reached.
	Refused uint64 `json:"refused"`
	Active  int    `json:"active"`
}

// Stats returns every rule's state sizes.
func (e *Evaluator) Stats() []RuleStats {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]RuleStats, len(e.rules))
	for i, rs := range e.rules {
		t, r := rs.chk.stats()
		out[i] = RuleStats{Name: rs.c.Name, Kind: rs.c.Kind, Tracked: t, Refused: r, Active: len(rs.active)}
	}
	return out
}
