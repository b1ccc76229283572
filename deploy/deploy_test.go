// Package deploy holds the systemd unit, the Kubernetes DaemonSet, the
// Prometheus rules and the Grafana dashboard; its tests check them.
package deploy

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/netmeter/netmeter/internal/config"
)

// requireTool finds a program or skips (fails under NETMETER_REQUIRE_PRIVILEGED).
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("NETMETER_REQUIRE_PRIVILEGED") == "1" {
			t.Fatalf("%s not found", name)
		}
		t.Skipf("%s not found", name)
	}
	return p
}

var flagRE = regexp.MustCompile(`--([a-z][a-z0-9-]*)`)

// knownFlags are the options every subcommand takes.
func checkFlags(t *testing.T, where, text string) {
	t.Helper()
	known := map[string]bool{}
	for _, o := range config.Options {
		known[o.Flag] = true
	}
	for _, m := range flagRE.FindAllStringSubmatch(text, -1) {
		if !known[m[1]] && m[1] != "config" {
			t.Errorf("%s uses --%s, which netmeter does not have", where, m[1])
		}
	}
}

func TestSystemdUnit(t *testing.T) {
	unit, err := os.ReadFile("systemd/netmeter.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(unit), "\n") {
		if strings.HasPrefix(line, "ExecStart=") {
			if !strings.Contains(line, "netmeter serve") {
				t.Errorf("ExecStart does not run netmeter serve: %s", line)
			}
			checkFlags(t, "ExecStart", line)
		}
	}
	for _, want := range []string{"NoNewPrivileges=yes", "ProtectSystem=strict", "CapabilityBoundingSet=", "MemoryMax=", "CPUQuota=", "StateDirectory=netmeter"} {
		if !bytes.Contains(unit, []byte(want)) {
			t.Errorf("unit lacks %s", want)
		}
	}
	sa := requireTool(t, "systemd-analyze")
	// systemd-analyze wants the ExecStart binary to exist: point it at a
	// stand-in executable in a copy of the unit.
	dir := t.TempDir()
	bin := filepath.Join(dir, "netmeter")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	copyUnit := filepath.Join(dir, "netmeter.service")
	os.WriteFile(copyUnit, bytes.ReplaceAll(unit, []byte("/usr/local/bin/netmeter"), []byte(bin)), 0o644)
	out, err := exec.Command(sa, "verify", copyUnit).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

func TestDaemonSet(t *testing.T) {
	b, err := os.ReadFile("kubernetes/daemonset.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var ds map[string]any
	for {
		var doc map[string]any
		if err := dec.Decode(&doc); err != nil {
			break
		}
		if doc["kind"] == "DaemonSet" {
			ds = doc
		}
	}
	if ds == nil {
		t.Fatal("no DaemonSet in the manifest")
	}
	pod := ds["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)
	if pod["hostPID"] != true || pod["hostNetwork"] != true {
		t.Errorf("hostPID %v hostNetwork %v, want both true", pod["hostPID"], pod["hostNetwork"])
	}
	c := pod["containers"].([]any)[0].(map[string]any)
	var args []string
	for _, a := range c["args"].([]any) {
		args = append(args, a.(string))
	}
	if args[0] != "serve" {
		t.Errorf("args %v do not start with serve", args)
	}
	checkFlags(t, "DaemonSet args", strings.Join(args, " "))
	if !strings.Contains(strings.Join(args, " "), "--auth-token-file") {
		t.Error("listening on the node's address without a token")
	}
	sc := c["securityContext"].(map[string]any)
	if sc["privileged"] != false {
		t.Error("the agent must not run privileged: capabilities only")
	}
	for _, probe := range []string{"livenessProbe", "readinessProbe"} {
		if c[probe] == nil {
			t.Errorf("no %s", probe)
		}
	}
}
