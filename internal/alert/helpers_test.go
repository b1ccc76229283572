package alert

import (
	"testing"
	"time"

	"github.com/netmeter/netmeter/internal/health"
	"github.com/netmeter/netmeter/internal/quota"
	"github.com/netmeter/netmeter/internal/snapshot"
)

// t0 is the synthetic clock's start.
var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// world drives an Evaluator with synthetic snapshots at a fixed interval
// and keeps every event.
type world struct {
	t      *testing.T
	e      *Evaluator
	now    time.Time
	step   time.Duration
	events []Alert
}

func newWorld(t *testing.T, step time.Duration, rules ...Rule) *world {
	t.Helper()
	e, err := New(rules, WithLabels(map[string]string{"instance": "host1"}))
	if err != nil {
		t.Fatal(err)
	}
	return &world{t: t, e: e, now: t0, step: step}
}

// tick advances the clock by one step and observes s (nil: none).
func (w *world) tick(s *snapshot.Snapshot) []Alert {
	return w.tickWith(s, health.Report{}, nil)
}

func (w *world) tickWith(s *snapshot.Snapshot, r health.Report, q []quota.Result) []Alert {
	w.now = w.now.Add(w.step)
	if s != nil {
		s.Time, s.Interval = w.now, w.step
	}
	ev := w.e.Observe(w.now, s, r, q)
	w.events = append(w.events, ev...)
	return ev
}

// run ticks n times with snapshots from f (given the tick's index).
func (w *world) run(n int, f func(i int) *snapshot.Snapshot) {
	for i := range n {
		w.tick(f(i))
	}
}

// count returns how many events of status st carry every given label.
func (w *world) count(st Status, labels ...string) int {
	n := 0
	for _, a := range w.events {
		if a.Status == st && hasLabels(a, labels...) {
			n++
		}
	}
	return n
}

func (w *world) first(st Status, labels ...string) (Alert, bool) {
	for _, a := range w.events {
		if a.Status == st && hasLabels(a, labels...) {
			return a, true
		}
	}
	return Alert{}, false
}

func hasLabels(a Alert, kv ...string) bool {
	for i := 0; i+1 < len(kv); i += 2 {
		if a.Labels[kv[i]] != kv[i+1] {
			return false
		}
	}
	return true
}

// noEvents fails when anything fired.
func (w *world) noEvents(why string) {
	w.t.Helper()
	for _, a := range w.events {
		w.t.Errorf("%s: unexpected %s %v: %s", why, a.Status, a.Labels, a.Annotations["description"])
	}
}

// ifaceSnap is a snapshot of interfaces; bytes are per interval.
type ifc struct {
	name       string
	rx, tx     uint64 // bytes in this interval
	speedMbps  uint32
	errs, drop uint64
}

func snapOf(step time.Duration, ifs ...ifc) *snapshot.Snapshot {
	s := &snapshot.Snapshot{}
	for i, f := range ifs {
		sec := step.Seconds()
		s.Interfaces = append(s.Interfaces, snapshot.Interface{
			Index: i + 1, Name: f.name, Present: true, OperState: "up", SpeedMbps: f.speedMbps,
			Delta:       snapshot.LinkCounters{RxBytes: f.rx, TxBytes: f.tx, RxErrors: f.errs, RxDropped: f.drop},
			RxBytesRate: snapshot.Rate{Current: float64(f.rx) / sec, Window10s: float64(f.rx) / sec},
			TxBytesRate: snapshot.Rate{Current: float64(f.tx) / sec, Window10s: float64(f.tx) / sec},
		})
	}
	return s
}

func listener(pid int, comm string, port uint16) snapshot.Connection {
	return snapshot.Connection{Proto: "tcp", Family: 4, State: "listen", Local: snapshot.Endpoint{Port: port},
		Owner: snapshot.Owner{PID: pid, Comm: comm}}
}

func conn(pid int, comm, remote string, port uint16) snapshot.Connection {
	return snapshot.Connection{Proto: "tcp", Family: 4, State: "established",
		Local:  snapshot.Endpoint{Addr: "192.0.2.10", Port: 40000},
		Remote: snapshot.Endpoint{Addr: remote, Port: port}, Owner: snapshot.Owner{PID: pid, Comm: comm}}
}

const (
	kib = 1 << 10
	mib = 1 << 20
)
