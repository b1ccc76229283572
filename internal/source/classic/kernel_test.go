package classic_test

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/netmeter/netmeter/internal/snapshot"
	"github.com/netmeter/netmeter/internal/source/classic"
	"github.com/netmeter/netmeter/internal/source/engine"
	"github.com/netmeter/netmeter/internal/testnet"
)

// reader is either engine's Read.
type reader interface {
	Read() (engine.Reading, error)
}

// collector polls an engine and keeps the last counters of every socket of
// one namespace, live or dead, so sockets that die between two reads count.
type collector struct {
	name   string
	eng    reader
	netns  uint32
	mu     sync.Mutex
	socks  map[uint64]engine.Socket
	kernel snapshot.Traffic
	err    error
	stop   chan struct{}
	done   chan struct{}
}

func collect(t *testing.T, name string, eng reader, netns uint64, every time.Duration) *collector {
	c := &collector{name: name, eng: eng, netns: uint32(netns), socks: map[uint64]engine.Socket{},
		stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			c.read()
			select {
			case <-c.stop:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(c.finish)
	return c
}

func (c *collector) read() {
	r, err := c.eng.Read()
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.err = err
		return
	}
	for _, list := range [][]engine.Socket{r.Live, r.Dead} {
		for _, s := range list {
			if s.Netns == c.netns {
				c.socks[s.Cookie] = s
			}
		}
	}
	if _, ok := c.eng.(*classic.Engine); ok {
		c.kernel = r.Kernel[0].Add(r.Overflow)
	}
}

func (c *collector) finish() {
	select {
	case <-c.stop:
	default:
		close(c.stop)
		<-c.done
	}
}

// byPID sums the traffic of the sockets each process owns; pid 0 holds the
// sockets without an owner.
func (c *collector) byPID() map[uint32]snapshot.Traffic {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := map[uint32]snapshot.Traffic{}
	for _, s := range c.socks {
		pid := uint32(0)
		if s.HasOwner {
			pid = s.Owner.TGID
		}
		m[pid] = m[pid].Add(s.Traffic)
	}
	return m
}

// conns counts the TCP sockets with traffic whose owner is pid and one of
// whose ends is port.
func (c *collector) conns(pid uint32, port uint16) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, s := range c.socks {
		if s.HasOwner && s.Owner.TGID == pid && s.Protocol == 6 && s.Remote.Port() != 0 && s.Traffic != (snapshot.Traffic{}) &&
			(s.Remote.Port() == port || s.Local.Port() == port) {
			n++
		}
	}
	return n
}

// openBoth opens the classic engine in ns and the eBPF engine (which sees
// every namespace) and polls both.
func openBoth(t *testing.T, ns *testnet.Netns) (cl *classic.Engine, cc, ec *collector) {
	t.Helper()
	cl, err := classic.Open(classic.Options{NetnsPath: ns.Path()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	cc = collect(t, "classic", cl, ns.Inode(), 200*time.Millisecond)
	eb, err := engine.Open(engine.Options{})
	if err != nil {
		t.Logf("eBPF engine unavailable, compared with the kernel only: %v", err)
		return cl, cc, nil
	}
	t.Cleanup(func() { eb.Close() })
	ec = collect(t, "ebpf", eb, ns.Inode(), 200*time.Millisecond)
	return cl, cc, ec
}

// loIPBytes returns lo's transmitted IP bytes and packets in ns: /proc/net/dev
// counts IP bytes.
func loIPBytes(t *testing.T, ns *testnet.Netns) (bytes, packets uint64) {
	t.Helper()
	b, err := ns.ProcNetDev()
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || strings.TrimSpace(name) != "lo" {
			continue
		}
		f := strings.Fields(rest)
		tb, _ := strconv.ParseUint(f[8], 10, 64)
		tp, _ := strconv.ParseUint(f[9], 10, 64)
		return tb, tp // lo counts IP bytes: eth_type_trans has pulled its header
	}
	t.Fatal("no lo in /proc/net/dev")
	return 0, 0
}

// runTCP starts a server and a sender in ns and waits for both results.
func runTCP(t *testing.T, ns *testnet.Netns, n int64, conns int) (server, client *testnet.Child) {
	return runTCPHold(t, ns, n, conns, 0)
}

// runTCPHold is runTCP whose connections each live at least hold.
func runTCPHold(t *testing.T, ns *testnet.Netns, n int64, conns int, hold time.Duration) (server, client *testnet.Child) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	server = testnet.StartChild(t, testnet.Command(t, ns, nil, testnet.RoleTCPServer, "-conns", strconv.Itoa(conns)))
	rep, err := server.Ready(ctx)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"-addr", rep.Addr, "-bytes", strconv.FormatInt(n, 10), "-conns", strconv.Itoa(conns)}
	role := testnet.RoleTCPSend
	if hold > 0 {
		role, args = roleHoldSend, append(args, "-hold", hold.String())
	}
	client = testnet.StartChild(t, testnet.Command(t, ns, nil, role, args...))
	if _, err := client.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*testnet.Child{client, server} {
		res, err := c.Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if res.Bytes != n*int64(conns) {
			t.Fatalf("generator moved %d bytes, want %d", res.Bytes, n*int64(conns))
		}
	}
	return server, client
}

func fmtT(tr snapshot.Traffic) string {
	return fmt.Sprintf("tx %d B (payload %d, %d pkts) rx %d B (payload %d, %d pkts)",
		tr.TxBytes, tr.TxPayload, tr.TxPackets, tr.RxBytes, tr.RxPayload, tr.RxPackets)
}

// settle waits until the engines have reported the sockets of the finished
// traffic as dead or lingering (the classic engine holds a closed socket for
// its linger period, and unknown flows for their grace period).
func settle(cs ...*collector) {
	time.Sleep(6 * time.Second)
	for _, c := range cs {
		if c != nil {
			c.finish()
			c.read()
		}
	}
}

// TestLongLoopbackTransfer: 200 MB over lo between two processes in a fresh
// namespace, measured by both engines at once and by lo's counters.
func TestLongLoopbackTransfer(t *testing.T) {
	testnet.RequirePrivileged(t)
	ns := testnet.NewNetns(t)
	cl, cc, ec := openBoth(t, ns)
	const n = 200 << 20
	server, client := runTCP(t, ns, n, 1)
	settle(cc, ec)
	kb, kp := loIPBytes(t, ns)
	st := cl.Stats()
	t.Logf("lo (kernel): %d IP bytes, %d packets; classic ring: %d packets, %d dropped, %d scans (last %v)",
		kb, kp, st.Packets, st.Drops, st.Scans, st.LastScanTime)
	sp, cp := uint32(server.Pid()), uint32(client.Pid())
	for _, c := range []*collector{cc, ec} {
		if c == nil {
			continue
		}
		if c.err != nil {
			t.Fatalf("%s: %v", c.name, c.err)
		}
		m := c.byPID()
		t.Logf("%-7s client %s", c.name, fmtT(m[cp]))
		t.Logf("%-7s server %s", c.name, fmtT(m[sp]))
		t.Logf("%-7s no owner %s", c.name, fmtT(m[0]))
	}
	m := cc.byPID()
	cli, srv := m[cp], m[sp]
	// Direction: the client sent the payload and received the 8-byte count.
	if cli.TxPayload != n || cli.RxPayload != testnet.TCPAckSize || srv.RxPayload != n || srv.TxPayload != testnet.TCPAckSize {
		t.Errorf("classic payload: client %s, server %s; want client tx %d rx %d and the reverse for the server",
			fmtT(cli), fmtT(srv), n, testnet.TCPAckSize)
	}
	// IP bytes: each packet on lo is one socket's tx and the other's rx.
	// With no ring drop the capture sees every packet lo counts: exact.
	tol := uint64(0)
	if st.Drops > 0 {
		tol = kb / 1000 // what drops may cost; they are reported
	}
	if d := absDiff(cli.TxBytes+srv.TxBytes, kb); d > tol {
		t.Errorf("classic tx IP bytes %d, lo %d (diff %d, tolerance %d)", cli.TxBytes+srv.TxBytes, kb, d, tol)
	}
	if d := absDiff(cli.RxBytes+srv.RxBytes, kb); d > tol {
		t.Errorf("classic rx IP bytes %d, lo %d (diff %d, tolerance %d)", cli.RxBytes+srv.RxBytes, kb, d, tol)
	}
	if ec != nil {
		e := ec.byPID()
		t.Logf("classic - ebpf: client tx %+d B, server rx %+d B",
			int64(cli.TxBytes)-int64(e[cp].TxBytes), int64(srv.RxBytes)-int64(e[sp].RxBytes))
		// The eBPF engine counts transmit before GSO segmentation, the
		// capture after it (one more set of headers per segment): 0.1 %.
		for _, d := range []struct {
			what     string
			cl, ebpf uint64
		}{
			{"client tx", cli.TxBytes, e[cp].TxBytes}, {"server rx", srv.RxBytes, e[sp].RxBytes},
			{"client tx payload", cli.TxPayload, e[cp].TxPayload}, {"server rx payload", srv.RxPayload, e[sp].RxPayload},
		} {
			if diff := absDiff(d.cl, d.ebpf); diff > d.ebpf/1000 {
				t.Errorf("%s: classic %d, eBPF %d (more than 0.1%% apart)", d.what, d.cl, d.ebpf)
			}
		}
	}
}

func absDiff(a, b uint64) uint64 {
	if a > b {
		return a - b
	}
	return b - a
}

// TestVethTransfer: a transfer from a process in namespace A to one in B
// over a quiet veth, watched from A only (IPv4 and IPv6): the client's
// bytes are its transmit, the peer outside the namespace is charged nothing,
// and the IP bytes are the veth's own counters less its Ethernet headers.
func TestVethTransfer(t *testing.T) {
	testnet.RequirePrivileged(t)
	pair := testnet.NewPair(t)
	for _, dst := range []netip.Addr{pair.B4, pair.B6} {
		t.Run(map[bool]string{true: "ipv4", false: "ipv6"}[dst.Is4()], func(t *testing.T) {
			cl, err := classic.Open(classic.Options{NetnsPath: pair.A.Path()})
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			cc := collect(t, "classic", cl, pair.A.Inode(), 200*time.Millisecond)
			k0, err := pair.A.LinkCounters(testnet.PairLinkA)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			const n = 50 << 20
			server := testnet.StartChild(t, testnet.Command(t, pair.B, nil, testnet.RoleTCPServer,
				"-listen", netip.AddrPortFrom(dst, 0).String()))
			rep, err := server.Ready(ctx)
			if err != nil {
				t.Fatal(err)
			}
			client := testnet.StartChild(t, testnet.Command(t, pair.A, nil, testnet.RoleTCPSend,
				"-addr", rep.Addr, "-bytes", strconv.Itoa(n)))
			for _, c := range []*testnet.Child{client, server} {
				if _, err := c.Wait(ctx); err != nil {
					t.Fatal(err)
				}
			}
			settle(cc)
			k1, err := pair.A.LinkCounters(testnet.PairLinkA)
			if err != nil {
				t.Fatal(err)
			}
			const eth = 14
			ktx := (k1.TxBytes - k0.TxBytes) - eth*(k1.TxPackets-k0.TxPackets)
			krx := (k1.RxBytes - k0.RxBytes) - eth*(k1.RxPackets-k0.RxPackets)
			m := cc.byPID()
			c := m[uint32(client.Pid())]
			st := cl.Stats()
			t.Logf("veth %s (kernel): tx %d IP bytes, rx %d; classic client %s; others %v; ring drops %d",
				testnet.PairLinkA, ktx, krx, fmtT(c), len(m)-1, st.Drops)
			if c.TxPayload != n || c.RxPayload != testnet.TCPAckSize {
				t.Errorf("client payload tx %d rx %d, want %d and %d", c.TxPayload, c.RxPayload, n, testnet.TCPAckSize)
			}
			if st.Drops == 0 && (c.TxBytes != ktx || c.RxBytes != krx) {
				t.Errorf("client IP bytes tx %d rx %d, veth says %d and %d", c.TxBytes, c.RxBytes, ktx, krx)
			}
			if len(m) != 1 || cc.kernel != (snapshot.Traffic{}) {
				t.Errorf("traffic charged to others: %v, unattributed %+v", m, cc.kernel)
			}
		})
	}
}

// TestLoopbackUDP: datagrams from a connected UDP socket to an unconnected
// receiver: the sender's payload is its transmit, the receiver's its
// receive, compared with the eBPF engine.
func TestLoopbackUDP(t *testing.T) {
	testnet.RequirePrivileged(t)
	ns := testnet.NewNetns(t)
	_, cc, ec := openBoth(t, ns)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	const count, size = 2000, 1000
	recv := testnet.StartChild(t, testnet.Command(t, ns, nil, testnet.RoleUDPRecv,
		"-count", strconv.Itoa(count), "-wait", "20s"))
	rep, err := recv.Ready(ctx)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // a periodic scan sees the receiver
	send := testnet.StartChild(t, testnet.Command(t, ns, nil, testnet.RoleUDPSend,
		"-addr", rep.Addr, "-count", strconv.Itoa(count), "-size", strconv.Itoa(size)))
	if _, err := send.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := recv.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	settle(cc, ec)
	got := uint64(res.Datagrams * size) // what arrived (lo may drop when the receiver is slow)
	for _, c := range []*collector{cc, ec} {
		if c == nil {
			continue
		}
		m := c.byPID()
		t.Logf("%-7s sender %s; receiver %s; unattributed %s", c.name, fmtT(m[uint32(send.Pid())]),
			fmtT(m[uint32(recv.Pid())]), fmtT(c.kernel))
	}
	m := cc.byPID()
	// The capture sees a datagram before the receiver's buffer may drop it.
	if r := m[uint32(recv.Pid())]; r.RxPayload < got || r.RxPayload > count*size || r.TxPayload != 0 {
		t.Errorf("receiver: %s, want rx payload from %d (%d datagrams arrived) to %d", fmtT(r), got, res.Datagrams, count*size)
	}
	// The sender's socket may close before a scan finds it: its bytes are
	// then unattributed, never someone else's.
	s := m[uint32(send.Pid())]
	if s.RxPayload != 0 || s.TxPayload+cc.kernel.TxPayload+m[0].TxPayload != count*size {
		t.Errorf("sender: %s, unattributed %s; want tx payload %d between them", fmtT(s), fmtT(cc.kernel), count*size)
	}
}
