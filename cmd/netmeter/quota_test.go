package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/netmeter/netmeter/internal/history"
	"github.com/netmeter/netmeter/internal/quota"
)

// quota check on a real history store: exit codes 0, 3, 4 and the JSON.
func TestQuotaCheck(t *testing.T) {
	dir := t.TempDir()
	st, err := history.Open(history.Options{Path: filepath.Join(dir, historyFile), Location: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	eth := func(n string) history.Entity { return history.Entity{Kind: history.KindInterface, Name: n} }
	if err := st.Record(now, map[history.Entity]history.Counters{
		eth("eth0"): {RxBytes: 600, TxBytes: 300}, eth("eth1"): {RxBytes: 50},
	}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	cfg := filepath.Join(dir, "netmeter.yaml")
	for _, tt := range []struct {
		quotas string
		code   int
	}{
		{"- {name: q, entity: 'interface:eth0', limit: 10000, period: year}", 0},
		{"- {name: q, entity: 'interface:eth0+eth1', limit: 1100, period: year}", 3},         // 950 = 86 % ≥ 80
		{"- {name: q, entity: 'interface:eth0', direction: rx, limit: 600, period: day}", 4}, // 600 of 600
		{"- {name: q, entity: 'interface:eth0', limit: 10000}\n- {name: r, entity: 'interface:eth0', limit: 900, period: week}", 4},
	} {
		body := "timezone: UTC\nquotas:\n  " + strings.ReplaceAll(tt.quotas, "\n", "\n  ") + "\n"
		if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		t.Setenv("NETMETER_CONFIG", cfg)
		root := newRoot()
		root.SetArgs([]string{"quota", "check", "--data-dir", dir, "--json"})
		root.SetOut(&out)
		code := exitCode(root.ExecuteContext(context.Background()), &out)
		var res struct{ Quotas []quota.Result }
		if err := json.Unmarshal(out.Bytes(), &res); err != nil {
			t.Fatalf("%s: %v: %s", tt.quotas, err, out.String())
		}
		if code != tt.code {
			t.Errorf("%s: exit %d, want %d (%+v)", tt.quotas, code, tt.code, res.Quotas)
		}
	}
	// No quotas configured: a usage error that says how to add one.
	os.WriteFile(cfg, []byte("timezone: UTC\n"), 0o600)
	var errOut bytes.Buffer
	root := newRoot()
	root.SetArgs([]string{"quota", "check", "--data-dir", dir})
	if code := exitCode(root.ExecuteContext(context.Background()), &errOut); code != 2 || !strings.Contains(errOut.String(), "quotas:") {
		t.Errorf("no quotas: exit %d, %q", code, errOut.String())
	}
}
