package capture

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/netmeter/netmeter/internal/nsutil"
	"github.com/netmeter/netmeter/internal/testnet"
)

// Addresses of the test's veth (inside namespaces the test creates). They
// are also in internal/pcapfilter's corpus, and the expressions below in
// its tcpdump -ddd table.
const (
	addrA4, addrB4 = "10.0.0.1", "10.0.0.2"
	addrA6, addrB6 = "2001:db8::1", "2001:db8::2"
	vethA, vethB   = "nmcap0", "nmcap1"
)

// liveExprs are compared against tcpdump on the same traffic.
var liveExprs = []string{
	"",
	"host 10.0.0.2",
	"src host 10.0.0.1",
	"dst host 10.0.0.2 and udp",
	"net 10.0.0.0/8",
	"port 5000",
	"tcp port 8080",
	"udp and not port 5000",
	"portrange 5000-6000",
	"icmp",
	"ip6",
	"icmp6",
	"tcp and (port 8080 or port 9999)",
	"not tcp",
	"src net 10.0.0.0/8 and dst port 7777",
	"ip6 and udp",
	"host 2001:db8::1",
	"dst host 10.0.0.1 or dst host 2001:db8::1",
	"proto 17",
	"ip proto \\tcp",
	"udp dst portrange 5000-5999 or icmp",
	"not ip6 or icmp6",
	"src port 6000 or dst port 9999",
}

// vethPair is two namespaces "nmt-cap-<hex>-a" and "-b" joined by a quiet
// veth (no ARP, static neighbours, no DAD, no router solicitations, no
// link-local address), removed when the test ends.
type vethPair struct{ a, b string }

func (p vethPair) pathA() string { return "/run/netns/" + p.a }
func (p vethPair) pathB() string { return "/run/netns/" + p.b }

func newVethPair(t *testing.T) vethPair {
	t.Helper()
	testnet.RequirePrivileged(t)
	var rnd [3]byte
	_, _ = rand.Read(rnd[:])
	p := vethPair{a: testnet.NetnsPrefix + "cap-" + hex.EncodeToString(rnd[:]) + "-a", b: testnet.NetnsPrefix + "cap-" + hex.EncodeToString(rnd[:]) + "-b"}
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	for _, ns := range []string{p.a, p.b} {
		run("netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
		run("-n", ns, "link", "set", "lo", "up")
	}
	run("-n", p.a, "link", "add", vethA, "address", "02:00:00:00:00:01", "type", "veth", "peer", "name", vethB, "address", "02:00:00:00:00:02", "netns", p.b)
	for _, s := range []struct{ ns, dev, own4, own6, peer4, peer6, peerMAC string }{
		{p.a, vethA, addrA4, addrA6, addrB4, addrB6, "02:00:00:00:00:02"},
		{p.b, vethB, addrB4, addrB6, addrA4, addrA6, "02:00:00:00:00:01"},
	} {
		for _, kv := range []string{"accept_dad=0", "dad_transmits=0", "accept_ra=0", "autoconf=0", "router_solicitations=0", "addr_gen_mode=1"} {
			run("netns", "exec", s.ns, "sysctl", "-qw", "net.ipv6.conf."+s.dev+"."+kv)
		}
		run("-n", s.ns, "link", "set", s.dev, "arp", "off")
		run("-n", s.ns, "addr", "add", s.own4+"/24", "dev", s.dev)
		run("-n", s.ns, "addr", "add", s.own6+"/64", "dev", s.dev, "nodad")
		run("-n", s.ns, "neigh", "add", s.peer4, "lladdr", s.peerMAC, "dev", s.dev, "nud", "permanent")
		run("-n", s.ns, "neigh", "add", s.peer6, "lladdr", s.peerMAC, "dev", s.dev, "nud", "permanent")
	}
	run("-n", p.a, "link", "set", vethA, "up")
	run("-n", p.b, "link", "set", vethB, "up")
	time.Sleep(500 * time.Millisecond) // carrier up, anything the link says on its own said
	return p
}

// generateTraffic sends, from A: UDP to a listener (v4, v6) and to a closed
// port (ICMP unreachable back), a TCP exchange (v4, v6) and a connection
// to a closed port (RST), ICMP and ICMPv6 echoes; and UDP from B to A.
func generateTraffic(t *testing.T, p vethPair) {
	t.Helper()
	var closers []io.Closer
	defer func() {
		for _, c := range closers {
			c.Close()
		}
	}()
	var wg sync.WaitGroup
	// Servers in B, a UDP listener in A.
	err := nsutil.Do(p.pathB(), func() error {
		for _, nw := range []string{"udp4", "udp6"} {
			c, err := net.ListenPacket(nw, ":5000")
			if err != nil {
				return err
			}
			closers = append(closers, c)
		}
		var lc net.ListenConfig
		lc.SetMultipathTCP(false)
		ln, err := lc.Listen(context.Background(), "tcp", ":8080")
		if err != nil {
			return err
		}
		closers = append(closers, ln)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 2 {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				_, _ = io.Copy(io.Discard, c)
				c.Close()
			}
		}()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = nsutil.Do(p.pathA(), func() error {
		c, err := net.ListenPacket("udp4", ":6000")
		if err != nil {
			return err
		}
		closers = append(closers, c)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	send := func(nsPath, nw, addr string, n int) {
		t.Helper()
		err := nsutil.Do(nsPath, func() error {
			c, err := net.Dial(nw, addr)
			if err != nil {
				return err
			}
			defer c.Close()
			for range n {
				// A closed UDP port answers with ICMP, which the next write reports.
				if _, err := c.Write(make([]byte, 100)); err != nil && !errors.Is(err, syscall.ECONNREFUSED) {
					return err
				}
				time.Sleep(20 * time.Millisecond)
			}
			if nw == "tcp4" || nw == "tcp6" {
				c.(*net.TCPConn).CloseWrite()
				_, _ = io.Copy(io.Discard, c)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("send %s %s: %v", nw, addr, err)
		}
	}
	send(p.pathA(), "udp4", addrB4+":5000", 5)
	send(p.pathA(), "udp6", "["+addrB6+"]:5000", 5)
	send(p.pathA(), "udp4", addrB4+":7777", 2)
	send(p.pathA(), "udp6", "["+addrB6+"]:7777", 2)
	send(p.pathA(), "tcp4", addrB4+":8080", 3)
	send(p.pathA(), "tcp6", "["+addrB6+"]:8080", 3)
	send(p.pathB(), "udp4", addrA4+":6000", 3)
	_ = nsutil.Do(p.pathA(), func() error {
		c, err := net.Dial("tcp4", addrB4+":9999")
		if err == nil {
			c.Close()
		}
		return nil
	})
	err = nsutil.Do(p.pathA(), func() error {
		for _, e := range []struct {
			nw, dst string
			typ     icmp.Type
			proto   int
		}{{"ip4:icmp", addrB4, ipv4.ICMPTypeEcho, 1}, {"ip6:ipv6-icmp", addrB6, ipv6.ICMPTypeEchoRequest, 58}} {
			c, err := icmp.ListenPacket(e.nw, "")
			if err != nil {
				return err
			}
			closers = append(closers, c)
			for seq := range 2 {
				b, _ := (&icmp.Message{Type: e.typ, Body: &icmp.Echo{ID: 77, Seq: seq, Data: []byte("netmeter")}}).Marshal(nil)
				if _, err := c.WriteTo(b, &net.IPAddr{IP: net.ParseIP(e.dst)}); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	for _, c := range closers {
		c.Close()
	}
	closers = nil
	wg.Wait()
}

// packetSet reads a capture file with tcpdump and returns each packet as
// its decoding and hex bytes (no timestamp), sorted.
func packetSet(t *testing.T, file string) []string {
	t.Helper()
	out, err := exec.Command("tcpdump", "-r", file, "-nn", "-t", "-xx").Output()
	if err != nil {
		t.Fatalf("tcpdump -r %s: %v", file, err)
	}
	var pkts []string
	for _, line := range strings.Split(string(out), "\n") {
		if line == "" {
			continue
		}
		if !strings.HasPrefix(line, "\t") {
			pkts = append(pkts, line)
			continue
		}
		pkts[len(pkts)-1] += "\n" + line
	}
	slices.Sort(pkts)
	return pkts
}

// TestFilterSameAsTcpdump runs netmeter's interface capture and tcpdump
// with the same expression at the same time on the same traffic (a veth in
// namespaces the test creates), for every expression of liveExprs, and
// compares the packet sets byte for byte.
func TestFilterSameAsTcpdump(t *testing.T) {
	testnet.RequirePrivileged(t)
	requireTool(t, "tcpdump")
	p := newVethPair(t)
	dir := t.TempDir()

	type run struct {
		expr         string
		ours, theirs string
		cancel       context.CancelFunc
		done         chan error
		res          Result
		tcpdump      *exec.Cmd
		tcpdumpErr   *strings.Builder
	}
	runs := make([]*run, len(liveExprs))
	for i, expr := range liveExprs {
		r := &run{expr: expr, ours: filepath.Join(dir, fmt.Sprintf("%d.pcapng", i)), theirs: filepath.Join(dir, fmt.Sprintf("%d.pcap", i)), done: make(chan error, 1)}
		runs[i] = r
		f, err := os.Create(r.ours)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		r.cancel = cancel
		t.Cleanup(cancel)
		ready := make(chan struct{})
		go func() {
			res, err := Run(ctx, Options{Interface: vethA, Netns: p.pathA(), Filter: expr, Ready: func(string) { close(ready) }}, f)
			r.res = res
			f.Close()
			r.done <- err
		}()
		select {
		case <-ready:
		case err := <-r.done:
			t.Fatalf("capture %q: %v", expr, err)
		}
		args := []string{"netns", "exec", p.a, "tcpdump", "-i", vethA, "-n", "-U", "--immediate-mode", "-w", r.theirs}
		if expr != "" {
			args = append(args, expr)
		}
		r.tcpdump = exec.Command("ip", args...)
		stderr, _ := r.tcpdump.StderrPipe()
		if err := r.tcpdump.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if r.tcpdump.ProcessState == nil {
				_ = r.tcpdump.Process.Kill()
				_ = r.tcpdump.Wait()
			}
		})
		sc := bufio.NewScanner(stderr)
		r.tcpdumpErr = &strings.Builder{}
		for sc.Scan() {
			r.tcpdumpErr.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "listening on") {
				break
			}
		}
		go func() { _, _ = io.Copy(io.Discard, stderr) }()
	}
	time.Sleep(200 * time.Millisecond)
	generateTraffic(t, p)
	time.Sleep(300 * time.Millisecond)
	for _, r := range runs {
		r.cancel()
		_ = r.tcpdump.Process.Signal(syscall.SIGINT)
	}
	for _, r := range runs {
		if err := <-r.done; err != nil {
			t.Errorf("capture %q: %v", r.expr, err)
		}
		_ = r.tcpdump.Wait()
	}
	total := 0
	for _, r := range runs {
		ours, theirs := packetSet(t, r.ours), packetSet(t, r.theirs)
		if r.expr == "" {
			total = len(theirs)
		}
		if !slices.Equal(ours, theirs) {
			t.Errorf("%-45q netmeter %d packets, tcpdump %d: sets differ\nonly netmeter: %q\nonly tcpdump: %q", r.expr, len(ours), len(theirs),
				diff(ours, theirs), diff(theirs, ours))
			continue
		}
		if r.res.Dropped != 0 {
			t.Errorf("%q: %d dropped", r.expr, r.res.Dropped)
		}
		t.Logf("%-45q netmeter = tcpdump = %3d packets (dropped %d)", r.expr, len(ours), r.res.Dropped)
	}
	if total < 40 {
		t.Errorf("only %d packets on the veth; the generator sends more", total)
	}
}

func diff(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, strings.SplitN(x, "\n", 2)[0])
		}
	}
	return out
}

func requireTool(t *testing.T, tool string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		if os.Getenv("NETMETER_REQUIRE_PRIVILEGED") == "1" {
			t.Fatalf("%s not installed: apt-get install -y %s", tool, tool)
		}
		t.Skipf("%s not installed", tool)
	}
}
