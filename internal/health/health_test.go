package health

import (
	"slices"
	"strings"
	"testing"

	"github.com/netmeter/netmeter/internal/snapshot"
)

const (
	groupA = "10.1.1.0/24"
	groupB = "10.2.2.0/24"
)

// warm runs n steady intervals on A, B and loopback.
func warm(t *testing.T, s *sim, n int) {
	t.Helper()
	for range n {
		s.step(baseLinks())
	}
	r := s.a.Health()
	for _, g := range []string{groupA, groupB, GroupLoopback} {
		if st := statusOf(t, r, g); st.State != StateHealthy {
			t.Fatalf("after %d steady intervals %s is %q: %s", n, g, st.State, st.Explanation)
		}
	}
}

func baseLinks() []link {
	lo := steady(3, "redis-cli", "127.0.0.1")
	lo.rttUS, lo.srttUS = 50, 50
	return []link{steady(1, "curl", "10.1.1.9"), steady(2, "wget", "10.2.2.9"), lo}
}

// withA returns the steady links with A's replaced by f(A).
func withA(f func(l *link)) []link {
	ls := baseLinks()
	f(&ls[0])
	return ls
}

// runUntil steps until group reaches want, at most limit intervals, and
// returns how many intervals it took; until then the group must stay
// healthy.
func runUntil(t *testing.T, s *sim, links []link, group string, want State, limit int, drops ...snapshot.Drop) (int, Status) {
	t.Helper()
	for i := 1; i <= limit; i++ {
		r := s.step(links, drops...)
		st := statusOf(t, r, group)
		if st.State == want {
			return i, st
		}
		if st.State != StateHealthy {
			t.Fatalf("interval %d: %s is %q, want healthy then %q: %s", i, group, st.State, want, st.Explanation)
		}
	}
	st := statusOf(t, s.a.Health(), group)
	t.Fatalf("%s not %q within %d intervals: %q, %s %+v", group, want, limit, st.State, st.Explanation, st.Evidence)
	return 0, st
}

func TestHealthWarmup(t *testing.T) {
	s := newSim(t, Config{})
	// The baseline learns an interval when it leaves the 5-interval window:
	// 20 learned intervals need 25 intervals of traffic.
	for i := 1; i <= 24; i++ {
		r := s.step(baseLinks())
		st := statusOf(t, r, groupA)
		if st.State != StateUnknown || !strings.Contains(st.Explanation, "learning the baseline") {
			t.Fatalf("interval %d: %q %q, want unknown while learning", i, st.State, st.Explanation)
		}
	}
	// A degradation during warm-up is shown in the explanation but gives
	// no verdict.
	r := s.step(baseLinks())
	if st := statusOf(t, r, groupA); st.State != StateHealthy || st.Evidence.LearnedIntervals != 20 || st.Since.IsZero() {
		t.Fatalf("interval 25: %+v, want healthy after 20 learned intervals", st)
	}
}

func TestHealthWarmupHidesEvidence(t *testing.T) {
	s := newSim(t, Config{})
	s.step(withA(func(l *link) { l.zeroSnd = true }))
	r := s.step(withA(func(l *link) { l.zeroSnd = true }))
	st := statusOf(t, r, groupA)
	if st.State != StateUnknown || !strings.Contains(st.Explanation, "meanwhile the peer advertised a zero window") {
		t.Fatalf("%q %q", st.State, st.Explanation)
	}
}

func TestHealthRTTRiseOnOneGroup(t *testing.T) {
	s := newSim(t, Config{})
	warm(t, s, 30)
	n, st := runUntil(t, s, withA(func(l *link) { l.rttUS *= 4 }), groupA, StateNetwork, 10)
	if n > 3 {
		t.Errorf("RTT ×4 reported after %d intervals, want ≤ 3", n)
	}
	ev := st.Evidence
	if ev.RTTBaselineUS != 20_000 || ev.RTTUS <= 2*ev.RTTBaselineUS || ev.RTTSource != "samples" || !slices.Contains(ev.Signals, "rtt_high") {
		t.Errorf("evidence %+v", ev)
	}
	if !strings.Contains(st.Explanation, "× its baseline 20.0 ms") || !strings.Contains(st.Explanation, "no receiver is full") {
		t.Errorf("explanation %q", st.Explanation)
	}
	// While A stays degraded, B and loopback stay healthy.
	for i := range 10 {
		r := s.step(withA(func(l *link) { l.rttUS *= 4 }))
		if st := statusOf(t, r, groupA); st.State != StateNetwork {
			t.Fatalf("interval %d after: A is %q", i, st.State)
		}
		for _, g := range []string{groupB, GroupLoopback} {
			if st := statusOf(t, r, g); st.State != StateHealthy {
				t.Fatalf("interval %d after: %s is %q: %s", i, g, st.State, st.Explanation)
			}
		}
	}
}

func TestHealthRetransmits(t *testing.T) {
	s := newSim(t, Config{})
	warm(t, s, 30)
	// 5 % of segments retransmitted on A.
	n, st := runUntil(t, s, withA(func(l *link) { l.retrans = l.segs / 20 }), groupA, StateNetwork, 10)
	if n > 3 {
		t.Errorf("5%% retransmits reported after %d intervals, want ≤ 3", n)
	}
	if !slices.Contains(st.Evidence.Signals, "retrans_high") || st.Evidence.RetransPercent <= 1 {
		t.Errorf("evidence %+v", st.Evidence)
	}
	if st := statusOf(t, s.a.Health(), groupB); st.State != StateHealthy {
		t.Errorf("B is %q", st.State)
	}
}

func TestHealthRTO(t *testing.T) {
	s := newSim(t, Config{})
	warm(t, s, 30)
	links := withA(func(l *link) { l.rtos = 1 })
	s.step(links)
	// One timeout stays in the window for 5 intervals.
	n, st := runUntil(t, s, baseLinks(), groupA, StateNetwork, 5)
	if n != 1 || !slices.Contains(st.Evidence.Signals, "rto_high") || st.Evidence.RTOs != 1 {
		t.Errorf("after %d: %+v", n, st)
	}
}

func TestHealthReceiverOverloadIsThisHost(t *testing.T) {
	s := newSim(t, Config{})
	warm(t, s, 30)
	// A's application stops reading: zero window, the receive buffer
	// overflows, and the RTT seen by this end rises too.
	q := uint32(0)
	links := func() []link {
		q += 200_000
		return withA(func(l *link) { l.zeroRcv, l.rcvQueue, l.rttUS = true, q, l.rttUS*4 })
	}
	drop := snapshot.Drop{Reason: "SOCKET_RCVBUFF", Cookie: 1, PID: 1, Comm: "curl", Proto: "tcp", DeltaPackets: 7}
	for i := 1; i <= 10; i++ {
		r := s.step(links(), drop)
		st := statusOf(t, r, groupA)
		if st.State == StateNetwork {
			t.Fatalf("interval %d: network, want this host: %s", i, st.Explanation)
		}
		if st.State == StateThisHost {
			ev := st.Evidence
			if i > 3 || ev.SocketDrops == 0 || ev.ZeroRcvWindow == 0 || !slices.Contains(ev.Signals, "socket_drops") {
				t.Errorf("after %d intervals: %+v", i, ev)
			}
			if !strings.Contains(st.Explanation, "zero receive window") {
				t.Errorf("explanation %q", st.Explanation)
			}
			if st := statusOf(t, r, groupB); st.State != StateHealthy {
				t.Errorf("B is %q", st.State)
			}
			return
		}
	}
	t.Fatalf("never this host: %+v", statusOf(t, s.a.Health(), groupA))
}

func TestHealthHostWideSocketDropsExplainSymptoms(t *testing.T) {
	s := newSim(t, Config{})
	warm(t, s, 30)
	// Drops the kernel could not tie to a socket, and A's RTT rises.
	drop := snapshot.Drop{Reason: "SOCKET_BACKLOG", Proto: "tcp", DeltaPackets: 3}
	_, st := runUntil(t, s, withA(func(l *link) { l.rttUS *= 4 }), groupA, StateThisHost, 5, drop)
	if st.Evidence.HostSocketDrops == 0 || !slices.Contains(st.Evidence.Signals, "host_socket_drops") {
		t.Errorf("%+v", st.Evidence)
	}
	// Without symptoms host-wide drops alone leave B healthy.
	if st := statusOf(t, s.a.Health(), groupB); st.State != StateHealthy {
		t.Errorf("B is %q: %s", st.State, st.Explanation)
	}
}

func TestHealthPeerZeroWindowIsRemote(t *testing.T) {
	s := newSim(t, Config{})
	warm(t, s, 30)
	n, st := runUntil(t, s, withA(func(l *link) { l.zeroSnd, l.rtos = true, 1 }), groupA, StateRemote, 5)
	if n > 3 || st.Evidence.ZeroSndWindowIntervals < 2 || !slices.Contains(st.Evidence.Signals, "zero_snd_window") {
		t.Errorf("after %d: %+v", n, st.Evidence)
	}
	if !strings.Contains(st.Explanation, "peer advertised a zero window") {
		t.Errorf("explanation %q", st.Explanation)
	}
}

func TestHealthResetsAreRemote(t *testing.T) {
	s := newSim(t, Config{})
	warm(t, s, 30)
	_, st := runUntil(t, s, withA(func(l *link) { l.resetsRecv = 20 }), groupA, StateRemote, 5)
	if st.Evidence.ResetsReceived < 10 {
		t.Errorf("%+v", st.Evidence)
	}
}

func TestHealthRecoveryHysteresis(t *testing.T) {
	s := newSim(t, Config{})
	warm(t, s, 30)
	runUntil(t, s, withA(func(l *link) { l.rttUS *= 4 }), groupA, StateNetwork, 5)
	for range 5 { // stays degraded while the cause lasts
		if st := statusOf(t, s.step(withA(func(l *link) { l.rttUS *= 4 })), groupA); st.State != StateNetwork {
			t.Fatalf("%q", st.State)
		}
	}
	// The cause ends: the window empties of bad intervals (4 intervals
	// here), then 5 healthy verdicts are needed.
	for i := 1; ; i++ {
		st := statusOf(t, s.step(baseLinks()), groupA)
		if st.State == StateHealthy {
			if i != 8 {
				t.Errorf("healthy after %d intervals, want 8 (window 4 + 5 healthy verdicts − 1)", i)
			}
			break
		}
		if st.State != StateNetwork {
			t.Fatalf("interval %d: %q", i, st.State)
		}
		if i >= 4 && !strings.HasPrefix(st.Explanation, "recovering,") {
			t.Errorf("interval %d: %q", i, st.Explanation)
		}
		if i > 10 {
			t.Fatal("never recovered")
		}
	}
	// The degradation did not enter the baseline.
	if st := statusOf(t, s.a.Health(), groupA); st.Evidence.RTTBaselineUS != 20_000 {
		t.Errorf("baseline %d µs after the degradation, want 20000", st.Evidence.RTTBaselineUS)
	}
}

func TestHealthBriefBlipStaysHealthy(t *testing.T) {
	s := newSim(t, Config{})
	warm(t, s, 30)
	// One interval at 3× RTT: the window mean reaches 1.4×, no verdict.
	s.step(withA(func(l *link) { l.rttUS *= 3 }))
	for range 6 {
		if st := statusOf(t, s.step(baseLinks()), groupA); st.State != StateHealthy {
			t.Fatalf("%q: %s", st.State, st.Explanation)
		}
	}
}

func TestHealthAllGroupsDegradedIsThisHost(t *testing.T) {
	s := newSim(t, Config{})
	warm(t, s, 30)
	links := baseLinks()
	links[0].rttUS *= 4
	links[1].rttUS *= 4
	for i := 1; i <= 5; i++ {
		r := s.step(links)
		a, b := statusOf(t, r, groupA), statusOf(t, r, groupB)
		if a.State == StateNetwork || b.State == StateNetwork {
			t.Fatalf("interval %d: %q / %q, want this host", i, a.State, b.State)
		}
		if a.State == StateThisHost && b.State == StateThisHost {
			if !slices.Contains(a.Evidence.Signals, "host_wide") || a.Evidence.GroupsActive != 2 || a.Evidence.GroupsDegraded != 2 {
				t.Errorf("%+v", a.Evidence)
			}
			if !strings.Contains(a.Explanation, "all 2 active groups are degraded at once") {
				t.Errorf("%q", a.Explanation)
			}
			if st := statusOf(t, r, GroupLoopback); st.State != StateHealthy {
				t.Errorf("loopback %q", st.State)
			}
			return
		}
	}
	t.Fatal("never degraded")
}

func TestHealthLoopbackFloor(t *testing.T) {
	s := newSim(t, Config{})
	warm(t, s, 30)
	// Loopback's RTT jumps from 50 µs to 2 ms (40×): scheduler noise, below
	// the 5 ms floor.
	for range 10 {
		ls := baseLinks()
		ls[2].rttUS = 2000
		if st := statusOf(t, s.step(ls), GroupLoopback); st.State != StateHealthy {
			t.Fatalf("%q: %s", st.State, st.Explanation)
		}
	}
	ls := baseLinks()
	ls[2].rttUS = 8000 // above baseline + 5 ms
	if _, st := runUntil(t, s, ls, GroupLoopback, StateNetwork, 5); st.Evidence.RTTBaselineUS >= 1000 {
		t.Errorf("loopback baseline %d µs", st.Evidence.RTTBaselineUS)
	}
}

func TestHealthIdleIsUnknown(t *testing.T) {
	s := newSim(t, Config{})
	warm(t, s, 30)
	ls := baseLinks()[1:] // A goes quiet
	var st Status
	for range 5 {
		st = statusOf(t, s.step(ls), groupA)
	}
	if st.State != StateUnknown || !strings.Contains(st.Explanation, "not enough data") {
		t.Fatalf("%q %q", st.State, st.Explanation)
	}
	if st := statusOf(t, s.step(baseLinks()), groupA); st.State != StateHealthy {
		t.Fatalf("back: %q", st.State)
	}
}

func TestHealthSRTTFallback(t *testing.T) {
	s := newSim(t, Config{})
	noSamples := func(rtt uint32) []link {
		ls := baseLinks()
		for i := range ls {
			ls[i].samples = 0
		}
		ls[0].srttUS = rtt
		return ls
	}
	for range 30 {
		s.step(noSamples(20_000))
	}
	st := statusOf(t, s.a.Health(), groupA)
	if st.State != StateHealthy || st.Evidence.RTTSource != "srtt" || st.Evidence.RTTBaselineUS != 20_000 {
		t.Fatalf("%+v", st)
	}
	runUntil(t, s, noSamples(90_000), groupA, StateNetwork, 6)
}

func TestHealthMonitor(t *testing.T) {
	s := newSim(t, Config{Monitors: []Monitor{
		{Name: "curl-out", Local: LocalMatch{Processes: []string{"cur*"}}, Remote: RemoteMatch{Everywhere: true}},
		{Name: "b", Remote: RemoteMatch{Groups: []string{groupB}}},
	}})
	warm(t, s, 30)
	n, st := runUntil(t, s, withA(func(l *link) { l.rttUS *= 4 }), "curl-out", StateNetwork, 5)
	if st.Evidence.RTTBaselineUS != 20_000 {
		t.Errorf("%+v", st.Evidence)
	}
	r := s.a.Health()
	if st := statusOf(t, r, "b"); st.State != StateHealthy {
		t.Errorf("monitor b %q", st.State)
	}
	series := s.a.Monitors()
	if len(series) != 2 || series[0].Name != "curl-out" {
		t.Fatalf("%+v", series)
	}
	p := series[0].Points
	last := p[len(p)-1]
	if last.Health != StateNetwork || last.RTTMeanUS != 80_000 || last.TxBytes != 100_000 || last.SegsOut != 200 {
		t.Errorf("last point %+v", last)
	}
	if p[0].Health != StateUnknown || len(p) != 30+n {
		t.Errorf("%d points, first %+v", len(p), p[0])
	}
}
