package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/netmeter/netmeter/internal/health"
	"github.com/netmeter/netmeter/internal/quota"
)

// requireProgram finds a program on PATH or skips; with
// NETMETER_REQUIRE_PRIVILEGED=1 (CI, which installs it: .ci/run) a missing
// program fails the test instead.
func requireProgram(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("NETMETER_REQUIRE_PRIVILEGED") == "1" {
			t.Fatalf("%s not found (Debian package %s; .ci/run installs it)", name, pkg)
		}
		t.Skipf("%s not found: apt-get install %s", name, pkg)
	}
	return p
}

// startAlertmanager runs a real Alertmanager on a free loopback port, with
// clustering off and a receiver that discards, and returns its URL.
func startAlertmanager(t *testing.T) string {
	t.Helper()
	bin := requireProgram(t, "prometheus-alertmanager", "prometheus-alertmanager")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(cfg, []byte("route:\n  receiver: discard\n  group_wait: 1s\nreceivers:\n  - name: discard\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	var out bytes.Buffer
	cmd := exec.Command(bin, "--config.file="+cfg, "--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--cluster.listen-address=")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("alertmanager output:\n%s", out.String())
		}
	})
	base := "http://" + addr
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(base + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("alertmanager not ready at %s: %v\n%s", base, err, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// gettableAlert is what Alertmanager's GET /api/v2/alerts returns.
type gettableAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
	Status       struct {
		State string `json:"state"`
	} `json:"status"`
}

func listAlerts(t *testing.T, base string) []gettableAlert {
	t.Helper()
	resp, err := http.Get(base + "/api/v2/alerts")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out []gettableAlert
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRealAlertmanager: the evaluator's alert, delivered by the
// Alertmanager sink, is accepted by a real Alertmanager (Debian's 0.25),
// which lists it with our labels, annotations, startsAt, generatorURL and
// the same fingerprint; the resolution removes it from the active list.
func TestRealAlertmanager(t *testing.T) {
	base := startAlertmanager(t)
	e, err := New([]Rule{{Name: "NetmeterQuota", Kind: KindQuota}},
		WithLabels(map[string]string{"instance": "host1"}), WithGeneratorURL("http://host1:9100/quota"))
	if err != nil {
		t.Fatal(err)
	}
	// The resolution must lie in the past when it arrives: Alertmanager
	// keeps the later endsAt of an alert that has not ended yet.
	now := time.Now().UTC().Truncate(time.Millisecond).Add(-2 * time.Second)
	fired := e.Observe(now, nil, health.Report{}, []quota.Result{{Name: "monthly", Entity: "interface:eth0", Direction: "total",
		Used: 101 << 30, Limit: 100 << 30, Percent: 101, Status: quota.StatusExceeded, PeriodStart: now.AddDate(0, 0, -3)}})
	if len(fired) != 1 {
		t.Fatalf("fired %v", fired)
	}
	am, err := NewAlertmanager(base, WithResendInterval(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer closeSink(t, am)
	if err := am.Send(context.Background(), fired); err != nil {
		t.Fatal(err)
	}
	var got []gettableAlert
	waitFor(t, "the alert in Alertmanager", func() bool { got = listAlerts(t, base); return len(got) == 1 })
	a, want := got[0], fired[0]
	if !maps.Equal(a.Labels, want.Labels) || !maps.Equal(a.Annotations, want.Annotations) || !a.StartsAt.Equal(want.StartsAt) ||
		a.GeneratorURL != want.GeneratorURL || a.Fingerprint != want.Fingerprint || a.Status.State != "active" {
		t.Errorf("Alertmanager has %+v\nsent %+v", a, want)
	}
	if d := a.EndsAt.Sub(now); d < 3*time.Hour || d > 5*time.Hour {
		t.Errorf("endsAt %s after now, want 4 resend intervals (4h)", d)
	}
	// Alertmanager may list the alert before the sink has counted the
	// answer: wait for the count.
	waitFor(t, "the sink to count the delivery", func() bool { return am.Stats().Sent == 1 })
	if st := am.Stats(); st.Sent != 1 || st.Failed != 0 {
		t.Errorf("stats %+v", st)
	}

	resolved := e.Observe(now.Add(time.Second), nil, health.Report{}, []quota.Result{})
	if len(resolved) != 1 || resolved[0].Status != StatusResolved {
		t.Fatalf("resolved %v", resolved)
	}
	am.Send(context.Background(), resolved)
	waitFor(t, "the resolution", func() bool { return len(listAlerts(t, base)) == 0 })
	waitFor(t, "the sink to count the resolution", func() bool { return am.Stats().Sent == 2 })
	if st := am.Stats(); st.Sent != 2 || st.Failed != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestRealAlertmanagerRefusesBadAlert: a 400 from the real Alertmanager
// (an alert without labels) is a final failure, not retried.
func TestRealAlertmanagerRefusesBadAlert(t *testing.T) {
	base := startAlertmanager(t)
	am, err := NewAlertmanager(base, WithBackoff(time.Millisecond, time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	am.Send(context.Background(), []Alert{{Status: StatusFiring, Labels: map[string]string{}, StartsAt: time.Now()}})
	closeSink(t, am)
	if st := am.Stats(); st.Failed != 1 || st.Retries != 0 || st.LastError == "" {
		t.Errorf("stats %+v", st)
	}
	t.Logf("Alertmanager said: %s", am.Stats().LastError)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
