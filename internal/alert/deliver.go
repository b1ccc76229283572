package alert

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Defaults of the webhook and Alertmanager sinks.
const (
	DefaultTimeout        = 10 * time.Second
	DefaultRetries        = 3
	DefaultBackoff        = time.Second
	DefaultMaxBackoff     = 30 * time.Second
	DefaultQueueSize      = 1024
	DefaultBatchSize      = 64
	DefaultResendInterval = time.Minute
)

// DeliveryOption configures a [Webhook] or [Alertmanager] sink.
type DeliveryOption func(*deliveryConfig)

type deliveryConfig struct {
	timeout, backoff, maxBackoff, resend time.Duration
	retries, queue, batch                int
	client                               *http.Client
	header                               http.Header
	errs                                 []error
}

// WithTimeout bounds each HTTP request (default 10s).
func WithTimeout(d time.Duration) DeliveryOption {
	return func(c *deliveryConfig) {
		if d <= 0 {
			c.errs = append(c.errs, fmt.Errorf("timeout %s: want more than 0", d))
		}
		c.timeout = d
	}
}

// WithRetries sets how often a failed request is repeated (default 3) when
// the receiver could not be reached or answered 408, 429 or 5xx. Any other
// answer is final: the same body would be refused again.
func WithRetries(n int) DeliveryOption {
	return func(c *deliveryConfig) {
		if n < 0 {
			c.errs = append(c.errs, fmt.Errorf("retries %d: want 0 or more", n))
		}
		c.retries = n
	}
}

// WithBackoff sets the wait before the first retry (default 1s); each
// next wait doubles, up to max (default 30s).
func WithBackoff(first, max time.Duration) DeliveryOption {
	return func(c *deliveryConfig) {
		if first <= 0 || max < first {
			c.errs = append(c.errs, fmt.Errorf("backoff %s up to %s: want 0 < first <= max", first, max))
		}
		c.backoff, c.maxBackoff = first, max
	}
}

// WithQueueSize bounds the events waiting for delivery (default 1024).
// When it is full the oldest event is dropped and counted in
// [DeliveryStats.Dropped].
func WithQueueSize(n int) DeliveryOption {
	return func(c *deliveryConfig) {
		if n <= 0 {
			c.errs = append(c.errs, fmt.Errorf("queue size %d: want more than 0", n))
		}
		c.queue = n
	}
}

// WithBatchSize bounds the events per request (default 64).
func WithBatchSize(n int) DeliveryOption {
	return func(c *deliveryConfig) {
		if n <= 0 {
			c.errs = append(c.errs, fmt.Errorf("batch size %d: want more than 0", n))
		}
		c.batch = n
	}
}

// WithHTTPClient sets the client (default: a new http.Client; the request
// timeout applies either way).
func WithHTTPClient(h *http.Client) DeliveryOption {
	return func(c *deliveryConfig) { c.client = h }
}

// WithHeader adds a request header, e.g. Authorization.
func WithHeader(key, value string) DeliveryOption {
	return func(c *deliveryConfig) { c.header.Add(key, value) }
}

// WithResendInterval sets how often the Alertmanager sink re-sends the
// firing alerts (default 1m), as Prometheus does: Alertmanager resolves an
// alert by itself when its endsAt passes, and each send sets endsAt to 4
// intervals ahead. The webhook sink ignores it.
func WithResendInterval(d time.Duration) DeliveryOption {
	return func(c *deliveryConfig) {
		if d <= 0 {
			c.errs = append(c.errs, fmt.Errorf("resend interval %s: want more than 0", d))
		}
		c.resend = d
	}
}

// DeliveryStats counts a remote sink's events.
type DeliveryStats struct {
	// Sent counts events accepted by the receiver (for Alertmanager,
	// re-sends of firing alerts included).
	Sent uint64 `json:"sent"`
	// Failed counts events given up: refused by the receiver, or still
	// failing after the retries.
	Failed uint64 `json:"failed"`
	// Dropped counts events pushed out of the full queue, oldest first.
	Dropped uint64 `json:"dropped"`
	// Retries counts repeated requests.
	Retries   uint64 `json:"retries"`
	Queued    int    `json:"queued"`
	LastError string `json:"last_error,omitempty"`
}

// deliverer is the queue, the worker and the HTTP posting shared by the
// webhook and Alertmanager sinks.
type deliverer struct {
	name string
	url  string
	cfg  deliveryConfig
	body func(batch []Alert, now time.Time, resend time.Duration) ([]byte, error)
	now  func() time.Time

	mu     sync.Mutex
	buf    []Alert // ring of cfg.queue
	head   int
	n      int
	closed bool
	st     DeliveryStats

	wake     chan struct{}
	draining chan struct{} // closed by close: the worker ends once the queue is empty
	ctx      context.Context
	cancel   context.CancelFunc // hard stop: aborts a request or a backoff
	done     chan struct{}
}

func newDeliverer(name, url string, body func([]Alert, time.Time, time.Duration) ([]byte, error), opts []DeliveryOption) (*deliverer, error) {
	cfg := deliveryConfig{
		timeout: DefaultTimeout, retries: DefaultRetries, backoff: DefaultBackoff, maxBackoff: DefaultMaxBackoff,
		queue: DefaultQueueSize, batch: DefaultBatchSize, resend: DefaultResendInterval, header: http.Header{},
	}
	for _, o := range opts {
		o(&cfg)
	}
	if len(cfg.errs) > 0 {
		return nil, fmt.Errorf("%s sink: %w", name, errors.Join(cfg.errs...))
	}
	if cfg.client == nil {
		cfg.client = &http.Client{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &deliverer{
		name: name, url: url, cfg: cfg, body: body, now: time.Now, buf: make([]Alert, cfg.queue),
		wake: make(chan struct{}, 1), draining: make(chan struct{}), ctx: ctx, cancel: cancel, done: make(chan struct{}),
	}
	go d.run()
	return d, nil
}

// send queues events, dropping the oldest when the queue is full.
func (d *deliverer) send(alerts []Alert) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return fmt.Errorf("%s: %w", d.name, ErrClosed)
	}
	for _, a := range alerts {
		if d.n == len(d.buf) {
			d.buf[d.head] = Alert{}
			d.head = (d.head + 1) % len(d.buf)
			d.n--
			d.st.Dropped++
		}
		d.buf[(d.head+d.n)%len(d.buf)] = a.clone()
		d.n++
	}
	select {
	case d.wake <- struct{}{}:
	default:
	}
	return nil
}

func (d *deliverer) take() []Alert {
	d.mu.Lock()
	defer d.mu.Unlock()
	k := min(d.n, d.cfg.batch)
	out := make([]Alert, k)
	for i := range k {
		out[i] = d.buf[d.head]
		d.buf[d.head] = Alert{}
		d.head = (d.head + 1) % len(d.buf)
	}
	d.n -= k
	return out
}

func (d *deliverer) queued() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.n
}

func (d *deliverer) stats() DeliveryStats {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.st
	s.Queued = d.n
	return s
}

func (d *deliverer) run() {
	defer close(d.done)
	for {
		batch := d.take()
		if len(batch) == 0 {
			select {
			case <-d.wake:
			case <-d.draining:
				if d.queued() == 0 {
					return
				}
			case <-d.ctx.Done():
				return
			}
			continue
		}
		d.deliver(batch)
		if d.ctx.Err() != nil {
			d.mu.Lock()
			d.st.Failed += uint64(d.n)
			d.mu.Unlock()
			return
		}
	}
}

// deliver posts one batch, retrying with exponential backoff.
func (d *deliverer) deliver(batch []Alert) {
	wait := d.cfg.backoff
	for attempt := 0; ; attempt++ {
		retry, err := d.post(batch)
		d.mu.Lock()
		if err == nil {
			d.st.Sent += uint64(len(batch))
			d.mu.Unlock()
			return
		}
		d.st.LastError = err.Error()
		if !retry || attempt >= d.cfg.retries || d.ctx.Err() != nil {
			d.st.Failed += uint64(len(batch))
			d.mu.Unlock()
			return
		}
		d.st.Retries++
		d.mu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-d.ctx.Done():
			t.Stop()
		}
		wait = min(2*wait, d.cfg.maxBackoff)
	}
}

// post sends one request; retry says whether the failure may pass.
func (d *deliverer) post(batch []Alert) (retry bool, err error) {
	body, err := d.body(batch, d.now(), d.cfg.resend)
	if err != nil {
		return false, fmt.Errorf("%s: encode: %w", d.name, err)
	}
	ctx, cancel := context.WithTimeout(d.ctx, d.cfg.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.url, bytes.NewReader(body))
	if err != nil {
		return false, fmt.Errorf("%s: %w", d.name, err)
	}
	req.Header = d.cfg.header.Clone()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "netmeter")
	resp, err := d.cfg.client.Do(req)
	if err != nil {
		return true, fmt.Errorf("%s: POST %s: %w", d.name, d.url, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // let the connection be reused
	if resp.StatusCode/100 == 2 {
		return false, nil
	}
	err = fmt.Errorf("%s: POST %s: %s: %s", d.name, d.url, resp.Status, strings.TrimSpace(string(msg)))
	return resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout, err
}

// close stops accepting events, delivers what is queued until ctx ends,
// then aborts.
func (d *deliverer) close(ctx context.Context) error {
	d.mu.Lock()
	if !d.closed {
		d.closed = true
		close(d.draining)
	}
	d.mu.Unlock()
	defer d.cancel()
	select {
	case <-d.done:
		return nil
	case <-ctx.Done():
		left := d.queued()
		d.cancel()
		<-d.done
		return fmt.Errorf("%s: close: gave up with %d events queued and one batch at most in flight: %w", d.name, left, ctx.Err())
	}
}
