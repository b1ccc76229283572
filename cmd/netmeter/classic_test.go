package main

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// TestTopFallsBackToClassic runs `top --once --json` as nobody with only
// CAP_NET_RAW: eBPF cannot load, --engine auto says why and falls back to
// the classic engine, whose snapshot says so and is marked approximate.
func TestTopFallsBackToClassic(t *testing.T) {
	bin, _ := buildForNobody(t)
	for _, tt := range []struct {
		args  []string
		table bool
	}{
		{[]string{"top", "--once", "--json", "--interval", "200ms"}, false},
		{[]string{"top", "--once", "--interval", "200ms"}, true},
	} {
		cmd := exec.Command(bin, tt.args...)
		cmd.Env = []string{"NETMETER_CONFIG=/dev/null", "PATH=/usr/bin:/bin"}
		cmd.SysProcAttr = &syscall.SysProcAttr{
			Credential:  &syscall.Credential{Uid: 65534, Gid: 65534, NoSetGroups: true},
			AmbientCaps: []uintptr{13}, // CAP_NET_RAW
		}
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("%v: %v\n%s", tt.args, err, stderr.String())
		}
		if !strings.Contains(stderr.String(), "falling back to the classic engine") || !strings.Contains(stderr.String(), "CAP_BPF") {
			t.Errorf("%v: the fallback is not explained: %s", tt.args, stderr.String())
		}
		if tt.table {
			if !strings.HasPrefix(stdout.String(), "approximate: classic engine") {
				t.Errorf("table not marked approximate:\n%s", stdout.String())
			}
			continue
		}
		var snap struct {
			Engine *struct {
				Kind        string `json:"kind"`
				Approximate bool   `json:"approximate"`
			} `json:"engine"`
		}
		if err := json.Unmarshal(stdout.Bytes(), &snap); err != nil {
			t.Fatalf("%v: %v\n%s", tt.args, err, stdout.String())
		}
		if snap.Engine == nil || snap.Engine.Kind != "classic" || !snap.Engine.Approximate {
			t.Errorf("engine %+v, want classic and approximate", snap.Engine)
		}
	}
}
