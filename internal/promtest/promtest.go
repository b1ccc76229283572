// Package promtest runs Debian's Prometheus for tests: on loopback, with the
// remote-write receiver, scraping the given targets every second, and asks
// it PromQL questions. Tests skip when prometheus is not installed, unless
// NETMETER_REQUIRE_PRIVILEGED=1.
package promtest

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"testing"
	"time"
)

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Start runs Debian's Prometheus on loopback with the remote-write
// receiver on, scraping targets (host:port, may be empty) every second.
func Start(t testing.TB, targets ...string) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("NETMETER_REQUIRE_PRIVILEGED") == "1" {
			t.Fatal("prometheus not installed (apt-get install prometheus)")
		}
		t.Skip("prometheus not installed")
	}
	dir := t.TempDir()
	cfg := "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
	if len(targets) > 0 {
		b, _ := json.Marshal(targets)
		cfg += "scrape_configs:\n  - job_name: netmeter\n    static_configs: [{targets: " + string(b) + "}]\n"
	}
	os.WriteFile(dir+"/prometheus.yml", []byte(cfg), 0o644)
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cmd := exec.Command(bin, "--config.file="+dir+"/prometheus.yml", "--storage.tsdb.path="+dir+"/data",
		"--web.listen-address="+addr, "--web.enable-remote-write-receiver", "--log.level=warn")
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for i := 0; i < 100; i++ {
		if resp, err := http.Get("http://" + addr + "/-/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return "http://" + addr
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("prometheus did not become ready")
	return ""
}

// Query runs an instant PromQL query and returns the first result's value.
func Query(t testing.TB, base, q string) (float64, bool) {
	t.Helper()
	return QueryAt(t, base, q, time.Time{})
}

// QueryAt is Query evaluated at time at (zero: now).
func QueryAt(t testing.TB, base, q string, at time.Time) (float64, bool) {
	t.Helper()
	u := base + "/api/v1/query?query=" + url.QueryEscape(q)
	if !at.IsZero() {
		u += fmt.Sprintf("&time=%.3f", float64(at.UnixMilli())/1000)
	}
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		Data struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	if len(r.Data.Result) == 0 {
		return 0, false
	}
	var v float64
	fmt.Sscan(r.Data.Result[0].Value[1].(string), &v)
	return v, true
}
