// Package diagtest induces, in network namespaces it creates, the problems
// `netmeter diagnose` must find: a full UDP receive buffer, a listen backlog
// overflow, a netfilter drop rule and a qdisc rate limit. It is for tests.
//
// Namespaces are named "nmt-diag-<hex>" (testnet's prefix, which other
// packages' leak checks know) and removed by t.Cleanup, with every link,
// qdisc, nftables table and process in them. The owning processes are
// child roles of the test binary (testnet.Command), so a package that uses
// them calls testnet.Main from its TestMain.
package diagtest

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/netmeter/netmeter/internal/nsutil"
	"github.com/netmeter/netmeter/internal/testnet"
)

// Prefix starts the name of every namespace this package creates.
const Prefix = testnet.NetnsPrefix + "diag-"

// Role names registered with testnet.
const (
	RoleUDPSink       = "diagnose-udp-sink"
	RoleListener      = "diagnose-listener"
	RoleStalledReader = "diagnose-stalled-reader"
	RolePacedWriter   = "diagnose-paced-writer"
)

func init() {
	testnet.RegisterRole(RoleUDPSink, roleUDPSink)
	testnet.RegisterRole(RoleListener, roleListener)
	testnet.RegisterRole(RoleStalledReader, roleStalledReader)
	testnet.RegisterRole(RolePacedWriter, rolePacedWriter)
}

// Netns is a named namespace created for one test.
type Netns struct {
	Name, Path string
}

// NewNetns creates a namespace with lo up; t.Cleanup deletes it.
func NewNetns(t testing.TB) *Netns {
	t.Helper()
	testnet.RequirePrivileged(t)
	var b [3]byte
	_, _ = rand.Read(b[:])
	ns := &Netns{Name: Prefix + hex.EncodeToString(b[:])}
	ns.Path = nsutil.NamedPath(ns.Name)
	if out, err := exec.Command("ip", "netns", "add", ns.Name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", ns.Name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "delete", ns.Name).CombinedOutput(); err != nil {
			t.Errorf("ip netns delete %s: %v: %s", ns.Name, err, out)
		}
	})
	if err := ns.Do(func() error {
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		return netlink.LinkSetUp(lo)
	}); err != nil {
		t.Fatalf("lo up in %s: %v", ns.Name, err)
	}
	return ns
}

// Do runs fn on a thread inside ns.
func (ns *Netns) Do(fn func() error) error { return nsutil.Do(ns.Path, fn) }

// start runs role in ns as a child process and waits until it is ready.
func start(t testing.TB, ns *Netns, role string, args ...string) (*testnet.Child, string) {
	t.Helper()
	c := testnet.StartChild(t, testnet.Command(t, nil, nil, role, append([]string{ns.Path}, args...)...))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rep, err := c.Ready(ctx)
	if err != nil {
		t.Fatalf("%s: %v", role, err)
	}
	return c, rep.Addr
}

// StartUDPSink starts a process in ns holding a UDP socket on 127.0.0.1
// with the smallest receive buffer, which it never reads. It returns the
// process and the socket's address.
func StartUDPSink(t testing.TB, ns *Netns) (*testnet.Child, string) {
	return start(t, ns, RoleUDPSink)
}

// StartListener starts a process in ns listening on 127.0.0.1 with a
// backlog of 1 that never accepts.
func StartListener(t testing.TB, ns *Netns) (*testnet.Child, string) {
	return start(t, ns, RoleListener)
}

// StartStalledReader starts a process in ns that accepts one TCP
// connection on 127.0.0.1 and never reads it; rcvbuf > 0 sets the
// listener's SO_RCVBUF (inherited by the connection), 0 keeps the kernel's
// autotuning. It returns the process and the listener's address.
func StartStalledReader(t testing.TB, ns *Netns, rcvbuf int) (*testnet.Child, string) {
	return start(t, ns, RoleStalledReader, strconv.Itoa(rcvbuf))
}

// StartPacedWriter starts a process in ns that connects to addr and writes
// about rate bytes per second (in 4 KiB writes) until the test ends. It
// returns the process.
func StartPacedWriter(t testing.TB, ns *Netns, addr string, rate int) *testnet.Child {
	c, _ := start(t, ns, RolePacedWriter, addr, strconv.Itoa(rate))
	return c
}

func roleStalledReader(ctx context.Context, args []string, rep *testnet.Reporter) error {
	if len(args) < 2 {
		return errors.New("want the namespace path and SO_RCVBUF")
	}
	rcvbuf, err := strconv.Atoi(args[1])
	if err != nil {
		return err
	}
	var ln net.Listener
	if err := nsutil.Do(args[0], func() error {
		lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			if rcvbuf > 0 {
				if err := c.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbuf) }); err != nil {
					return err
				}
			}
			return serr
		}}
		lc.SetMultipathTCP(false)
		var err error
		ln, err = lc.Listen(ctx, "tcp4", "127.0.0.1:0")
		return err
	}); err != nil {
		return err
	}
	defer ln.Close()
	rep.Ready(ln.Addr().String())
	c, err := ln.Accept()
	if err != nil {
		return err
	}
	defer c.Close()
	<-ctx.Done() // never read
	return nil
}

func rolePacedWriter(ctx context.Context, args []string, rep *testnet.Reporter) error {
	if len(args) < 3 {
		return errors.New("want the namespace path, an address and a rate")
	}
	rate, err := strconv.Atoi(args[2])
	if err != nil || rate <= 0 {
		return fmt.Errorf("rate %q: want bytes per second", args[2])
	}
	var c net.Conn
	if err := nsutil.Do(args[0], func() error {
		d := net.Dialer{}
		d.SetMultipathTCP(false)
		var err error
		c, err = d.DialContext(ctx, "tcp4", args[1])
		return err
	}); err != nil {
		return err
	}
	defer c.Close()
	rep.Ready(c.LocalAddr().String())
	buf := make([]byte, 4<<10)
	tick := time.NewTicker(time.Duration(len(buf)) * time.Second / time.Duration(rate))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		c.SetWriteDeadline(time.Now().Add(10 * time.Millisecond))
		_, _ = c.Write(buf) // a full send buffer is the point: no error
	}
}

func roleUDPSink(ctx context.Context, args []string, rep *testnet.Reporter) error {
	return holdSocket(ctx, args, rep, unix.SOCK_DGRAM, func(fd int) error {
		return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 1024)
	})
}

func roleListener(ctx context.Context, args []string, rep *testnet.Reporter) error {
	return holdSocket(ctx, args, rep, unix.SOCK_STREAM, func(fd int) error { return nil })
}

// holdSocket opens a socket in the namespace args[0], binds it to
// 127.0.0.1:0 (and listens with backlog 1 if it is a stream), reports ready
// and holds it, unread, until ctx ends.
func holdSocket(ctx context.Context, args []string, rep *testnet.Reporter, typ int, setup func(int) error) error {
	if len(args) < 1 {
		return errors.New("want the namespace path")
	}
	var fd int
	err := nsutil.Do(args[0], func() error {
		var err error
		if fd, err = unix.Socket(unix.AF_INET, typ|unix.SOCK_CLOEXEC, 0); err != nil {
			return err
		}
		if err := setup(fd); err != nil {
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
			return err
		}
		if typ == unix.SOCK_STREAM {
			return unix.Listen(fd, 1)
		}
		return nil
	})
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return err
	}
	rep.Ready("127.0.0.1:" + strconv.Itoa(sa.(*unix.SockaddrInet4).Port))
	<-ctx.Done()
	return nil
}

// UDPFlood sends 1000-byte datagrams from ns to addr, a burst every
// millisecond, until ctx ends. Send errors (ENOBUFS from a full qdisc,
// ECONNREFUSED) are ignored: the drops are the point.
func UDPFlood(ctx context.Context, ns *Netns, addr string) error {
	var conn net.Conn
	if err := ns.Do(func() error {
		var err error
		conn, err = net.Dial("udp", addr)
		return err
	}); err != nil {
		return err
	}
	defer conn.Close()
	buf := make([]byte, 1000)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		for range 8 {
			_, _ = conn.Write(buf)
		}
	}
}

// ConnectFlood opens TCP connections from ns to addr from several
// goroutines until ctx ends; connections that complete are held open until
// then. Connections to a full accept queue time out after 200 ms.
func ConnectFlood(ctx context.Context, ns *Netns, addr string) {
	var mu sync.Mutex
	var held []net.Conn
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for ctx.Err() == nil {
				var c net.Conn
				_ = ns.Do(func() error {
					var err error
					d := net.Dialer{Timeout: 200 * time.Millisecond}
					c, err = d.DialContext(ctx, "tcp", addr)
					return err
				})
				if c != nil {
					mu.Lock()
					held = append(held, c)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	for _, c := range held {
		c.Close()
	}
}

// Rule names an nftables rule.
type Rule struct {
	Family, Table, Chain string
	Handle               uint64
}

// AddDropRule adds, in ns, table inet <table> with a base chain "input"
// (policy accept) and one rule dropping UDP to port, with a counter if
// counted. The table goes with the namespace; t.Cleanup also deletes it.
func AddDropRule(t testing.TB, ns *Netns, table string, port uint16, counted bool) Rule {
	t.Helper()
	f, err := os.Open(ns.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c, err := nftables.New(nftables.WithNetNSFd(int(f.Fd())))
	if err != nil {
		t.Fatalf("nftables in %s: %v", ns.Name, err)
	}
	tab := c.AddTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: table})
	accept := nftables.ChainPolicyAccept
	ch := c.AddChain(&nftables.Chain{Name: "input", Table: tab, Hooknum: nftables.ChainHookInput,
		Priority: nftables.ChainPriorityFilter, Type: nftables.ChainTypeFilter, Policy: &accept})
	p := binary.BigEndian.AppendUint16(nil, port)
	ex := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_UDP}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: p},
	}
	if counted {
		ex = append(ex, &expr.Counter{})
	}
	ex = append(ex, &expr.Verdict{Kind: expr.VerdictDrop})
	c.AddRule(&nftables.Rule{Table: tab, Chain: ch, Exprs: ex})
	if err := c.Flush(); err != nil {
		t.Fatalf("add drop rule in %s: %v", ns.Name, err)
	}
	t.Cleanup(func() {
		c.DelTable(tab)
		_ = c.Flush() // gone already if the namespace went first
	})
	rules, err := c.GetRules(tab, ch)
	if err != nil || len(rules) != 1 {
		t.Fatalf("list rules in %s: %v (%d rules)", ns.Name, err, len(rules))
	}
	return Rule{Family: "inet", Table: table, Chain: "input", Handle: rules[0].Handle}
}

// Shaped is a veth pair inside one namespace whose first end sends through
// a tbf rate limit.
type Shaped struct {
	Link string         // the shaped end
	Dst  netip.AddrPort // an address reached through it
}

// AddShapedVeth adds a veth pair diag0/diag1 in ns, gives diag0 10.77.0.1/24
// and a permanent neighbour 10.77.0.2 (diag1's MAC), and puts a tbf of
// rateBytes per second and limitBytes of queue at diag0's root. Packets
// sent to 10.77.0.2 leave through the tbf. The links and qdisc go with the
// namespace; t.Cleanup also deletes them.
func AddShapedVeth(t testing.TB, ns *Netns, rateBytes uint64, limitBytes uint32) Shaped {
	t.Helper()
	const a, b = "diag0", "diag1"
	err := ns.Do(func() error {
		if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: a}, PeerName: b}); err != nil {
			return fmt.Errorf("add veth: %w", err)
		}
		la, err := netlink.LinkByName(a)
		if err != nil {
			return err
		}
		lb, err := netlink.LinkByName(b)
		if err != nil {
			return err
		}
		for _, l := range []netlink.Link{la, lb} {
			if err := netlink.LinkSetUp(l); err != nil {
				return err
			}
		}
		addr, _ := netlink.ParseAddr("10.77.0.1/24")
		if err := netlink.AddrAdd(la, addr); err != nil {
			return fmt.Errorf("add address: %w", err)
		}
		if err := netlink.NeighAdd(&netlink.Neigh{LinkIndex: la.Attrs().Index, State: netlink.NUD_PERMANENT,
			IP: net.ParseIP("10.77.0.2"), HardwareAddr: lb.Attrs().HardwareAddr}); err != nil {
			return fmt.Errorf("add neighbour: %w", err)
		}
		q := &netlink.Tbf{
			QdiscAttrs: netlink.QdiscAttrs{LinkIndex: la.Attrs().Index, Handle: netlink.MakeHandle(1, 0), Parent: netlink.HANDLE_ROOT},
			Rate:       rateBytes, Limit: limitBytes,
		}
		// The burst is a time at the rate, in ticks: 4 KiB.
		q.Buffer = uint32(float64(4096) / float64(rateBytes) * 1e6 * float64(netlink.TickInUsec()))
		if err := netlink.QdiscReplace(q); err != nil {
			return fmt.Errorf("add tbf: %w", err)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("shaped veth in %s: %v", ns.Name, err)
	}
	t.Cleanup(func() {
		_ = ns.Do(func() error {
			if l, err := netlink.LinkByName(a); err == nil {
				return netlink.LinkDel(l) // takes the peer and the qdisc
			}
			return nil
		})
	})
	return Shaped{Link: a, Dst: netip.MustParseAddrPort("10.77.0.2:9")}
}
