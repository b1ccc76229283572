package testnet

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func threadNetnsInode(t testing.TB) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat("/proc/thread-self/ns/net", &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

func TestNetnsDo(t *testing.T) {
	RequirePrivileged(t)
	ns := NewNetns(t)

	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	host := threadNetnsInode(t)
	if ns.Inode() == host {
		t.Fatalf("new netns has the host's inode %d", host)
	}
	var inside uint64
	if err := ns.Do(func() error { inside = threadNetnsInode(t); return nil }); err != nil {
		t.Fatal(err)
	}
	if inside != ns.Inode() {
		t.Errorf("inside Do: netns inode %d, want %d", inside, ns.Inode())
	}
	if got := threadNetnsInode(t); got != host {
		t.Errorf("after Do: thread in netns %d, want host %d", got, host)
	}

	// /proc/thread-self/net/dev and /proc/sys/net follow the thread's netns.
	b, err := ns.ProcNetDev()
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), ":"); n != 1 || !strings.Contains(string(b), "lo:") {
		t.Errorf("netns /proc/net/dev should list only lo:\n%s", b)
	}
	hostV, err := (*Netns)(nil).ReadSysctl("net.ipv4.ip_default_ttl")
	if err != nil {
		t.Fatal(err)
	}
	want := "63"
	if hostV == want {
		want = "62"
	}
	if err := ns.Sysctl("net.ipv4.ip_default_ttl", want); err != nil {
		t.Fatal(err)
	}
	if got, _ := ns.ReadSysctl("net.ipv4.ip_default_ttl"); got != want {
		t.Errorf("netns ip_default_ttl = %s, want %s", got, want)
	}
	if got, _ := (*Netns)(nil).ReadSysctl("net.ipv4.ip_default_ttl"); got != hostV {
		t.Errorf("host ip_default_ttl changed to %s (was %s)", got, hostV)
	}
	if err := ns.Sysctl("kernel.hostname", "x"); err == nil {
		t.Error("Sysctl wrote a non-net key")
	}
	if err := (*Netns)(nil).Sysctl("net.ipv4.ip_default_ttl", "64"); err == nil {
		t.Error("Sysctl wrote the host's namespace")
	}
}

func TestNetnsCleanup(t *testing.T) {
	RequirePrivileged(t)
	var path string
	t.Run("create", func(t *testing.T) {
		ns := NewNetns(t)
		path = ns.Path()
		if !strings.HasPrefix(filepath.Base(path), NetnsPrefix) {
			t.Errorf("name %s lacks prefix %s", path, NetnsPrefix)
		}
		if _, err := os.Stat(path); err != nil {
			t.Fatal(err)
		}
	})
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("%s still exists after the subtest: %v", path, err)
	}
}

func TestPairQuiet(t *testing.T) {
	p := NewPair(t)
	a0, b0 := netDev(t, p.A, PairLinkA), netDev(t, p.B, PairLinkB)
	time.Sleep(1500 * time.Millisecond)
	da, db := netDev(t, p.A, PairLinkA).sub(a0), netDev(t, p.B, PairLinkB).sub(b0)
	if da != (devStats{}) || db != (devStats{}) {
		t.Errorf("idle veth moved packets: A %+v, B %+v", da, db)
	}
	if a0.TxPackets+b0.TxPackets != 0 {
		t.Errorf("veth sent packets during setup: A %+v, B %+v", a0, b0)
	}
}

func TestPairUDP(t *testing.T) {
	const k, size = 1000, 1000
	for _, v := range []struct {
		name string
		opts []PairOption
		six  bool
		hdr  uint64 // UDP + IP + Ethernet
	}{
		{"ipv4", nil, false, 8 + 20 + 14},
		{"ipv4-noipv6", []PairOption{WithoutIPv6()}, false, 8 + 20 + 14},
		{"ipv6", nil, true, 8 + 40 + 14},
	} {
		t.Run(v.name, func(t *testing.T) {
			p := NewPair(t, v.opts...)
			dst := p.B4
			if v.six {
				dst = p.B6
			}
			ctx := testCtx(t)
			c, err := p.B.ListenUDP(ctx, "udp", netip.AddrPortFrom(dst, 0).String())
			if err != nil {
				t.Fatal(err)
			}
			r := ReceiveUDP(c)
			defer r.Close()
			b0, a0 := netDev(t, p.B, PairLinkB), netDev(t, p.A, PairLinkA)
			sent, err := SendUDP(ctx, p.A.Dial, r.Addr().String(), k, size)
			if err != nil {
				t.Fatal(err)
			}
			got, err := r.Wait(ctx, k)
			if err != nil {
				t.Fatal(err)
			}
			db, da := netDev(t, p.B, PairLinkB).sub(b0), netDev(t, p.A, PairLinkA).sub(a0)
			t.Logf("sent %d datagrams/%d B in %v; received %d/%d B, lost %d; B rx %d pkts %d B; A tx %d pkts %d B",
				sent.Datagrams, sent.Bytes, sent.Elapsed, got.Datagrams, got.Bytes, got.Lost,
				db.RxPackets, db.RxBytes, da.TxPackets, da.TxBytes)
			if sent.Datagrams != k || sent.Bytes != k*size {
				t.Errorf("sent %d datagrams, %d bytes; want %d, %d", sent.Datagrams, sent.Bytes, k, k*size)
			}
			if got.Datagrams != k || got.Bytes != k*size || got.Lost != 0 {
				t.Errorf("received %d datagrams, %d bytes, lost %d; want %d, %d, 0", got.Datagrams, got.Bytes, got.Lost, k, k*size)
			}
			if want := (devStats{RxPackets: k, RxBytes: k * (size + v.hdr)}); db != want {
				t.Errorf("B %s counters moved %+v, want %+v", PairLinkB, db, want)
			}
			if want := (devStats{TxPackets: k, TxBytes: k * (size + v.hdr)}); da != want {
				t.Errorf("A %s counters moved %+v, want %+v", PairLinkA, da, want)
			}
		})
	}
}

func TestPairTCP(t *testing.T) {
	for _, six := range []bool{false, true} {
		name := "ipv4"
		if six {
			name = "ipv6"
		}
		t.Run(name, func(t *testing.T) {
			p := NewPair(t)
			dst := p.B4
			if six {
				dst = p.B6
			}
			for _, c := range []struct {
				name  string
				n     int64
				conns int
			}{
				{"long", 50 << 20, 1},
				{"short", 1000, 50},
			} {
				t.Run(c.name, func(t *testing.T) {
					ctx := testCtx(t)
					ln, err := p.B.ListenTCP(ctx, "tcp", netip.AddrPortFrom(dst, 0).String())
					if err != nil {
						t.Fatal(err)
					}
					s := ServeTCP(ln)
					defer s.Close()
					sent, err := SendTCP(ctx, p.A.Dial, s.Addr().String(), c.n, c.conns)
					if err != nil {
						t.Fatal(err)
					}
					got, err := s.Wait(ctx, c.conns)
					if err != nil {
						t.Fatal(err)
					}
					t.Logf("sent %d B over %d conns in %v; server got %d B over %d conns",
						sent.Bytes, sent.Conns, sent.Elapsed, got.Bytes, got.Conns)
					if want := c.n * int64(c.conns); sent.Bytes != want || got.Bytes != want || got.Conns != c.conns {
						t.Errorf("sent %d, server got %d over %d conns; want %d over %d", sent.Bytes, got.Bytes, got.Conns, want, c.conns)
					}
					for i, n := range got.PerConn {
						if n != c.n {
							t.Errorf("connection %d carried %d bytes, want %d", i, n, c.n)
						}
					}
					if host, _, _ := net.SplitHostPort(sent.Local); host != pairAddr(p, true, six).String() {
						t.Errorf("sender used %s, want %s", sent.Local, pairAddr(p, true, six))
					}
				})
			}
		})
	}
}

// pairAddr returns side A's (a) or B's address of the wanted family.
func pairAddr(p *Pair, a, six bool) netip.Addr {
	switch {
	case a && six:
		return p.A6
	case a:
		return p.A4
	case six:
		return p.B6
	default:
		return p.B4
	}
}

func TestLoopback(t *testing.T) {
	RequirePrivileged(t)
	ns := NewNetns(t)
	for _, where := range []*Netns{nil, ns} {
		for _, host := range []string{"127.0.0.1", "::1"} {
			t.Run(where.String()+"/"+host, func(t *testing.T) {
				ctx := testCtx(t)
				addr := net.JoinHostPort(host, "0")
				ln, err := where.ListenTCP(ctx, "tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				s := ServeTCP(ln)
				defer s.Close()
				const n, conns = 1 << 20, 3
				if _, err := SendTCP(ctx, where.Dial, s.Addr().String(), n, conns); err != nil {
					t.Fatal(err)
				}
				got, err := s.Wait(ctx, conns)
				if err != nil || got.Bytes != n*conns {
					t.Errorf("tcp server got %d bytes (%v), want %d", got.Bytes, err, n*conns)
				}

				c, err := where.ListenUDP(ctx, "udp", addr)
				if err != nil {
					t.Fatal(err)
				}
				r := ReceiveUDP(c)
				defer r.Close()
				const k, size = 500, 1200
				if _, err := SendUDP(ctx, where.Dial, r.Addr().String(), k, size); err != nil {
					t.Fatal(err)
				}
				res, err := r.Wait(ctx, k)
				if err != nil || res.Datagrams != k || res.Bytes != k*size {
					t.Errorf("udp receiver got %d datagrams, %d bytes (%v); want %d, %d", res.Datagrams, res.Bytes, err, k, k*size)
				}
			})
		}
	}
}

func TestPairRecreate(t *testing.T) {
	p := NewPair(t)
	idx0, err := p.B.LinkIndex(PairLinkB)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Recreate(); err != nil {
		t.Fatal(err)
	}
	idx1, err := p.B.LinkIndex(PairLinkB)
	if err != nil {
		t.Fatal(err)
	}
	if idx0 == idx1 {
		t.Logf("ifindex reused: %d", idx1)
	}
	if mac, _ := p.B.HardwareAddr(PairLinkB); mac.String() != p.MACB.String() {
		t.Errorf("re-created MAC %s, want %s", mac, p.MACB)
	}
	ctx := testCtx(t)
	for _, dst := range []netip.Addr{p.B4, p.B6} {
		c, err := p.B.ListenUDP(ctx, "udp", netip.AddrPortFrom(dst, 0).String())
		if err != nil {
			t.Fatal(err)
		}
		r := ReceiveUDP(c)
		b0 := netDev(t, p.B, PairLinkB)
		if _, err := SendUDP(ctx, p.A.Dial, r.Addr().String(), 10, 100); err != nil {
			t.Fatal(err)
		}
		res, _ := r.Wait(ctx, 10)
		r.Close()
		if d := netDev(t, p.B, PairLinkB).sub(b0); res.Datagrams != 10 || d.RxPackets != 10 {
			t.Errorf("after re-create to %s: received %d datagrams, rx_packets +%d; want 10, 10", dst, res.Datagrams, d.RxPackets)
		}
	}
}

func TestLinks(t *testing.T) {
	RequirePrivileged(t)
	// A and B each have a veth to a bridge in S.
	a, b, s := NewNetns(t), NewNetns(t), NewNetns(t)
	if err := s.AddBridge("br0"); err != nil {
		t.Fatal(err)
	}
	for i, ns := range []*Netns{a, b} {
		port := "port" + strconv.Itoa(i)
		if err := ns.AddVeth(VethConfig{Name: "eth0", Peer: s, PeerName: port}); err != nil {
			t.Fatal(err)
		}
		if err := s.SetMaster(port, "br0"); err != nil {
			t.Fatal(err)
		}
		if err := ns.SetMTU("eth0", 1400); err != nil {
			t.Fatal(err)
		}
		if err := ns.AddAddr("eth0", netip.MustParsePrefix("10.99."+strconv.Itoa(i)+".1/16")); err != nil {
			t.Fatal(err)
		}
		if err := ns.AddAddr("eth0", netip.MustParsePrefix("fd00:99::"+strconv.Itoa(i+1)+"/64")); err != nil {
			t.Fatal(err)
		}
		for _, l := range []struct {
			ns   *Netns
			name string
		}{{ns, "eth0"}, {s, port}} {
			if err := l.ns.SetUp(l.name); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.SetUp("br0"); err != nil {
		t.Fatal(err)
	}
	if l, err := a.Netlink().LinkByName("eth0"); err != nil || l.Attrs().MTU != 1400 {
		t.Errorf("eth0 MTU: %v %v, want 1400", l, err)
	}
	// Through the bridge, with ARP and (NODAD) IPv6 neighbour discovery.
	ctx := testCtx(t)
	for _, dst := range []string{"10.99.1.1", "fd00:99::2"} {
		ln, err := b.ListenTCP(ctx, "tcp", net.JoinHostPort(dst, "0"))
		if err != nil {
			t.Fatal(err)
		}
		srv := ServeTCP(ln)
		if _, err := SendTCP(ctx, a.Dial, srv.Addr().String(), 100000, 2); err != nil {
			t.Errorf("via bridge to %s: %v", dst, err)
		}
		srv.Close()
	}
	if err := s.DelLink("port0"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.LinkIndex("eth0"); err == nil {
		t.Error("deleting one veth end left the other")
	}
	if err := (*Netns)(nil).AddBridge("x"); err == nil {
		t.Error("AddBridge changed the host's namespace")
	}
}

func TestCgroup(t *testing.T) {
	RequirePrivileged(t)
	var path string
	t.Run("child", func(t *testing.T) {
		cg := NewCgroup(t)
		path = cg.Path
		// The cgroup id is the directory's inode: compare with the kernel's
		// file handle, which is the id (what bpf_get_current_cgroup_id sees).
		h, _, err := unix.NameToHandleAt(unix.AT_FDCWD, cg.Path, 0)
		if err != nil {
			t.Fatal(err)
		}
		if id := nativeUint64(h.Bytes()); id != cg.ID() {
			t.Errorf("ID() = %d, file handle id %d", cg.ID(), id)
		}
		ctx := testCtx(t)
		child := StartChild(t, Command(t, nil, cg, RoleIdle))
		rep, err := child.Ready(ctx)
		if err != nil {
			t.Fatal(err)
		}
		procs, err := cg.Procs()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(procs, child.Pid()) || rep.Pid != child.Pid() {
			t.Errorf("child %d (reported %d) not in cgroup.procs %v", child.Pid(), rep.Pid, procs)
		}
		if rep.Cgroup != cg.Rel() {
			t.Errorf("child reports cgroup %q, want %q", rep.Cgroup, cg.Rel())
		}
		// Left running on purpose: cleanup must kill it and remove the dir.
	})
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("cgroup %s still exists after the subtest: %v", path, err)
	}
}

func nativeUint64(b []byte) uint64 {
	var v uint64
	for i := len(b) - 1; i >= 0; i-- { // little-endian (amd64, arm64)
		v = v<<8 | uint64(b[i])
	}
	return v
}

func TestCgroup2Mount(t *testing.T) {
	const mi = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
41 31 0:38 / /sys/fs/cgroup/uni\040fied rw,relatime - cgroup2 cgroup2 rw
`
	got, err := parseCgroup2Mount(strings.NewReader(mi))
	if err != nil || got != "/sys/fs/cgroup/uni fied" {
		t.Errorf("parse = %q, %v", got, err)
	}
	if _, err := parseCgroup2Mount(strings.NewReader("1 2 0:1 / / rw - ext4 /dev/sda rw\n")); err == nil {
		t.Error("found cgroup2 where there is none")
	}
	if m, err := Cgroup2Mount(); err != nil {
		t.Logf("this host: %v", err)
	} else {
		t.Logf("this host: %s", m)
	}
}

// TestChildRoles runs the traffic roles as child processes: a server in B
// inside a cgroup, a sender in A, over the Pair's veth.
func TestChildRoles(t *testing.T) {
	p := NewPair(t)
	cg := NewCgroup(t)
	ctx := testCtx(t)

	t.Run("tcp", func(t *testing.T) {
		const n, conns = 1 << 20, 5
		srv := StartChild(t, Command(t, p.B, cg, RoleTCPServer,
			"-listen", net.JoinHostPort(p.B6.String(), "0"), "-conns", strconv.Itoa(conns)))
		ready, err := srv.Ready(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ready.NetnsInode != p.B.Inode() || ready.Cgroup != cg.Rel() {
			t.Errorf("server in netns %d cgroup %s, want %d %s", ready.NetnsInode, ready.Cgroup, p.B.Inode(), cg.Rel())
		}
		snd := StartChild(t, Command(t, p.A, nil, RoleTCPSend,
			"-addr", ready.Addr, "-bytes", strconv.Itoa(n), "-conns", strconv.Itoa(conns)))
		sent, err := snd.Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got, err := srv.Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if sent.Bytes != n*conns || got.Bytes != n*conns || got.Conns != conns {
			t.Errorf("sent %d, server got %d over %d conns; want %d over %d", sent.Bytes, got.Bytes, got.Conns, n*conns, conns)
		}
	})

	t.Run("udp", func(t *testing.T) {
		const k, size = 300, 512
		rcv := StartChild(t, Command(t, p.B, nil, RoleUDPRecv,
			"-listen", net.JoinHostPort(p.B4.String(), "0"), "-count", strconv.Itoa(k), "-wait", "10s"))
		ready, err := rcv.Ready(ctx)
		if err != nil {
			t.Fatal(err)
		}
		b0 := netDev(t, p.B, PairLinkB)
		snd := StartChild(t, Command(t, p.A, cg, RoleUDPSend,
			"-addr", ready.Addr, "-count", strconv.Itoa(k), "-size", strconv.Itoa(size)))
		if sr, err := snd.Wait(ctx); err != nil || sr.Datagrams != k {
			t.Fatalf("sender: %+v, %v", sr, err)
		}
		got, err := rcv.Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		d := netDev(t, p.B, PairLinkB).sub(b0)
		if got.Datagrams != k || got.Bytes != k*size || got.Lost != 0 || d.RxPackets != k || d.RxBytes != k*(size+42) {
			t.Errorf("received %+v, veth rx %+v; want %d datagrams of %d", got, d, k, size)
		}
	})

	t.Run("unknown role", func(t *testing.T) {
		c := StartChild(t, Command(t, nil, nil, "no-such-role"))
		if _, err := c.Wait(ctx); err == nil || !strings.Contains(err.Error(), "unknown role") {
			t.Errorf("unknown role: %v", err)
		}
	})
}
