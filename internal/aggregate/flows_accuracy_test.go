package aggregate_test

import (
	"fmt"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/netmeter/netmeter/internal/aggregate"
	"github.com/netmeter/netmeter/internal/attribution/procfs"
	"github.com/netmeter/netmeter/internal/snapshot"
	"github.com/netmeter/netmeter/internal/source/engine"
	"github.com/netmeter/netmeter/internal/testnet"
)

// flowRig is the engine attached to a test cgroup (so other tests' traffic
// stays out) with a Flows tracker and the real /proc resolver.
type flowRig struct {
	eng   *engine.Engine
	flows *aggregate.Flows
	cg    *testnet.Cgroup
	now   time.Time
	last  []snapshot.Process
	conns []snapshot.Connection
	bkts  []snapshot.Bucket
}

func newFlowRig(t *testing.T) *flowRig {
	t.Helper()
	testnet.RequirePrivileged(t)
	cg := testnet.NewCgroup(t)
	eng, err := engine.Open(engine.Options{Cgroup: cg.Path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	fs := procfs.NewFS(procfs.DefaultRoot)
	res, err := procfs.NewResolver(fs)
	if err != nil {
		t.Fatal(err)
	}
	return &flowRig{eng: eng, cg: cg, flows: aggregate.NewFlows(aggregate.FlowOptions{Resolver: res, SocketInodes: fs.SocketInodes})}
}

func (r *flowRig) poll(t *testing.T) {
	t.Helper()
	if err := r.read(); err != nil {
		t.Fatal(err)
	}
}

func (r *flowRig) read() error {
	rd, err := r.eng.Read()
	if err != nil {
		return err
	}
	r.now = time.Now()
	r.last, r.conns, r.bkts = r.flows.Observe(r.now, rd)
	return nil
}

// background polls every 50 ms, as a fast agent would, so short-lived
// processes are seen alive; the returned stop waits for it.
func (r *flowRig) background(t *testing.T) (stop func()) {
	done, exited := make(chan struct{}), make(chan error, 1)
	go func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				exited <- nil
				return
			case <-tick.C:
				if err := r.read(); err != nil {
					exited <- err
					return
				}
			}
		}
	}()
	return func() {
		close(done)
		if err := <-exited; err != nil {
			t.Fatal(err)
		}
	}
}

func (r *flowRig) proc(pid int) snapshot.Process {
	for _, p := range r.last {
		if p.PID == pid {
			return p
		}
	}
	return snapshot.Process{}
}

// settle polls until the given processes' totals stop changing (their
// sockets' final records have arrived).
func (r *flowRig) settle(t *testing.T, pids ...int) {
	t.Helper()
	var prev []snapshot.Traffic
	for range 100 {
		r.poll(t)
		var cur []snapshot.Traffic
		for _, pid := range pids {
			cur = append(cur, r.proc(pid).Total)
		}
		if prev != nil && fmt.Sprint(prev) == fmt.Sprint(cur) {
			return
		}
		prev = cur
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatal("process totals never settled")
}

func (r *flowRig) unattributed() snapshot.Traffic {
	var t snapshot.Traffic
	for _, b := range r.bkts {
		t = t.Add(b.Total)
	}
	return t
}

// TestProcessAttributionExact runs a server and a client as separate
// processes in the engine's cgroup and checks each pid's payload against the
// generators' ground truth (tolerance 0), the IP bytes against payload plus
// headers, and that bytes with no process stay under 0.1 %.
func TestProcessAttributionExact(t *testing.T) {
	type tc struct {
		name      string
		proto     string
		six, veth bool
		n         int64 // TCP bytes per connection, or UDP datagram size
		conns     int   // TCP connections, or UDP datagrams
	}
	cases := []tc{
		{"tcp4-loopback-long", "tcp", false, false, 32 << 20, 1},
		{"tcp6-loopback-long", "tcp", true, false, 32 << 20, 1},
		{"tcp4-loopback-1000x10KiB", "tcp", false, false, 10 << 10, 1000},
		{"tcp4-veth-long", "tcp", false, true, 32 << 20, 1},
		{"tcp6-veth-1000x10KiB", "tcp", true, true, 10 << 10, 1000},
		{"udp4-loopback", "udp", false, false, 1200, 2000},
		{"udp6-veth", "udp", true, true, 1200, 2000},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newFlowRig(t)
			var serverNS, clientNS *testnet.Netns
			var vethA0, vethB0 snapshot.LinkCounters
			host := "127.0.0.1"
			if c.six {
				host = "::1"
			}
			if c.veth {
				p := testnet.NewPair(t)
				serverNS, clientNS = p.B, p.A
				host = p.B4.String()
				if c.six {
					host = p.B6.String()
				}
				vethA0, vethB0 = procNetDev(t, p.A, testnet.PairLinkA), procNetDev(t, p.B, testnet.PairLinkB)
			}
			listen := netip.AddrPortFrom(netip.MustParseAddr(host), 0).String()
			ctx := testCtx(t)
			var srvRole, cliRole string
			var srvArgs []string
			if c.proto == "tcp" {
				srvRole, cliRole = testnet.RoleTCPServer, testnet.RoleTCPSend
				srvArgs = []string{"-listen", listen, "-conns", strconv.Itoa(c.conns)}
			} else {
				srvRole, cliRole = testnet.RoleUDPRecv, testnet.RoleUDPSend
				srvArgs = []string{"-listen", listen, "-count", strconv.Itoa(c.conns), "-wait", "30s"}
			}
			stopPolling := r.background(t)
			srv := testnet.StartChild(t, testnet.Command(t, serverNS, r.cg, srvRole, srvArgs...))
			ready, err := srv.Ready(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var cliArgs []string
			if c.proto == "tcp" {
				cliArgs = []string{"-addr", ready.Addr, "-bytes", strconv.FormatInt(c.n, 10), "-conns", strconv.Itoa(c.conns)}
			} else {
				cliArgs = []string{"-addr", ready.Addr, "-count", strconv.Itoa(c.conns), "-size", strconv.FormatInt(c.n, 10)}
			}
			cli := testnet.StartChild(t, testnet.Command(t, clientNS, r.cg, cliRole, cliArgs...))
			sent, err := cli.Wait(ctx)
			if err != nil {
				t.Fatal(err)
			}
			got, err := srv.Wait(ctx)
			if err != nil {
				t.Fatal(err)
			}
			stopPolling()
			r.settle(t, cli.Pid(), srv.Pid())

			cp, sp := r.proc(cli.Pid()), r.proc(srv.Pid())
			un := r.unattributed()
			t.Logf("ground truth: client sent %d B, server received %d B", sent.Bytes, got.Bytes)
			t.Logf("client pid %d %q: %+v", cp.PID, cp.Comm, cp.Total)
			t.Logf("server pid %d %q: %+v", sp.PID, sp.Comm, sp.Total)
			t.Logf("unattributed: %+v", un)
			for _, b := range r.bkts {
				if b.Total != (snapshot.Traffic{}) {
					t.Logf("  bucket %q cgroup %d: %+v", b.Name, b.CgroupID, b.Total)
				}
			}
			if sp.Total.RxPayload != uint64(got.Bytes) {
				// Which of the server's connections lost bytes, and how.
				for _, c := range r.conns {
					if c.Owner.PID != sp.PID && c.Local.Port != 0 && c.Total.RxPayload > 0 && c.Owner.PID != cp.PID {
						t.Logf("  connection without the server as owner: %+v", c)
					}
				}
			}
			if cp.PID == 0 || sp.PID == 0 {
				t.Fatalf("client or server missing from processes: %+v", r.last)
			}
			total := uint64(c.n) * uint64(c.conns)
			var ack uint64
			if c.proto == "tcp" {
				ack = testnet.TCPAckSize * uint64(c.conns)
			}
			if uint64(sent.Bytes) != total || uint64(got.Bytes) != total {
				t.Fatalf("generators: sent %d received %d, want %d", sent.Bytes, got.Bytes, total)
			}
			if cp.Total.TxPayload != total || cp.Total.RxPayload != ack {
				t.Errorf("client payload tx %d rx %d, want %d %d", cp.Total.TxPayload, cp.Total.RxPayload, total, ack)
			}
			if sp.Total.RxPayload != total || sp.Total.TxPayload != ack {
				t.Errorf("server payload rx %d tx %d, want %d %d", sp.Total.RxPayload, sp.Total.TxPayload, total, ack)
			}
			// IP bytes: payload plus at least one header per packet, and
			// retransmitted payload when a busy machine drops (loopback and
			// veth both drop when the backlog overflows), so there is no
			// fixed upper bound. Across the veth the kernel's own counter
			// must agree exactly: the veth counts the same packets plus a
			// 14-byte Ethernet header each, and only this test's two
			// processes use it.
			hdrMin := uint64(28)
			if c.six {
				hdrMin = 48
			}
			for _, v := range []struct {
				who      string
				ip, pkts uint64
				payload  uint64
			}{
				{"client tx", cp.Total.TxBytes, cp.Total.TxPackets, total},
				{"server rx", sp.Total.RxBytes, sp.Total.RxPackets, total},
			} {
				t.Logf("%s: %d IP bytes = payload %d + %.3f %% headers", v.who, v.ip, v.payload, 100*float64(v.ip-v.payload)/float64(v.payload))
				if v.ip < v.payload+v.pkts*hdrMin {
					t.Errorf("%s: %d IP bytes in %d packets for %d payload bytes: headers out of bounds", v.who, v.ip, v.pkts, v.payload)
				}
			}
			if c.veth {
				a := diff(vethA0, procNetDev(t, clientNS, testnet.PairLinkA))
				b := diff(vethB0, procNetDev(t, serverNS, testnet.PairLinkB))
				wantA := flow{txB: cp.Total.TxBytes + ethHdr*cp.Total.TxPackets, txP: cp.Total.TxPackets,
					rxB: cp.Total.RxBytes + ethHdr*cp.Total.RxPackets, rxP: cp.Total.RxPackets}
				wantB := flow{txB: sp.Total.TxBytes + ethHdr*sp.Total.TxPackets, txP: sp.Total.TxPackets,
					rxB: sp.Total.RxBytes + ethHdr*sp.Total.RxPackets, rxP: sp.Total.RxPackets}
				// One known gap: packets handled by a socket that is no longer
				// a full one. A client that closes before the server's FIN
				// leaves a FIN_WAIT2/TIME_WAIT mini-socket: the kernel runs no
				// cgroup hook for what it receives, and its ACKs leave through
				// the namespace's control socket (outside the test cgroup;
				// "kernel" when attached at the root). Under load, late
				// retransmissions reach a socket already destroyed and are
				// answered the same way. So each side may miss a few
				// payload-free packets per connection — never payload: every
				// missing packet is at most one header long.
				hdr := uint64(ethHdr + ipv4Hdr + tcpHdr)
				if c.six {
					hdr = ethHdr + ipv6Hdr + tcpHdr
				}
				for _, side := range []struct {
					name         string
					kernel, seen flow
				}{{"client", a, wantA}, {"server", b, wantB}} {
					k, n := side.kernel, side.seen
					if k.rxB < n.rxB || k.txB < n.txB || k.rxP < n.rxP || k.txP < n.txP {
						t.Errorf("%s: netmeter counted more than the veth: kernel %+v netmeter %+v", side.name, k, n)
						continue
					}
					gap := flow{k.rxB - n.rxB, k.txB - n.txB, k.rxP - n.rxP, k.txP - n.txP}
					if gap != (flow{}) {
						t.Logf("%s side: %d packets in and %d out not on a full socket (%d B)", side.name, gap.rxP, gap.txP, gap.rxB+gap.txB)
					}
					if gap.rxP > 2*uint64(c.conns) || gap.txP > 2*uint64(c.conns) || gap.rxB > gap.rxP*hdr || gap.txB > gap.txP*hdr ||
						(c.proto == "udp" && gap != (flow{})) {
						t.Errorf("%s: veth counters differ from the processes' IP bytes + Ethernet headers beyond payload-free packets:\nkernel %+v netmeter %+v", side.name, k, n)
					}
				}
			}
			all := cp.Total.TxBytes + cp.Total.RxBytes + sp.Total.TxBytes + sp.Total.RxBytes
			if u := un.TxBytes + un.RxBytes; float64(u) > 0.001*float64(all) {
				t.Errorf("unattributed %d B of %d B (%.3f %%), want < 0.1 %%", u, all, 100*float64(u)/float64(all))
			}
			// The kernel's comm is always known. /proc details need the
			// process alive at a reading: the 1000-connection clients live
			// for many 50 ms polls, a 32 MiB transfer may not.
			for _, p := range []snapshot.Process{cp, sp} {
				if p.Comm == "" {
					t.Errorf("pid %d has no comm", p.PID)
				}
				if c.conns == 1000 && (p.Exe == "" || p.StartTime.IsZero() || p.User != "root" || p.Cmdline == "") {
					t.Errorf("details of long-lived pid %d missing: exe %q user %q start %v", p.PID, p.Exe, p.User, p.StartTime)
				}
			}
		})
	}
}
