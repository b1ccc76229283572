package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder is an HTTP receiver that keeps every request's body and answers
// with the next status of its script (200 once the script is used up).
type recorder struct {
	mu     sync.Mutex
	bodies []string
	paths  []string
	ctypes []string
	script []int
	got    chan struct{}
	block  chan struct{} // when set, requests wait for it to close
}

func newRecorder(t *testing.T, script ...int) (*recorder, *httptest.Server) {
	r := &recorder{script: script, got: make(chan struct{}, 1000)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.bodies = append(r.bodies, string(b))
		r.paths = append(r.paths, req.Method+" "+req.URL.Path)
		r.ctypes = append(r.ctypes, req.Header.Get("Content-Type"))
		code := http.StatusOK
		if len(r.script) > 0 {
			code, r.script = r.script[0], r.script[1:]
		}
		block := r.block
		r.mu.Unlock()
		r.got <- struct{}{}
		if block != nil {
			select {
			case <-block:
			case <-req.Context().Done():
			}
		}
		w.WriteHeader(code)
		io.WriteString(w, http.StatusText(code))
	}))
	t.Cleanup(srv.Close)
	return r, srv
}

func (r *recorder) requests() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.bodies...)
}

// meta returns request i's method and path, and its content type.
func (r *recorder) meta(i int) (string, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.paths[i], r.ctypes[i]
}

func (r *recorder) wait(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-r.got:
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d requests arrived", len(r.requests()))
		}
	}
}

// sample is a firing and a resolved alert with fixed times.
func sample() []Alert {
	l1 := map[string]string{"alertname": "surge", "severity": "warning", "kind": "surge", "interface": "eth0", "direction": "total"}
	l2 := map[string]string{"alertname": "surge", "severity": "warning", "kind": "surge", "program": "curl", "direction": "total"}
	return []Alert{
		{Status: StatusFiring, Labels: l1, Annotations: map[string]string{"summary": "eth0 surged", "description": "eth0: 6.6 MiB/s"},
			StartsAt: t0, GeneratorURL: "http://host1:9100/", Fingerprint: Fingerprint(l1)},
		{Status: StatusResolved, Labels: l2, Annotations: map[string]string{"summary": "curl surged", "description": "curl: 3 MiB/s"},
			StartsAt: t0.Add(-time.Hour), EndsAt: t0.Add(-time.Minute), Fingerprint: Fingerprint(l2)},
	}
}

func closeSink(t *testing.T, c interface{ Close(context.Context) error }) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestWebhookJSON: the body is Alertmanager's webhook payload, exactly.
func TestWebhookJSON(t *testing.T) {
	rec, srv := newRecorder(t)
	w, err := NewWebhook(srv.URL+"/hook", WithHeader("Authorization", "Bearer x"))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Send(context.Background(), sample()); err != nil {
		t.Fatal(err)
	}
	closeSink(t, w)
	fp1, fp2 := sample()[0].Fingerprint, sample()[1].Fingerprint
	want := `{"version":"4","groupKey":"netmeter","truncatedAlerts":0,"status":"firing","receiver":"netmeter",` +
		`"groupLabels":{},"commonLabels":{"alertname":"surge","direction":"total","kind":"surge","severity":"warning"},` +
		`"commonAnnotations":{},"externalURL":"","alerts":[` +
		`{"status":"firing","labels":{"alertname":"surge","direction":"total","interface":"eth0","kind":"surge","severity":"warning"},` +
		`"annotations":{"description":"eth0: 6.6 MiB/s","summary":"eth0 surged"},"startsAt":"2026-11-23T12:00:00Z",` +
		`"endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://host1:9100/","fingerprint":"` + fp1 + `"},` +
		`{"status":"resolved","labels":{"alertname":"surge","direction":"total","kind":"surge","program":"curl","severity":"warning"},` +
		`"annotations":{"description":"curl: 3 MiB/s","summary":"curl surged"},"startsAt":"2026-11-23T11:00:00Z",` +
		`"endsAt":"2026-11-23T11:59:00Z","fingerprint":"` + fp2 + `"}]}`
	got := rec.requests()
	if len(got) != 1 || got[0] != want {
		t.Fatalf("bodies:\n%s\nwant:\n%s", strings.Join(got, "\n"), want)
	}
	if p, ct := rec.meta(0); p != "POST /hook" || ct != "application/json" {
		t.Errorf("%s %s", p, ct)
	}
	if st := w.Stats(); st.Sent != 2 || st.Failed != 0 || st.Queued != 0 {
		t.Errorf("stats %+v", st)
	}
	if err := w.Send(context.Background(), sample()); !errors.Is(err, ErrClosed) {
		t.Errorf("Send after Close: %v", err)
	}
}

// TestWebhookRetries: 503 and 429 are retried with backoff, 400 is not, a
// receiver that does not answer in time is a retried failure.
func TestWebhookRetries(t *testing.T) {
	rec, srv := newRecorder(t, 503, 429, 200, 400)
	w, err := NewWebhook(srv.URL, WithBackoff(time.Millisecond, 4*time.Millisecond), WithRetries(3), WithBatchSize(2))
	if err != nil {
		t.Fatal(err)
	}
	w.Send(context.Background(), sample())
	rec.wait(t, 3)
	w.Send(context.Background(), sample()[:1])
	closeSink(t, w)
	got := rec.requests()
	if len(got) != 4 || got[0] != got[1] || got[1] != got[2] {
		t.Fatalf("%d requests: %v", len(got), got)
	}
	st := w.Stats()
	if st.Sent != 2 || st.Retries != 2 || st.Failed != 1 || !strings.Contains(st.LastError, "400 Bad Request") {
		t.Errorf("stats %+v", st)
	}

	rec2, srv2 := newRecorder(t)
	rec2.block = make(chan struct{})
	defer close(rec2.block)
	w2, err := NewWebhook(srv2.URL, WithTimeout(50*time.Millisecond), WithRetries(1), WithBackoff(time.Millisecond, time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	w2.Send(context.Background(), sample()[:1])
	closeSink(t, w2)
	if st := w2.Stats(); st.Failed != 1 || st.Retries != 1 || len(rec2.requests()) != 2 || !strings.Contains(st.LastError, "deadline exceeded") {
		t.Errorf("timeout: stats %+v, %d requests", st, len(rec2.requests()))
	}
}

// TestWebhookQueueDropsOldest: while the receiver hangs, a full queue
// drops its oldest events and counts them.
func TestWebhookQueueDropsOldest(t *testing.T) {
	rec, srv := newRecorder(t)
	rec.block = make(chan struct{})
	w, err := NewWebhook(srv.URL, WithQueueSize(3), WithBatchSize(1))
	if err != nil {
		t.Fatal(err)
	}
	ev := func(i int) []Alert {
		l := map[string]string{"alertname": "a", "n": string(rune('0' + i))}
		return []Alert{{Status: StatusFiring, Labels: l, StartsAt: t0, Fingerprint: Fingerprint(l)}}
	}
	w.Send(context.Background(), ev(1))
	rec.wait(t, 1) // 1 is in flight
	for i := 2; i <= 6; i++ {
		w.Send(context.Background(), ev(i))
	}
	if st := w.Stats(); st.Dropped != 2 || st.Queued != 3 {
		t.Errorf("stats %+v, want 2 dropped (2 and 3), 3 queued", st)
	}
	close(rec.block)
	closeSink(t, w)
	var order []string
	for _, b := range rec.requests() {
		var p webhookPayload
		if err := json.Unmarshal([]byte(b), &p); err != nil {
			t.Fatal(err)
		}
		order = append(order, p.Alerts[0].Labels["n"])
	}
	if got := strings.Join(order, ","); got != "1,4,5,6" {
		t.Errorf("delivered %s, want 1,4,5,6", got)
	}
	if st := w.Stats(); st.Sent != 4 || st.Dropped != 2 {
		t.Errorf("stats %+v", st)
	}
}

// TestCloseGivesUp: Close with a deadline against a dead receiver returns
// an error instead of hanging.
func TestCloseGivesUp(t *testing.T) {
	rec, srv := newRecorder(t, 500, 500, 500, 500, 500)
	w, err := NewWebhook(srv.URL, WithBackoff(time.Hour, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	w.Send(context.Background(), sample())
	rec.wait(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := w.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close: %v", err)
	}
	if st := w.Stats(); st.Failed != 2 {
		t.Errorf("stats %+v", st)
	}
}

// TestAlertmanagerJSON: POST /api/v2/alerts with Alertmanager's postable
// alerts; a firing alert's endsAt is 4 resend intervals ahead, and it is
// re-sent until resolved; a resolved alert carries its endsAt, once.
func TestAlertmanagerJSON(t *testing.T) {
	rec, srv := newRecorder(t)
	am, err := NewAlertmanager(srv.URL+"/am/", WithResendInterval(30*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	now := t0.Add(5 * time.Second)
	am.d.now = func() time.Time { return now }
	s := sample()
	am.Send(context.Background(), s)
	rec.wait(t, 1)
	want := `[{"labels":{"alertname":"surge","direction":"total","interface":"eth0","kind":"surge","severity":"warning"},` +
		`"annotations":{"description":"eth0: 6.6 MiB/s","summary":"eth0 surged"},"startsAt":"2026-11-23T12:00:00Z",` +
		`"endsAt":"2026-11-23T12:00:05.12Z","generatorURL":"http://host1:9100/"},` +
		`{"labels":{"alertname":"surge","direction":"total","kind":"surge","program":"curl","severity":"warning"},` +
		`"annotations":{"description":"curl: 3 MiB/s","summary":"curl surged"},"startsAt":"2026-11-23T11:00:00Z",` +
		`"endsAt":"2026-11-23T11:59:00Z"}]`
	if got := rec.requests()[0]; got != want {
		t.Fatalf("body:\n%s\nwant:\n%s", got, want)
	}
	if p, ct := rec.meta(0); p != "POST /am/api/v2/alerts" || ct != "application/json" {
		t.Errorf("%s %s", p, ct)
	}
	rec.wait(t, 2) // two re-sends of the firing alert alone
	for _, b := range rec.requests()[1:3] {
		if !strings.HasPrefix(b, `[{"labels":{"alertname":"surge","direction":"total","interface":"eth0"`) || strings.Count(b, `"labels"`) != 1 {
			t.Errorf("re-send %s", b)
		}
	}
	res := s[0]
	res.Status, res.EndsAt = StatusResolved, t0.Add(time.Minute)
	am.Send(context.Background(), []Alert{res})
	time.Sleep(150 * time.Millisecond) // re-sends would happen here
	closeSink(t, am)
	// Re-sends queued before the resolution may still arrive, but nothing
	// after it: a firing re-send would revive the alert in Alertmanager.
	bodies := rec.requests()
	resolvedAt := -1
	for i, b := range bodies[3:] {
		var got []postableAlert
		if err := json.Unmarshal([]byte(b), &got); err != nil {
			t.Fatal(err)
		}
		switch {
		case len(got) == 1 && got[0].EndsAt.Equal(t0.Add(time.Minute)) && resolvedAt < 0:
			resolvedAt = i
		case len(got) == 1 && got[0].EndsAt.Equal(now.Add(120*time.Millisecond)) && resolvedAt < 0:
		default:
			t.Errorf("request %d after the resolution (at %d): %s", i, resolvedAt, b)
		}
	}
	if resolvedAt < 0 {
		t.Error("the resolution was not sent")
	}
	if st := am.Stats(); st.Failed != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestLogSink: warn for firing, info for resolved, labels as a group.
func TestLogSink(t *testing.T) {
	var buf bytes.Buffer
	s := NewLogSink(slog.New(slog.NewJSONHandler(&buf, nil)))
	if err := s.Send(context.Background(), sample()); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%q", buf.String())
	}
	var first, second map[string]any
	json.Unmarshal([]byte(lines[0]), &first)
	json.Unmarshal([]byte(lines[1]), &second)
	if first["level"] != "WARN" || first["msg"] != "eth0 surged" || first["status"] != "firing" ||
		first["labels"].(map[string]any)["interface"] != "eth0" || first["description"] != "eth0: 6.6 MiB/s" {
		t.Errorf("%s", lines[0])
	}
	if second["level"] != "INFO" || second["status"] != "resolved" || second["ends_at"] != "2026-11-23T11:59:00Z" {
		t.Errorf("%s", lines[1])
	}
}

// TestSinkOptions: invalid options are refused by the constructors.
func TestSinkOptions(t *testing.T) {
	for _, c := range []struct {
		url  string
		opts []DeliveryOption
		want string
	}{
		{"ftp://x", nil, "want http:// or https://"},
		{"http://x", []DeliveryOption{WithTimeout(0)}, "timeout 0s"},
		{"http://x", []DeliveryOption{WithQueueSize(0), WithRetries(-1)}, "queue size 0"},
		{"http://x", []DeliveryOption{WithBackoff(time.Second, time.Millisecond)}, "backoff"},
	} {
		if _, err := NewWebhook(c.url, c.opts...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %d options: %v, want %q", c.url, len(c.opts), err, c.want)
		}
	}
	if _, err := NewAlertmanager("http://x", WithResendInterval(-time.Second)); err == nil {
		t.Error("negative resend accepted")
	}
}

// TestEvaluatorToSinks: the evaluator's events go through Fanout to a log
// sink and a webhook unchanged.
func TestEvaluatorToSinks(t *testing.T) {
	rec, srv := newRecorder(t)
	wh, err := NewWebhook(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	sink := Fanout(NewLogSink(slog.New(slog.NewTextHandler(&buf, nil))), wh)
	w := newWorld(t, time.Second, Rule{Name: "errs", Kind: KindInterfaceErrors, Window: 10 * time.Second})
	for i := range 30 {
		var e uint64
		if i == 3 {
			e = 1
		}
		if ev := w.tick(snapOf(time.Second, ifc{name: "eth0", rx: 1000, errs: e})); len(ev) > 0 {
			sink.Send(context.Background(), ev)
		}
	}
	closeSink(t, wh)
	var statuses []string
	for _, b := range rec.requests() {
		var p webhookPayload
		if err := json.Unmarshal([]byte(b), &p); err != nil {
			t.Fatal(err)
		}
		for _, a := range p.Alerts {
			statuses = append(statuses, string(a.Status))
		}
	}
	if strings.Join(statuses, ",") != "firing,resolved" || strings.Count(buf.String(), "alertname=errs") != 2 {
		t.Errorf("webhook got %v, log:\n%s", statuses, buf.String())
	}
}
