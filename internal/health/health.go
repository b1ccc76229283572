package health

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// State is the Network Health Indicator of a remote group or a monitor.
//
// Every interval, for each subject (a remote group other than "unconnected"
// and "other", or a monitor), the indicator sums its TCP connections over the
// recent window (HealthConfig.WindowIntervals, default 5) and compares the sum
// with the subject's own baseline. The baseline is an exponentially weighted
// average (time constant BaselineIntervals, 60 intervals with traffic) of
// RTT (sample-weighted), retransmitted segments per segment sent, RTO events
// and resets received. An interval is learned only when it leaves the window
// and no verdict while it was in the window was degraded, so a degradation
// never teaches the baseline.
//
// The verdict of an interval, in order:
//
//   - unknown: during warm-up (fewer than WarmupIntervals, 20, learned
//     intervals with TCP traffic), or when the window has too little data:
//     fewer than MinRTTSamples (5) RTT samples, fewer than MinSegments (100)
//     segments sent, no RTO and no receiver evidence.
//   - degraded: this host, when this end is the bottleneck: it advertised a
//     zero receive window on an active connection in ZeroWindowIntervals (2)
//     intervals of the window, or the receive queue grew in each of the last
//     QueueGrowthIntervals (3) intervals to above QueueGrowthBytes (256 KiB),
//     or SocketDropsMin (1) packets of the subject's sockets were dropped
//     for a socket reason (SOCKET_RCVBUFF, SOCKET_BACKLOG, PROTO_MEM,
//     TCP_LISTEN_OVERFLOW, …).
//   - degraded: remote, when the peer is: it advertised a zero window in
//     ZeroWindowIntervals intervals (this end is probing a full receiver), or
//     it sent at least ResetsMin (10) resets, more than ResetsFactor (3) ×
//     the baseline's.
//   - degraded: network, when the path shows symptoms without receiver
//     evidence: mean RTT > RTTFactor (2) × baseline and > baseline +
//     RTTFloor (5 ms) over at least MinRTTSamples samples; or retransmitted
//     segments > RetransPercent (1) % of at least MinSegments segments sent
//     and > RetransFactor (3) × the baseline ratio; or at least RTOMin (1)
//     RTO events, more than RTOFactor (3) × the baseline's per window. The
//     absolute floor keeps loopback, whose baseline is microseconds, from
//     flipping on scheduler noise. When socket-reason drops happened on the
//     host that no group can be charged with, the symptoms are put down to
//     this host instead.
//   - healthy otherwise.
//
// Then the host is compared with itself: when at least HostWideMinGroups (2)
// non-loopback groups have a verdict and every one of them is degraded by
// the network or this host, a host-side cause is likelier than every path
// failing at once, and each "network" verdict (monitors' included) becomes
// "this host".
//
// The reported state follows the verdicts with hysteresis: a healthy subject
// turns degraded after DegradeIntervals (2) consecutive degraded verdicts and
// back to healthy after RecoverIntervals (5) consecutive healthy ones; a
// degraded subject takes the kind of its latest degraded verdict. So a
// persistent change is reported within WindowIntervals + DegradeIntervals −
// 1 intervals (6 s at 1 s intervals), a large one sooner (RTT ×4 or 5 %
// retransmissions: 3 intervals), and recovery takes at most WindowIntervals
// + RecoverIntervals (10) intervals after the cause ends.
type State string

// The states of the Network Health Indicator.
const (
	StateUnknown  State = "unknown"
	StateHealthy  State = "healthy"
	StateNetwork  State = "degraded: network"
	StateThisHost State = "degraded: this host"
	StateRemote   State = "degraded: remote"
)

// Degraded reports whether s is one of the degraded states.
func (s State) Degraded() bool { return s == StateNetwork || s == StateThisHost || s == StateRemote }

// Status is the health of one group or monitor.
type Status struct {
	Name  string `json:"name"`
	State State  `json:"state"`
	// Since is when the state was entered (zero while unknown).
	Since time.Time `json:"since,omitzero"`
	// Explanation is one line for humans.
	Explanation string   `json:"explanation"`
	Evidence    Evidence `json:"evidence"`
}

// Evidence is what a verdict was made from: sums over the recent window
// compared with the subject's baseline, and the host-wide context.
type Evidence struct {
	WindowIntervals  int `json:"window_intervals"`
	LearnedIntervals int `json:"learned_intervals"` // intervals the baseline learned from
	Connections      int `json:"connections"`       // in the latest interval

	RTTUS         int64  `json:"rtt_us"` // mean over the window; 0: no sample
	RTTBaselineUS int64  `json:"rtt_baseline_us"`
	RTTSamples    uint64 `json:"rtt_samples"`
	// RTTSource is "samples" (the kernel's RTT samples), "srtt" (the mean
	// smoothed RTT of connections that moved data, when there were no
	// samples) or "".
	RTTSource string `json:"rtt_source,omitempty"`

	SegsOut                uint64  `json:"segs_out"`
	RetransSegs            uint64  `json:"retrans_segs"`
	RetransPercent         float64 `json:"retrans_percent"`
	RetransBaselinePercent float64 `json:"retrans_baseline_percent"`
	RTOs                   uint64  `json:"rto_events"`
	RTOBaseline            float64 `json:"rto_baseline"` // per window
	ResetsReceived         uint64  `json:"resets_received"`
	ResetsBaseline         float64 `json:"resets_baseline"` // per window

	// ZeroRcvWindow counts (connection, interval) pairs in which this end
	// advertised a zero window, ZeroRcvWindowIntervals the intervals with
	// any; ZeroSndWindow the same for the peer's window.
	ZeroRcvWindow          int    `json:"zero_rcv_window"`
	ZeroRcvWindowIntervals int    `json:"zero_rcv_window_intervals"`
	ZeroSndWindow          int    `json:"zero_snd_window"`
	ZeroSndWindowIntervals int    `json:"zero_snd_window_intervals"`
	RcvQueueBytes          uint64 `json:"rcv_queue_bytes"` // latest interval
	RcvQueueGrowing        bool   `json:"rcv_queue_growing"`

	// SocketDrops are socket-reason drops of the subject's sockets,
	// HostSocketDrops those on the host no group could be charged with,
	// Drops every drop of the subject's sockets, all in the window.
	SocketDrops     uint64 `json:"socket_drops"`
	HostSocketDrops uint64 `json:"host_socket_drops"`
	Drops           uint64 `json:"drops"`

	// GroupsActive is the number of non-loopback groups with a verdict in
	// this interval, GroupsDegraded how many of them were degraded.
	GroupsActive   int `json:"groups_active"`
	GroupsDegraded int `json:"groups_degraded"`

	// Signals name the thresholds crossed: rtt_high, retrans_high,
	// rto_high, zero_rcv_window, rcv_queue_growing, socket_drops,
	// host_socket_drops, zero_snd_window, resets_received, host_wide.
	Signals []string `json:"signals,omitempty"`
}

// Report is every group's and monitor's health at the latest interval.
type Report struct {
	Time     time.Time `json:"time"`
	Groups   []Status  `json:"groups"`   // by name
	Monitors []Status  `json:"monitors"` // in config order
	Limits   Limits    `json:"limits"`
}

// Limits says how full the bounded tables are.
type Limits struct {
	Intervals int `json:"intervals"` // kept in the ring
	Capacity  int `json:"capacity"`
	Flows     int `json:"flows"`
	MaxFlows  int `json:"max_flows"`
	Groups    int `json:"groups"` // user and default groups
	MaxGroups int `json:"max_groups"`
	// OverflowConnections counts connection-intervals summed into group
	// "other" because a limit was reached, since the analyzer started.
	OverflowConnections uint64 `json:"overflow_connections"`
}

// Health returns the latest statuses.
func (a *Analyzer) Health() Report {
	a.mu.RLock()
	defer a.mu.RUnlock()
	r := Report{Time: a.last, Groups: []Status{}, Monitors: []Status{}, Limits: Limits{
		Intervals: len(a.ring), Capacity: a.cfg.Capacity, Flows: a.flowCount, MaxFlows: a.cfg.MaxFlows,
		Groups: a.userCount, MaxGroups: a.cfg.MaxGroups, OverflowConnections: a.overflow,
	}}
	for name, g := range a.groups {
		if g.ind != nil {
			r.Groups = append(r.Groups, g.ind.status(name))
		}
	}
	slices.SortFunc(r.Groups, func(x, y Status) int { return cmp.Compare(x.Name, y.Name) })
	for _, m := range a.monitors {
		r.Monitors = append(r.Monitors, m.ind.status(m.cfg.Name))
	}
	return r
}

// groupState is the reported state of a group ("" when it has none).
func (a *Analyzer) groupState(name string) State {
	if g := a.groups[name]; g != nil && g.ind != nil {
		return g.ind.reported.State
	}
	return ""
}

// evaluate runs the indicator of every group and monitor on the interval
// just added; groups holds the interval's tally of each group with traffic.
func (a *Analyzer) evaluate(now time.Time, dur time.Duration, groups map[*groupEntry]*tally) {
	var hostSocket uint64
	for _, n := range a.hostDrops {
		hostSocket += n
	}
	var (
		active, degraded, network int
		remote                    bool
	)
	for _, g := range a.groups {
		if g.ind == nil {
			continue
		}
		t := groups[g]
		if t == nil {
			t = &tally{}
		}
		g.ind.observe(t, hostSocket)
		if g.kind == kindLoopback || !g.ind.warm() || g.ind.raw == verdictNone {
			continue
		}
		active++
		switch g.ind.raw {
		case verdictNetwork:
			network++
			degraded++
		case verdictThisHost:
			degraded++
		case verdictRemote:
			degraded++
			remote = true // a peer is at fault: not a host-wide pattern
		}
	}
	hostWide := active >= a.cfg.Health.HostWideMinGroups && degraded == active && network > 0 && !remote
	for _, g := range a.groups {
		if g.ind != nil {
			g.ind.finalize(now, hostWide, active, degraded)
		}
	}
	for _, m := range a.monitors {
		m.ind.observe(&m.cur, hostSocket)
		m.ind.finalize(now, hostWide, active, degraded)
		m.point(now, dur, m.ind.reported.State, a.cfg.Capacity)
	}
}

type verdict uint8

const (
	verdictNone verdict = iota // not enough data
	verdictHealthy
	verdictNetwork
	verdictThisHost
	verdictRemote
)

func (v verdict) state() State {
	return [...]State{StateUnknown, StateHealthy, StateNetwork, StateThisHost, StateRemote}[v]
}

func (v verdict) degraded() bool { return v >= verdictNetwork }

// baseline is a subject's learned normal, per interval with TCP traffic.
type baseline struct {
	learned, rttN, segN int
	rttSum, rttCount    float64 // EWMAs; their ratio is the sample-weighted mean RTT
	segs, retrans       float64
	rtos, resets        float64
}

// ewma moves x toward v: a plain mean over the first span values, then an
// exponential average with time constant span.
func ewma(x *float64, v float64, n, span int) {
	*x += (v - *x) / float64(min(n, span))
}

func (b *baseline) learn(t *tally, span int) {
	if !t.active() {
		return
	}
	b.learned++
	ewma(&b.rtos, float64(t.tcp.RTOs), b.learned, span)
	ewma(&b.resets, float64(t.tcp.ResetsReceived), b.learned, span)
	if sum, n := t.rttTotals(); n > 0 {
		b.rttN++
		ewma(&b.rttSum, float64(sum), b.rttN, span)
		ewma(&b.rttCount, float64(n), b.rttN, span)
	}
	if t.tcp.SegsOut > 0 {
		b.segN++
		ewma(&b.segs, float64(t.tcp.SegsOut), b.segN, span)
		ewma(&b.retrans, float64(t.tcp.RetransSegs), b.segN, span)
	}
}

func (b *baseline) rtt() float64 {
	if b.rttCount == 0 {
		return 0
	}
	return b.rttSum / b.rttCount
}

func (b *baseline) retransRatio() float64 {
	if b.segs == 0 {
		return 0
	}
	return b.retrans / b.segs
}

// indicator is the Network Health Indicator of one subject.
type indicator struct {
	h        HealthConfig
	recent   []tally  // the window, oldest first
	queue    []uint64 // receive queue sums, last QueueGrowthIntervals+1
	base     baseline
	cleanRun int // verdicts since the last degraded one

	raw    verdict // this interval's verdict, before the host-wide rule
	ev     Evidence
	why    signals // thresholds crossed
	state  State   // StateUnknown until warm; then healthy or degraded
	since  time.Time
	degRun int // consecutive degraded verdicts
	recRun int // consecutive healthy verdicts while degraded

	reported Status
}

func newIndicator(h HealthConfig) *indicator {
	return &indicator{h: h, state: StateUnknown, reported: Status{State: StateUnknown, Explanation: "no interval yet"}}
}

func (in *indicator) warm() bool { return in.base.learned >= in.h.WarmupIntervals }

// status returns the reported status under a name.
func (in *indicator) status(name string) Status {
	s := in.reported
	s.Name = name
	return s
}

// observe adds an interval and computes its verdict.
func (in *indicator) observe(t *tally, hostSocketDrops uint64) {
	h := &in.h
	if len(in.recent) == h.WindowIntervals && in.cleanRun >= h.WindowIntervals {
		in.base.learn(&in.recent[0], h.BaselineIntervals)
	}
	in.recent = pushCapped(in.recent, *t, h.WindowIntervals)
	in.queue = pushCapped(in.queue, t.rcvQueue, h.QueueGrowthIntervals+1)

	var sum tally
	ev := Evidence{WindowIntervals: len(in.recent), LearnedIntervals: in.base.learned, Connections: t.conns,
		RcvQueueBytes: t.rcvQueue, HostSocketDrops: hostSocketDrops}
	for i := range in.recent {
		r := &in.recent[i]
		sum.add(r)
		if r.zeroRcv > 0 {
			ev.ZeroRcvWindowIntervals++
		}
		if r.zeroSnd > 0 {
			ev.ZeroSndWindowIntervals++
		}
	}
	rtt, n, src := sum.rtt()
	ev.RTTUS, ev.RTTSamples, ev.RTTSource = int64(rtt+0.5), n, src
	ev.RTTBaselineUS = int64(in.base.rtt() + 0.5)
	ev.SegsOut, ev.RetransSegs, ev.RTOs = sum.tcp.SegsOut, sum.tcp.RetransSegs, sum.tcp.RTOs
	ev.RetransPercent = 100 * sum.retransRatio()
	ev.RetransBaselinePercent = 100 * in.base.retransRatio()
	window := float64(h.WindowIntervals)
	ev.RTOBaseline, ev.ResetsBaseline = in.base.rtos*window, in.base.resets*window
	ev.ResetsReceived = sum.tcp.ResetsReceived
	ev.ZeroRcvWindow, ev.ZeroSndWindow = sum.zeroRcv, sum.zeroSnd
	ev.SocketDrops, ev.Drops = sum.socketDrops, sum.drops
	ev.RcvQueueGrowing = len(in.queue) == h.QueueGrowthIntervals+1 && in.queue[len(in.queue)-1] >= h.QueueGrowthBytes
	for i := 1; i < len(in.queue) && ev.RcvQueueGrowing; i++ {
		ev.RcvQueueGrowing = in.queue[i] > in.queue[i-1]
	}

	var why signals
	why.set(sigZeroRcvWindow, ev.ZeroRcvWindowIntervals >= h.ZeroWindowIntervals)
	why.set(sigRcvQueueGrowing, ev.RcvQueueGrowing)
	why.set(sigSocketDrops, ev.SocketDrops >= uint64(h.SocketDropsMin))
	why.set(sigZeroSndWindow, ev.ZeroSndWindowIntervals >= h.ZeroWindowIntervals)
	why.set(sigResetsReceived, ev.ResetsReceived >= uint64(h.ResetsMin) && float64(ev.ResetsReceived) > h.ResetsFactor*ev.ResetsBaseline)
	if in.warm() {
		base := in.base.rtt()
		why.set(sigRTTHigh, n >= uint64(h.MinRTTSamples) && in.base.rttN > 0 &&
			rtt > h.RTTFactor*base && rtt > base+float64(h.RTTFloor.Microseconds()))
		why.set(sigRetransHigh, sum.tcp.SegsOut >= uint64(h.MinSegments) && in.base.segN > 0 &&
			ev.RetransPercent > h.RetransPercent && ev.RetransPercent > h.RetransFactor*ev.RetransBaselinePercent)
		why.set(sigRTOHigh, sum.tcp.RTOs >= uint64(h.RTOMin) && float64(sum.tcp.RTOs) > h.RTOFactor*ev.RTOBaseline)
	}
	local := why.has(sigZeroRcvWindow, sigRcvQueueGrowing, sigSocketDrops)
	remote := why.has(sigZeroSndWindow, sigResetsReceived)
	symptoms := why.has(sigRTTHigh, sigRetransHigh, sigRTOHigh)
	// Host-wide socket drops only matter as the explanation of symptoms.
	why.set(sigHostSocketDrops, symptoms && hostSocketDrops >= uint64(h.SocketDropsMin))
	enough := n >= uint64(h.MinRTTSamples) || sum.tcp.SegsOut >= uint64(h.MinSegments) || sum.tcp.RTOs > 0

	switch {
	case local:
		in.raw = verdictThisHost
	case remote:
		in.raw = verdictRemote
	case why.has(sigHostSocketDrops):
		in.raw = verdictThisHost
	case symptoms:
		in.raw = verdictNetwork
	case enough:
		in.raw = verdictHealthy
	default:
		in.raw = verdictNone
	}
	in.ev, in.why = ev, why
}

// finalize applies the host-wide rule and the hysteresis, and sets the
// reported status.
func (in *indicator) finalize(now time.Time, hostWide bool, active, degraded int) {
	v := in.raw
	if hostWide && v == verdictNetwork {
		v = verdictThisHost
		in.why.set(sigHostWide, true)
	}
	ev := in.ev
	ev.GroupsActive, ev.GroupsDegraded = active, degraded
	ev.Signals = in.why.names()
	if v.degraded() {
		in.cleanRun = 0
	} else {
		in.cleanRun++
	}

	st := Status{State: StateUnknown, Evidence: ev}
	switch {
	case !in.warm():
		st.Explanation = fmt.Sprintf("learning the baseline: %d of %d intervals with TCP traffic", in.base.learned, in.h.WarmupIntervals)
		if v.degraded() {
			st.Explanation += "; meanwhile " + in.explain(v, &ev)
		}
		in.reported = st
		return
	case in.state == StateUnknown:
		in.state, in.since = StateHealthy, now
	}

	switch {
	case v == verdictNone:
		in.degRun = 0
		st.Explanation = fmt.Sprintf("not enough data in the last %d intervals: %d RTT samples, %d segments sent (last state %s)",
			len(in.recent), ev.RTTSamples, ev.SegsOut, in.state)
		in.reported = st
		return
	case v == verdictHealthy:
		in.degRun = 0
		if in.state.Degraded() {
			in.recRun++
			if in.recRun >= in.h.RecoverIntervals {
				in.state, in.since, in.recRun = StateHealthy, now, 0
			}
		}
	default:
		in.recRun = 0
		in.degRun++
		if in.state.Degraded() {
			in.state = v.state()
		} else if in.degRun >= in.h.DegradeIntervals {
			in.state, in.since = v.state(), now
		}
	}

	st.State, st.Since = in.state, in.since
	switch {
	case in.state.Degraded() && v == verdictHealthy:
		st.Explanation = fmt.Sprintf("recovering, %d of %d healthy intervals: %s", in.recRun, in.h.RecoverIntervals, in.explain(verdictHealthy, &ev))
	case in.state.Degraded():
		st.Explanation = in.explain(v, &ev)
	case v.degraded():
		st.Explanation = fmt.Sprintf("healthy, watching (%d of %d degraded intervals): %s", in.degRun, in.h.DegradeIntervals, in.explain(v, &ev))
	default:
		st.Explanation = in.explain(verdictHealthy, &ev)
	}
	in.reported = st
}

// explain says in one line why a verdict was reached.
func (in *indicator) explain(v verdict, ev *Evidence) string {
	var parts []string
	add := func(format string, a ...any) { parts = append(parts, fmt.Sprintf(format, a...)) }
	w := in.why
	if w.has(sigHostWide) {
		add("all %d active groups are degraded at once, a host-side cause is likelier than every path failing", ev.GroupsActive)
	}
	if w.has(sigZeroRcvWindow) {
		add("this end advertised a zero receive window %d times in %d of %d intervals (the application does not read)",
			ev.ZeroRcvWindow, ev.ZeroRcvWindowIntervals, ev.WindowIntervals)
	}
	if w.has(sigRcvQueueGrowing) {
		add("the receive queue grew for %d intervals to %s", in.h.QueueGrowthIntervals, bytesText(ev.RcvQueueBytes))
	}
	if w.has(sigSocketDrops) {
		add("%d packets dropped at this group's sockets", ev.SocketDrops)
	}
	if w.has(sigZeroSndWindow) {
		add("the peer advertised a zero window %d times in %d of %d intervals (it does not read)",
			ev.ZeroSndWindow, ev.ZeroSndWindowIntervals, ev.WindowIntervals)
	}
	if w.has(sigResetsReceived) {
		add("%d resets received (baseline %.1f)", ev.ResetsReceived, ev.ResetsBaseline)
	}
	if w.has(sigRTTHigh) {
		add("RTT %s is %.1f× its baseline %s", usText(ev.RTTUS), float64(ev.RTTUS)/float64(max(ev.RTTBaselineUS, 1)), usText(ev.RTTBaselineUS))
	}
	if w.has(sigRetransHigh) {
		add("%.1f%% of %d segments retransmitted (baseline %.2f%%)", ev.RetransPercent, ev.SegsOut, ev.RetransBaselinePercent)
	}
	if w.has(sigRTOHigh) {
		add("%d retransmission timeouts (baseline %.1f)", ev.RTOs, ev.RTOBaseline)
	}
	if w.has(sigHostSocketDrops) {
		add("%d socket drops elsewhere on this host", ev.HostSocketDrops)
	}
	switch v {
	case verdictHealthy:
		parts = parts[:0]
		if ev.RTTSamples > 0 {
			add("RTT %s (baseline %s)", usText(ev.RTTUS), usText(ev.RTTBaselineUS))
		}
		if ev.SegsOut > 0 {
			add("%.2f%% retransmitted (baseline %.2f%%)", ev.RetransPercent, ev.RetransBaselinePercent)
		}
		add("%d RTOs in the last %d intervals", ev.RTOs, ev.WindowIntervals)
		return strings.Join(parts, ", ")
	case verdictNetwork:
		if ev.GroupsActive > 1 {
			add("%d of %d active groups not degraded", ev.GroupsActive-ev.GroupsDegraded, ev.GroupsActive)
		}
		add("no receiver is full")
	}
	return strings.Join(parts, "; ")
}

func usText(us int64) string {
	if us < 1000 {
		return fmt.Sprintf("%d µs", us)
	}
	return fmt.Sprintf("%.1f ms", float64(us)/1000)
}

func bytesText(n uint64) string {
	if n < 1<<20 {
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

// signals is a set of thresholds crossed.
type signals uint16

const (
	sigRTTHigh signals = 1 << iota
	sigRetransHigh
	sigRTOHigh
	sigZeroRcvWindow
	sigRcvQueueGrowing
	sigSocketDrops
	sigHostSocketDrops
	sigZeroSndWindow
	sigResetsReceived
	sigHostWide
)

// signalNames are the names of the signals in Evidence.Signals, sorted.
var signalNames = []struct {
	s    signals
	name string
}{
	{sigHostSocketDrops, "host_socket_drops"}, {sigHostWide, "host_wide"}, {sigRcvQueueGrowing, "rcv_queue_growing"},
	{sigResetsReceived, "resets_received"}, {sigRetransHigh, "retrans_high"}, {sigRTOHigh, "rto_high"},
	{sigRTTHigh, "rtt_high"}, {sigSocketDrops, "socket_drops"}, {sigZeroRcvWindow, "zero_rcv_window"},
	{sigZeroSndWindow, "zero_snd_window"},
}

func (s *signals) set(x signals, on bool) {
	if on {
		*s |= x
	}
}

// has reports whether any of xs is set.
func (s signals) has(xs ...signals) bool {
	for _, x := range xs {
		if s&x != 0 {
			return true
		}
	}
	return false
}

func (s signals) names() []string {
	var out []string
	for _, n := range signalNames {
		if s&n.s != 0 {
			out = append(out, n.name)
		}
	}
	return out
}
