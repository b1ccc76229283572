package alert

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// TestRulesFromYAML: the keys are snake_case, durations read as Go
// durations, and New fills in each kind's defaults.
func TestRulesFromYAML(t *testing.T) {
	const doc = `
- name: big-surge
  kind: surge
  entities: [program]
  growth_percent: 300
  window: 10m
  min_rate: 5MiB/s
  labels: {team: net}
- name: uplink-full
  kind: link_saturation
  for: 90s
  match: ["eth*", "en*"]
  severity: critical
- {name: audit, kind: new_remote, prefix4: 16, ignore: [10.0.0.0/8, "fd00::1"], max_per_program: 32}
`
	var rules []Rule
	dec := yaml.NewDecoder(strings.NewReader(doc))
	dec.KnownFields(true)
	if err := dec.Decode(&rules); err != nil {
		t.Fatal(err)
	}
	e, err := New(rules)
	if err != nil {
		t.Fatal(err)
	}
	got := e.Rules()
	s, sat, aud := got[0], got[1], got[2]
	if s.GrowthPercent != 300 || s.Window != 10*time.Minute || s.Direction != "total" || s.MaxEntities != 4096 ||
		s.Severity != "warning" || s.Labels["team"] != "net" || len(s.Entities) != 1 {
		t.Errorf("surge %+v", s)
	}
	if e.rules[0].c.minRate != 5*mib {
		t.Errorf("min_rate %v", e.rules[0].c.minRate)
	}
	if sat.For != 90*time.Second || sat.SharePercent != 80 || sat.Direction != "any" || sat.Severity != "critical" {
		t.Errorf("saturation %+v", sat)
	}
	if aud.Prefix4 != 16 || aud.Prefix6 != 64 || aud.Warmup != 10*time.Minute || aud.Hold != time.Hour ||
		aud.MaxPerProgram != 32 || aud.MaxPrograms != 1024 || aud.Severity != "info" || len(e.rules[2].c.ignore) != 2 {
		t.Errorf("new_remote %+v", aud)
	}
	var buf bytes.Buffer
	if err := yaml.NewEncoder(&buf).Encode(Defaults()); err != nil || !strings.Contains(buf.String(), "growth_percent: 200") {
		t.Errorf("defaults as YAML: %v\n%s", err, buf.String())
	}
}

// TestDefaults: one rule of every kind, all valid, with the documented
// defaults.
func TestDefaults(t *testing.T) {
	d := Defaults()
	if len(d) != len(Kinds) {
		t.Fatalf("%d rules", len(d))
	}
	if _, err := New(d); err != nil {
		t.Fatal(err)
	}
	byKind := map[Kind]Rule{}
	for _, r := range d {
		byKind[r.Kind] = r
	}
	checks := []struct {
		what      string
		got, want any
	}{
		{"surge growth", byKind[KindSurge].GrowthPercent, 200.0},
		{"surge window", byKind[KindSurge].Window, 5 * time.Minute},
		{"surge min rate", byKind[KindSurge].MinRate, "1MiB"},
		{"saturation share", byKind[KindLinkSaturation].SharePercent, 80.0},
		{"saturation for", byKind[KindLinkSaturation].For, 2 * time.Minute},
		{"errors window", byKind[KindInterfaceErrors].Window, 5 * time.Minute},
		{"errors drop rate", byKind[KindInterfaceErrors].DropRate, 1.0},
		{"quota statuses", strings.Join(byKind[KindQuota].Statuses, ","), "exceeded,warning,forecast_exceeded"},
		{"health intervals", byKind[KindHealth].Intervals, 3},
		{"listener warmup", byKind[KindNewListener].Warmup, 10 * time.Minute},
		{"listener per program", byKind[KindNewListener].MaxPerProgram, 64},
		{"remote per program", byKind[KindNewRemote].MaxPerProgram, 256},
		{"remote prefix", byKind[KindNewRemote].Prefix4, 24},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: %v, want %v", c.what, c.got, c.want)
		}
	}
}

// TestRuleErrors: every error names the rule and the key to change.
func TestRuleErrors(t *testing.T) {
	for _, c := range []struct {
		rules []Rule
		want  []string
	}{
		{[]Rule{{Name: "x", Kind: "bogus"}}, []string{`alert rule "x": kind: "bogus": want one of surge, link_saturation`}},
		{[]Rule{{Kind: KindQuota}}, []string{`alert rule "(unnamed)": name: missing`}},
		{[]Rule{{Name: "s", Kind: KindSurge, SharePercent: 90, For: time.Minute}}, []string{
			`alert rule "s": share_percent: does not apply to kind surge (its keys: entities, direction`,
			`alert rule "s": for: does not apply to kind surge`}},
		{[]Rule{{Name: "s", Kind: KindSurge, Window: -time.Second, MinRate: "fast", Entities: []string{"pod"}, Direction: "any"}}, []string{
			`alert rule "s": window: is negative`, `alert rule "s": min_rate: "fast"`,
			`alert rule "s": entities: "pod": want interface, program, container`, `alert rule "s": direction: "any": want rx, tx, total`}},
		{[]Rule{{Name: "s", Kind: KindSurge, Window: time.Second}}, []string{`window: 1s is too short`}},
		{[]Rule{{Name: "l", Kind: KindLinkSaturation, SharePercent: 120, Severity: "page"}}, []string{
			`alert rule "l": share_percent: 120% exceeds`, `alert rule "l": severity: "page": want critical, warning or info`}},
		{[]Rule{{Name: "q", Kind: KindQuota, Statuses: []string{"ok"}, Labels: map[string]string{"alertname": "y", "9x": "z"}}}, []string{
			`alert rule "q": statuses: "ok": want exceeded, warning, forecast_exceeded`,
			`alert rule "q": labels: "alertname" is set by the rule's name`, `alert rule "q": labels: "9x" is not a label name`}},
		{[]Rule{{Name: "h", Kind: KindHealth, Subjects: []string{"flows"}, Match: []string{"[a-"}}}, []string{
			`alert rule "h": subjects: "flows": want group, monitor`, `alert rule "h": match[0]: "[a-" is not a glob`}},
		{[]Rule{{Name: "r", Kind: KindNewRemote, Prefix4: 33, Ignore: []string{"10.0.0.0/33x"}}}, []string{
			`alert rule "r": prefix4: 33: want 1 to 32`, `alert rule "r": ignore[0]: "10.0.0.0/33x" is neither a prefix`}},
		{[]Rule{{Name: "n", Kind: KindNewListener, Prefix4: 24, MaxPrograms: -1}}, []string{
			`alert rule "n": prefix4: does not apply to kind new_listener`, `alert rule "n": max_programs: is negative`}},
		{[]Rule{{Name: "d", Kind: KindQuota}, {Name: "d", Kind: KindHealth}}, []string{`alert rule "d": name: used by an earlier rule`}},
	} {
		_, err := New(c.rules)
		if err == nil {
			t.Errorf("%+v: no error", c.rules)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q lacks %q", err, w)
			}
		}
	}
	if _, err := New(nil, WithLabels(map[string]string{"severity": "x"})); err == nil {
		t.Error("WithLabels may not set severity")
	}
	if _, err := New(nil, WithGeneratorURL("/relative")); err == nil {
		t.Error("a relative generator URL was accepted")
	}
}

// TestFingerprint: the fingerprint is Alertmanager's: the empty set hashes
// to FNV-1a's offset basis, labels are order-independent, and values that
// would collide as naive concatenations differ.
func TestFingerprint(t *testing.T) {
	if got := Fingerprint(nil); got != "cbf29ce484222325" {
		t.Errorf("empty: %s", got)
	}
	a := Fingerprint(map[string]string{"a": "bc", "d": "e"})
	if b := Fingerprint(map[string]string{"d": "e", "a": "bc"}); a != b || len(a) != 16 {
		t.Errorf("%s %s", a, b)
	}
	if a == Fingerprint(map[string]string{"a": "b", "d": "ce"}) {
		t.Error("separator ignored")
	}
}
