package alert

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"sync"
	"time"
)

// Webhook POSTs events as JSON to a URL, in batches, from a bounded queue,
// with a timeout per request and retries with exponential backoff.
//
// The body is Alertmanager's webhook payload (version 4), so a receiver
// written for Alertmanager's webhook_configs reads it unchanged:
//
//	{"version":"4","groupKey":"netmeter","truncatedAlerts":0,"status":"firing",
//	 "receiver":"netmeter","groupLabels":{},"commonLabels":{…},"commonAnnotations":{…},
//	 "externalURL":"","alerts":[{"status":"firing","labels":{…},"annotations":{…},
//	 "startsAt":"…","endsAt":"0001-01-01T00:00:00Z","generatorURL":"…","fingerprint":"…"}]}
//
// status is "firing" when any alert of the batch fires; commonLabels and
// commonAnnotations are those all alerts of the batch share.
type Webhook struct{ d *deliverer }

// NewWebhook starts a sink that posts to u (http or https).
func NewWebhook(u string, opts ...DeliveryOption) (*Webhook, error) {
	if err := checkURL("webhook", u); err != nil {
		return nil, err
	}
	d, err := newDeliverer("webhook", u, webhookBody, opts)
	if err != nil {
		return nil, err
	}
	return &Webhook{d: d}, nil
}

// Send queues the events; it never blocks on the network.
func (w *Webhook) Send(_ context.Context, alerts []Alert) error { return w.d.send(alerts) }

// Stats returns the delivery counters.
func (w *Webhook) Stats() DeliveryStats { return w.d.stats() }

// Close stops accepting events and delivers the queued ones until ctx
// ends; then it aborts and says how many were left.
func (w *Webhook) Close(ctx context.Context) error { return w.d.close(ctx) }

type webhookPayload struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	Status            Status            `json:"status"`
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []Alert           `json:"alerts"`
}

func webhookBody(batch []Alert, _ time.Time, _ time.Duration) ([]byte, error) {
	p := webhookPayload{
		Version: "4", GroupKey: "netmeter", Status: StatusResolved, Receiver: "netmeter",
		GroupLabels: map[string]string{}, Alerts: batch,
	}
	for i, a := range batch {
		if a.Status == StatusFiring {
			p.Status = StatusFiring
		}
		if i == 0 {
			p.CommonLabels, p.CommonAnnotations = maps.Clone(a.Labels), maps.Clone(a.Annotations)
			continue
		}
		common(p.CommonLabels, a.Labels)
		common(p.CommonAnnotations, a.Annotations)
	}
	return json.Marshal(p)
}

// common keeps in c the entries m has with the same value.
func common(c, m map[string]string) {
	for k, v := range c {
		if mv, ok := m[k]; !ok || mv != v {
			delete(c, k)
		}
	}
}

// Alertmanager POSTs events to an Alertmanager's API v2 (/api/v2/alerts)
// and, like Prometheus, re-sends the firing alerts every resend interval
// (default 1m) with endsAt 4 intervals ahead, so Alertmanager keeps them
// active while netmeter runs and resolves them by itself if netmeter stops.
// A resolved alert is sent once with its endsAt, the time of the interval
// that resolved it; Alertmanager takes it as resolved only once that time
// has passed (until then it keeps the later endsAt it already has), so the
// host's clock must not run ahead of Alertmanager's. The body is
// Alertmanager's postable alerts:
//
//	[{"labels":{…},"annotations":{…},"startsAt":"…","endsAt":"…","generatorURL":"…"}]
type Alertmanager struct {
	d *deliverer

	mu      sync.Mutex
	active  map[string]Alert // firing, by fingerprint
	refused uint64
	stop    chan struct{}
	stopped chan struct{}
	once    sync.Once
}

// MaxActive bounds the firing alerts the Alertmanager sink keeps for
// re-sending; more are sent once and counted in [Alertmanager.Untracked].
const MaxActive = 10000

// NewAlertmanager starts a sink for the Alertmanager at base, e.g.
// http://127.0.0.1:9093 (a path prefix, as with --web.route-prefix, is
// kept: http://host/am → http://host/am/api/v2/alerts).
func NewAlertmanager(base string, opts ...DeliveryOption) (*Alertmanager, error) {
	if err := checkURL("alertmanager", base); err != nil {
		return nil, err
	}
	u, err := url.JoinPath(base, "api/v2/alerts")
	if err != nil {
		return nil, fmt.Errorf("alertmanager URL %q: %w", base, err)
	}
	a := &Alertmanager{active: map[string]Alert{}, stop: make(chan struct{}), stopped: make(chan struct{})}
	d, err := newDeliverer("alertmanager", u, alertmanagerBody, opts)
	if err != nil {
		return nil, err
	}
	a.d = d
	go a.resendLoop()
	return a, nil
}

// Send queues the events and tracks the firing ones for re-sending.
func (a *Alertmanager) Send(_ context.Context, alerts []Alert) error {
	// One lock over tracking and queueing, shared with the re-send: a
	// re-send of an alert can never be queued after its resolution (it
	// would make Alertmanager fire it again until its endsAt).
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, al := range alerts {
		switch {
		case al.Status == StatusResolved:
			delete(a.active, al.Fingerprint)
		case len(a.active) < MaxActive:
			a.active[al.Fingerprint] = al.clone()
		default:
			a.refused++
		}
	}
	return a.d.send(alerts)
}

// Stats returns the delivery counters.
func (a *Alertmanager) Stats() DeliveryStats { return a.d.stats() }

// Untracked counts firing alerts not re-sent because MaxActive were.
func (a *Alertmanager) Untracked() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.refused
}

// Close stops the re-sends and delivers the queued events until ctx ends.
// Alerts still firing then expire in Alertmanager at their endsAt.
func (a *Alertmanager) Close(ctx context.Context) error {
	a.once.Do(func() { close(a.stop) })
	<-a.stopped
	return a.d.close(ctx)
}

func (a *Alertmanager) resendLoop() {
	defer close(a.stopped)
	t := time.NewTicker(a.d.cfg.resend)
	defer t.Stop()
	for {
		select {
		case <-a.stop:
			return
		case <-t.C:
		}
		// A queue that is not empty is being delivered (or retried):
		// its next request refreshes nothing the next tick would not.
		if a.d.queued() > 0 {
			continue
		}
		a.mu.Lock()
		batch := make([]Alert, 0, len(a.active))
		for _, al := range a.active {
			batch = append(batch, al)
		}
		if len(batch) > 0 {
			_ = a.d.send(batch)
		}
		a.mu.Unlock()
	}
}

type postableAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

func alertmanagerBody(batch []Alert, now time.Time, resend time.Duration) ([]byte, error) {
	out := make([]postableAlert, len(batch))
	for i, a := range batch {
		end := a.EndsAt
		if a.Status == StatusFiring {
			end = now.UTC().Add(4 * resend)
		}
		out[i] = postableAlert{Labels: a.Labels, Annotations: a.Annotations, StartsAt: a.StartsAt, EndsAt: end, GeneratorURL: a.GeneratorURL}
	}
	return json.Marshal(out)
}

func checkURL(what, s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%s URL %q: want http:// or https:// with a host", what, s)
	}
	return nil
}
