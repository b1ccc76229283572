package aggregate

import (
	"net/netip"
	"testing"

	"github.com/netmeter/netmeter/internal/snapshot"
	"github.com/netmeter/netmeter/internal/source/engine"
)

func sock(cookie uint64, pid uint32, local, remote string, role engine.Role, tx, rx uint64) engine.Socket {
	return engine.Socket{
		Cookie: cookie, Family: 4, Protocol: 6, State: 1, Netns: 1, Role: role, HasOwner: pid != 0,
		Owner: engine.Owner{TGID: pid, Comm: "p"},
		Local: netip.MustParseAddrPort(local), Remote: netip.MustParseAddrPort(remote),
		Traffic: snapshot.Traffic{TxPayload: tx, RxPayload: rx, TxBytes: tx + 52, RxBytes: rx + 52, TxPackets: 1, RxPackets: 1},
	}
}

func procByPID(ps []snapshot.Process, pid int) snapshot.Process {
	for _, p := range ps {
		if p.PID == pid {
			return p
		}
	}
	return snapshot.Process{}
}

func TestFlowsLoopbackIsOneConnection(t *testing.T) {
	for _, tc := range []struct {
		name                string
		clientRole, srvRole engine.Role
		clientPort, srvPort string
		listener            bool
	}{
		{"roles from the handshake", engine.RoleClient, engine.RoleServer, "2000", "40000", false},
		{"older than the engine: listening port", engine.RoleUnknown, engine.RoleUnknown, "2000", "40000", true},
		{"older than the engine: higher port", engine.RoleUnknown, engine.RoleUnknown, "40000", "2000", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := NewFlows(FlowOptions{})
			cli := sock(1, 100, "127.0.0.1:"+tc.clientPort, "127.0.0.1:"+tc.srvPort, tc.clientRole, 5000, 8)
			srv := sock(2, 200, "127.0.0.1:"+tc.srvPort, "127.0.0.1:"+tc.clientPort, tc.srvRole, 8, 5000)
			r := engine.Reading{Live: []engine.Socket{cli, srv}}
			if tc.listener {
				l := sock(3, 200, "127.0.0.1:"+tc.srvPort, "0.0.0.0:0", engine.RoleUnknown, 0, 0)
				l.State = 10
				r.Live = append(r.Live, l)
			}
			procs, conns, _ := f.Observe(sec(1), r)
			var merged []snapshot.Connection
			for _, c := range conns {
				if c.Remote.Port != 0 {
					merged = append(merged, c)
				}
			}
			if len(merged) != 1 {
				t.Fatalf("%d connections, want one with two ends: %+v", len(merged), merged)
			}
			c := merged[0]
			if c.Owner.PID != 100 || c.Peer == nil || c.Peer.PID != 200 || c.Total.TxPayload != 5000 || c.PeerCookie != 2 {
				t.Errorf("connection %+v peer %+v", c, c.Peer)
			}
			// Each process keeps its own direction.
			if p := procByPID(procs, 100); p.Total.TxPayload != 5000 || p.Total.RxPayload != 8 {
				t.Errorf("client %+v", p.Total)
			}
			if p := procByPID(procs, 200); p.Total.RxPayload != 5000 || p.Total.TxPayload != 8 {
				t.Errorf("server %+v", p.Total)
			}
		})
	}
}

func TestFlowsDeltasDeathsAndTimewait(t *testing.T) {
	f := NewFlows(FlowOptions{})
	s := sock(7, 100, "10.0.0.1:40000", "10.0.0.2:80", engine.RoleClient, 1000, 0)
	f.Observe(sec(1), engine.Reading{Live: []engine.Socket{s}})
	s.Traffic.TxPayload, s.Traffic.TxBytes = 3000, 3100
	s.Dead = true
	procs, conns, _ := f.Observe(sec(2), engine.Reading{Dead: []engine.Socket{s}})
	p := procByPID(procs, 100)
	if p.Total.TxPayload != 3000 || p.Delta.TxPayload != 2000 || p.Total.TxBytes != 3100 {
		t.Fatalf("after death: total %+v delta %+v", p.Total, p.Delta)
	}
	if len(conns) != 1 || !conns[0].Closed {
		t.Fatalf("connection not closed: %+v", conns)
	}
	// The timewait socket keeps the cookie: its bytes go to the same process.
	procs, _, buckets := f.Observe(sec(3), engine.Reading{Timewait: map[uint64]snapshot.Traffic{7: {TxBytes: 52, TxPackets: 1}}})
	if p := procByPID(procs, 100); p.Total.TxBytes != 3152 || len(buckets) != 0 {
		t.Fatalf("timewait bytes: total %+v, buckets %+v", p.Total, buckets)
	}
	// An unknown cookie's timewait bytes and ownerless sockets are "kernel".
	orphan := sock(9, 0, "10.0.0.1:22", "10.0.0.3:5000", engine.RoleUnknown, 0, 0)
	orphan.Traffic = snapshot.Traffic{RxBytes: 40, RxPackets: 1}
	_, _, buckets = f.Observe(sec(4), engine.Reading{Live: []engine.Socket{orphan}, Timewait: map[uint64]snapshot.Traffic{7: {TxBytes: 52, TxPackets: 1}, 8: {RxBytes: 40, RxPackets: 1}}})
	if len(buckets) != 1 || buckets[0].Name != "kernel" || buckets[0].Total.RxBytes != 80 {
		t.Fatalf("kernel bucket %+v", buckets)
	}
}

func TestFlowsSocketVanishingWithoutRecord(t *testing.T) {
	f := NewFlows(FlowOptions{})
	s := sock(5, 100, "10.0.0.1:40000", "10.0.0.2:80", engine.RoleClient, 1000, 0)
	f.Observe(sec(1), engine.Reading{Live: []engine.Socket{s}})
	// The ring buffer was full: no final record, the socket is just gone.
	procs, conns, _ := f.Observe(sec(2), engine.Reading{})
	if len(conns) != 1 || !conns[0].Closed || procByPID(procs, 100).Total.TxPayload != 1000 {
		t.Fatalf("vanished socket: conns %+v", conns)
	}
}

func TestFlowsOwnerChangeFollowsTruth(t *testing.T) {
	f := NewFlows(FlowOptions{})
	s := sock(5, 100, "10.0.0.1:80", "10.0.0.2:4000", engine.RoleServer, 0, 1000)
	f.Observe(sec(1), engine.Reading{Live: []engine.Socket{s}})
	// A pre-forked worker (pid 200) takes the socket over and receives more.
	s.Owner.TGID, s.Traffic.RxPayload = 200, 1500
	procs, _, _ := f.Observe(sec(2), engine.Reading{Live: []engine.Socket{s}})
	if a, b := procByPID(procs, 100).Total.RxPayload, procByPID(procs, 200).Total.RxPayload; a != 1000 || b != 500 {
		t.Fatalf("before the change %d (want 1000), after %d (want 500)", a, b)
	}
}

func TestFlowsBounded(t *testing.T) {
	f := NewFlows(FlowOptions{MaxConnections: 10, MaxProcesses: 5})
	var live []engine.Socket
	for i := range 100 {
		live = append(live, sock(uint64(i+1), uint32(1000+i), "10.0.0.1:40000", "10.0.0.2:80", engine.RoleClient, 10, 0))
	}
	procs, conns, _ := f.Observe(sec(1), engine.Reading{Live: live})
	if len(conns) > 10 || len(procs) > 5 || f.Dropped() != 90 {
		t.Fatalf("%d connections, %d processes, %d dropped", len(conns), len(procs), f.Dropped())
	}
}

// Bytes no process owns go to the "kernel" bucket, or to the bucket the
// options name (the classic engine's "unattributed").
func TestUnownedBucketName(t *testing.T) {
	for _, tt := range []struct{ opt, want string }{{"", "kernel"}, {"unattributed", "unattributed"}} {
		f := NewFlows(FlowOptions{UnownedBucket: tt.opt})
		r := engine.Reading{Kernel: map[uint64]snapshot.Traffic{7: {TxBytes: 100}}}
		f.Observe(sec(1), r)
		r.Kernel[7] = snapshot.Traffic{TxBytes: 250}
		_, _, bs := f.Observe(sec(2), r)
		if len(bs) != 1 || bs[0].Name != tt.want || bs[0].CgroupID != 7 || bs[0].Total.TxBytes != 250 || bs[0].Delta.TxBytes != 150 {
			t.Errorf("UnownedBucket %q: buckets %+v, want one %q of 250 bytes (+150)", tt.opt, bs, tt.want)
		}
	}
}
