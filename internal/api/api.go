// Package api is the agent's HTTP sink: /metrics for Prometheus, /healthz
// and /readyz for probes, and a JSON API under /api/v1/ (the one the web
// dashboard uses, documented in docs/API.md) over the latest snapshot, the
// health analyzer and the history store.
//
// Secure by default: Listen refuses a non-loopback address unless TLS or a
// bearer token is configured, and every endpoint except the probes and the
// dashboard's static files then requires the token.
package api

import (
	"cmp"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/netmeter/netmeter/internal/aggregate"
	"github.com/netmeter/netmeter/internal/health"
	"github.com/netmeter/netmeter/internal/history"
	"github.com/netmeter/netmeter/internal/quota"
	"github.com/netmeter/netmeter/internal/snapshot"
)

// Options configure a Server.
type Options struct {
	// Listen is host:port (default 127.0.0.1:9797).
	Listen string
	// TLSCert and TLSKey, both set, serve HTTPS.
	TLSCert, TLSKey string
	// Token, when set, is required as "Authorization: Bearer <token>" on
	// everything but /healthz and /readyz.
	Token string
	// Metrics serves /metrics (e.g. promhttp.HandlerFor); nil: 404.
	Metrics http.Handler
	// Analyzer and History, when set, back the flows/health/topology and
	// history endpoints.
	Analyzer *health.Analyzer
	History  *history.Store
	// Quotas, when set, backs /api/v1/quotas: every configured quota's
	// state at a time (what 'netmeter quota check --json' prints).
	Quotas func(now time.Time) ([]quota.Result, error)
	// Ledger, when set, backs /api/v1/ledger: container traffic per billing
	// account and billing period.
	Ledger *aggregate.Ledger
	// UI, when set, is served at / (the embedded web dashboard).
	UI http.Handler
	// Stale: /healthz fails when no snapshot arrived for this long
	// (default 3 × the snapshot interval, at least 10 s).
	Stale time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// DefaultListen is the agent's default address: loopback only.
const DefaultListen = "127.0.0.1:9797"

// Server holds the latest snapshot and serves it.
type Server struct {
	opt  Options
	mu   sync.RWMutex
	last *snapshot.Snapshot
	subs map[chan []byte]struct{}
	srv  *http.Server
	ln   net.Listener
}

// MaxSubscribers bounds concurrent /api/v1/events streams.
const MaxSubscribers = 64

// ErrInsecure is returned for a non-loopback listen address without TLS or
// a token.
var ErrInsecure = errors.New("refusing to serve on a non-loopback address without TLS (--tls-cert/--tls-key) or a bearer token (--auth-token-file)")

// New checks the options and returns a Server; Serve starts it.
func New(opt Options) (*Server, error) {
	if opt.Listen == "" {
		opt.Listen = DefaultListen
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if (opt.TLSCert == "") != (opt.TLSKey == "") {
		return nil, errors.New("TLS needs both a certificate and a key")
	}
	host, _, err := net.SplitHostPort(opt.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen address %q: %w", opt.Listen, err)
	}
	if !loopback(host) && opt.TLSCert == "" && opt.Token == "" {
		return nil, fmt.Errorf("listen %s: %w", opt.Listen, ErrInsecure)
	}
	return &Server{opt: opt}, nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// With returns s with the analyzer and the history store set (either may
// be nil); call it before Listen.
func (s *Server) With(an *health.Analyzer, st *history.Store) *Server {
	s.opt.Analyzer, s.opt.History = an, st
	return s
}

// WithBilling adds the quota and billing-ledger endpoints' sources (either
// may be nil); call it before Listen.
func (s *Server) WithBilling(quotas func(time.Time) ([]quota.Result, error), l *aggregate.Ledger) *Server {
	s.opt.Quotas, s.opt.Ledger = quotas, l
	return s
}

// SetMetrics replaces the /metrics handler; call it before Listen.
func (s *Server) SetMetrics(h http.Handler) { s.opt.Metrics = h }

// Update publishes a snapshot (called once per interval by the agent).
func (s *Server) Update(snap *snapshot.Snapshot) {
	c := *snap
	s.mu.Lock()
	s.last = &c
	var msg []byte
	if len(s.subs) > 0 {
		msg, _ = json.Marshal(&c)
	}
	for ch := range s.subs {
		select {
		case ch <- msg:
		default: // a slow reader misses this one; the next carries the state
		}
	}
	s.mu.Unlock()
}

// Listen binds the address; a port in use is an error here, before the
// agent starts collecting.
func (s *Server) Listen() (net.Addr, error) {
	ln, err := net.Listen("tcp", s.opt.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", s.opt.Listen, err)
	}
	s.ln = ln
	s.srv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute}
	return ln.Addr(), nil
}

// Serve serves until ctx ends, then shuts down gracefully.
func (s *Server) Serve(ctx context.Context) error {
	if s.ln == nil {
		if _, err := s.Listen(); err != nil {
			return err
		}
	}
	errc := make(chan error, 1)
	go func() {
		if s.opt.TLSCert != "" {
			errc <- s.srv.ServeTLS(s.ln, s.opt.TLSCert, s.opt.TLSKey)
		} else {
			errc <- s.srv.Serve(s.ln)
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return s.srv.Shutdown(sctx)
	}
}

// Handler is the mux with authentication applied.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.healthz)
	if s.opt.Metrics != nil {
		mux.Handle("GET /metrics", s.auth(s.opt.Metrics))
	}
	mux.Handle("GET /api/v1/snapshot", s.auth(http.HandlerFunc(s.snapshot)))
	mux.Handle("GET /api/v1/events", s.auth(http.HandlerFunc(s.events)))
	if s.opt.UI != nil {
		// The dashboard's static files hold no data: served without the
		// token, so a browser can load the page that then asks for it.
		mux.Handle("GET /", s.opt.UI)
	}
	mux.Handle("GET /api/v1/flows", s.auth(http.HandlerFunc(s.flows)))
	mux.Handle("GET /api/v1/health", s.auth(http.HandlerFunc(s.health)))
	mux.Handle("GET /api/v1/topology", s.auth(http.HandlerFunc(s.topology)))
	mux.Handle("GET /api/v1/monitors", s.auth(http.HandlerFunc(s.monitors)))
	mux.Handle("GET /api/v1/history", s.auth(http.HandlerFunc(s.history)))
	mux.Handle("GET /api/v1/entities", s.auth(http.HandlerFunc(s.entities)))
	mux.Handle("GET /api/v1/quotas", s.auth(http.HandlerFunc(s.quotas)))
	mux.Handle("GET /api/v1/ledger", s.auth(http.HandlerFunc(s.ledger)))
	return mux
}

func (s *Server) auth(h http.Handler) http.Handler {
	if s.opt.Token == "" {
		return h
	}
	want := []byte("Bearer " + s.opt.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="netmeter"`)
			httpError(w, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		}
		h.ServeHTTP(w, r)
	})
}

func httpError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(v)
}

func (s *Server) latest() *snapshot.Snapshot {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.last
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	last := s.latest()
	if last == nil {
		httpError(w, http.StatusServiceUnavailable, "no reading yet")
		return
	}
	stale := s.opt.Stale
	if stale <= 0 {
		stale = max(10*time.Second, 3*last.Interval)
	}
	if age := s.opt.Now().Sub(last.Time); age > stale {
		httpError(w, http.StatusServiceUnavailable, fmt.Sprintf("last reading %s ago", age.Round(time.Second)))
		return
	}
	writeJSON(w, map[string]any{"status": "ok", "time": last.Time})
}

func (s *Server) snapshot(w http.ResponseWriter, _ *http.Request) {
	last := s.latest()
	if last == nil {
		httpError(w, http.StatusServiceUnavailable, "no reading yet")
		return
	}
	writeJSON(w, last)
}

func duration(r *http.Request, key string, def time.Duration) (time.Duration, error) {
	v := r.URL.Query().Get(key)
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s=%q: want a positive duration like 10s", key, v)
	}
	return d, nil
}

func (s *Server) analyzer(w http.ResponseWriter) *health.Analyzer {
	if s.opt.Analyzer == nil {
		httpError(w, http.StatusServiceUnavailable, "flows and health need the eBPF engine, which is not running")
	}
	return s.opt.Analyzer
}

func (s *Server) flows(w http.ResponseWriter, r *http.Request) {
	an := s.analyzer(w)
	if an == nil {
		return
	}
	win, err := duration(r, "window", 10*time.Second)
	if err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	by := r.URL.Query().Get("by")
	if by == "" {
		by = "bytes"
	}
	limit := 50
	if v := r.URL.Query().Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 0 {
			httpError(w, http.StatusBadRequest, fmt.Sprintf("limit=%q: want a number ≥ 0", v))
			return
		}
	}
	fl, err := an.TopFlows(win, by, limit)
	if err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, map[string]any{"window_ms": win.Milliseconds(), "by": by, "flows": fl})
}

func (s *Server) health(w http.ResponseWriter, _ *http.Request) {
	if an := s.analyzer(w); an != nil {
		writeJSON(w, an.Health())
	}
}

func (s *Server) monitors(w http.ResponseWriter, _ *http.Request) {
	if an := s.analyzer(w); an != nil {
		writeJSON(w, an.Monitors())
	}
}

func (s *Server) topology(w http.ResponseWriter, r *http.Request) {
	an := s.analyzer(w)
	if an == nil {
		return
	}
	win, err := duration(r, "window", 10*time.Second)
	if err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, an.Topology(win))
}

func (s *Server) entities(w http.ResponseWriter, r *http.Request) {
	if s.opt.History == nil {
		httpError(w, http.StatusServiceUnavailable, "no history store")
		return
	}
	es, err := s.opt.History.Entities(history.Kind(r.URL.Query().Get("kind")))
	if err != nil {
		httpError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if es == nil {
		es = []history.Entity{}
	}
	writeJSON(w, es)
}

// quotas answers every configured quota's state now: {"time", "quotas"},
// the same document as 'netmeter quota check --json'.
func (s *Server) quotas(w http.ResponseWriter, _ *http.Request) {
	now := s.opt.Now()
	var rs []quota.Result
	if s.opt.Quotas != nil {
		var err error
		if rs, err = s.opt.Quotas(now); err != nil {
			httpError(w, http.StatusInternalServerError, err.Error())
			return
		}
	}
	if rs == nil {
		rs = []quota.Result{} // none configured: an empty list, not an error
	}
	writeJSON(w, map[string]any{"time": now, "quotas": rs})
}

// ledger answers ?period=2006-01 (default: the current billing period):
// {"period", "billing_day", "periods", "entries"}, entries by account.
func (s *Server) ledger(w http.ResponseWriter, r *http.Request) {
	l := s.opt.Ledger
	if l == nil {
		httpError(w, http.StatusServiceUnavailable, "no billing ledger: the agent runs without the engine")
		return
	}
	period := r.URL.Query().Get("period")
	if period == "" {
		period = l.Period(s.opt.Now())
	} else if _, err := time.Parse("2006-01", period); err != nil {
		httpError(w, http.StatusBadRequest, fmt.Sprintf("period=%q: want YYYY-MM", period))
		return
	}
	seen := map[string]bool{period: true}
	periods := []string{period}
	var entries []aggregate.Entry
	for _, e := range l.Entries("") {
		if !seen[e.Period] {
			seen[e.Period] = true
			periods = append(periods, e.Period)
		}
		if e.Period == period {
			entries = append(entries, e)
		}
	}
	slices.Sort(periods)
	slices.SortFunc(entries, func(a, b aggregate.Entry) int {
		return cmp.Compare(b.Total.TxBytes+b.Total.RxBytes, a.Total.TxBytes+a.Total.RxBytes)
	})
	if entries == nil {
		entries = []aggregate.Entry{}
	}
	writeJSON(w, map[string]any{"period": period, "billing_day": l.BillingDay, "periods": periods, "entries": entries})
}

// history answers ?entity=interface:eth0+eth1&resolution=day&begin=RFC3339&end=RFC3339.
func (s *Server) history(w http.ResponseWriter, r *http.Request) {
	if s.opt.History == nil {
		httpError(w, http.StatusServiceUnavailable, "no history store")
		return
	}
	q := r.URL.Query()
	kind, names, ok := strings.Cut(q.Get("entity"), ":")
	if !ok || names == "" {
		httpError(w, http.StatusBadRequest, "entity=kind:name[+name…] is required, e.g. interface:eth0")
		return
	}
	res, err := history.ParseResolution(q.Get("resolution"))
	if err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	var hq history.Query
	hq.Resolution = res
	for _, n := range strings.Split(names, "+") {
		hq.Entities = append(hq.Entities, history.Entity{Kind: history.Kind(kind), Name: n})
	}
	for key, dst := range map[string]*time.Time{"begin": &hq.Begin, "end": &hq.End} {
		if v := q.Get(key); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				httpError(w, http.StatusBadRequest, fmt.Sprintf("%s=%q: want RFC 3339", key, v))
				return
			}
			*dst = t
		}
	}
	rows, err := s.opt.History.Query(hq)
	if err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	gaps, err := s.opt.History.Gaps(hq.Begin, hq.End)
	if err != nil {
		httpError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if rows == nil {
		rows = []history.Row{}
	}
	if gaps == nil {
		gaps = []history.Gap{}
	}
	writeJSON(w, map[string]any{"entity": q.Get("entity"), "resolution": res, "rows": rows, "gaps": gaps})
}

// events streams every snapshot as a Server-Sent Event ("event: snapshot"),
// starting with the latest, until the client goes away.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		httpError(w, http.StatusInternalServerError, "streaming unsupported")
		return
	}
	ch := make(chan []byte, 1)
	s.mu.Lock()
	if s.subs == nil {
		s.subs = map[chan []byte]struct{}{}
	}
	if len(s.subs) >= MaxSubscribers {
		s.mu.Unlock()
		httpError(w, http.StatusServiceUnavailable, "too many event streams")
		return
	}
	s.subs[ch] = struct{}{}
	last := s.last
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.subs, ch)
		s.mu.Unlock()
	}()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	send := func(b []byte) bool {
		if _, err := fmt.Fprintf(w, "event: snapshot\ndata: %s\n\n", b); err != nil {
			return false
		}
		fl.Flush()
		return true
	}
	if last != nil {
		b, _ := json.Marshal(last)
		if !send(b) {
			return
		}
	}
	keep := time.NewTicker(15 * time.Second)
	defer keep.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case b := <-ch:
			if !send(b) {
				return
			}
		case <-keep.C:
			if _, err := io.WriteString(w, ": keep-alive\n\n"); err != nil {
				return
			}
			fl.Flush()
		}
	}
}
