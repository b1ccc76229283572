package ipfix

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/netmeter/netmeter/internal/snapshot"
	"github.com/netmeter/netmeter/internal/testnet"
)

// requireNfdump returns the paths of nfcapd and nfdump, skipping t when
// they are not installed, or failing it when NETMETER_REQUIRE_PRIVILEGED=1
// (CI installs Debian's nfdump package: .ci/run).
func requireNfdump(t testing.TB) (nfcapd, nfdump string) {
	t.Helper()
	var missing []string
	for _, name := range []string{"nfcapd", "nfdump"} {
		p, err := exec.LookPath(name)
		if err != nil {
			missing = append(missing, name)
		}
		if name == "nfcapd" {
			nfcapd = p
		} else {
			nfdump = p
		}
	}
	if len(missing) > 0 {
		why := fmt.Sprintf("nfdump is not installed (no %s)", strings.Join(missing, ", "))
		if os.Getenv(testnet.EnvRequirePrivileged) == "1" {
			t.Fatalf("%s; %s=1 requires it", why, testnet.EnvRequirePrivileged)
		}
		t.Skipf("%s (apt-get install nfdump; set %s=1 to fail instead)", why, testnet.EnvRequirePrivileged)
	}
	return nfcapd, nfdump
}

// collectorProc is an nfcapd receiving IPFIX on a loopback port and
// writing its capture file into a fresh directory.
type collectorProc struct {
	t      testing.TB
	nfdump string
	cmd    *exec.Cmd
	dir    string
	addr   string
	out    syncBuffer // nfcapd's stdout and stderr
	done   chan error // nfcapd's exit
	exited bool       // done was received from
}

// syncBuffer is a bytes.Buffer that a process writes while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startNfcapd starts nfcapd (1.7's flags: -b host -p port -w dir -t
// rotation) on a free UDP port of 127.0.0.1 and waits until it is bound.
//
// Its readiness probe (binding the port itself) can hold the port just when
// nfcapd binds, and another package's test may take a port between the probe
// that picked it and nfcapd: then nfcapd exits with "Address already in use"
// and is started again on a new port.
func startNfcapd(t testing.TB) *collectorProc {
	t.Helper()
	nfcapd, nfdump := requireNfdump(t)
	for attempt := 1; ; attempt++ {
		c, inUse := tryNfcapd(t, nfcapd, nfdump)
		if !inUse || attempt == 5 {
			if inUse {
				t.Fatalf("nfcapd: every port tried was in use:\n%s", c.out.String())
			}
			return c
		}
	}
}

// tryNfcapd starts nfcapd once; inUse says it exited because its port was
// taken.
func tryNfcapd(t testing.TB, nfcapd, nfdump string) (c *collectorProc, inUse bool) {
	t.Helper()
	c = &collectorProc{t: t, nfdump: nfdump, dir: t.TempDir(), done: make(chan error, 1)}
	probe, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	port := probe.LocalAddr().(*net.UDPAddr).Port
	probe.Close()
	c.addr = fmt.Sprintf("127.0.0.1:%d", port)
	// -t 3600: no rotation during the test; SIGTERM writes the file.
	c.cmd = exec.Command(nfcapd, "-b", "127.0.0.1", "-p", fmt.Sprint(port), "-w", c.dir, "-t", "3600")
	c.cmd.Stdout, c.cmd.Stderr = &c.out, &c.out
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.done <- c.cmd.Wait() }()
	t.Cleanup(func() {
		if !c.exited {
			_ = c.cmd.Process.Kill()
			<-c.done
		}
	})
	// nfcapd holds the port once binding it here fails.
	for deadline := time.Now().Add(10 * time.Second); ; {
		l, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
		if err != nil && errors.Is(err, syscall.EADDRINUSE) {
			break
		}
		if l != nil {
			l.Close()
		}
		select {
		case err := <-c.done:
			c.exited = true
			if strings.Contains(c.out.String(), "Address already in use") {
				return c, true
			}
			t.Fatalf("nfcapd exited before binding %s: %v\n%s", c.addr, err, c.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("nfcapd did not bind %s in 10 s:\n%s", c.addr, c.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return c, false
}

// stop ends nfcapd with SIGTERM, which makes it write its capture file, and
// returns that file's path.
func (c *collectorProc) stop() string {
	c.t.Helper()
	// Give nfcapd a moment to read what is queued on its socket.
	time.Sleep(300 * time.Millisecond)
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		c.t.Fatal(err)
	}
	select {
	case err := <-c.done:
		c.exited = true
		if err != nil {
			c.t.Fatalf("nfcapd: %v\n%s", err, c.out.String())
		}
	case <-time.After(20 * time.Second):
		c.t.Fatalf("nfcapd did not exit on SIGTERM:\n%s", c.out.String())
	}
	files, err := filepath.Glob(filepath.Join(c.dir, "nfcapd.[0-9]*"))
	if err != nil || len(files) != 1 {
		ls, _ := os.ReadDir(c.dir)
		c.t.Fatalf("want one capture file in %s, have %v (%v)\n%s", c.dir, ls, err, c.out.String())
	}
	return files[0]
}

// nfFlow is one record of `nfdump -o json` (1.7), times in UTC.
type nfFlow struct {
	First    string `json:"first"`
	Last     string `json:"last"`
	Proto    uint8  `json:"proto"`
	Src4     string `json:"src4_addr"`
	Dst4     string `json:"dst4_addr"`
	Src6     string `json:"src6_addr"`
	Dst6     string `json:"dst6_addr"`
	SrcPort  uint16 `json:"src_port"`
	DstPort  uint16 `json:"dst_port"`
	Packets  uint64 `json:"in_packets"`
	Bytes    uint64 `json:"in_bytes"`
	OutBytes uint64 `json:"out_bytes"`
	OutPkts  uint64 `json:"out_packets"`
}

// key is a flow's 5-tuple, counters and times (ms since the epoch),
// comparable with a sent record.
type key struct {
	src, dst     netip.Addr
	sport, dport uint16
	proto        uint8
	octets       uint64
	packets      uint64
	start, end   uint64
}

func recordKey(f *flow) key {
	return key{f.src, f.dst, f.sport, f.dport, f.proto, f.octets, f.packets, f.start, f.end}
}

func (k key) String() string {
	return fmt.Sprintf("%d %s → %s %d B %d pkts %s..%s", k.proto, netip.AddrPortFrom(k.src, k.sport), netip.AddrPortFrom(k.dst, k.dport),
		k.octets, k.packets, time.UnixMilli(int64(k.start)).UTC().Format(nfTime), time.UnixMilli(int64(k.end)).UTC().Format(nfTime))
}

const nfTime = "2006-01-02T15:04:05.000"

func (f nfFlow) key() (key, error) {
	k := key{sport: f.SrcPort, dport: f.DstPort, proto: f.Proto, octets: f.Bytes, packets: f.Packets}
	src, dst := f.Src4, f.Dst4
	if src == "" {
		src, dst = f.Src6, f.Dst6
	}
	var errs [4]error
	var first, last time.Time
	k.src, errs[0] = netip.ParseAddr(src)
	k.dst, errs[1] = netip.ParseAddr(dst)
	first, errs[2] = time.Parse(nfTime, f.First)
	last, errs[3] = time.Parse(nfTime, f.Last)
	if err := errors.Join(errs[:]...); err != nil {
		return k, err
	}
	k.start, k.end = uint64(first.UnixMilli()), uint64(last.UnixMilli())
	if f.OutBytes != 0 || f.OutPkts != 0 {
		return k, fmt.Errorf("reverse counters %d B %d pkts in a unidirectional flow", f.OutBytes, f.OutPkts)
	}
	return k, nil
}

// keys returns the records that Export sends for s, in order.
func keys(t testing.TB, s *snapshot.Snapshot) []key {
	t.Helper()
	var out []key
	for i := range s.Connections {
		c := &s.Connections[i]
		var f flow
		if !fill(&f, c, s.Time.Add(-s.Interval), s.Time) {
			t.Fatalf("connection %+v not exportable", c)
		}
		if d := c.Delta; d.TxBytes != 0 || d.TxPackets != 0 {
			f.octets, f.packets = d.TxBytes, d.TxPackets
			out = append(out, recordKey(&f))
		}
		if d := c.Delta; d.RxBytes != 0 || d.RxPackets != 0 {
			f.src, f.dst, f.sport, f.dport = f.dst, f.src, f.dport, f.sport
			f.octets, f.packets = d.RxBytes, d.RxPackets
			out = append(out, recordKey(&f))
		}
	}
	return out
}

// readFlows runs `nfdump -r file -o json` and returns its records.
func (c *collectorProc) readFlows(file string) ([]nfFlow, []byte) {
	c.t.Helper()
	cmd := exec.Command(c.nfdump, "-r", file, "-o", "json")
	cmd.Env = append(os.Environ(), "TZ=UTC")
	out, err := cmd.Output()
	if err != nil {
		c.t.Fatalf("nfdump -r %s -o json: %v", file, err)
	}
	var flows []nfFlow
	if bytes.Contains(out, []byte("No matching flows")) {
		return nil, out
	}
	if err := json.Unmarshal(out, &flows); err != nil {
		c.t.Fatalf("nfdump's json: %v\n%s", err, out)
	}
	return flows, out
}

// exporter returns nfdump's line for the exporter of file (`nfdump -E`):
// its IP, IPFIX version, observation domain, sequence failures, messages and
// flows.
func (c *collectorProc) exporter(file string) string {
	c.t.Helper()
	out, err := exec.Command(c.nfdump, "-E", file).Output()
	if err != nil {
		c.t.Fatalf("nfdump -E %s: %v", file, err)
	}
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "SysID:") {
			lines = append(lines, strings.Join(strings.Fields(l), " "))
		}
	}
	if len(lines) != 1 {
		c.t.Fatalf("nfdump -E %s: want one exporter:\n%s", file, out)
	}
	return lines[0]
}

// Constructed snapshots through nfcapd and back out of nfdump: every
// record's 5-tuple, bytes and packets equal what was sent, 64-bit counters
// included, over several messages and two exports, with no sequence error.
func TestNfdumpConstructed(t *testing.T) {
	nf := startNfcapd(t)
	x, err := New(Options{Collector: nf.addr, ObservationDomain: 42, TemplateRefresh: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()

	now := time.Now().Truncate(time.Millisecond)
	conns := []snapshot.Connection{
		{Proto: "tcp", Family: 4, Local: snapshot.Endpoint{Addr: "192.0.2.10", Port: 51000}, Remote: snapshot.Endpoint{Addr: "198.51.100.80", Port: 443},
			Delta: snapshot.Traffic{TxBytes: 6<<32 + 12345, TxPackets: 4_500_000, RxBytes: 3_000_000, RxPackets: 60_000}},
		{Proto: "udp", Family: 4, Local: snapshot.Endpoint{Addr: "192.0.2.10", Port: 5353}, Remote: snapshot.Endpoint{Addr: "203.0.113.53", Port: 53},
			Delta: snapshot.Traffic{TxBytes: 61, TxPackets: 1, RxBytes: 1<<32 + 1, RxPackets: 1<<32 + 7}},
		{Proto: "tcp", Family: 6, Local: snapshot.Endpoint{Addr: "2001:db8::10", Port: 40404}, Remote: snapshot.Endpoint{Addr: "2001:db8:1::80", Port: 8080},
			Delta: snapshot.Traffic{TxBytes: 9<<40 + 1, TxPackets: 7<<32 + 3}},
		{Proto: "udp", Family: 6, Local: snapshot.Endpoint{Addr: "2001:db8::10", Port: 443}, Remote: snapshot.Endpoint{Addr: "2001:db8:2::1", Port: 60000},
			FirstSeen: now.Add(-2250 * time.Millisecond), // in the first interval
			Delta:     snapshot.Traffic{RxBytes: 1252, RxPackets: 1}},
		{Proto: "tcp", Family: 4, Local: snapshot.Endpoint{Addr: "192.0.2.10", Port: 22}, Remote: snapshot.Endpoint{Addr: "192.0.2.99", Port: 61000},
			Delta: snapshot.Traffic{TxBytes: 1, TxPackets: 1, RxBytes: 52, RxPackets: 1}},
	}
	// Enough more that one export takes several messages.
	for i := range 150 {
		c := snapshot.Connection{Proto: "udp", Family: 4,
			Local:  snapshot.Endpoint{Addr: fmt.Sprintf("10.1.%d.%d", i/200, i%200+1), Port: uint16(20000 + i)},
			Remote: snapshot.Endpoint{Addr: "10.2.0.1", Port: 4739},
			Delta:  snapshot.Traffic{TxBytes: uint64(i+1) * 1000, TxPackets: uint64(i + 1), RxBytes: uint64(i) << 30, RxPackets: uint64(i) * 3}}
		if i%2 == 1 {
			c.Proto, c.Family = "tcp", 6
			c.Local.Addr, c.Remote.Addr = fmt.Sprintf("2001:db8:3::%x", i), "2001:db8:4::1"
		}
		conns = append(conns, c)
	}
	snaps := []*snapshot.Snapshot{
		{Time: now.Add(-1500 * time.Millisecond), Interval: 1500 * time.Millisecond, Connections: conns},
		{Time: now, Interval: 1500 * time.Millisecond, Connections: conns[:5]},
	}
	var want []key
	for i, s := range snaps {
		if i > 0 {
			time.Sleep(1100 * time.Millisecond) // past TemplateRefresh: the templates again
		}
		if err := x.Export(s); err != nil {
			t.Fatal(err)
		}
		want = append(want, keys(t, s)...)
	}
	st := x.Stats()
	file := nf.stop()
	flows, raw := nf.readFlows(file)
	t.Logf("sent %d records in %d messages; nfdump read %d flows", st.Records, st.Messages, len(flows))
	var got []key
	for i, f := range flows {
		k, err := f.key()
		if err != nil {
			t.Fatalf("nfdump flow %d: %v\n%s", i, err, raw)
		}
		got = append(got, k)
	}
	cmp := func(a, b key) int { return strings.Compare(a.String(), b.String()) }
	slices.SortFunc(got, cmp)
	slices.SortFunc(want, cmp)
	if !slices.Equal(got, want) {
		for _, k := range want {
			if !slices.Contains(got, k) {
				t.Errorf("sent, not in nfdump: %v", k)
			}
		}
		for _, k := range got {
			if !slices.Contains(want, k) {
				t.Errorf("in nfdump, not sent: %v", k)
			}
		}
		t.Fatalf("nfdump has %d flows, %d were sent", len(got), len(want))
	}
	for _, k := range keys(t, snaps[0])[:8] { // the hand-picked ones
		t.Logf("e.g. %v", k)
	}
	e := nf.exporter(file)
	t.Logf("nfdump -E: %s", e)
	if wantE := fmt.Sprintf("IP: 127.0.0.1, version: 10, ID: 42, Sequence failures: 0, packets: %d, flows: %d", st.Messages, len(want)); !strings.Contains(e, wantE) {
		t.Errorf("nfdump -E: %s\nwant: %s", e, wantE)
	}
	if !strings.Contains(nf.out.String(), "Sequence Errors: 0") {
		t.Errorf("nfcapd reports sequence errors:\n%s", nf.out.String())
	}
}
