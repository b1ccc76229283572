package tcphealth

import (
	"context"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cilium/ebpf/btf"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/netmeter/netmeter/internal/testnet"
)

func TestMain(m *testing.M) { testnet.Main(m) }

func open(t *testing.T, opt Options) *Source {
	t.Helper()
	testnet.RequirePrivileged(t)
	s, err := Open(opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

// sink accepts one connection in ns and counts what it reads, holding the
// connection open until the test ends.
type sink struct {
	ln   net.Listener
	got  atomic.Int64
	conn chan net.Conn
}

func newSink(t *testing.T, ns *testnet.Netns, addr netip.Addr) *sink {
	t.Helper()
	ln, err := ns.ListenTCP(context.Background(), "tcp", netip.AddrPortFrom(addr, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	s := &sink{ln: ln, conn: make(chan net.Conn, 1)}
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		s.conn <- c
		buf := make([]byte, 64<<10)
		for {
			n, err := c.Read(buf)
			s.got.Add(int64(n))
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		select {
		case c := <-s.conn:
			c.Close()
		default:
		}
	})
	return s
}

func (s *sink) port() uint16 { return netip.MustParseAddrPort(s.ln.Addr().String()).Port() }

func (s *sink) waitFor(t *testing.T, n int64, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for s.got.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("sink got %d of %d bytes", s.got.Load(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// cookieOf finds the kernel's cookie and TCP info of the socket from local
// port lport to rport in ns, through sock_diag.
func diag(t *testing.T, ns *testnet.Netns, lport, rport uint16) *netlink.InetDiagTCPInfoResp {
	t.Helper()
	// A fresh netlink socket opened inside ns (the namespace handle has
	// no sock_diag socket and would ask the caller's namespace).
	var res []*netlink.InetDiagTCPInfoResp
	if err := ns.Do(func() (err error) {
		res, err = netlink.SocketDiagTCPInfo(unix.AF_INET)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		id := r.InetDiagMsg.ID
		if id.SourcePort == lport && id.DestinationPort == rport {
			return r
		}
	}
	t.Fatalf("sock_diag: no socket %d → %d in %s", lport, rport, ns)
	return nil
}

func cookie(r *netlink.InetDiagTCPInfoResp) uint64 {
	c := r.InetDiagMsg.ID.Cookie
	return uint64(c[0]) | uint64(c[1])<<32
}

func find(t *testing.T, s *Source, ck uint64) Conn {
	t.Helper()
	r, err := s.Read()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range r.Conns {
		if c.Cookie == ck {
			return c
		}
	}
	t.Fatalf("no health record for cookie %d among %d", ck, len(r.Conns))
	return Conn{}
}

func dial(t *testing.T, ns *testnet.Netns, to netip.AddrPort) net.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := ns.Dial(ctx, "tcp", to.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func localPort(c net.Conn) uint16 { return netip.MustParseAddrPort(c.LocalAddr().String()).Port() }

// Induced random loss: every retransmitted segment is counted, and the
// count equals the kernel's own per-socket tcpi_total_retrans (sock_diag)
// and the namespace's /proc/net/snmp RetransSegs delta — exactly: they are
// the same events, read three ways.
func TestRetransmitsMatchKernel(t *testing.T) {
	s := open(t, Options{})
	p := testnet.NewPair(t, testnet.WithoutIPv6())
	srv := newSink(t, p.B, p.B4)
	if err := p.B.DropIn(srv.port(), 5); err != nil {
		t.Fatal(err)
	}
	before, err := p.A.SNMP("snmp")
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, p.A, netip.AddrPortFrom(p.B4, srv.port()))
	const n = 8 << 20
	if _, err := c.Write(make([]byte, n)); err != nil {
		t.Fatal(err)
	}
	srv.waitFor(t, n, 60*time.Second)
	// All data arrived; wait until the last ACK is in (nothing unacked).
	var d *netlink.InetDiagTCPInfoResp
	for i := 0; i < 200; i++ {
		d = diag(t, p.A, localPort(c), srv.port())
		if d.TCPInfo.Unacked == 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	after, err := p.A.SNMP("snmp")
	if err != nil {
		t.Fatal(err)
	}
	h := find(t, s, cookie(d))
	snmp := after["Tcp"]["RetransSegs"] - before["Tcp"]["RetransSegs"]
	tot := h.Stats.Total
	t.Logf("netmeter: retrans %d (fast %d, rto %d), rtos %d, segs out %d; tcpi_total_retrans %d; snmp RetransSegs Δ %d",
		tot.RetransSegs, tot.FastRetrans, tot.RTORetrans, tot.RTOs, tot.SegsOut, d.TCPInfo.Total_retrans, snmp)
	if tot.RetransSegs == 0 {
		t.Fatal("5 % loss produced no retransmission")
	}
	if tot.RetransSegs != uint64(d.TCPInfo.Total_retrans) {
		t.Errorf("retransmitted segments %d, tcpi_total_retrans %d", tot.RetransSegs, d.TCPInfo.Total_retrans)
	}
	if int64(tot.RetransSegs) != snmp {
		t.Errorf("retransmitted segments %d, /proc/net/snmp RetransSegs Δ %d", tot.RetransSegs, snmp)
	}
	if tot.FastRetrans+tot.RTORetrans != tot.RetransSegs {
		t.Errorf("fast %d + rto %d ≠ total %d", tot.FastRetrans, tot.RTORetrans, tot.RetransSegs)
	}
	if tot.SegsOut != uint64(d.TCPInfo.Segs_out) {
		t.Errorf("segs out %d, tcpi_segs_out %d", tot.SegsOut, d.TCPInfo.Segs_out)
	}
	if h.Stats.Setup == 0 {
		t.Error("no handshake time for a connection opened under the hooks")
	}
}

// Queueing delay (a token bucket far below the sender's rate) must show up
// in the RTT samples of the interval and in the smoothed RTT.
func TestQueueingDelayRaisesRTT(t *testing.T) {
	s := open(t, Options{})
	p := testnet.NewPair(t, testnet.WithoutIPv6())
	srv := newSink(t, p.B, p.B4)
	c := dial(t, p.A, netip.AddrPortFrom(p.B4, srv.port()))
	d := diag(t, p.A, localPort(c), srv.port())
	ck := cookie(d)

	send := func(n int) Conn {
		t.Helper()
		find(t, s, ck) // start a new RTT window
		start := srv.got.Load()
		if _, err := c.Write(make([]byte, n)); err != nil {
			t.Fatal(err)
		}
		srv.waitFor(t, start+int64(n), 60*time.Second)
		return find(t, s, ck)
	}
	fast := send(1 << 20)
	// 2 Mbit/s with a 256 KiB queue: up to ~1 s of queueing.
	if err := p.A.Shape(testnet.PairLinkA, 250_000, 256<<10); err != nil {
		t.Fatal(err)
	}
	slow := send(512 << 10)
	t.Logf("unshaped: %d samples, mean %d µs (min %d max %d), srtt %d µs; shaped: %d samples, min %d max %d µs, srtt %d µs",
		fast.Stats.Interval.Samples, fast.Stats.Interval.Mean, fast.Stats.Interval.Min, fast.Stats.Interval.Max, fast.Stats.SRTT,
		slow.Stats.Interval.Samples, slow.Stats.Interval.Min, slow.Stats.Interval.Max, slow.Stats.SRTT)
	t.Logf("shaped totals %+v", slow.Stats.Total)
	if !fast.WindowValid || !slow.WindowValid {
		t.Fatal("no RTT samples in a window with traffic")
	}
	if slow.Stats.Interval.Max < 50_000 || slow.Stats.Interval.Max < 10*fast.Stats.Interval.Max {
		t.Errorf("max RTT with a 2 Mbit/s queue %d µs, without %d µs: want ≥ 50 ms and ≥ 10×", slow.Stats.Interval.Max, fast.Stats.Interval.Max)
	}
	if slow.Stats.SRTT < 20_000 {
		t.Errorf("smoothed RTT under queueing %d µs, want ≥ 20 ms", slow.Stats.SRTT)
	}
	if slow.Stats.Total.RTTSamples <= fast.Stats.Total.RTTSamples {
		t.Errorf("RTT sample count did not grow: %d → %d", fast.Stats.Total.RTTSamples, slow.Stats.Total.RTTSamples)
	}
}

// A peer that goes silent makes the sender time out: RTO events and
// after-timeout retransmissions are counted, as the kernel counts them.
func TestRTOWhenPeerSilent(t *testing.T) {
	s := open(t, Options{})
	p := testnet.NewPair(t, testnet.WithoutIPv6())
	srv := newSink(t, p.B, p.B4)
	c := dial(t, p.A, netip.AddrPortFrom(p.B4, srv.port()))
	if _, err := c.Write(make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	srv.waitFor(t, 1000, 10*time.Second)
	if err := p.B.DropIn(srv.port(), 100); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(make([]byte, 10000)); err != nil {
		t.Fatal(err)
	}
	// RTO starts at ≥ 200 ms and doubles: 200+400+800 ms.
	time.Sleep(1600 * time.Millisecond)
	d := diag(t, p.A, localPort(c), srv.port())
	h := find(t, s, cookie(d))
	tot := h.Stats.Total
	t.Logf("rtos %d, rto retrans %d, fast %d, total %d (tcpi_total_retrans %d, tcpi_retransmits %d, backoff %d), ca %s",
		tot.RTOs, tot.RTORetrans, tot.FastRetrans, tot.RetransSegs, d.TCPInfo.Total_retrans, d.TCPInfo.Retransmits, d.TCPInfo.Backoff, h.Stats.CAState)
	if tot.RTOs < 2 {
		t.Errorf("RTO events %d after 1.6 s of silence, want ≥ 2", tot.RTOs)
	}
	if tot.RTOs != uint64(d.TCPInfo.Retransmits) {
		t.Errorf("RTO events %d, tcpi_retransmits (consecutive timeouts) %d", tot.RTOs, d.TCPInfo.Retransmits)
	}
	if tot.RTORetrans == 0 || tot.RetransSegs != uint64(d.TCPInfo.Total_retrans) {
		t.Errorf("rto retrans %d, total %d vs tcpi_total_retrans %d", tot.RTORetrans, tot.RetransSegs, d.TCPInfo.Total_retrans)
	}
	if h.Stats.CAState != "loss" {
		t.Errorf("congestion state %q, want loss", h.Stats.CAState)
	}
}

// udpDrops returns the drops column of the socket bound to port in
// /proc/net/udp of ns.
func udpDrops(t *testing.T, ns *testnet.Netns, port uint16) int64 {
	t.Helper()
	b, err := ns.ProcNet("udp")
	if err != nil {
		t.Fatal(err)
	}
	hex := ":" + strings.ToUpper(strconv.FormatUint(uint64(port)|0x10000, 16)[1:])
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) >= 13 && strings.HasSuffix(f[1], hex) {
			v, err := strconv.ParseInt(f[len(f)-1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	t.Fatalf("no UDP socket on port %d in %s", port, ns)
	return 0
}

// A receive buffer that is never read drops with SOCKET_RCVBUFF, charged to
// that socket; a netfilter drop rule drops with NETFILTER_DROP on the
// receiving interface. Counts equal the kernel's.
func TestDropReasons(t *testing.T) {
	s := open(t, Options{})
	p := testnet.NewPair(t, testnet.WithoutIPv6())
	var full, filtered *net.UDPConn
	err := p.B.Do(func() (err error) {
		if full, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(p.B4, 0))); err != nil {
			return err
		}
		if err = full.SetReadBuffer(4096); err != nil {
			return err
		}
		filtered, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(p.B4, 0)))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer full.Close()
	defer filtered.Close()
	fullPort := netip.MustParseAddrPort(full.LocalAddr().String()).Port()
	filtPort := netip.MustParseAddrPort(filtered.LocalAddr().String()).Port()
	if err := p.B.DropIn(filtPort, 100); err != nil {
		t.Fatal(err)
	}
	before, err := p.B.SNMP("snmp")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const k, size = 200, 1000
	for _, port := range []uint16{fullPort, filtPort} {
		if _, err := testnet.SendUDP(ctx, p.A.Dial, netip.AddrPortFrom(p.B4, port).String(), k, size); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(100 * time.Millisecond)
	after, err := p.B.SNMP("snmp")
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Read()
	if err != nil {
		t.Fatal(err)
	}
	ifindex, err := p.B.LinkIndex(testnet.PairLinkB)
	if err != nil {
		t.Fatal(err)
	}
	var rcvbuf, nf DropCount
	var rcvbufCookies = map[uint64]bool{}
	for key, v := range r.Drops {
		if uint64(key.Netns) != p.B.Inode() && key.Cookie == 0 {
			continue
		}
		switch s.ReasonName(key.Reason) {
		case "SOCKET_RCVBUFF":
			if key.Proto == unix.IPPROTO_UDP && key.Family == 4 {
				rcvbuf.Packets += v.Packets
				rcvbuf.Bytes += v.Bytes
				rcvbufCookies[key.Cookie] = true
			}
		case "NETFILTER_DROP":
			if uint64(key.Netns) == p.B.Inode() {
				if key.Ifindex != uint32(ifindex) || key.Proto != unix.IPPROTO_UDP {
					t.Errorf("netfilter drop at ifindex %d proto %d, want %d (%s), udp", key.Ifindex, key.Proto, ifindex, testnet.PairLinkB)
				}
				nf.Packets += v.Packets
				nf.Bytes += v.Bytes
			}
		}
	}
	procDrops := udpDrops(t, p.B, fullPort)
	snmp := after["Udp"]["RcvbufErrors"] - before["Udp"]["RcvbufErrors"]
	t.Logf("SOCKET_RCVBUFF %d pkts %d B (sockets %d); /proc/net/udp drops %d; snmp RcvbufErrors Δ %d; NETFILTER_DROP %d pkts %d B",
		rcvbuf.Packets, rcvbuf.Bytes, len(rcvbufCookies), procDrops, snmp, nf.Packets, nf.Bytes)
	if rcvbuf.Packets == 0 || int64(rcvbuf.Packets) != procDrops || int64(rcvbuf.Packets) != snmp {
		t.Errorf("SOCKET_RCVBUFF drops %d; the socket's own count %d, snmp %d", rcvbuf.Packets, procDrops, snmp)
	}
	if len(rcvbufCookies) != 1 || rcvbufCookies[0] {
		t.Errorf("receive-buffer drops charged to sockets %v, want exactly the full one", rcvbufCookies)
	}
	if nf.Packets != k || nf.Bytes != k*(size+8+20) {
		t.Errorf("NETFILTER_DROP %d packets %d bytes, want %d and %d", nf.Packets, nf.Bytes, k, k*(size+8+20))
	}
}

func TestReasonNames(t *testing.T) {
	e := &btf.Enum{Name: "skb_drop_reason", Values: []btf.EnumValue{
		{Name: "SKB_NOT_DROPPED_YET", Value: 0}, {Name: "SKB_CONSUMED", Value: 1},
		{Name: "SKB_DROP_REASON_NOT_SPECIFIED", Value: 2}, {Name: "SKB_DROP_REASON_NETFILTER_DROP", Value: 12},
	}}
	got := reasonNames(e)
	for code, want := range map[uint32]string{0: "NOT_DROPPED_YET", 1: "CONSUMED", 2: "NOT_SPECIFIED", 12: "NETFILTER_DROP"} {
		if got[code] != want {
			t.Errorf("reason %d: %q, want %q", code, got[code], want)
		}
	}
	s := &Source{reasons: got}
	if n := s.ReasonName(999); n != "REASON_999" {
		t.Errorf("unknown reason named %q", n)
	}
	// The running kernel's names, when it has BTF.
	if k := dropReasons(); len(k) > 0 && k[12] != "NETFILTER_DROP" && k[6] != "SOCKET_RCVBUFF" {
		t.Errorf("kernel BTF drop reasons look wrong: 6=%q 12=%q", k[6], k[12])
	}
}

var _ = io.EOF
