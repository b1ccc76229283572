package alert

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The Prometheus rules and the Grafana dashboard that go with netmeter's
// metrics; their tests live here because they are the fleet form of this
// package's rules.
const (
	rulesFile     = "../../deploy/prometheus/netmeter.rules.yml"
	rulesTestFile = "../../deploy/prometheus/netmeter.rules.test.yml"
	dashboardFile = "../../deploy/grafana/netmeter.json"
	metricsDoc    = "../../docs/METRICS.md"
)

var metricRowRE = regexp.MustCompile("(?m)^\\| `(netmeter_[a-z0-9_]+)` \\| (counter|gauge|histogram|summary) \\|")

// documentedMetrics reads the metric names docs/METRICS.md lists in its
// tables (a histogram's _bucket, _sum and _count series included).
func documentedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(metricsDoc)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, m := range metricRowRE.FindAllStringSubmatch(string(b), -1) {
		names[m[1]] = true
		if m[2] == "histogram" || m[2] == "summary" {
			names[m[1]+"_sum"], names[m[1]+"_count"] = true, true
		}
		if m[2] == "histogram" {
			names[m[1]+"_bucket"] = true
		}
	}
	if len(names) < 20 {
		t.Fatalf("found only %d metrics in %s; has its table format changed?", len(names), metricsDoc)
	}
	return names
}

var (
	braceRE    = regexp.MustCompile(`\{[^{}]*\}`)
	bracketRE  = regexp.MustCompile(`\[[^\[\]]*\]`)
	groupingRE = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)`)
	promWords  = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true, "atan2": true,
		"inf": true, "nan": true, "Inf": true, "NaN": true, "group_left": true, "group_right": true}
)

// metricNames returns the metric names a PromQL expression selects. It is
// a lexer, not a parser (promtool parses): strings, label matchers, ranges
// and grouping clauses are removed, then every identifier that is not a
// keyword and not followed by "(" (a function or an aggregation) is a
// metric name. Dashboard variables ($x, ${x}) are skipped.
func metricNames(expr string) []string {
	var b strings.Builder
	for i := 0; i < len(expr); i++ {
		c := expr[i]
		if c == '"' || c == '\'' || c == '`' {
			for i++; i < len(expr) && expr[i] != c; i++ {
				if expr[i] == '\\' && c != '`' {
					i++
				}
			}
			b.WriteString(`""`)
			continue
		}
		b.WriteByte(c)
	}
	s := b.String()
	for _, re := range []*regexp.Regexp{braceRE, bracketRE, groupingRE} {
		s = re.ReplaceAllString(s, " ")
	}
	word := func(c byte) bool {
		return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
	}
	var out []string
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '$':
			for i++; i < len(s) && (word(s[i]) || s[i] == '{' || s[i] == '}'); i++ {
			}
		case c >= '0' && c <= '9' || c == '.':
			for ; i < len(s) && (word(s[i]) || s[i] == '.'); i++ {
			}
		case word(c):
			j := i
			for j < len(s) && word(s[j]) {
				j++
			}
			k := j
			for k < len(s) && strings.ContainsRune(" \t\n", rune(s[k])) {
				k++
			}
			if name := s[i:j]; !promWords[name] && (k == len(s) || s[k] != '(') {
				out = append(out, name)
			}
			i = j
		default:
			i++
		}
	}
	return out
}

func TestMetricNames(t *testing.T) {
	for expr, want := range map[string]string{
		`sum by (program) (rate(a_total{x="b{c}",y=~"$d"}[$__rate_interval]) + rate(b_total[5m] offset 5m)) > 1e-9`: "a_total b_total",
		`label_replace(x / y > 0.8, "direction", "rx", "", "") or on (instance) z`:                                  "x y z",
		`histogram_quantile(0.99, sum(rate(h_bucket[1m])) by (le, group)) and bool time() - ts`:                     "h_bucket ts",
		`max without (state) ((s{state="a"} == 1) * 0 or (s{state='b'} == 1) * 1) * on (a) group_left (b) c`:        "s s c",
	} {
		if got := strings.Join(metricNames(expr), " "); got != want {
			t.Errorf("%s: %q, want %q", expr, got, want)
		}
	}
}

type promRule struct {
	Alert       string            `yaml:"alert"`
	Record      string            `yaml:"record"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for,omitempty"`
	Labels      map[string]string `yaml:"labels,omitempty"`
	Annotations map[string]string `yaml:"annotations,omitempty"`
}

type promGroup struct {
	Name  string     `yaml:"name"`
	Rules []promRule `yaml:"rules"`
}

type promRuleFile struct {
	Groups []promGroup `yaml:"groups"`
}

// runPromtool runs promtool in dir and fails with its output unless it
// succeeds.
func runPromtool(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command(requireProgram(t, "promtool", "prometheus"), args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "SUCCESS") {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestPrometheusRules: every alert selects only documented metrics, has a
// severity, a kind, a summary and a description, and is made to fire by
// the unit tests; promtool checks the file and runs the unit tests.
func TestPrometheusRules(t *testing.T) {
	known := documentedMetrics(t)
	b, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var rf promRuleFile
	if err := yaml.Unmarshal(b, &rf); err != nil {
		t.Fatal(err)
	}
	var tf struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string           `yaml:"alertname"`
				ExpAlerts []map[string]any `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	tb, err := os.ReadFile(rulesTestFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(tb, &tf); err != nil {
		t.Fatal(err)
	}
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range tf.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				quiet[a.Alertname] = true
			}
		}
	}
	alerts := 0
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			alerts++
			names := metricNames(r.Expr)
			if len(names) == 0 {
				t.Errorf("%s selects no metric", r.Alert)
			}
			for _, n := range names {
				if !known[n] {
					t.Errorf("%s uses %s, which docs/METRICS.md does not list", r.Alert, n)
				}
			}
			if !slices.Contains([]string{"critical", "warning", "info"}, r.Labels["severity"]) || r.Labels["kind"] == "" {
				t.Errorf("%s: labels %v want a severity and a kind", r.Alert, r.Labels)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("%s: no summary or description", r.Alert)
			}
			if !fires[r.Alert] {
				t.Errorf("%s: no unit test makes it fire", r.Alert)
			}
		}
	}
	if alerts < 7 {
		t.Errorf("only %d alerts", alerts)
	}
	t.Logf("%d alerts; a quiet-time check for %d of them", alerts, len(quiet))
	dir := filepath.Dir(rulesFile)
	runPromtool(t, dir, "check", "rules", filepath.Base(rulesFile))
	t.Log(strings.TrimSpace(runPromtool(t, dir, "test", "rules", filepath.Base(rulesTestFile))))
}

// TestGrafanaDashboard: the dashboard is well formed (unique ids, panels
// inside the 24-column grid and not overlapping, the datasource variable
// everywhere), it has the panels netmeter promises, every expression and
// variable query selects only documented metrics, and every expression
// parses: each is wrapped in a recording rule of a temporary rule file that
// `promtool check rules` parses with Prometheus' own PromQL parser (the
// Grafana macros replaced by durations).
func TestGrafanaDashboard(t *testing.T) {
	known := documentedMetrics(t)
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	type target struct {
		RefID  string `json:"refId"`
		Expr   string `json:"expr"`
		Format string `json:"format"`
	}
	type panel struct {
		ID         int    `json:"id"`
		Type       string `json:"type"`
		Title      string `json:"title"`
		Datasource *struct {
			Type string `json:"type"`
			UID  string `json:"uid"`
		} `json:"datasource"`
		GridPos struct{ X, Y, W, H int } `json:"gridPos"`
		Targets []target                 `json:"targets"`
		Panels  []json.RawMessage        `json:"panels"`
	}
	var dash struct {
		UID           string            `json:"uid"`
		Title         string            `json:"title"`
		SchemaVersion int               `json:"schemaVersion"`
		Panels        []json.RawMessage `json:"panels"`
		Templating    struct {
			List []struct {
				Name  string `json:"name"`
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatal(err)
	}
	if dash.UID == "" || dash.Title == "" || dash.SchemaVersion < 36 {
		t.Errorf("uid %q title %q schemaVersion %d (want a recent Grafana's, 36 or later)", dash.UID, dash.Title, dash.SchemaVersion)
	}
	var panels []panel
	var walk func([]json.RawMessage)
	walk = func(raw []json.RawMessage) {
		for _, r := range raw {
			var p panel
			if err := json.Unmarshal(r, &p); err != nil {
				t.Fatal(err)
			}
			panels = append(panels, p)
			walk(p.Panels)
		}
	}
	walk(dash.Panels)

	ids := map[int]bool{}
	type cell struct{ x, y int }
	taken := map[cell]string{}
	var exprs []string
	exprOf := map[string]string{} // expression → panel and target, for messages
	byType := map[string][]string{}
	for _, p := range panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		g := p.GridPos
		if g.W < 1 || g.H < 1 || g.X < 0 || g.X+g.W > 24 {
			t.Errorf("panel %q: gridPos %+v outside the 24-column grid", p.Title, g)
		}
		for x := g.X; x < g.X+g.W; x++ {
			for y := g.Y; y < g.Y+g.H; y++ {
				if other, ok := taken[cell{x, y}]; ok {
					t.Errorf("panels %q and %q overlap at %d,%d", other, p.Title, x, y)
				}
				taken[cell{x, y}] = p.Title
			}
		}
		if p.Type == "row" {
			continue
		}
		if !slices.Contains([]string{"timeseries", "bargauge", "heatmap", "state-timeline", "stat", "table", "gauge"}, p.Type) {
			t.Errorf("panel %q: type %q", p.Title, p.Type)
		}
		if p.Title == "" || p.Datasource == nil || p.Datasource.UID != "${datasource}" || len(p.Targets) == 0 {
			t.Errorf("panel %d %q: no title, no ${datasource} or no target", p.ID, p.Title)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if tg.RefID == "" || refs[tg.RefID] || strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("panel %q: target %q without a unique refId or an expression", p.Title, tg.RefID)
			}
			refs[tg.RefID] = true
			exprs = append(exprs, tg.Expr)
			exprOf[tg.Expr] = fmt.Sprintf("panel %q target %s", p.Title, tg.RefID)
			byType[p.Type] = append(byType[p.Type], tg.Expr)
		}
	}
	labelValuesRE := regexp.MustCompile(`^label_values\((.*),\s*[a-zA-Z_]+\)$`)
	for _, v := range dash.Templating.List {
		q, _ := v.Query.(string)
		if m, ok := v.Query.(map[string]any); ok {
			q, _ = m["query"].(string)
		}
		if v.Type != "query" {
			continue
		}
		m := labelValuesRE.FindStringSubmatch(q)
		if m == nil {
			t.Errorf("variable %s: query %q is not label_values(selector, label)", v.Name, q)
			continue
		}
		exprs = append(exprs, m[1])
		exprOf[m[1]] = "variable " + v.Name
	}

	for _, e := range exprs {
		names := metricNames(e)
		if len(names) == 0 && !strings.Contains(e, "time()") {
			t.Errorf("%s selects no metric: %s", exprOf[e], e)
		}
		for _, n := range names {
			if !known[n] {
				t.Errorf("%s uses %s, which docs/METRICS.md does not list", exprOf[e], n)
			}
		}
	}
	// The panels netmeter promises: a metric each must show, in a panel of
	// the given type ("" any).
	all := strings.Join(exprs, "\n")
	for _, want := range []struct{ typ, metric string }{
		{"timeseries", "netmeter_network_receive_bytes_total"}, {"timeseries", "netmeter_network_transmit_bytes_total"},
		{"timeseries", "netmeter_process_receive_bytes_total"}, {"timeseries", "netmeter_container_network_receive_bytes_total"},
		{"bargauge", "netmeter_quota_used_bytes"}, {"timeseries", "netmeter_quota_limit_bytes"},
		{"timeseries", "netmeter_tcp_retransmitted_segments_total"}, {"heatmap", "netmeter_tcp_rtt_seconds_bucket"},
		{"timeseries", "histogram_quantile(0.99"}, {"timeseries", "netmeter_drops_total"},
		{"state-timeline", "netmeter_health_state"},
	} {
		if !strings.Contains(strings.Join(byType[want.typ], "\n"), want.metric) {
			t.Errorf("no %s panel shows %s", want.typ, want.metric)
		}
	}
	if !strings.Contains(all, "sum by (reason)") {
		t.Error("no panel shows drops by reason")
	}

	// Parse every expression with promtool: one recording rule each.
	macros := strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h")
	rf := promRuleFile{Groups: []promGroup{{Name: "dashboard"}}}
	for i, e := range exprs {
		rf.Groups[0].Rules = append(rf.Groups[0].Rules, promRule{Record: fmt.Sprintf("dashboard:expr_%d", i), Expr: macros.Replace(e)})
	}
	dir := t.TempDir()
	writeRules := func(name string, f promRuleFile) {
		out, err := yaml.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeRules("dashboard.rules.yml", rf)
	out := runPromtool(t, dir, "check", "rules", "dashboard.rules.yml")
	if want := fmt.Sprintf("SUCCESS: %d rules found", len(exprs)); !strings.Contains(out, want) {
		t.Errorf("promtool: %s, want %q", out, want)
	}
	// The health panel's encoding of the one-hot state, evaluated by
	// promtool on series: one value per group or monitor.
	health := strings.NewReplacer("$instance", ".*").Replace(byType["state-timeline"][0])
	series := func(subject, state string, v int) map[string]string {
		return map[string]string{"series": fmt.Sprintf(`netmeter_health_state{%s,state=%q,instance="h1",job="netmeter"}`, subject, state),
			"values": fmt.Sprintf("%dx3", v)}
	}
	sample := func(subject string, v int) map[string]any {
		return map[string]any{"labels": fmt.Sprintf(`{%s,instance="h1",job="netmeter"}`, subject), "value": v}
	}
	unit := map[string]any{
		"rule_files": []string{"dashboard.rules.yml"}, "evaluation_interval": "1m",
		"tests": []map[string]any{{
			"interval": "1m",
			"input_series": []map[string]string{
				series(`group="a"`, "healthy", 1), series(`group="a"`, "degraded: network", 0),
				series(`group="b"`, "healthy", 0), series(`group="b"`, "degraded: remote", 1),
				series(`group="c"`, "degraded: this host", 1), series(`monitor="db"`, "unknown", 1),
				series(`monitor="db"`, "healthy", 0), series(`monitor="web"`, "degraded: network", 1),
			},
			"promql_expr_test": []map[string]any{{"expr": health, "eval_time": "2m", "exp_samples": []map[string]any{
				sample(`group="a"`, 1), sample(`group="b"`, 4), sample(`group="c"`, 3), sample(`monitor="db"`, 0), sample(`monitor="web"`, 2),
			}}},
		}},
	}
	ub, err := yaml.Marshal(unit)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "health.test.yml"), ub, 0o644); err != nil {
		t.Fatal(err)
	}
	runPromtool(t, dir, "test", "rules", "health.test.yml")

	// The method itself: promtool refuses a broken expression.
	rf.Groups[0].Rules = []promRule{{Record: "dashboard:broken", Expr: `sum by (device (rate(netmeter_drops_total[5m]))`}}
	writeRules("broken.rules.yml", rf)
	cmd := exec.Command(requireProgram(t, "promtool", "prometheus"), "check", "rules", "broken.rules.yml")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Errorf("promtool accepted a broken expression:\n%s", out)
	}
	t.Logf("%d panels, %d expressions parsed by promtool", len(panels), len(exprs))
}
