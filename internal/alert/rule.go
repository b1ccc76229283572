package alert

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"path"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/netmeter/netmeter/internal/quota"
)

// Kind names what a [Rule] watches.
type Kind string

// The rule kinds. Each one's keys and defaults are listed on [Rule].
const (
	KindSurge           Kind = "surge"
	KindLinkSaturation  Kind = "link_saturation"
	KindInterfaceErrors Kind = "interface_errors"
	KindQuota           Kind = "quota"
	KindHealth          Kind = "health"
	KindNewListener     Kind = "new_listener"
	KindNewRemote       Kind = "new_remote"
)

// Kinds lists every kind, in the order [Defaults] returns them.
var Kinds = []Kind{KindSurge, KindLinkSaturation, KindInterfaceErrors, KindQuota, KindHealth, KindNewListener, KindNewRemote}

// Severities a rule may set.
const (
	SeverityCritical = "critical"
	SeverityWarning  = "warning"
	SeverityInfo     = "info"
)

// Defaults of [Rule]'s keys; a zero key takes its kind's default.
const (
	DefaultSurgeGrowthPercent     = 200.0
	DefaultSurgeWindow            = 5 * time.Minute
	DefaultSurgeMinRate           = "1MiB" // per second
	DefaultSurgeMaxEntities       = 4096
	DefaultSaturationSharePercent = 80.0
	DefaultSaturationFor          = 2 * time.Minute
	DefaultErrorsWindow           = 5 * time.Minute
	DefaultErrorsDropRate         = 1.0 // packets per second over the window
	DefaultHealthIntervals        = 3
	DefaultAuditWarmup            = 10 * time.Minute
	DefaultAuditHold              = time.Hour
	DefaultAuditMaxPrograms       = 1024
	DefaultListenerMaxPerProgram  = 64
	DefaultRemoteMaxPerProgram    = 256
	DefaultRemotePrefix4          = 24
	DefaultRemotePrefix6          = 64
)

// Rule is one alert rule. The YAML keys are those of a rule in the config
// file; kind decides which of the other keys apply, and a key set for a kind
// it does not apply to is an error.
//
//	kind              keys (default)
//	surge             entities (interface, program, container), direction (total),
//	                  growth_percent (200), window (5m), min_rate (1MiB per second),
//	                  max_entities (4096)
//	link_saturation   direction (any: rx and tx apart), share_percent (80), for (2m)
//	interface_errors  window (5m), drop_rate (1 packet/s)
//	quota             statuses (exceeded, warning, forecast_exceeded)
//	health            subjects (group, monitor), intervals (3)
//	new_listener      warmup (10m), hold (1h), max_programs (1024), max_per_program (64)
//	new_remote        warmup (10m), hold (1h), max_programs (1024), max_per_program (256),
//	                  prefix4 (24), prefix6 (64), ignore
//
// Every kind takes name, kind, severity, match and labels.
type Rule struct {
	// Name is the rule's unique name and the alerts' alertname label.
	Name string `yaml:"name"`
	Kind Kind   `yaml:"kind"`
	// Severity is the severity label: critical, warning or info. The
	// default is warning, info for the audit kinds (new_listener,
	// new_remote), and for quota the status's: critical when exceeded,
	// warning when over a warn threshold, info when only forecast.
	Severity string `yaml:"severity"`
	// Labels are added to every alert of the rule (e.g. a team for
	// routing). They may not replace alertname or severity.
	Labels map[string]string `yaml:"labels"`
	// Match limits the rule to entities whose name matches one of these
	// path.Match globs: the interface (link_saturation, interface_errors),
	// the interface, program (comm) or container name (surge), the quota's
	// name (quota), the group or monitor (health), the program (audit
	// kinds). Empty: every entity.
	Match []string `yaml:"match"`

	// Entities are what a surge rule watches: interface, program,
	// container (default all three).
	Entities []string `yaml:"entities"`
	// Direction is rx, tx or total (surge, default total: rx + tx), or rx,
	// tx or any (link_saturation, default any: each direction alone,
	// since a link is full duplex).
	Direction string `yaml:"direction"`
	// GrowthPercent is how much the rate over the latest window must
	// exceed the rate over the window before it (surge, default 200: the
	// rate tripled).
	GrowthPercent float64 `yaml:"growth_percent"`
	// Window is the surge's comparison window (default 5m) and the window
	// over which interface errors and drops are counted (default 5m).
	Window time.Duration `yaml:"window"`
	// MinRate is the least rate, in bytes per second, that the latest
	// window must reach for a surge ("1MiB", "500KB", "200000"; "/s" may
	// follow), so that idle → a trickle does not fire. Default 1MiB.
	MinRate string `yaml:"min_rate"`
	// MaxEntities bounds how many entities a surge rule tracks (default
	// 4096); more are ignored and counted in [RuleStats.Refused].
	MaxEntities int `yaml:"max_entities"`

	// SharePercent is the share of the link speed the throughput must stay
	// above (link_saturation, default 80).
	SharePercent float64 `yaml:"share_percent"`
	// For is how long it must stay above (link_saturation, default 2m).
	For time.Duration `yaml:"for"`

	// DropRate is the drops per second, averaged over the window, above
	// which interface_errors fires (default 1). Any error at all fires.
	DropRate float64 `yaml:"drop_rate"`

	// Statuses are the quota statuses that fire (quota, default
	// exceeded, warning and forecast_exceeded).
	Statuses []string `yaml:"statuses"`

	// Subjects are what a health rule watches: group, monitor (default
	// both). Intervals is how many consecutive reports a subject must be
	// degraded in (default 3).
	Subjects  []string `yaml:"subjects"`
	Intervals int      `yaml:"intervals"`

	// Warmup is how long the audit kinds only learn, from the first
	// interval they see (default 10m). Hold is how long an audit alert
	// stays firing before it resolves by itself (default 1h): what it
	// reports is an event, not a condition that ends.
	Warmup time.Duration `yaml:"warmup"`
	Hold   time.Duration `yaml:"hold"`
	// MaxPrograms bounds the programs an audit rule remembers (default
	// 1024) and MaxPerProgram the ports (new_listener, default 64) or
	// subnets (new_remote, default 256) per program. Past them nothing
	// more is learned: one overflow alert stands for the rest, so a port
	// scan or a bind flood cannot grow memory.
	MaxPrograms   int `yaml:"max_programs"`
	MaxPerProgram int `yaml:"max_per_program"`
	// Prefix4 and Prefix6 size a new_remote subnet (default /24 and /64).
	Prefix4 int `yaml:"prefix4"`
	Prefix6 int `yaml:"prefix6"`
	// Ignore lists prefixes or addresses new_remote never reports (a
	// cluster network, the resolver).
	Ignore []string `yaml:"ignore"`
}

// keysOf lists the kind-specific YAML keys each kind takes.
var keysOf = map[Kind][]string{
	KindSurge:           {"entities", "direction", "growth_percent", "window", "min_rate", "max_entities"},
	KindLinkSaturation:  {"direction", "share_percent", "for"},
	KindInterfaceErrors: {"window", "drop_rate"},
	KindQuota:           {"statuses"},
	KindHealth:          {"subjects", "intervals"},
	KindNewListener:     {"warmup", "hold", "max_programs", "max_per_program"},
	KindNewRemote:       {"warmup", "hold", "max_programs", "max_per_program", "prefix4", "prefix6", "ignore"},
}

var commonKeys = []string{"name", "kind", "severity", "labels", "match"}

// Defaults returns one rule of every kind with every default filled in:
// netmeter's built-in rules.
func Defaults() []Rule {
	out := make([]Rule, 0, len(Kinds))
	for _, k := range Kinds {
		r, _ := Rule{Name: string(k), Kind: k}.WithDefaults()
		out = append(out, r)
	}
	return out
}

var labelNameRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// WithDefaults returns r with its kind's defaults in every zero key, after
// validating it. Errors name the rule and the key.
func (r Rule) WithDefaults() (Rule, error) {
	_, err := compileRule(r)
	return r.defaulted(), err
}

// Validate checks r; it is [Rule.WithDefaults] without the result.
func (r Rule) Validate() error {
	_, err := r.WithDefaults()
	return err
}

// defaulted fills in the zero keys of r's kind.
func (r Rule) defaulted() Rule {
	if r.Severity == "" {
		switch r.Kind {
		case KindNewListener, KindNewRemote:
			r.Severity = SeverityInfo
		case KindQuota: // by status
		default:
			r.Severity = SeverityWarning
		}
	}
	switch r.Kind {
	case KindSurge:
		r.Entities = orDefault(r.Entities, []string{"interface", "program", "container"})
		r.Direction = cmp.Or(r.Direction, "total")
		r.GrowthPercent = cmp.Or(r.GrowthPercent, DefaultSurgeGrowthPercent)
		r.Window = cmp.Or(r.Window, DefaultSurgeWindow)
		r.MinRate = cmp.Or(r.MinRate, DefaultSurgeMinRate)
		r.MaxEntities = cmp.Or(r.MaxEntities, DefaultSurgeMaxEntities)
	case KindLinkSaturation:
		r.Direction = cmp.Or(r.Direction, "any")
		r.SharePercent = cmp.Or(r.SharePercent, DefaultSaturationSharePercent)
		r.For = cmp.Or(r.For, DefaultSaturationFor)
	case KindInterfaceErrors:
		r.Window = cmp.Or(r.Window, DefaultErrorsWindow)
		r.DropRate = cmp.Or(r.DropRate, DefaultErrorsDropRate)
	case KindQuota:
		r.Statuses = orDefault(r.Statuses, []string{string(quota.StatusExceeded), string(quota.StatusWarning), string(quota.StatusForecast)})
	case KindHealth:
		r.Subjects = orDefault(r.Subjects, []string{"group", "monitor"})
		r.Intervals = cmp.Or(r.Intervals, DefaultHealthIntervals)
	case KindNewListener, KindNewRemote:
		r.Warmup = cmp.Or(r.Warmup, DefaultAuditWarmup)
		r.Hold = cmp.Or(r.Hold, DefaultAuditHold)
		r.MaxPrograms = cmp.Or(r.MaxPrograms, DefaultAuditMaxPrograms)
		if r.Kind == KindNewListener {
			r.MaxPerProgram = cmp.Or(r.MaxPerProgram, DefaultListenerMaxPerProgram)
		} else {
			r.MaxPerProgram = cmp.Or(r.MaxPerProgram, DefaultRemoteMaxPerProgram)
			r.Prefix4 = cmp.Or(r.Prefix4, DefaultRemotePrefix4)
			r.Prefix6 = cmp.Or(r.Prefix6, DefaultRemotePrefix6)
		}
	}
	return r
}

func orDefault(v, def []string) []string {
	if len(v) == 0 {
		return def
	}
	return v
}

// compiled is a validated rule with its parsed values.
type compiled struct {
	Rule
	minRate float64 // bytes per second
	ignore  []netip.Prefix
	set     map[string]bool // entities, statuses or subjects
}

// compileRule validates r and parses it with its defaults. Every problem is
// reported, each naming the rule and the key.
func compileRule(r Rule) (compiled, error) {
	name := r.Name
	if name == "" {
		name = "(unnamed)"
	}
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, fmt.Errorf("alert rule %q: %s: %s", name, key, fmt.Sprintf(format, a...)))
	}
	if r.Name == "" {
		bad("name", "missing; every rule needs a unique name (it is the alertname label)")
	} else if !labelValueOK(r.Name) {
		bad("name", "%q is not valid UTF-8", r.Name)
	}
	keys, ok := keysOf[r.Kind]
	if !ok {
		kinds := make([]string, len(Kinds))
		for i, k := range Kinds {
			kinds[i] = string(k)
		}
		bad("kind", "%q: want one of %s", r.Kind, strings.Join(kinds, ", "))
		return compiled{}, errors.Join(errs...)
	}
	// A key set for a kind it does not apply to is a mistake the user
	// should hear about, not silently ignored.
	v := reflect.ValueOf(r)
	for i := range v.NumField() {
		key := v.Type().Field(i).Tag.Get("yaml")
		if !v.Field(i).IsZero() && !slices.Contains(commonKeys, key) && !slices.Contains(keys, key) {
			bad(key, "does not apply to kind %s (its keys: %s)", r.Kind, strings.Join(keys, ", "))
		}
	}
	switch r.Severity {
	case "", SeverityCritical, SeverityWarning, SeverityInfo:
	default:
		bad("severity", "%q: want critical, warning or info", r.Severity)
	}
	for k, val := range r.Labels {
		switch {
		case !labelNameRE.MatchString(k) || strings.HasPrefix(k, "__"):
			bad("labels", "%q is not a label name ([a-zA-Z_][a-zA-Z0-9_]*, not starting with __)", k)
		case k == "alertname" || k == "severity":
			bad("labels", "%q is set by the rule's name and severity keys", k)
		case !labelValueOK(val):
			bad("labels", "%s: value is not valid UTF-8", k)
		}
	}
	for i, m := range r.Match {
		if _, err := path.Match(m, ""); err != nil || m == "" {
			bad(fmt.Sprintf("match[%d]", i), "%q is not a glob pattern", m)
		}
	}
	for _, f := range []struct {
		key string
		v   float64
	}{
		{"growth_percent", r.GrowthPercent}, {"share_percent", r.SharePercent}, {"drop_rate", r.DropRate},
		{"window", float64(r.Window)}, {"for", float64(r.For)}, {"warmup", float64(r.Warmup)}, {"hold", float64(r.Hold)},
		{"max_entities", float64(r.MaxEntities)}, {"intervals", float64(r.Intervals)},
		{"max_programs", float64(r.MaxPrograms)}, {"max_per_program", float64(r.MaxPerProgram)},
	} {
		if f.v < 0 {
			bad(f.key, "is negative; leave it out for the default")
		}
	}

	c := compiled{Rule: r.defaulted(), set: map[string]bool{}}
	r = c.Rule
	oneOf := func(key string, vals []string, allowed ...string) {
		for _, s := range vals {
			if !slices.Contains(allowed, s) {
				bad(key, "%q: want %s", s, strings.Join(allowed, ", "))
			}
			c.set[s] = true
		}
	}
	switch r.Kind {
	case KindSurge:
		oneOf("entities", r.Entities, "interface", "program", "container")
		oneOf("direction", []string{r.Direction}, "rx", "tx", "total")
		delete(c.set, r.Direction)
		rate, err := parseRate(r.MinRate)
		if err != nil {
			bad("min_rate", "%v", err)
		}
		c.minRate = rate
		if r.Window > 0 && r.Window < 10*time.Second {
			bad("window", "%s is too short to compare two windows; use 10s or more", r.Window)
		}
	case KindLinkSaturation:
		oneOf("direction", []string{r.Direction}, "rx", "tx", "any")
		if r.SharePercent > 100 {
			bad("share_percent", "%v%% exceeds the link's speed and can never be met", r.SharePercent)
		}
	case KindInterfaceErrors:
		if r.Window > 0 && r.Window < 10*time.Second {
			bad("window", "%s is shorter than 10s", r.Window)
		}
	case KindQuota:
		oneOf("statuses", r.Statuses, string(quota.StatusExceeded), string(quota.StatusWarning), string(quota.StatusForecast))
	case KindHealth:
		oneOf("subjects", r.Subjects, "group", "monitor")
	case KindNewRemote:
		if r.Prefix4 < 0 || r.Prefix4 > 32 {
			bad("prefix4", "%d: want 1 to 32", r.Prefix4)
		}
		if r.Prefix6 < 0 || r.Prefix6 > 128 {
			bad("prefix6", "%d: want 1 to 128", r.Prefix6)
		}
		for i, s := range r.Ignore {
			p, err := parsePrefix(s)
			if err != nil {
				bad(fmt.Sprintf("ignore[%d]", i), "%v", err)
			}
			c.ignore = append(c.ignore, p)
		}
	}
	return c, errors.Join(errs...)
}

// parseRate reads a byte rate: a byte count with an optional unit, and an
// optional "/s".
func parseRate(s string) (float64, error) {
	n, err := quota.ParseBytes(strings.TrimSuffix(strings.TrimSpace(s), "/s"))
	if err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, fmt.Errorf("%q: must be more than 0", s)
	}
	return float64(n), nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
	}
	return netip.Prefix{}, fmt.Errorf("%q is neither a prefix such as 10.0.0.0/8 nor an address", s)
}

// matches reports whether name passes the rule's match globs.
func (c *compiled) matches(name string) bool {
	if len(c.Match) == 0 {
		return true
	}
	for _, m := range c.Match {
		if ok, _ := path.Match(m, name); ok {
			return true
		}
	}
	return false
}
