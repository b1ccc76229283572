package health

import (
	"testing"
	"time"

	"github.com/netmeter/netmeter/internal/snapshot"
)

// The tests feed the real Analyzer with synthetic snapshots: each link is
// one connection's interval, as the agent would report it.

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// link is one connection during one interval.
type link struct {
	cookie     uint64
	comm       string
	pid        int
	local      string
	remote     string
	port       uint16
	tx, rx     uint64 // IP bytes
	closed     bool
	noTCP      bool   // a UDP socket, or health hooks off
	rttUS      uint32 // every RTT sample of the interval
	samples    uint64
	srttUS     uint32
	segs       uint64
	retrans    uint64
	rtos       uint64
	resetsRecv uint64
	zeroRcv    bool // this end advertises a zero window
	zeroSnd    bool // the peer does
	rcvQueue   uint32
}

func (l link) conn() snapshot.Connection {
	c := snapshot.Connection{
		Cookie: l.cookie, Proto: "tcp", Family: 4, NetnsInode: 4026531840,
		Local:  snapshot.Endpoint{Addr: l.local, Port: 40000},
		Remote: snapshot.Endpoint{Addr: l.remote, Port: l.port},
		State:  "established", Owner: snapshot.Owner{PID: l.pid, Comm: l.comm}, Closed: l.closed,
		Delta: snapshot.Traffic{TxBytes: l.tx, RxBytes: l.rx, TxPayload: l.tx * 9 / 10, RxPayload: l.rx * 9 / 10},
	}
	if c.Local.Addr == "" {
		c.Local.Addr = "192.0.2.10"
	}
	if c.Remote.Port == 0 && c.Remote.Addr != "" {
		c.Remote.Port = 443
	}
	if l.noTCP {
		c.Proto, c.State = "udp", ""
		return c
	}
	srtt := l.srttUS
	if srtt == 0 {
		srtt = l.rttUS
	}
	st := &snapshot.TCPStats{
		SRTT: srtt, Cwnd: 10, SndWnd: 65535, RcvWnd: 65535, RcvQueue: l.rcvQueue, CAState: "open",
		Delta: snapshot.TCPCounters{
			SegsOut: l.segs, RetransSegs: l.retrans, RTOs: l.rtos, ResetsReceived: l.resetsRecv,
			RTTSamples: l.samples, RTTSum: l.samples * uint64(l.rttUS),
		},
	}
	if l.samples > 0 {
		st.Interval = snapshot.RTTWindow{Samples: uint32(l.samples), Min: l.rttUS, Max: l.rttUS, Mean: l.rttUS}
	}
	if l.zeroRcv {
		st.RcvWnd = 0
	}
	if l.zeroSnd {
		st.SndWnd = 0
	}
	c.TCP = st
	return c
}

// sim drives an Analyzer one interval at a time.
type sim struct {
	t   testing.TB
	a   *Analyzer
	now time.Time
}

func newSim(t testing.TB, cfg Config) *sim {
	t.Helper()
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &sim{t: t, a: a, now: t0}
}

// step adds one 1 s interval made of links and drops, and returns the
// report after it.
func (s *sim) step(links []link, drops ...snapshot.Drop) Report {
	s.a.Add(snapshotOf(s.now, links, nil, drops...))
	s.now = s.now.Add(time.Second)
	return s.a.Health()
}

func snapshotOf(now time.Time, links []link, containers []snapshot.Container, drops ...snapshot.Drop) *snapshot.Snapshot {
	snap := &snapshot.Snapshot{Time: now, Interval: time.Second, Containers: containers, Drops: drops}
	for _, l := range links {
		snap.Connections = append(snap.Connections, l.conn())
	}
	return snap
}

// steady is a healthy path: 20 ms RTT, 200 segments and 20 samples an
// interval, no loss.
func steady(cookie uint64, comm, remote string) link {
	return link{cookie: cookie, comm: comm, pid: int(cookie), remote: remote, tx: 100_000, rx: 20_000,
		rttUS: 20_000, samples: 20, segs: 200}
}

func statusOf(t testing.TB, r Report, name string) Status {
	t.Helper()
	for _, s := range append(r.Groups, r.Monitors...) {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no status for %q in %+v", name, r)
	return Status{}
}
