package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/netmeter/netmeter/internal/aggregate"
	"github.com/netmeter/netmeter/internal/health"
	"github.com/netmeter/netmeter/internal/history"
	"github.com/netmeter/netmeter/internal/quota"
	"github.com/netmeter/netmeter/internal/snapshot"
)

func TestListenSecureByDefault(t *testing.T) {
	for _, tt := range []struct {
		opt Options
		ok  bool
	}{
		{Options{}, true},
		{Options{Listen: "127.0.0.1:0"}, true},
		{Options{Listen: "[::1]:0"}, true},
		{Options{Listen: "localhost:0"}, true},
		{Options{Listen: "0.0.0.0:9797"}, false},
		{Options{Listen: ":9797"}, false},
		{Options{Listen: "0.0.0.0:9797", Token: "s3cret"}, true},
		{Options{Listen: "0.0.0.0:9797", TLSCert: "c.pem", TLSKey: "k.pem"}, true},
		{Options{Listen: "127.0.0.1:0", TLSCert: "c.pem"}, false},
		{Options{Listen: "nonsense"}, false},
	} {
		_, err := New(tt.opt)
		if (err == nil) != tt.ok {
			t.Errorf("New(%+v) = %v, want ok=%v", tt.opt, err, tt.ok)
		}
		if tt.opt.Listen == ":9797" && !errors.Is(err, ErrInsecure) {
			t.Errorf("all-interfaces bind without TLS or token: %v, want ErrInsecure", err)
		}
	}
}

func TestPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s, _ := New(Options{Listen: ln.Addr().String()})
	if _, err := s.Listen(); err == nil || !strings.Contains(err.Error(), ln.Addr().String()) {
		t.Errorf("second listener on %s: %v, want an error naming the address", ln.Addr(), err)
	}
}

func get(t *testing.T, h http.Handler, path, token string) (int, string) {
	t.Helper()
	req := httptest.NewRequest("GET", path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	b, _ := io.ReadAll(rec.Body)
	return rec.Code, string(b)
}

func TestEndpoints(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	st, err := history.Open(history.Options{Path: filepath.Join(t.TempDir(), "h.db"), Location: time.UTC, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	eth0 := history.Entity{Kind: history.KindInterface, Name: "eth0"}
	if err := st.Record(now.Add(-time.Hour), map[history.Entity]history.Counters{eth0: {RxBytes: 1000, TxBytes: 10}}); err != nil {
		t.Fatal(err)
	}
	an, err := health.New(health.Config{})
	if err != nil {
		t.Fatal(err)
	}
	metrics := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "netmeter_up 1\n") })
	ui := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "<!doctype html>dashboard") })
	s, err := New(Options{Token: "tok", Metrics: metrics, UI: ui, Analyzer: an, History: st, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	if code, _ := get(t, h, "/healthz", ""); code != http.StatusServiceUnavailable {
		t.Errorf("healthz before any reading: %d", code)
	}
	snap := &snapshot.Snapshot{Time: now.Add(-time.Second), Interval: time.Second, Interfaces: []snapshot.Interface{{Name: "eth0"}}}
	s.Update(snap)
	an.Add(snap)
	for _, tt := range []struct {
		path, token string
		code        int
		has         string
	}{
		{"/healthz", "", 200, `"ok"`},
		{"/", "", 200, "dashboard"}, // static files: no data, no token
		{"/metrics", "", 401, "bearer"},
		{"/metrics", "wrong", 401, ""},
		{"/metrics", "tok", 200, "netmeter_up 1"},
		{"/api/v1/snapshot", "tok", 200, `"name":"eth0"`},
		{"/api/v1/flows?window=5s&by=retrans", "tok", 200, `"flows"`},
		{"/api/v1/flows?by=nope", "tok", 400, "nope"},
		{"/api/v1/flows?window=-1s", "tok", 400, "window"},
		{"/api/v1/health", "tok", 200, `"groups"`},
		{"/api/v1/topology?window=30s", "tok", 200, `"nodes"`},
		{"/api/v1/monitors", "tok", 200, ""},
		{"/api/v1/entities?kind=interface", "tok", 200, `"name":"eth0"`},
		{"/api/v1/history?entity=interface:eth0&resolution=day", "tok", 200, `"rx_bytes":1000`},
		{"/api/v1/history?entity=eth0&resolution=day", "tok", 400, "entity="},
		{"/api/v1/history?entity=interface:eth0&resolution=fortnight", "tok", 400, ""},
		{"/api/v1/history?entity=interface:eth0&resolution=day&begin=yesterday", "tok", 400, "RFC 3339"},
	} {
		code, body := get(t, h, tt.path, tt.token)
		if code != tt.code || !strings.Contains(strings.ToLower(body), strings.ToLower(tt.has)) {
			t.Errorf("GET %s: %d %.200s; want %d containing %q", tt.path, code, body, tt.code, tt.has)
		}
	}
	var hist struct{ Rows []history.Row }
	_, body := get(t, h, "/api/v1/history?entity=interface:eth0&resolution=hour", "tok")
	if err := json.Unmarshal([]byte(body), &hist); err != nil || len(hist.Rows) != 1 || hist.Rows[0].RxBytes != 1000 || hist.Rows[0].TxBytes != 10 {
		t.Errorf("history: %v %s", err, body)
	}
	// A stale agent fails its liveness probe.
	now = now.Add(time.Minute)
	if code, body := get(t, h, "/healthz", ""); code != 503 || !strings.Contains(body, "ago") {
		t.Errorf("stale healthz: %d %s", code, body)
	}
}

func TestServeAndShutdown(t *testing.T) {
	s, err := New(Options{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	addr, err := s.Listen()
	if err != nil {
		t.Fatal(err)
	}
	s.Update(&snapshot.Snapshot{Time: time.Now(), Interval: time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	resp, err := http.Get("http://" + addr.String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("healthz over TCP: %d", resp.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("graceful shutdown: %v", err)
	}
}

func TestEventsStream(t *testing.T) {
	s, _ := New(Options{Listen: "127.0.0.1:0"})
	addr, err := s.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Serve(ctx)
	s.Update(&snapshot.Snapshot{Time: time.Unix(1, 0), Interval: time.Second})
	resp, err := http.Get("http://" + addr.String() + "/api/v1/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	buf := make([]byte, 4096)
	read := func() string {
		n, err := resp.Body.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		return string(buf[:n])
	}
	if first := read(); !strings.HasPrefix(first, "event: snapshot\ndata: {") || !strings.Contains(first, `"time":"1970-01-01T00:00:01Z"`) {
		t.Errorf("first event %q", first)
	}
	go func() {
		time.Sleep(50 * time.Millisecond)
		s.Update(&snapshot.Snapshot{Time: time.Unix(2, 0), Interval: time.Second})
	}()
	if next := read(); !strings.Contains(next, `"time":"1970-01-01T00:00:02Z"`) {
		t.Errorf("next event %q", next)
	}
}

// The billing endpoints: quota states as 'quota check --json' has them, and
// the ledger's accounts of a period, busiest first, with the periods known.
func TestBillingEndpoints(t *testing.T) {
	now := time.Date(2026, 3, 20, 12, 0, 0, 0, time.UTC)
	l, err := aggregate.NewLedger(15, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	book := func(at time.Time, account string, tx uint64) {
		l.Add(at, []snapshot.Container{{Account: account, Delta: snapshot.Traffic{TxBytes: tx}}})
	}
	book(now.AddDate(0, -1, 0), "acme", 7)   // period 2026-02
	book(now.Add(-time.Hour), "acme", 100)   // 2026-03
	book(now.Add(-time.Hour), "globex", 900) // 2026-03
	q := quota.Result{Name: "uplink", Entity: "interface:eth0", Used: 42, Limit: 100, Status: quota.StatusOK}
	s, _ := New(Options{Now: func() time.Time { return now }})
	s.WithBilling(func(at time.Time) ([]quota.Result, error) {
		if !at.Equal(now) {
			t.Errorf("quotas evaluated at %v, want %v", at, now)
		}
		return []quota.Result{q}, nil
	}, l)
	h := s.Handler()

	code, body := get(t, h, "/api/v1/quotas", "")
	var qr struct {
		Quotas []quota.Result `json:"quotas"`
	}
	if err := json.Unmarshal([]byte(body), &qr); code != 200 || err != nil || len(qr.Quotas) != 1 || qr.Quotas[0] != q {
		t.Errorf("quotas: %d %s", code, body)
	}
	code, body = get(t, h, "/api/v1/ledger", "")
	var lr struct {
		Period     string            `json:"period"`
		BillingDay int               `json:"billing_day"`
		Periods    []string          `json:"periods"`
		Entries    []aggregate.Entry `json:"entries"`
	}
	if err := json.Unmarshal([]byte(body), &lr); code != 200 || err != nil {
		t.Fatalf("ledger: %d %s", code, body)
	}
	if lr.Period != "2026-03" || lr.BillingDay != 15 || strings.Join(lr.Periods, ",") != "2026-02,2026-03" ||
		len(lr.Entries) != 2 || lr.Entries[0].Account != "globex" || lr.Entries[1].Total.TxBytes != 100 {
		t.Errorf("ledger now: %+v", lr)
	}
	if code, body = get(t, h, "/api/v1/ledger?period=2026-02", ""); !strings.Contains(body, `"account":"acme"`) || strings.Contains(body, "globex") {
		t.Errorf("ledger 2026-02: %d %s", code, body)
	}
	if code, _ = get(t, h, "/api/v1/ledger?period=March", ""); code != http.StatusBadRequest {
		t.Errorf("bad period: %d, want 400", code)
	}

	// Without quotas configured: an empty list; without a ledger: 503.
	bare, _ := New(Options{})
	if code, body = get(t, bare.Handler(), "/api/v1/quotas", ""); code != 200 || !strings.Contains(body, `"quotas":[]`) {
		t.Errorf("no quotas: %d %s", code, body)
	}
	if code, _ = get(t, bare.Handler(), "/api/v1/ledger", ""); code != http.StatusServiceUnavailable {
		t.Errorf("no ledger: %d, want 503", code)
	}
}
