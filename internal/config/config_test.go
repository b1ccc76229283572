package config

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

var update = flag.Bool("update", false, "rewrite docs/CONFIG.md")

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func load(t *testing.T, args []string, e map[string]string) (Config, error) {
	t.Helper()
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	if e == nil {
		e = map[string]string{}
	}
	if _, ok := e["NETMETER_CONFIG"]; !ok {
		// Never read the machine's real /etc file from tests.
		e["NETMETER_CONFIG"] = filepath.Join(t.TempDir(), "none.yaml")
		f, _ := os.Create(e["NETMETER_CONFIG"])
		f.Close()
	}
	return Load(fs, env(e))
}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "netmeter.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaults(t *testing.T) {
	c, err := load(t, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Interval != time.Second || c.Units != "bytes" || c.Source != "auto" || c.MaxLinkRate != 200e9 || c.Interfaces != nil {
		t.Fatalf("defaults = %+v", c)
	}
}

func TestPrecedence(t *testing.T) {
	file := writeFile(t, "interval: 3s\nunits: bits\ninterfaces: [eth*, veth*]\nlog_level: debug\n")
	c, err := load(t, []string{"--interval", "5s"}, map[string]string{"NETMETER_CONFIG": file, "NETMETER_UNITS": "bytes", "NETMETER_INTERVAL": "4s"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Interval != 5*time.Second {
		t.Errorf("flag must beat env and file: %v", c.Interval)
	}
	if c.Units != "bytes" {
		t.Errorf("env must beat file: %v", c.Units)
	}
	if c.LogLevel != "debug" || strings.Join(c.Interfaces, ",") != "eth*,veth*" {
		t.Errorf("file values lost: %+v", c)
	}
	if c.ConfigFile != file {
		t.Errorf("ConfigFile = %q", c.ConfigFile)
	}
	c, err = load(t, []string{"--config", file}, nil)
	if err != nil || c.Interval != 3*time.Second {
		t.Fatalf("--config: %+v %v", c, err)
	}
}

func TestErrorsNameWhatToChange(t *testing.T) {
	bad := writeFile(t, "interval: 1s\nintervall: 2s\n")
	badVal := writeFile(t, "units: furlongs\n")
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want []string
	}{
		{"bad flag value", []string{"--interval", "soon"}, nil, []string{"flag --interval", `"soon" is not a duration`}},
		{"interval too small", []string{"--interval", "1ms"}, nil, []string{"flag --interval", "outside 10ms..1h"}},
		{"bad env", nil, map[string]string{"NETMETER_UNITS": "furlongs"}, []string{"env NETMETER_UNITS", "bytes, bits"}},
		{"unknown file key", nil, map[string]string{"NETMETER_CONFIG": bad}, []string{bad, `key "intervall" (line 2)`, "unknown option", "interval"}},
		{"bad file value", nil, map[string]string{"NETMETER_CONFIG": badVal}, []string{`key "units" (line 1)`, "furlongs"}},
		{"missing explicit file", []string{"--config", "/nonexistent/n.yaml"}, nil, []string{"config file /nonexistent/n.yaml", "no such file"}},
		{"bad glob", []string{"--interfaces", "eth["}, nil, []string{"flag --interfaces", "bad pattern"}},
		{"bad rate", []string{"--max-link-rate", "-1"}, nil, []string{"flag --max-link-rate"}},
		{"not yaml", nil, map[string]string{"NETMETER_CONFIG": writeFile(t, "::: [")}, []string{"not valid YAML"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(t, tt.args, tt.env)
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want *config.Error", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// TestDocsInSync keeps docs/CONFIG.md, the one place options are documented,
// identical to the table. Run with -update to regenerate.
func TestDocsInSync(t *testing.T) {
	p := filepath.Join("..", "..", "docs", "CONFIG.md")
	want := Markdown()
	if *update {
		if err := os.WriteFile(p, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("docs/CONFIG.md is stale: run go test ./internal/config -update")
	}
	for _, o := range Options {
		if !strings.Contains(want, "`--"+o.Flag+"`") || !strings.Contains(want, o.Env()) {
			t.Errorf("option %s undocumented", o.Flag)
		}
	}
}

func TestBoolFlagAlone(t *testing.T) {
	c, err := load(t, []string{"--nft-counters"}, nil)
	if err != nil || !c.NftCounters {
		t.Fatalf("--nft-counters alone: %v %v", c.NftCounters, err)
	}
	if _, err := load(t, []string{"--nft-counters=maybe"}, nil); err == nil {
		t.Fatal("--nft-counters=maybe accepted")
	}
}

func TestHealthSection(t *testing.T) {
	good := writeFile(t, `interval: 1s
health:
  groups:
    - name: office
      cidrs: [10.1.0.0/16, "2001:db8::/48"]
  monitors:
    - name: web
      local: {processes: [nginx]}
      remote: {everywhere: true}
`)
	c, err := load(t, nil, map[string]string{"NETMETER_CONFIG": good})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Health.Groups) != 1 || c.Health.Groups[0].Name != "office" || len(c.Health.Groups[0].CIDRs) != 2 ||
		len(c.Health.Monitors) != 1 || c.Health.Monitors[0].Name != "web" {
		t.Errorf("health section read as %+v", c.Health)
	}
	for name, tt := range map[string]struct{ body, want string }{
		"bad cidr":    {"health:\n  groups:\n    - name: lab\n      cidrs: [10.0.0.0/33]\n", "lab"},
		"unknown key": {"health:\n  gruops: []\n", "gruops"},
		"not a map":   {"health: 3\n", "section \"health\""},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := load(t, nil, map[string]string{"NETMETER_CONFIG": writeFile(t, tt.body)})
			var ce *Error
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), `section "health"`) {
				t.Errorf("error %v: want a config.Error naming the health section and %q", err, tt.want)
			}
		})
	}
}

func TestQuotasSection(t *testing.T) {
	good := writeFile(t, "quotas:\n  - name: uplink\n    entity: interface:eth0+eth1\n    limit: 500GiB\n    period: month\n    start_day: 15\n")
	c, err := load(t, nil, map[string]string{"NETMETER_CONFIG": good})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Quotas) != 1 || c.Quotas[0].Name != "uplink" || c.Quotas[0].StartDay != 15 {
		t.Errorf("quotas read as %+v", c.Quotas)
	}
	for name, body := range map[string]string{
		"bad limit": "quotas:\n  - name: q\n    entity: interface:eth0\n    limit: heaps\n",
		"twice":     "quotas:\n  - {name: q, entity: 'interface:a', limit: 1G}\n  - {name: q, entity: 'interface:b', limit: 1G}\n",
		"typo":      "quotas:\n  - {name: q, entity: 'interface:a', limt: 1G}\n",
	} {
		_, err := load(t, nil, map[string]string{"NETMETER_CONFIG": writeFile(t, body)})
		if err == nil || !strings.Contains(err.Error(), `section "quotas"`) {
			t.Errorf("%s: error %v, want one naming the quotas section", name, err)
		}
	}
}

func TestRetentionSection(t *testing.T) {
	c, err := load(t, nil, map[string]string{"NETMETER_CONFIG": writeFile(t, "retention:\n  five_minutes: 72h\n  days: 90\n")})
	if err != nil {
		t.Fatal(err)
	}
	if c.Retention.FiveMin != 72*time.Hour || c.Retention.Days != 90 {
		t.Errorf("retention read as %+v", c.Retention)
	}
	if _, err := load(t, nil, map[string]string{"NETMETER_CONFIG": writeFile(t, "retention:\n  dayz: 9\n")}); err == nil || !strings.Contains(err.Error(), `section "retention"`) {
		t.Errorf("typo in retention: %v", err)
	}
}

func TestAlertsSection(t *testing.T) {
	c, err := load(t, nil, map[string]string{"NETMETER_CONFIG": writeFile(t, "alerts:\n  rules:\n    - {name: s, kind: surge, growth_percent: 300}\n  webhook: http://127.0.0.1:1/x\n")})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Alerts.Rules) != 1 || c.Alerts.Rules[0].Name != "s" || c.Alerts.Webhook == "" {
		t.Errorf("alerts read as %+v", c.Alerts)
	}
	for name, body := range map[string]string{
		"wrong key for kind": "alerts:\n  rules:\n    - {name: s, kind: surge, share_percent: 50}\n",
		"unknown kind":       "alerts:\n  rules:\n    - {name: s, kind: telepathy}\n",
		"typo":               "alerts:\n  webhok: x\n",
	} {
		if _, err := load(t, nil, map[string]string{"NETMETER_CONFIG": writeFile(t, body)}); err == nil || !strings.Contains(err.Error(), `section "alerts"`) {
			t.Errorf("%s: %v, want an error naming the alerts section", name, err)
		}
	}
}

// "on", the engine's older name, reads as "ebpf" everywhere after loading.
func TestEngineOnIsEbpf(t *testing.T) {
	for _, v := range []string{"on", "ebpf"} {
		c, err := load(t, []string{"--engine", v}, nil)
		if err != nil || c.Engine != "ebpf" {
			t.Errorf("--engine %s: %q, %v; want ebpf", v, c.Engine, err)
		}
	}
}
