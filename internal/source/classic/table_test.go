package classic

import (
	"net/netip"
	"testing"
	"time"

	"github.com/netmeter/netmeter/internal/attribution/procfs"
	"github.com/netmeter/netmeter/internal/snapshot"
	"github.com/netmeter/netmeter/internal/source/engine"
)

func ep(s string) endpoint { return endpointOf(netip.MustParseAddrPort(s)) }

func pkt(proto uint8, src, dst string, ipBytes, payload uint64) packet {
	return packet{proto: proto, src: ep(src), dst: ep(dst), ipBytes: ipBytes, payload: payload}
}

func info(proto uint8, local, remote string, state uint8, inode uint64, pid uint32) sockInfo {
	in := sockInfo{NetSocket: procfs.NetSocket{Protocol: proto, Local: netip.MustParseAddrPort(local),
		Remote: netip.MustParseAddrPort(remote), State: state, Inode: inode}}
	if pid != 0 {
		in.HasOwner, in.Owner = true, engine.Owner{TGID: pid, Comm: "p"}
	}
	return in
}

func traffic(r []engine.Socket) map[uint64]snapshot.Traffic {
	m := map[uint64]snapshot.Traffic{}
	for _, s := range r {
		m[s.Inode] = s.Traffic
	}
	return m
}

// TestMatch charges packets through fake sockets: both ends of a loopback
// connection, an unconnected UDP server, a veth peer outside the namespace.
func TestMatch(t *testing.T) {
	now := time.Now()
	const ns = 4026531840
	tb := newTable(ns, 0, 0)
	tb.setLocal([]netip.Addr{netip.MustParseAddr("10.9.0.1")})
	tb.apply(now, []sockInfo{
		info(6, "127.0.0.1:40000", "127.0.0.1:8080", 1, 101, 11), // client
		info(6, "127.0.0.1:8080", "127.0.0.1:40000", 1, 102, 22), // server's accepted socket
		info(6, "0.0.0.0:8080", "0.0.0.0:0", 10, 103, 22),        // listener
		info(17, "0.0.0.0:53", "0.0.0.0:0", 7, 104, 33),          // unconnected UDP server
		info(6, "[::]:9090", "[::]:0", 10, 105, 44),              // dual-stack listener
		info(6, "10.9.0.1:5000", "10.9.0.2:6000", 1, 106, 55),    // to a peer outside
	})
	for _, p := range []packet{
		pkt(6, "127.0.0.1:40000", "127.0.0.1:8080", 1052, 1000), // client → server
		pkt(6, "127.0.0.1:8080", "127.0.0.1:40000", 52, 0),      // ack back
		pkt(17, "127.0.0.1:5555", "127.0.0.1:53", 60, 32),       // query from an unknown client
		pkt(6, "10.9.0.2:6000", "10.9.0.1:5000", 1500, 1448),    // from the peer
		pkt(6, "10.9.0.2:6001", "10.9.0.3:7000", 1500, 1448),    // forwarded: no end is local
	} {
		tb.account(&p)
	}
	live, _, _, _, n := tb.reading(now)
	if n != 6 {
		t.Fatalf("%d sockets, want 6", n)
	}
	got := traffic(live)
	want := map[uint64]snapshot.Traffic{
		101: {TxBytes: 1052, TxPayload: 1000, TxPackets: 1, RxBytes: 52, RxPackets: 1},
		102: {RxBytes: 1052, RxPayload: 1000, RxPackets: 1, TxBytes: 52, TxPackets: 1},
		103: {},
		104: {RxBytes: 60, RxPayload: 32, RxPackets: 1},
		105: {},
		106: {RxBytes: 1500, RxPayload: 1448, RxPackets: 1},
	}
	for ino, w := range want {
		if got[ino] != w {
			t.Errorf("socket %d: got %+v, want %+v", ino, got[ino], w)
		}
	}
	// The UDP client's end is unknown until a scan finds it.
	if len(tb.unknown) != 1 {
		t.Errorf("%d unknown flows, want 1 (the UDP client)", len(tb.unknown))
	}
	for _, s := range live {
		if s.Netns != ns || s.Cookie != uint64(ns)<<32|s.Inode {
			t.Errorf("socket %d: netns %d cookie %x", s.Inode, s.Netns, s.Cookie)
		}
	}
}

// TestRetry: traffic before the scan finds its socket is moved to it; what
// nobody claims goes to the listener of the port, else to unattributed.
func TestRetry(t *testing.T) {
	now := time.Now()
	tb := newTable(1, 0, 0)
	tb.apply(now, []sockInfo{info(6, "0.0.0.0:8080", "0.0.0.0:0", 10, 7, 22)})
	for _, p := range []packet{
		pkt(6, "127.0.0.1:40000", "127.0.0.1:8080", 60, 0),    // SYN of a client not yet scanned
		pkt(6, "127.0.0.1:8080", "127.0.0.1:40000", 60, 0),    // SYN-ACK
		pkt(6, "127.0.0.1:41000", "127.0.0.1:8080", 160, 100), // a connection no scan will see
		pkt(17, "127.0.0.1:41000", "127.0.0.1:9", 40, 12),     // nobody listens
	} {
		if !tb.account(&p) {
			t.Fatalf("no scan asked for an unknown flow")
		}
	}
	// The scan finds the first connection's two ends.
	tb.apply(now, []sockInfo{
		info(6, "0.0.0.0:8080", "0.0.0.0:0", 10, 7, 22),
		info(6, "127.0.0.1:40000", "127.0.0.1:8080", 1, 8, 11),
		info(6, "127.0.0.1:8080", "127.0.0.1:40000", 1, 9, 22),
	})
	live, _, _, _, _ := tb.reading(now)
	got := traffic(live)
	if w := (snapshot.Traffic{TxBytes: 60, TxPackets: 1, RxBytes: 60, RxPackets: 1}); got[8] != w || got[9] != w {
		t.Errorf("claimed: client %+v server %+v, want %+v each", got[8], got[9], w)
	}
	tb.expire(now.Add(defaultGrace + time.Second))
	live, _, un, _, _ := tb.reading(now.Add(defaultGrace + time.Second))
	var server, client *engine.Socket
	for i := range live {
		if live[i].Local.Port() == 8080 && live[i].Remote.Port() == 41000 {
			server = &live[i]
		}
		if live[i].Local.Port() == 41000 {
			client = &live[i]
		}
	}
	if server == nil || server.Owner.TGID != 22 || server.Traffic.RxBytes != 160 || server.Cookie>>63 != 1 {
		t.Errorf("listener fallback: %+v", server)
	}
	if client != nil {
		t.Errorf("the client end of an unseen connection has an owner: %+v", client)
	}
	// The client's end of the unseen connection and the UDP datagram's two ends.
	if w := (snapshot.Traffic{TxBytes: 200, TxPayload: 112, TxPackets: 2, RxBytes: 40, RxPayload: 12, RxPackets: 1}); un != w {
		t.Errorf("unattributed %+v, want %+v", un, w)
	}
}

// TestLingerAndDeath: a socket /proc stops listing still takes its late
// packets, then is reported dead once.
func TestLingerAndDeath(t *testing.T) {
	now := time.Now()
	tb := newTable(1, 0, 0)
	tb.apply(now, []sockInfo{info(6, "127.0.0.1:1", "127.0.0.1:2", 1, 5, 3)})
	tb.apply(now, nil)
	p := pkt(6, "127.0.0.1:1", "127.0.0.2:2", 52, 0)
	p.dst = ep("127.0.0.1:2")
	tb.account(&p)
	tb.expire(now.Add(defaultLinger))
	live, dead, _, _, n := tb.reading(now.Add(defaultLinger))
	if len(live) != 0 || len(dead) != 1 || n != 0 || !dead[0].Dead || dead[0].Traffic.TxBytes != 52 {
		t.Errorf("live %v dead %v n %d", live, dead, n)
	}
	if _, dead, _, _, _ := tb.reading(now); len(dead) != 0 {
		t.Errorf("dead twice")
	}
}

// TestBounds: a port scan fills the unknown table, not memory.
func TestBounds(t *testing.T) {
	tb := newTable(1, 4, 8)
	for port := range 100 {
		p := pkt(6, "127.0.0.1:1", "127.0.0.1:2", 40, 0)
		p.dst.port = uint16(port + 1000)
		tb.account(&p)
	}
	if len(tb.unknown) != 8 || tb.unknownFull != 2*100-8 || tb.overflow.TxPackets+tb.overflow.RxPackets != 2*100-8 {
		t.Errorf("unknown %d full %d overflow %+v", len(tb.unknown), tb.unknownFull, tb.overflow)
	}
	var many []sockInfo
	for i := range 10 {
		many = append(many, info(17, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(i+1)).String(), "0.0.0.0:0", 7, uint64(i+1), 1))
	}
	tb.apply(time.Now(), many)
	if len(tb.byInode) != 4 || tb.sockFull != 6 {
		t.Errorf("sockets %d full %d", len(tb.byInode), tb.sockFull)
	}
}

// TestSeqPayload: payload counts each byte once, whether a segment comes
// again (retransmission) or late (reordering).
func TestSeqPayload(t *testing.T) {
	var q seqs
	seg := func(seq uint32, n uint64) *packet { return &packet{proto: protoTCP, seq: seq, payload: n} }
	got := []uint64{
		q.payload(seg(1000, 100), true), // first
		q.payload(seg(1200, 100), true), // jumps over 1100-1200
		q.payload(seg(1100, 100), true), // the late one
		q.payload(seg(1100, 100), true), // again: retransmission
		q.payload(seg(1250, 100), true), // half old, half new
		q.payload(seg(0xffffffc0, 0x80), false),
		q.payload(seg(0x40, 0x10), false), // after wrapping
	}
	want := []uint64{100, 100, 100, 0, 50, 0x80, 0x10}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("segment %d: %d new bytes, want %d", i, got[i], want[i])
		}
	}
}
