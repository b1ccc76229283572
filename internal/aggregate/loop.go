package aggregate

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/netmeter/netmeter/internal/snapshot"
	"github.com/netmeter/netmeter/internal/source/engine"
	"github.com/netmeter/netmeter/internal/source/iface"
)

// Watcher delivers link events until ctx ends (iface.Netlink implements it).
type Watcher interface {
	Watch(ctx context.Context, fn func(iface.Event)) error
}

// EngineReader reads the eBPF engine's counters (engine.Engine).
type EngineReader interface {
	Read() (engine.Reading, error)
}

// Loop polls its sources on a wall-clock ticker and emits one Snapshot per
// tick.
type Loop struct {
	Source   iface.Source
	Interval time.Duration
	Tracker  *Interfaces
	// Engine and Flows, when set, add processes and connections.
	Engine EngineReader
	Flows  *Flows
	// Health, when set with Engine and Flows, adds TCP health to the
	// connections and the kernel's drops to each snapshot.
	Health        HealthReader
	healthTracker *Health
	// Observe, when set, sees every snapshot (after Enrich) before it is
	// published: analyses that keep history, like internal/health.
	Observe func(*snapshot.Snapshot)
	// Ledger, when set, books container traffic per account; with
	// Checkpoint it is saved there every SaveEvery and when Run ends.
	Ledger     *Ledger
	Checkpoint string
	SaveEvery  time.Duration
	// Enrich, when set, adds to each snapshot what other sources know
	// (e.g. firewall counters); it runs in the loop, before the snapshot is
	// published.
	Enrich   func(*snapshot.Snapshot)
	Log      *slog.Logger
	lastSave time.Time
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Poll takes one reading now and returns the resulting Snapshot.
func (l *Loop) Poll() (snapshot.Snapshot, error) {
	now := time.Now()
	if l.Now != nil {
		now = l.Now()
	}
	links, err := l.Source.Links()
	if err != nil {
		return snapshot.Snapshot{}, fmt.Errorf("read interfaces: %w", err)
	}
	ifs, anomalies := l.Tracker.Observe(now, links)
	for _, a := range anomalies {
		l.logger().Warn("interface counter did not simply increase",
			"interface", a.Interface, "counter", a.Counter, "verdict", a.Verdict.String(),
			"previous", a.Prev, "current", a.Cur, "counted", a.Counted)
	}
	s := snapshot.Snapshot{Time: now, Interval: l.Interval, Source: l.Source.Name(), Interfaces: ifs}
	if l.Engine != nil && l.Flows != nil {
		r, err := l.Engine.Read()
		if err != nil {
			return snapshot.Snapshot{}, fmt.Errorf("read engine: %w", err)
		}
		s.Processes, s.Connections, s.Unattributed = l.Flows.Observe(now, r)
		s.Containers = l.Flows.Containers()
		if l.Ledger != nil {
			l.Ledger.Add(now, s.Containers)
			if l.Checkpoint != "" && now.Sub(l.lastSave) >= l.SaveEvery {
				l.save(now)
			}
		}
		if l.Health != nil {
			l.applyHealth(&s)
		}
		st := r.Stats
		s.Engine = &snapshot.EngineStats{
			Sockets:  len(r.Live),
			MapFull:  st.CountStoreFail + st.TimewaitFull + st.BucketFull,
			RingLost: st.RingFull + st.PendingDropped,
			Kind:     "ebpf",
		}
		if d, ok := l.Engine.(interface{ Describe(*snapshot.EngineStats) }); ok {
			d.Describe(s.Engine) // another engine says what it is
		}
	}
	if l.Enrich != nil {
		l.Enrich(&s)
	}
	if l.Observe != nil {
		l.Observe(&s)
	}
	return s, nil
}

// applyHealth adds the health hooks' reading; a failed read costs only
// this interval's health, never the traffic numbers.
func (l *Loop) applyHealth(s *snapshot.Snapshot) {
	r, err := l.Health.Read()
	if err != nil {
		l.logger().Warn("tcp health not read this interval", "err", err)
		return
	}
	if l.healthTracker == nil {
		l.healthTracker = NewHealth()
	}
	l.healthTracker.Apply(r, s, l.Health.ReasonName, l.Flows.SocketOwner)
}

// save writes the checkpoint; a failure (a full disk) is logged and retried
// at the next interval: the totals stay in memory.
func (l *Loop) save(now time.Time) {
	if err := SaveCheckpoint(l.Checkpoint, now, l.Ledger, l.Flows); err != nil {
		l.logger().Warn("checkpoint not saved; will retry", "err", err)
		return
	}
	l.lastSave = now
}

func (l *Loop) logger() *slog.Logger {
	if l.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l.Log
}

// Run emits a baseline Snapshot at once and one per Interval until ctx ends.
// Link deletion events (when the source can watch) are folded into the next
// reading so bytes counted just before an interface vanished are kept. Run
// returns nil when ctx is cancelled, or the first read error.
func (l *Loop) Run(ctx context.Context, out chan<- snapshot.Snapshot) error {
	if l.Interval <= 0 {
		return fmt.Errorf("interval must be positive, got %v", l.Interval)
	}
	events := make(chan iface.Event, 256)
	if w, ok := l.Source.(Watcher); ok {
		go func() {
			err := w.Watch(ctx, func(ev iface.Event) {
				select {
				case events <- ev:
				case <-ctx.Done():
				}
			})
			if err != nil {
				l.logger().Warn("link events unavailable; deletions are seen at the next poll", "err", err)
			}
		}()
	}
	tick := time.NewTicker(l.Interval)
	defer tick.Stop()
	if l.Ledger != nil && l.Checkpoint != "" {
		// A last reading before the checkpoint, with no final record taken
		// off the ring that it does not account: the next agent goes on from
		// exactly there.
		defer func() {
			if q, ok := l.Engine.(interface{ Quiesce() }); ok {
				q.Quiesce()
			}
			if _, err := l.Poll(); err != nil {
				l.logger().Warn("last reading failed", "err", err)
			}
			l.save(time.Now())
		}()
	}
	for {
		s, err := l.Poll()
		if err != nil {
			return err
		}
		select {
		case out <- s:
		case <-ctx.Done():
			return nil
		}
	wait:
		for {
			select {
			case <-ctx.Done():
				return nil
			case ev := <-events:
				if ev.Deleted {
					l.Tracker.Deleted(ev.Link)
				}
			case <-tick.C:
				break wait
			}
		}
		drainDeletions(events, l.Tracker)
	}
}

// drainDeletions applies events already queued, so a deletion that raced the
// tick is counted in this reading.
func drainDeletions(events <-chan iface.Event, t *Interfaces) {
	for {
		select {
		case ev := <-events:
			if ev.Deleted {
				t.Deleted(ev.Link)
			}
		default:
			return
		}
	}
}
