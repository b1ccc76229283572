package health

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// scan returns n connections of 50 programs to n distinct remote addresses
// starting at the n·k-th, each a distinct /24.
func scan(n, k int) []link {
	ls := make([]link, n)
	for i := range n {
		j := uint32(n*k + i)
		ip := netip.AddrFrom4([4]byte{byte(1 + j>>16), byte(j >> 8), byte(j), 1})
		ls[i] = link{cookie: uint64(j) + 1, comm: fmt.Sprintf("p%d", i%50), pid: 1000 + i%50, remote: ip.String(),
			tx: 100, rx: 1, segs: 2, samples: 1, rttUS: 1000}
	}
	return ls
}

func TestBoundedMemory(t *testing.T) {
	for _, tc := range []struct {
		name         string
		cfg          Config
		n, intervals int // n new remotes in each interval
	}{
		{"defaults", Config{}, 100_000, 2},
		{"by address", Config{ByAddress: true}, 100_000, 2},
		{"small, evicting", Config{MaxFlows: 100, MaxGroups: 10, Capacity: 3}, 10_000, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSim(t, tc.cfg)
			cfg := s.a.cfg
			n := tc.n
			for k := range tc.intervals { // a new 100k remotes every interval
				s.step(scan(n, k))
				r := s.a.Health()
				lim := r.Limits
				if lim.Flows > cfg.MaxFlows || len(s.a.flows) > cfg.MaxFlows+1 ||
					lim.Groups > cfg.MaxGroups || len(s.a.groups) > cfg.MaxGroups+3 || len(r.Groups) > cfg.MaxGroups {
					t.Fatalf("interval %d: %+v, %d flows, %d groups", k, lim, len(s.a.flows), len(s.a.groups))
				}
				if lim.OverflowConnections == 0 {
					t.Fatalf("nothing overflowed: %+v", lim)
				}
				for _, rec := range s.a.ring {
					if len(rec.flows) > len(s.a.flows) {
						t.Fatalf("an interval holds %d flows", len(rec.flows))
					}
				}
			}
			// Every byte is still counted somewhere.
			fs, err := s.a.TopFlows(time.Millisecond, "bytes", 0)
			if err != nil {
				t.Fatal(err)
			}
			var tx uint64
			other := false
			for _, f := range fs {
				tx += f.TxBytes
				other = other || f.Group == GroupOther
			}
			if tx != uint64(100*n) || !other {
				t.Fatalf("latest interval: %d bytes (other group: %v), want %d", tx, other, 100*n)
			}
			// Once the scan has left the ring, the tables empty.
			for range cfg.Capacity {
				s.step(nil)
			}
			if len(s.a.flows) != 0 || len(s.a.groups) != 0 || s.a.flowCount != 0 || s.a.userCount != 0 {
				t.Fatalf("after the scan: %d flows, %d groups", len(s.a.flows), len(s.a.groups))
			}
		})
	}
}

// TestConcurrentReaders runs every reader against Add; run it with -race.
func TestConcurrentReaders(t *testing.T) {
	s := newSim(t, Config{Capacity: 50, Monitors: []Monitor{{Name: "all", Remote: RemoteMatch{Everywhere: true}}}})
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				for _, by := range []string{"bytes", "retrans", "rtt", "drops", "rate"} {
					fs, err := s.a.TopFlows(10*time.Second, by, 10)
					if err != nil {
						t.Error(err)
						return
					}
					if _, err := json.Marshal(fs); err != nil {
						t.Error(err)
					}
				}
				for _, v := range []any{s.a.Health(), s.a.Monitors(), s.a.Topology(time.Minute)} {
					if _, err := json.Marshal(v); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	for k := range 200 {
		ls := append(scan(50, k%7), baseLinks()...)
		snap := snapshotOf(s.now, ls, nil)
		s.a.Add(snap)
		s.now = s.now.Add(time.Second)
	}
	close(done)
	wg.Wait()
	if r := s.a.Health(); len(r.Groups) == 0 || r.Limits.Intervals != 50 {
		t.Fatalf("%+v", r.Limits)
	}
}

func TestAddNilAndOddIntervals(t *testing.T) {
	a, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	a.Add(nil)
	if r := a.Health(); len(r.Groups) != 0 || r.Limits.Intervals != 0 {
		t.Fatalf("%+v", r)
	}
	if fs, err := a.TopFlows(time.Minute, "bytes", 3); err != nil || len(fs) != 0 {
		t.Fatalf("%v %v", fs, err)
	}
	// No Interval in the snapshot: the gap since the previous one is used.
	snap := snapshotOf(t0, []link{{cookie: 1, comm: "a", remote: "10.0.0.1", tx: 10}}, nil)
	snap.Interval = 0
	a.Add(snap)
	snap = snapshotOf(t0.Add(2*time.Second), []link{{cookie: 1, comm: "a", remote: "10.0.0.1", tx: 10}}, nil)
	snap.Interval = 0
	a.Add(snap)
	fs, _ := a.TopFlows(time.Hour, "bytes", 0)
	if len(fs) != 1 || fs[0].WindowMS != 3000 || fs[0].LastRate != 5 {
		t.Fatalf("%+v", fs)
	}
	// Without TCP health (health hooks off): bytes only, health unknown.
	for i := range 30 {
		a.Add(snapshotOf(t0.Add(time.Duration(3+i)*time.Second), []link{{cookie: 1, comm: "a", remote: "10.0.0.1", tx: 10, noTCP: true}}, nil))
	}
	if st := statusOf(t, a.Health(), "10.0.0.0/24"); st.State != StateUnknown || st.Evidence.LearnedIntervals != 0 {
		t.Fatalf("%+v", st)
	}
}

func BenchmarkAdd(b *testing.B) {
	s := newSim(b, Config{Monitors: []Monitor{
		{Name: "web", Local: LocalMatch{Processes: []string{"p1*"}}, Remote: RemoteMatch{Everywhere: true}},
		{Name: "corp", Remote: RemoteMatch{CIDRs: []string{"1.0.0.0/16"}}},
	}})
	ls := scan(10_000, 0)
	for i := range ls {
		ls[i].remote = fmt.Sprintf("1.0.%d.%d", i%500, 1+i/500) // 500 groups
	}
	snap := snapshotOf(s.now, ls, nil)
	b.ReportAllocs()
	for b.Loop() {
		s.a.Add(snap) // Add keeps nothing of the snapshot
		snap.Time = snap.Time.Add(time.Second)
	}
}
