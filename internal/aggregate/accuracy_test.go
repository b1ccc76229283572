package aggregate_test

import (
	"context"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/netmeter/netmeter/internal/aggregate"
	"github.com/netmeter/netmeter/internal/snapshot"
	"github.com/netmeter/netmeter/internal/source/iface"
	"github.com/netmeter/netmeter/internal/testnet"
)

func TestMain(m *testing.M) { testnet.Main(m) }

// Header bytes an interface counts per packet, besides the payload. A veth
// counts L2 frames: Ethernet (14, no FCS) + IP + transport header.
const (
	ethHdr  = 14
	ipv4Hdr = 20
	ipv6Hdr = 40
	udpHdr  = 8
	// tcpHdr is TCP with the timestamp option (Linux default): 20 + 12.
	tcpHdr = 32
	// synOpts is what SYN and SYN-ACK carry beyond tcpHdr: MSS (4),
	// SACK-permitted (2) and window scale (3) + NOP (1) = 10 more, minus the
	// 2 NOPs that pad timestamps in other segments: 8.
	synOpts = 8
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// side reads one end of the veth the way netmeter does, and the kernel's own
// /proc/net/dev for comparison.
type side struct {
	ns   *testnet.Netns
	link string
	loop *aggregate.Loop
}

func newSide(t *testing.T, ns *testnet.Netns, link string) *side {
	t.Helper()
	src, err := iface.OpenNetlink(ns.Path())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return &side{ns: ns, link: link, loop: &aggregate.Loop{
		Source: src, Interval: time.Second,
		Tracker: aggregate.NewInterfaces(aggregate.Options{NetnsInode: ns.Inode()}),
	}}
}

// newRig makes a quiet Pair and netmeter readers of both veth ends, polled
// once for the baseline. dst is B's IPv6 or IPv4 address.
func newRig(t *testing.T, six bool) (p *testnet.Pair, dst netip.Addr, a, b *side) {
	t.Helper()
	p = testnet.NewPair(t)
	dst = p.B4
	if six {
		dst = p.B6
	}
	a, b = newSide(t, p.A, testnet.PairLinkA), newSide(t, p.B, testnet.PairLinkB)
	a.poll(t)
	b.poll(t)
	return p, dst, a, b
}

// poll returns netmeter's view of the link.
func (s *side) poll(t *testing.T) snapshot.Interface {
	t.Helper()
	snap, err := s.loop.Poll()
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range snap.Interfaces {
		if i.Name == s.link {
			return i
		}
	}
	t.Fatalf("%s not in snapshot of %s", s.link, s.ns)
	return snapshot.Interface{}
}

// kernel returns the link's counters from /proc/net/dev in its namespace.
func (s *side) kernel(t *testing.T) snapshot.LinkCounters {
	t.Helper()
	return procNetDev(t, s.ns, s.link)
}

func procNetDev(t *testing.T, ns *testnet.Netns, link string) snapshot.LinkCounters {
	t.Helper()
	c, err := ns.LinkCounters(link)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type flow struct{ rxB, txB, rxP, txP uint64 }

func diff(a, b snapshot.LinkCounters) flow {
	return flow{b.RxBytes - a.RxBytes, b.TxBytes - a.TxBytes, b.RxPackets - a.RxPackets, b.TxPackets - a.TxPackets}
}

func totals(i snapshot.Interface) flow {
	return flow{i.Total.RxBytes, i.Total.TxBytes, i.Total.RxPackets, i.Total.TxPackets}
}

// TestVethUDPExact sends K datagrams of S payload bytes across a quiet veth.
// Ground truth: the receiver counts K*S payload bytes; each datagram adds
// exactly UDP + IP + Ethernet headers on the wire, and nothing else crosses
// the veth (no ARP/ND, see testnet.Pair). netmeter must report exactly
// K*(S+headers) on both ends, equal to the kernel's /proc/net/dev deltas.
// Tolerance: zero.
func TestVethUDPExact(t *testing.T) {
	testnet.RequirePrivileged(t)
	const k, size = 2000, 1200
	for _, v := range []struct {
		name string
		six  bool
		hdr  uint64
	}{
		{"ipv4", false, udpHdr + ipv4Hdr + ethHdr},
		{"ipv6", true, udpHdr + ipv6Hdr + ethHdr},
	} {
		t.Run(v.name, func(t *testing.T) {
			p, dst, a, b := newRig(t, v.six)
			ctx := testCtx(t)
			ka0, kb0 := a.kernel(t), b.kernel(t)

			c, err := p.B.ListenUDP(ctx, "udp", netip.AddrPortFrom(dst, 0).String())
			if err != nil {
				t.Fatal(err)
			}
			r := testnet.ReceiveUDP(c)
			defer r.Close()
			sent, err := testnet.SendUDP(ctx, p.A.Dial, r.Addr().String(), k, size)
			if err != nil {
				t.Fatal(err)
			}
			got, err := r.Wait(ctx, k)
			if err != nil || got.Bytes != k*size || got.Lost != 0 {
				t.Fatalf("receiver got %+v, %v; want %d bytes", got, err, k*size)
			}

			ia, ib := a.poll(t), b.poll(t)
			ka, kb := diff(ka0, a.kernel(t)), diff(kb0, b.kernel(t))
			wire := uint64(k) * (size + v.hdr)
			t.Logf("payload %d B in %d datagrams (sent %d); headers %d B each; netmeter A tx %d B/%d pkts, B rx %d B/%d pkts; kernel A tx %d, B rx %d",
				got.Bytes, got.Datagrams, sent.Datagrams, v.hdr, ia.Total.TxBytes, ia.Total.TxPackets, ib.Total.RxBytes, ib.Total.RxPackets, ka.txB, kb.rxB)
			want := flow{txB: wire, txP: k}
			if totals(ia) != want || ka != want {
				t.Errorf("sender end: netmeter %+v, kernel %+v, want %+v", totals(ia), ka, want)
			}
			want = flow{rxB: wire, rxP: k}
			if totals(ib) != want || kb != want {
				t.Errorf("receiver end: netmeter %+v, kernel %+v, want %+v", totals(ib), kb, want)
			}
			if ia.Delta.TxBytes != wire || ib.Delta.RxBytes != wire {
				t.Errorf("interval deltas: A tx %d, B rx %d, want %d", ia.Delta.TxBytes, ib.Delta.RxBytes, wire)
			}
		})
	}
}

// TestVethTCPExact sends N bytes over one TCP connection. The veth counts
// GSO super-packets, so the number of packets is the kernel's choice, but
// every packet carries exactly one Ethernet+IP+TCP(timestamps) header and the
// two SYNs 8 option bytes more: bytes = payload + packets*header + 8, on each
// side, and netmeter must equal /proc/net/dev exactly. Payload: N from A to
// B, the server's 8-byte count from B to A.
func TestVethTCPExact(t *testing.T) {
	testnet.RequirePrivileged(t)
	const n = 4 << 20
	for _, v := range []struct {
		name string
		six  bool
		hdr  uint64
	}{
		{"ipv4", false, tcpHdr + ipv4Hdr + ethHdr},
		{"ipv6", true, tcpHdr + ipv6Hdr + ethHdr},
	} {
		t.Run(v.name, func(t *testing.T) {
			p, dst, a, b := newRig(t, v.six)
			ctx := testCtx(t)
			ka0, kb0 := a.kernel(t), b.kernel(t)
			retrans0 := retransSegs(t, p.A) + retransSegs(t, p.B)

			ln, err := p.B.ListenTCP(ctx, "tcp", netip.AddrPortFrom(dst, 0).String())
			if err != nil {
				t.Fatal(err)
			}
			s := testnet.ServeTCP(ln)
			defer s.Close()
			if _, err := testnet.SendTCP(ctx, p.A.Dial, s.Addr().String(), n, 1); err != nil {
				t.Fatal(err)
			}
			got, err := s.Wait(ctx, 1)
			if err != nil || got.Bytes != n {
				t.Fatalf("server got %+v, %v; want %d", got, err, n)
			}
			// The last ACK of the close may still be in flight: wait until
			// both ends' counters are still.
			settle(t, a, b)

			ia, ib := a.poll(t), b.poll(t)
			ka, kb := diff(ka0, a.kernel(t)), diff(kb0, b.kernel(t))
			t.Logf("payload %d B; A tx %d B/%d pkts, B tx %d B/%d pkts (kernel A %+v B %+v)",
				n, ia.Total.TxBytes, ia.Total.TxPackets, ib.Total.TxBytes, ib.Total.TxPackets, ka, kb)
			if totals(ia) != ka || totals(ib) != kb {
				t.Errorf("netmeter differs from /proc/net/dev: A %+v vs %+v, B %+v vs %+v", totals(ia), ka, totals(ib), kb)
			}
			// With a loss (the receiver's backlog overflows when the machine
			// is busy) TCP retransmits payload and the receiver's ACKs carry
			// SACK blocks: bytes only grow. The exact formula holds when the
			// kernel retransmitted nothing.
			retrans := retransSegs(t, p.A) + retransSegs(t, p.B) - retrans0
			check := func(end string, got, payload, pkts uint64) {
				want := payload + pkts*v.hdr + synOpts
				switch {
				case got < want:
					t.Errorf("%s tx %d B, below payload %d + %d pkts × %d + %d = %d", end, got, payload, pkts, v.hdr, synOpts, want)
				case got != want && retrans == 0:
					t.Errorf("%s tx %d B with no retransmission, want payload %d + %d pkts × %d + %d = %d", end, got, payload, pkts, v.hdr, synOpts, want)
				case got != want:
					t.Logf("%s tx %d B = formula %d + %d B from %d retransmitted segments and SACK options", end, got, want, got-want, retrans)
				}
			}
			check("A", ia.Total.TxBytes, n, ia.Total.TxPackets)
			check("B", ib.Total.TxBytes, testnet.TCPAckSize, ib.Total.TxPackets)
			if ia.Total.TxBytes != ib.Total.RxBytes || ib.Total.TxBytes != ia.Total.RxBytes {
				t.Errorf("the two ends disagree: A %+v B %+v", totals(ia), totals(ib))
			}
		})
	}
}

// settle waits until neither end's kernel counters move for 100 ms.
func settle(t *testing.T, sides ...*side) {
	t.Helper()
	var last []snapshot.LinkCounters
	for range 50 {
		var cur []snapshot.LinkCounters
		for _, s := range sides {
			cur = append(cur, s.kernel(t))
		}
		if last != nil && equal(last, cur) {
			return
		}
		last = cur
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("counters never settled")
}

func equal(a, b []snapshot.LinkCounters) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestRecreatedMidRun runs the real loop with link events. Between two
// polls the veth carries K1 datagrams, is deleted and re-created (new
// ifindex, counters from zero) and carries K2 more. Totals must be exactly
// (K1+K2) datagrams: the K1 bytes are known only from the deletion event's
// final counters, the K2 bytes only from the new interface.
func TestRecreatedMidRun(t *testing.T) {
	testnet.RequirePrivileged(t)
	const k1, k2, size = 300, 500, 1000
	const frame = size + udpHdr + ipv4Hdr + ethHdr
	p := testnet.NewPair(t, testnet.WithoutIPv6())
	ctx := testCtx(t)
	src, err := iface.OpenNetlink(p.A.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	// A long interval: the only readings are the baseline and the one the
	// test waits for, so nothing but the deletion event can save K1.
	loop := &aggregate.Loop{Source: src, Interval: 3 * time.Second, Tracker: aggregate.NewInterfaces(aggregate.Options{})}
	out := make(chan snapshot.Snapshot, 4)
	runCtx, stop := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- loop.Run(runCtx, out) }()
	defer func() {
		stop()
		if err := <-errc; err != nil {
			t.Errorf("loop: %v", err)
		}
	}()
	base := <-out
	start := time.Now()
	index0 := find(t, base, testnet.PairLinkA).Index
	k0 := procNetDev(t, p.A, testnet.PairLinkA)

	send := func(k int) {
		t.Helper()
		c, err := p.B.ListenUDP(ctx, "udp4", netip.AddrPortFrom(p.B4, 0).String())
		if err != nil {
			t.Fatal(err)
		}
		r := testnet.ReceiveUDP(c)
		defer r.Close()
		if _, err := testnet.SendUDP(ctx, p.A.Dial, r.Addr().String(), k, size); err != nil {
			t.Fatal(err)
		}
		if got, err := r.Wait(ctx, k); err != nil || got.Datagrams != k {
			t.Fatalf("received %+v, %v", got, err)
		}
	}
	send(k1)
	kBefore := diff(k0, procNetDev(t, p.A, testnet.PairLinkA)) // kernel's count of the first life
	time.Sleep(50 * time.Millisecond)                          // let the event listener catch up with nothing pending
	if err := p.Recreate(); err != nil {
		t.Fatal(err)
	}
	send(k2)
	kAfter := diff(snapshot.LinkCounters{}, procNetDev(t, p.A, testnet.PairLinkA)) // the new life counts from zero
	if time.Since(start) > 2*time.Second {
		t.Logf("warning: traffic took %v; a poll may have happened in between", time.Since(start))
	}
	s := <-out
	got := find(t, s, testnet.PairLinkA)
	t.Logf("first life: kernel tx %d B/%d pkts; second life: kernel tx %d B/%d pkts; netmeter total tx %d B/%d pkts; ifindex %d → %d",
		kBefore.txB, kBefore.txP, kAfter.txB, kAfter.txP, got.Total.TxBytes, got.Total.TxPackets, index0, got.Index)
	if got.Index == index0 {
		t.Fatalf("ifindex did not change (%d): the veth was not re-created", got.Index)
	}
	if kBefore.txB != k1*frame || kAfter.txB != k2*frame {
		t.Fatalf("kernel counted %d and %d B, want %d and %d (the veth was not quiet)", kBefore.txB, kAfter.txB, k1*frame, k2*frame)
	}
	if want := uint64((k1 + k2) * frame); got.Total.TxBytes != want || got.Total.TxPackets != k1+k2 {
		t.Errorf("netmeter total tx %d B/%d pkts, want %d B/%d pkts", got.Total.TxBytes, got.Total.TxPackets, want, k1+k2)
	}
	if !got.Present {
		t.Error("re-created interface reported as gone")
	}
}

func find(t *testing.T, s snapshot.Snapshot, name string) snapshot.Interface {
	t.Helper()
	for _, i := range s.Interfaces {
		if i.Name == name {
			return i
		}
	}
	t.Fatalf("%s not in snapshot", name)
	return snapshot.Interface{}
}

// TestProcFSAgreesWithNetlink reads the same quiet namespace through both
// sources after known traffic.
func TestProcFSAgreesWithNetlink(t *testing.T) {
	testnet.RequirePrivileged(t)
	p := testnet.NewPair(t)
	ctx := testCtx(t)
	c, err := p.B.ListenUDP(ctx, "udp4", netip.AddrPortFrom(p.B4, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	r := testnet.ReceiveUDP(c)
	defer r.Close()
	if _, err := testnet.SendUDP(ctx, p.A.Dial, r.Addr().String(), 100, 500); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Wait(ctx, 100); err != nil {
		t.Fatal(err)
	}
	nl, err := iface.OpenNetlink(p.A.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer nl.Close()
	fromNL, err := nl.Links()
	if err != nil {
		t.Fatal(err)
	}
	fromProc, err := iface.NewProcFS(p.A.Path()).Links()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]iface.Link{}
	for _, l := range fromProc {
		byName[l.Name] = l
	}
	for _, l := range fromNL {
		pl, ok := byName[l.Name]
		if !ok {
			t.Errorf("%s missing from procfs", l.Name)
			continue
		}
		if diff(pl.Counters, l.Counters) != (flow{}) {
			t.Errorf("%s: netlink %+v, procfs %+v", l.Name, l.Counters, pl.Counters)
		}
	}
	var veth iface.Link
	for _, l := range fromNL {
		if l.Name == testnet.PairLinkA {
			veth = l
		}
	}
	if veth.Kind != "veth" || veth.OperState != "up" || !veth.AdminUp || !veth.Carrier || veth.MTU != p.MTU || veth.MAC != p.MACA.String() || veth.Qdisc == "" || veth.SpeedMbps == 0 {
		t.Errorf("veth attributes: %+v", veth)
	}
	if veth.Counters.TxPackets != 100 || veth.Counters.TxBytes != 100*(500+udpHdr+ipv4Hdr+ethHdr) {
		t.Errorf("veth counters %+v", veth.Counters)
	}
}

// retransSegs reads Tcp RetransSegs from /proc/net/snmp in ns.
func retransSegs(t *testing.T, ns *testnet.Netns) uint64 {
	t.Helper()
	var data []byte
	if err := ns.Do(func() (err error) {
		data, err = os.ReadFile("/proc/thread-self/net/snmp")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var head []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Tcp:" {
			continue
		}
		if head == nil {
			head = f
			continue
		}
		for i, h := range head {
			if h == "RetransSegs" && i < len(f) {
				v, err := strconv.ParseUint(f[i], 10, 64)
				if err != nil {
					t.Fatal(err)
				}
				return v
			}
		}
	}
	t.Fatal("no Tcp RetransSegs in /proc/net/snmp")
	return 0
}
