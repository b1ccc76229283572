package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netmeter/netmeter/internal/testnet"
)

// Traffic of one capture-peer child, fixed so the test can check the
// capture against it.
const (
	peerOldUDP   = 10   // datagrams from a socket open before the capture
	peerNewUDP   = 20   // datagrams from a socket created during it
	peerUnbound  = 5    // datagrams from a socket opened, unbound, before it
	peerUDPSize  = 100  // payload bytes per datagram
	peerTCPSend  = 5000 // the peer's connection to the test's server
	peerTCPReply = 3000
	peerAccIn    = 4000 // the test's connection to the peer's listener
	peerAccReply = 1000
)

// peerAComm is peer A's process name (comm), for --process.
const peerAComm = "nmcappeera"

// peerPorts is what a capture-peer writes to its report file: its local
// ports.
type peerPorts struct {
	OldUDP, NewUDP, Unbound, TCPClient, Listener int
}

func init() { testnet.RegisterRole("capture-peer", capturePeer) }

// capturePeer: args are udpAddr tcpAddr reportFile. Opens a listener and a
// UDP socket, reports ready with the listener's address, waits for a line
// on stdin, then sends its traffic (see the constants) and accepts one
// connection.
func capturePeer(ctx context.Context, args []string, rep *testnet.Reporter) error {
	udpAddr, tcpAddr, reportFile := args[0], args[1], args[2]
	var lc net.ListenConfig
	lc.SetMultipathTCP(false)
	ln, err := lc.Listen(ctx, "tcp4", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	old, err := net.Dial("udp4", udpAddr)
	if err != nil {
		return err
	}
	defer old.Close()
	// Open but unbound: sock_diag does not list it until its first send.
	unbound, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(unbound)
	rep.Ready(ln.Addr().String())
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		return fmt.Errorf("wait for go: %w", err)
	}
	ports := peerPorts{OldUDP: old.LocalAddr().(*net.UDPAddr).Port, Listener: ln.Addr().(*net.TCPAddr).Port}
	payload := bytes.Repeat([]byte{'x'}, peerUDPSize)
	for range peerOldUDP {
		if _, err := old.Write(payload); err != nil {
			return err
		}
	}
	ua, err := net.ResolveUDPAddr("udp4", udpAddr)
	if err != nil {
		return err
	}
	for range peerUnbound {
		if err := unix.Sendto(unbound, payload, 0, &unix.SockaddrInet4{Port: ua.Port, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
			return err
		}
	}
	if sa, err := unix.Getsockname(unbound); err == nil {
		ports.Unbound = sa.(*unix.SockaddrInet4).Port
	}
	nu, err := net.Dial("udp4", udpAddr)
	if err != nil {
		return err
	}
	defer nu.Close()
	ports.NewUDP = nu.LocalAddr().(*net.UDPAddr).Port
	for range peerNewUDP {
		if _, err := nu.Write(payload); err != nil {
			return err
		}
	}
	d := net.Dialer{}
	d.SetMultipathTCP(false)
	c, err := d.DialContext(ctx, "tcp4", tcpAddr)
	if err != nil {
		return err
	}
	ports.TCPClient = c.LocalAddr().(*net.TCPAddr).Port
	if _, err := c.Write(make([]byte, peerTCPSend)); err != nil {
		return err
	}
	_ = c.(*net.TCPConn).CloseWrite()
	n, err := io.Copy(io.Discard, c)
	c.Close()
	if err != nil || n != peerTCPReply {
		return fmt.Errorf("reply: %d bytes, %v", n, err)
	}
	acc, err := ln.Accept()
	if err != nil {
		return err
	}
	n, err = io.Copy(io.Discard, acc)
	if err != nil || n != peerAccIn {
		return fmt.Errorf("accepted: %d bytes, %v", n, err)
	}
	if _, err := acc.Write(make([]byte, peerAccReply)); err != nil {
		return err
	}
	acc.Close()
	b, _ := json.Marshal(ports)
	if err := os.WriteFile(reportFile, b, 0o644); err != nil {
		return err
	}
	rep.Result(testnet.Result{Proto: "mixed", Bytes: peerTCPSend, Datagrams: peerOldUDP + peerNewUDP + peerUnbound})
	return nil
}

// requireTools fails (in CI) or skips when a reader of pcapng is missing.
func requireTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("NETMETER_REQUIRE_PRIVILEGED") == "1" {
				t.Fatalf("%s not installed: apt-get install -y %s", tool, tool)
			}
			t.Skipf("%s not installed", tool)
		}
	}
}

// runCapture runs `netmeter capture args…` in-process until ctx ends and
// returns its standard error; ready is closed once it captures.
func runCapture(ctx context.Context, t *testing.T, ready chan<- struct{}, args ...string) (string, error) {
	root := newRoot()
	var stderr lockedBuffer
	stderr.onWrite = func(s string) {
		if strings.Contains(s, "netmeter: capturing") && ready != nil {
			close(ready)
			ready = nil
		}
	}
	root.SetArgs(append([]string{"capture"}, args...))
	root.SetErr(&stderr)
	root.SetOut(io.Discard)
	err := root.ExecuteContext(ctx)
	return stderr.String(), err
}

type lockedBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	onWrite func(string)
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.Write(p)
	if l.onWrite != nil {
		l.onWrite(l.b.String())
	}
	return len(p), nil
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// captureCase is one capture run alongside the peers' traffic: its
// arguments (besides -w) and what it must contain.
type captureCase struct {
	name    string
	args    []string
	udpOnly bool   // the filter keeps only UDP
	desc    string // the interface description contains this
	comment bool   // every packet's comment names peer A's pid
}

// TestCaptureSelectsOneProcess: two processes send the same kinds of
// traffic over lo at the same time; captures of one of them (by --pid, by
// --pid with a filter, by --container, by --process name) write exactly its packets: every UDP
// datagram it sent (from a socket open before the capture and one created
// during it, and one opened before it but unbound, which sock_diag cannot
// list), and both TCP connections (one it opened, one it accepted from
// a listener open before the capture) from SYN to FIN with the exact
// payload bytes each way; nothing of the other's. tshark reads the files
// back, with the owner named in the comments and interface descriptions.
func TestCaptureSelectsOneProcess(t *testing.T) {
	testnet.RequirePrivileged(t)
	requireTools(t, "tshark")
	t.Setenv("NETMETER_CONFIG", "/dev/null")
	dir := t.TempDir()

	// Peer A runs in a cgroup that looks like a Docker container's.
	mnt, err := testnet.Cgroup2Mount()
	if err != nil {
		t.Fatal(err)
	}
	id := strings.Repeat("c0ffee", 10) + "cafe"
	parent := filepath.Join(mnt, fmt.Sprintf("nmcap-%d", os.Getpid()))
	cgPath := filepath.Join(parent, "docker-"+id+".scope")
	if err := os.MkdirAll(cgPath, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // after the peers are gone (cleanups run last-in first-out)
		for range 50 {
			if os.Remove(cgPath) == nil || errors.Is(os.Remove(cgPath), os.ErrNotExist) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		_ = os.Remove(parent)
	})
	cgDir, err := os.Open(cgPath)
	if err != nil {
		t.Fatal(err)
	}
	defer cgDir.Close()

	// The test's servers: a UDP sink and a TCP server that reads to EOF
	// and replies peerTCPReply bytes.
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	var datagrams atomic.Int64
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := udp.ReadFrom(buf); err != nil {
				return
			}
			datagrams.Add(1)
		}
	}()
	var lc net.ListenConfig
	lc.SetMultipathTCP(false)
	srv, err := lc.Listen(t.Context(), "tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	go func() {
		for {
			c, err := srv.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if n, _ := io.Copy(io.Discard, c); n == peerTCPSend {
					c.Write(make([]byte, peerTCPReply))
				}
			}()
		}
	}()

	type peer struct {
		child  *testnet.Child
		stdin  io.WriteCloser
		listen string
		report string
	}
	start := func(name string, cgroupFD int) *peer {
		p := &peer{report: filepath.Join(dir, name+".json")}
		cmd := testnet.Command(t, nil, nil, "capture-peer", udp.LocalAddr().String(), srv.Addr().String(), p.report)
		if name == "a" {
			// Started through a link of its own name, so its comm (the
			// name --process matches) is not B's.
			link := filepath.Join(dir, peerAComm)
			if err := os.Symlink(cmd.Path, link); err != nil {
				t.Fatal(err)
			}
			cmd.Path, cmd.Args[0] = link, link
		}
		if cgroupFD >= 0 {
			cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, cgroupFD
		}
		p.stdin, err = cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		p.child = testnet.StartChild(t, cmd)
		rep, err := p.child.Ready(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		p.listen = rep.Addr
		return p
	}
	a, b := start("a", int(cgDir.Fd())), start("b", -1)
	pidA := strconv.Itoa(a.child.Pid())

	cases := []captureCase{
		{name: "pid", args: []string{"--pid", pidA}, desc: "netmeter: pid " + pidA + " (", comment: true},
		{name: "pid-udp", args: []string{"--pid", pidA, "-i", "lo", "udp"}, udpOnly: true, desc: "netmeter: pid " + pidA + " (", comment: true},
		{name: "container", args: []string{"--container", id[:12]}, desc: "container docker " + id[:12]},
		{name: "process", args: []string{"--process", peerAComm}, desc: "netmeter: process " + peerAComm, comment: true},
		// -i names an interface of the container's namespace.
		{name: "container-lo-udp", args: []string{"--container", id[:12], "-i", "lo", "udp"}, udpOnly: true, desc: "container docker " + id[:12]},
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	type capRes struct {
		stderr string
		err    error
	}
	dones := make([]chan capRes, len(cases))
	for i, c := range cases {
		ready := make(chan struct{})
		dones[i] = make(chan capRes, 1)
		go func() {
			s, err := runCapture(ctx, t, ready, append(c.args, "-w", filepath.Join(dir, c.name+".pcapng"))...)
			dones[i] <- capRes{s, err}
		}()
		select {
		case <-ready:
		case r := <-dones[i]:
			t.Fatalf("capture %s ended before it was ready: %v\n%s", c.name, r.err, r.stderr)
		case <-time.After(30 * time.Second):
			t.Fatalf("capture %s not ready after 30 s", c.name)
		}
	}

	// Both peers at once; then the test connects to each peer's listener.
	for _, p := range []*peer{a, b} {
		fmt.Fprintln(p.stdin, "go")
	}
	for _, p := range []*peer{a, b} {
		c, err := net.Dial("tcp4", p.listen)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(make([]byte, peerAccIn)); err != nil {
			t.Fatal(err)
		}
		c.(*net.TCPConn).CloseWrite()
		if n, err := io.Copy(io.Discard, c); err != nil || n != peerAccReply {
			t.Fatalf("reply from peer: %d bytes, %v", n, err)
		}
		c.Close()
	}
	for _, p := range []*peer{a, b} {
		if _, err := p.child.Wait(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(300 * time.Millisecond) // the last FIN/ACKs
	cancel()
	results := make([]capRes, len(cases))
	for i := range cases {
		results[i] = <-dones[i]
	}
	if got, want := datagrams.Load(), int64(2*(peerOldUDP+peerNewUDP+peerUnbound)); got != want {
		t.Errorf("UDP sink received %d datagrams, want %d", got, want)
	}
	readPorts := func(p *peer) peerPorts {
		var pp peerPorts
		bs, err := os.ReadFile(p.report)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(bs, &pp); err != nil {
			t.Fatal(err)
		}
		return pp
	}
	pa, pb := readPorts(a), readPorts(b)
	t.Logf("A (pid %d) ports %+v, B (pid %d) ports %+v", a.child.Pid(), pa, b.child.Pid(), pb)
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := results[i]
			t.Logf("capture %s:\n%s", strings.Join(c.args, " "), r.stderr)
			if r.err != nil {
				t.Fatal(r.err)
			}
			checkPeerCapture(t, filepath.Join(dir, c.name+".pcapng"), c, a.child.Pid(), pa, pb, r.stderr)
		})
	}
}

// checkPeerCapture reads file with tshark and checks it holds exactly peer
// A's traffic (see TestCaptureSelectsOneProcess).
func checkPeerCapture(t *testing.T, file string, c captureCase, pidA int, pa, pb peerPorts, stderr string) {
	tsh, err := exec.Command("tshark", "-r", file, "-T", "fields", "-E", "separator=|",
		"-e", "ip.proto", "-e", "udp.srcport", "-e", "udp.dstport", "-e", "tcp.srcport", "-e", "tcp.dstport",
		"-e", "tcp.len", "-e", "tcp.flags.syn", "-e", "tcp.flags.fin", "-e", "udp.length",
		"-e", "frame.comment", "-e", "frame.interface_description").Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(tsh)), "\n")
	wantComment := fmt.Sprintf("pid %d (", pidA)
	aPorts := map[int]string{pa.OldUDP: "udp old", pa.NewUDP: "udp new", pa.Unbound: "udp unbound", pa.TCPClient: "tcp client", pa.Listener: "listener"}
	bPorts := map[int]bool{pb.OldUDP: true, pb.NewUDP: true, pb.Unbound: true, pb.TCPClient: true, pb.Listener: true}
	udpFrom := map[string]int{}
	tcpBytes := map[string]int{} // "client out", "client in", "accepted in", "accepted out"
	syns, fins := 0, 0
	for _, l := range lines {
		f := strings.Split(l, "|")
		if len(f) != 11 {
			t.Fatalf("tshark line %q", l)
		}
		if c.comment && !strings.Contains(f[9], wantComment) || !strings.Contains(f[10], c.desc) {
			t.Errorf("packet %q does not name its owner (%q)", l, c.desc)
		}
		atoi := func(s string) int { n, _ := strconv.Atoi(s); return n }
		switch f[0] {
		case "17":
			src, dst := atoi(f[1]), atoi(f[2])
			if bPorts[src] || bPorts[dst] {
				t.Errorf("B's datagram in A's capture: %s", l)
			}
			if aPorts[src] == "" || atoi(f[8]) != 8+peerUDPSize {
				t.Errorf("datagram not sent by A: %s", l)
			}
			udpFrom[aPorts[src]]++
		case "6":
			if c.udpOnly {
				t.Errorf("TCP segment passed the filter udp: %s", l)
			}
			src, dst := atoi(f[3]), atoi(f[4])
			if bPorts[src] || bPorts[dst] {
				t.Errorf("B's segment in A's capture: %s", l)
			}
			n := atoi(f[5])
			switch {
			case src == pa.TCPClient:
				tcpBytes["client out"] += n
			case dst == pa.TCPClient:
				tcpBytes["client in"] += n
			case dst == pa.Listener:
				tcpBytes["accepted in"] += n
			case src == pa.Listener:
				tcpBytes["accepted out"] += n
			default:
				t.Errorf("segment of no connection of A: %s", l)
			}
			syns += atoi(f[6])
			fins += atoi(f[7])
		default:
			t.Errorf("unexpected packet: %s", l)
		}
	}
	if udpFrom["udp old"] != peerOldUDP || udpFrom["udp new"] != peerNewUDP || udpFrom["udp unbound"] != peerUnbound {
		t.Errorf("UDP datagrams in the capture: %v, generator sent %d (old socket) + %d (new socket) + %d (old unbound socket)", udpFrom, peerOldUDP, peerNewUDP, peerUnbound)
	}
	if !c.udpOnly {
		want := map[string]int{"client out": peerTCPSend, "client in": peerTCPReply, "accepted in": peerAccIn, "accepted out": peerAccReply}
		for k, v := range want {
			if tcpBytes[k] != v {
				t.Errorf("TCP payload %s: %d bytes in the capture, generator moved %d", k, tcpBytes[k], v)
			}
		}
		// Each connection: SYN and SYN-ACK, a FIN each way.
		if syns != 4 || fins != 4 {
			t.Errorf("%d SYN and %d FIN segments, want 4 and 4", syns, fins)
		}
	}
	if !strings.Contains(stderr, fmt.Sprintf("%d packets captured", len(lines))) || !strings.Contains(stderr, "0 packets dropped by kernel") {
		t.Errorf("summary does not match tshark's %d packets:\n%s", len(lines), stderr)
	}
	t.Logf("tshark read %d packets: UDP %v, TCP payload %v, %d SYN, %d FIN", len(lines), udpFrom, tcpBytes, syns, fins)
}

// TestCaptureUsageErrors: unsupported filter syntax, a missing process and
// missing flags fail before anything loads, with exit code 2 and a message
// that names the problem.
func TestCaptureUsageErrors(t *testing.T) {
	t.Setenv("NETMETER_CONFIG", "/dev/null")
	out := filepath.Join(t.TempDir(), "x.pcapng")
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"-i", "lo", "-w", out, "tcp[13] & 2 != 0"}, []string{"unsupported", "'[' at 1:4", "supported: host, net, port"}},
		{[]string{"-i", "lo", "-w", out, "ether", "host", "1:2:3:4:5:6"}, []string{"unsupported", "'ether' at 1:1"}},
		{[]string{"-i", "lo", "-w", out, "port", "http"}, []string{"'http'", "port names are not resolved"}},
		{[]string{"-i", "lo", "-w", out, "host", "10.0.0.1", "and"}, []string{"syntax error", "end of expression"}},
		{[]string{"--pid", "99999999", "-w", out}, []string{"--pid 99999999: no such process"}},
		{[]string{"-i", "lo"}, []string{"-w FILE"}},
		{[]string{"-w", out}, []string{"capture what?"}},
		{[]string{"--pid", "1", "--process", "x", "-w", out}, []string{"at most one"}},
		{[]string{"--container", "nmcap-no-such-container", "-w", out}, []string{"no such running container"}},
		{[]string{"-i", "lo", "-B", "-1", "-w", out}, []string{"--buffer-size", "must not be negative"}},
		{[]string{"-i", "lo", "-B", "2000000", "-w", out}, []string{"--buffer-size 2000000 KiB: at most 1 GiB"}},
	} {
		_, err := runCapture(t.Context(), t, nil, c.args...)
		var b bytes.Buffer
		code := exitCode(err, &b)
		if code != 2 {
			t.Errorf("capture %q: exit %d (%v), want 2", c.args, code, err)
		}
		for _, w := range c.want {
			if !strings.Contains(b.String(), w) {
				t.Errorf("capture %q: %q does not say %q", c.args, b.String(), w)
			}
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a failed capture created its output file")
	}
}
