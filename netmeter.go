package netmeter

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/netmeter/netmeter/internal/aggregate"
	"github.com/netmeter/netmeter/internal/health"
	"github.com/netmeter/netmeter/internal/pipeline"
	"github.com/netmeter/netmeter/internal/snapshot"
	"github.com/netmeter/netmeter/internal/source/engine"
)

// Snapshot is one interval's immutable view; see docs/TOP_JSON.md and
// docs/IFSTAT_JSON.md for every field.
type (
	Snapshot   = snapshot.Snapshot
	Interface  = snapshot.Interface
	Process    = snapshot.Process
	Connection = snapshot.Connection
	Container  = snapshot.Container
	Traffic    = snapshot.Traffic
	Rate       = snapshot.Rate
	// TCP health and drops (issue: TCP health and flows).
	TCPStats = snapshot.TCPStats
	Drop     = snapshot.Drop
	// Flows, monitors, the Network Health Indicator and topology.
	HealthConfig  = health.Config
	Flow          = health.Flow
	HealthReport  = health.Report
	HealthStatus  = health.Status
	HealthState   = health.State
	MonitorSeries = health.MonitorSeries
	Topology      = health.Topology
)

// Defaults of the options.
const (
	DefaultInterval  = time.Second
	DefaultQueueSize = 16
	// DefaultHistory is how far back ProcessRank can look.
	DefaultHistory = 10 * time.Minute
)

// ErrNotStarted is returned by Stop before Start.
var ErrNotStarted = errors.New("netmeter: monitor not started")

type config struct {
	interval       time.Duration
	devices        []string
	netns          string
	engine         string
	captureTimeout time.Duration
	queueSize      int
	history        time.Duration
	maxConnections int
	maxProcesses   int
	stateFile      string
	pinPath        string
	billingDay     int
	log            *slog.Logger
	analysis       health.Config
	noTCPHealth    bool
	noRTTSamples   bool
	pcapFilter     string // WithPcapFilter (capture.go)
	storePcap      string // WithStorePcap (capture.go)
}

// Option configures New.
type Option func(*config) error

// WithInterval sets how often counters are read (go-netflow's sync
// interval). Default 1 s; at least 10 ms.
func WithInterval(d time.Duration) Option {
	return func(c *config) error {
		if d < 10*time.Millisecond {
			return fmt.Errorf("netmeter: interval %v is below 10ms", d)
		}
		c.interval = d
		return nil
	}
}

// WithDevices keeps only these interfaces in snapshots (go-netflow's bind
// devices). Processes and connections are not filtered: sockets do not
// belong to one interface. Default: all.
func WithDevices(names ...string) Option {
	return func(c *config) error { c.devices = append([]string(nil), names...); return nil }
}

// WithNetns reads the interfaces of another network namespace (a path such
// as /run/netns/NAME). Default: the caller's.
func WithNetns(path string) Option {
	return func(c *config) error { c.netns = path; return nil }
}

// WithoutEngine reads interfaces only, with no eBPF (no privileges needed).
// By default Start fails if the engine cannot load, naming the missing
// capability or kernel feature.
func WithoutEngine() Option {
	return func(c *config) error { c.engine = "off"; return nil }
}

// WithEngine selects how processes and connections are measured: "auto"
// (eBPF when it loads, else the classic AF_PACKET + /proc method), "ebpf"
// (fail without it), "classic" (approximate, for hosts where eBPF cannot
// load) or "off" (interfaces only). Default "ebpf".
func WithEngine(kind string) Option {
	return func(c *config) error {
		switch kind {
		case "auto", "ebpf", "classic", "off":
			c.engine = kind
			return nil
		}
		return fmt.Errorf("netmeter: engine %q: want auto, ebpf, classic or off", kind)
	}
}

// WithCaptureTimeout stops the monitor by itself after d (go-netflow's
// capture timeout). Default 0: run until Stop or the context ends.
func WithCaptureTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return fmt.Errorf("netmeter: negative capture timeout %v", d)
		}
		c.captureTimeout = d
		return nil
	}
}

// WithQueueSize sets the buffer of each Subscribe channel (go-netflow's
// queue size). A subscriber that falls further behind misses snapshots; they
// are counted by Dropped. Default 16.
func WithQueueSize(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return fmt.Errorf("netmeter: queue size %d < 1", n)
		}
		c.queueSize = n
		return nil
	}
}

// WithHistory sets how far back ProcessRank can look. Default 10 minutes.
func WithHistory(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("netmeter: history %v must be positive", d)
		}
		c.history = d
		return nil
	}
}

// WithLimits bounds the connections and processes tracked (0 keeps the
// defaults of 65536 and 16384), so a port scan cannot exhaust memory.
func WithLimits(maxConnections, maxProcesses int) Option {
	return func(c *config) error {
		if maxConnections < 0 || maxProcesses < 0 {
			return fmt.Errorf("netmeter: negative limits")
		}
		c.maxConnections, c.maxProcesses = maxConnections, maxProcesses
		return nil
	}
}

// WithLedger keeps a billing ledger of container traffic per stable account
// in stateFile (saved every 10 s and at Stop), with periods starting on
// billingDay (1–28). With WithPinPath the ledger continues across restarts
// of the monitor without loss or double count.
func WithLedger(stateFile string, billingDay int) Option {
	return func(c *config) error {
		if stateFile == "" || billingDay < 1 || billingDay > 28 {
			return fmt.Errorf("netmeter: ledger needs a state file and a billing day in 1..28")
		}
		c.stateFile, c.billingDay = stateFile, billingDay
		return nil
	}
}

// WithPinPath pins the eBPF engine under dir on a BPF filesystem (e.g.
// /sys/fs/bpf/netmeter): the kernel keeps counting between two runs. Call
// Unpin to remove it for good.
func WithPinPath(dir string) Option {
	return func(c *config) error { c.pinPath = dir; return nil }
}

// Unpin removes an engine pinned with WithPinPath; its programs detach.
func Unpin(dir string) error { return engine.Unpin(dir) }

// WithHealth configures flows, monitors and the Network Health Indicator
// (remote groups, monitors, thresholds; see docs/HEALTH.md). Without it the
// defaults apply: remotes grouped by /24 and /64, no monitors.
func WithHealth(cfg HealthConfig) Option {
	return func(c *config) error {
		if err := cfg.Validate(); err != nil {
			return fmt.Errorf("netmeter: WithHealth: %w", err)
		}
		c.analysis = cfg
		return nil
	}
}

// WithoutTCPHealth leaves the TCP health hooks unloaded: no RTT,
// retransmissions or drop reasons (Flows and Health then see bytes only).
func WithoutTCPHealth() Option {
	return func(c *config) error { c.noTCPHealth = true; return nil }
}

// WithoutRTTSamples loads the TCP health hooks without the per-round-trip
// RTT callback: the smoothed RTT is still read from the kernel, but not the
// per-interval min/max/mean.
func WithoutRTTSamples() Option {
	return func(c *config) error { c.noRTTSamples = true; return nil }
}

// WithLogger sends the monitor's warnings (fallbacks, counter resets) to l.
// Default: discarded.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error { c.log = l; return nil }
}

// Monitor collects network usage. Create it with New.
type Monitor struct {
	cfg config

	mu      sync.Mutex
	started bool
	cancel  context.CancelFunc
	done    chan struct{}
	err     error
	latest  *Snapshot
	history []Snapshot // oldest first, bounded by cfg.history
	subs    map[chan Snapshot]struct{}
	dropped uint64
	ledger  *aggregate.Ledger
	an      *health.Analyzer
	pcap    *pcapRun // WithStorePcap (capture.go)
}

// New validates the options. It touches no kernel state; Start does.
func New(opts ...Option) (*Monitor, error) {
	c := config{interval: DefaultInterval, engine: "ebpf", queueSize: DefaultQueueSize, history: DefaultHistory}
	for _, o := range opts {
		if err := o(&c); err != nil {
			return nil, err
		}
	}
	return &Monitor{cfg: c, done: make(chan struct{}), subs: map[chan Snapshot]struct{}{}}, nil
}

// Start opens the sources and begins collecting in the background until
// Stop, ctx's end or the capture timeout. It returns the error that kept the
// sources from opening (missing privileges, no BTF, …).
func (m *Monitor) Start(ctx context.Context) error {
	m.mu.Lock()
	if m.started {
		m.mu.Unlock()
		return errors.New("netmeter: monitor already started")
	}
	m.started = true
	m.mu.Unlock()
	p, err := pipeline.Open(pipeline.Config{
		Interval: m.cfg.interval, NetnsPath: m.cfg.netns, Source: "auto", Engine: m.cfg.engine,
		MaxConnections: m.cfg.maxConnections, MaxProcesses: m.cfg.maxProcesses, Log: m.cfg.log,
		PinPath: m.cfg.pinPath, StateFile: m.cfg.stateFile, BillingDay: m.cfg.billingDay,
		NoTCPHealth: m.cfg.noTCPHealth, NoRTTSamples: m.cfg.noRTTSamples,
	})
	if err != nil {
		m.finish(err)
		return err
	}
	var an *health.Analyzer
	if p.Loop.Flows != nil {
		if an, err = pipeline.Analyze(p.Loop, m.cfg.analysis); err != nil {
			p.Close()
			m.finish(err)
			return err
		}
	}
	m.mu.Lock()
	m.ledger = p.Ledger
	m.an = an
	m.mu.Unlock()
	if m.cfg.captureTimeout > 0 {
		ctx, m.cancel = context.WithTimeout(ctx, m.cfg.captureTimeout)
	} else {
		ctx, m.cancel = context.WithCancel(ctx)
	}
	if err := m.startPcap(ctx); err != nil {
		m.cancel()
		p.Close()
		m.finish(err)
		return err
	}
	out := make(chan Snapshot, 1)
	go func() {
		for s := range out {
			m.publish(s)
		}
	}()
	go func() {
		err := p.Loop.Run(ctx, out)
		close(out)
		p.Close()
		m.finish(errors.Join(err, m.stopPcap()))
	}()
	return nil
}

func (m *Monitor) finish(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	select {
	case <-m.done:
		return
	default:
	}
	m.err = err
	for ch := range m.subs {
		close(ch)
	}
	m.subs = nil
	close(m.done)
}

func (m *Monitor) publish(s Snapshot) {
	if len(m.cfg.devices) > 0 {
		kept := s.Interfaces[:0:0]
		for _, i := range s.Interfaces {
			if slices.Contains(m.cfg.devices, i.Name) {
				kept = append(kept, i)
			}
		}
		s.Interfaces = kept
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.latest = &s
	m.history = append(m.history, s)
	cut := 0
	for cut < len(m.history) && s.Time.Sub(m.history[cut].Time) > m.cfg.history {
		cut++
	}
	m.history = slices.Delete(m.history, 0, cut)
	for ch := range m.subs {
		select {
		case ch <- s:
		default:
			m.dropped++
		}
	}
}

// Stop ends collection, releases every kernel resource and waits for it.
// Subscribe channels are closed.
func (m *Monitor) Stop() error {
	m.mu.Lock()
	started, cancel := m.started, m.cancel
	m.mu.Unlock()
	if !started {
		return ErrNotStarted
	}
	if cancel != nil {
		cancel()
	}
	<-m.done
	return m.Err()
}

// Done is closed when collection has ended (Stop, context, capture timeout
// or a read error; see Err).
func (m *Monitor) Done() <-chan struct{} { return m.done }

// Err is why collection ended, or nil.
func (m *Monitor) Err() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.err
}

// Snapshot returns the latest snapshot, and false before the first one.
func (m *Monitor) Snapshot() (Snapshot, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.latest == nil {
		return Snapshot{}, false
	}
	return *m.latest, true
}

// Subscribe returns a channel that receives every snapshot from now on,
// closed when ctx ends or the monitor stops.
func (m *Monitor) Subscribe(ctx context.Context) <-chan Snapshot {
	ch := make(chan Snapshot, m.cfg.queueSize)
	m.mu.Lock()
	if m.subs == nil { // already finished
		m.mu.Unlock()
		close(ch)
		return ch
	}
	m.subs[ch] = struct{}{}
	m.mu.Unlock()
	context.AfterFunc(ctx, func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		if _, ok := m.subs[ch]; ok {
			delete(m.subs, ch)
			close(ch)
		}
	})
	return ch
}

// Dropped is how many snapshots slow subscribers missed.
func (m *Monitor) Dropped() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.dropped
}

// ProcessUsage is one process's traffic over a recent window.
type ProcessUsage struct {
	PID     int
	Comm    string
	Exe     string
	Cmdline string
	Exited  bool
	// Traffic is what the process sent and received during the window.
	Traffic Traffic
	// TxBytes and RxBytes are Traffic's IP bytes; TxRate and RxRate their
	// average per second over the window.
	TxBytes, RxBytes uint64
	TxRate, RxRate   float64
}

// ProcessRank returns up to limit processes (all if limit <= 0) by IP bytes
// sent+received during the last window (at most WithHistory; window <= 0
// means the last interval), busiest first.
func (m *Monitor) ProcessRank(limit int, window time.Duration) []ProcessUsage {
	m.mu.Lock()
	hist := m.history
	m.mu.Unlock()
	if len(hist) == 0 {
		return nil
	}
	last := hist[len(hist)-1]
	if window <= 0 {
		window = last.Interval
	}
	byPID := map[int]*ProcessUsage{}
	span := time.Duration(0)
	for i := len(hist) - 1; i >= 0 && last.Time.Sub(hist[i].Time) < window; i-- {
		span += hist[i].Interval
		for _, p := range hist[i].Processes {
			u := byPID[p.PID]
			if u == nil {
				u = &ProcessUsage{PID: p.PID, Comm: p.Comm, Exe: p.Exe, Cmdline: p.Cmdline, Exited: p.Exited}
				byPID[p.PID] = u
			}
			u.Traffic = u.Traffic.Add(p.Delta)
		}
	}
	out := make([]ProcessUsage, 0, len(byPID))
	for _, u := range byPID {
		u.TxBytes, u.RxBytes = u.Traffic.TxBytes, u.Traffic.RxBytes
		if span > 0 {
			u.TxRate, u.RxRate = float64(u.TxBytes)/span.Seconds(), float64(u.RxBytes)/span.Seconds()
		}
		if u.TxBytes+u.RxBytes > 0 {
			out = append(out, *u)
		}
	}
	slices.SortFunc(out, func(a, b ProcessUsage) int {
		if c := cmp.Compare(b.TxBytes+b.RxBytes, a.TxBytes+a.RxBytes); c != 0 {
			return c
		}
		return cmp.Compare(a.PID, b.PID)
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out
}

// Connections returns the latest snapshot's connections, busiest first.
func (m *Monitor) Connections() []Connection {
	s, _ := m.Snapshot()
	return s.Connections
}

// Containers returns the latest snapshot's containers, busiest first.
func (m *Monitor) Containers() []Container {
	s, _ := m.Snapshot()
	return s.Containers
}

// LedgerEntry is one account's traffic in one billing period.
type LedgerEntry = aggregate.Entry

// Ledger returns the billing ledger's totals for period ("2006-01"; "" for
// every period), or nil without WithLedger.
func (m *Monitor) Ledger(period string) []LedgerEntry {
	m.mu.Lock()
	l := m.ledger
	m.mu.Unlock()
	if l == nil {
		return nil
	}
	return l.Entries(period)
}

// Period returns the billing period t falls in, or "" without WithLedger.
func (m *Monitor) Period(t time.Time) string {
	m.mu.Lock()
	l := m.ledger
	m.mu.Unlock()
	if l == nil {
		return ""
	}
	return l.Period(t)
}

// ErrNoEngine is returned by the analyses when the monitor runs without the
// eBPF engine (WithoutEngine) or has not started.
var ErrNoEngine = errors.New("netmeter: flows and health need a started monitor with the eBPF engine")

func (m *Monitor) analyzer() (*health.Analyzer, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.an == nil {
		return nil, ErrNoEngine
	}
	return m.an, nil
}

// Flows ranks the (local process or container, remote group) flows over the
// last window by "bytes", "rate", "retrans", "rtt" or "drops"; limit 0
// returns them all.
func (m *Monitor) Flows(window time.Duration, by string, limit int) ([]Flow, error) {
	an, err := m.analyzer()
	if err != nil {
		return nil, err
	}
	return an.TopFlows(window, by, limit)
}

// Health returns the Network Health Indicator of every remote group and
// monitor, with its evidence.
func (m *Monitor) Health() (HealthReport, error) {
	an, err := m.analyzer()
	if err != nil {
		return HealthReport{}, err
	}
	return an.Health(), nil
}

// Monitors returns each configured monitor's time series.
func (m *Monitor) Monitors() ([]MonitorSeries, error) {
	an, err := m.analyzer()
	if err != nil {
		return nil, err
	}
	return an.Monitors(), nil
}

// Topology returns who talks to whom over the last window: local processes
// and containers, remote groups, and the edges between them.
func (m *Monitor) Topology(window time.Duration) (Topology, error) {
	an, err := m.analyzer()
	if err != nil {
		return Topology{}, err
	}
	return an.Topology(window), nil
}
