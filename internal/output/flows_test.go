package output

import (
	"bytes"
	"io"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/netmeter/netmeter/internal/snapshot"
)

// flowFixture is a fixed snapshot with processes and connections: a
// loopback connection with a peer, an IPv6 one, an unconnected UDP socket,
// a closed connection, an exited process and a kernel bucket; input is
// unsorted.
func flowFixture() snapshot.Snapshot {
	s := fixture()
	t0 := s.Time
	rate := func(cur float64) snapshot.Rate {
		return snapshot.Rate{Current: cur, Window2s: cur * 0.9, Window10s: cur * 0.5, Window40s: cur * 0.25, Avg: cur / 3, Max: cur * 2}
	}
	tr := func(tx, rx uint64) snapshot.Traffic {
		return snapshot.Traffic{TxPayload: tx * 9 / 10, RxPayload: rx * 9 / 10, TxBytes: tx, RxBytes: rx, TxPackets: tx / 1000, RxPackets: rx / 1000}
	}
	s.Processes = []snapshot.Process{
		{PID: 812, Comm: "nginx", Exe: "/usr/sbin/nginx", UID: 33, User: "www-data", StartTime: t0.Add(-time.Hour), Sockets: 4,
			Total: tr(734003200, 1048576), TxRate: rate(1536000.5), RxRate: rate(20480)},
		{PID: 4242, Comm: "curl", Exe: "/usr/bin/curl", UID: 1000, User: "alice", StartTime: t0.Add(-time.Minute), Sockets: 2,
			Total: tr(1048576, 734003200), TxRate: rate(20480), RxRate: rate(1536000.5)},
		{PID: 977, Comm: "", Exe: "/usr/lib/systemd/systemd-resolved", UID: 991, User: "systemd-resolve", Sockets: 1,
			Total: tr(4096, 8192), TxRate: rate(100), RxRate: rate(200)},
		{PID: 5150, Comm: "ssh", Exe: "/usr/bin/ssh", UID: 1000, User: "alice", Exited: true,
			Total: tr(123456789012, 98765), TxRate: rate(0), RxRate: rate(0)},
	}
	s.Connections = []snapshot.Connection{
		{Cookie: 7, Proto: "udp", Family: 4, Local: snapshot.Endpoint{Addr: "0.0.0.0", Port: 5353}, Owner: snapshot.Owner{PID: 977, Comm: "systemd-resolve"},
			Total: tr(4096, 8192), TxRate: rate(100), RxRate: rate(200)},
		{Cookie: 3, Proto: "tcp", Family: 4, State: "established",
			Local:  snapshot.Endpoint{Addr: "127.0.0.1", Port: 41234},
			Remote: snapshot.Endpoint{Addr: "127.0.0.1", Port: 8080},
			Owner:  snapshot.Owner{PID: 4242, Comm: "curl"}, Peer: &snapshot.Owner{PID: 812, Comm: "nginx"}, PeerCookie: 4,
			Total: tr(1048576, 734003200), TxRate: rate(20480), RxRate: rate(1536000.5),
			TCP: &snapshot.TCPStats{SRTT: 48, Total: snapshot.TCPCounters{SegsOut: 812}}},
		{Cookie: 5, Proto: "tcp", Family: 6, State: "established",
			Local:  snapshot.Endpoint{Addr: "2001:db8::5", Port: 443},
			Remote: snapshot.Endpoint{Addr: "2001:db8:1234::beef", Port: 50312},
			Owner:  snapshot.Owner{PID: 812, Comm: "nginx"},
			Total:  tr(5000, 700), TxRate: rate(1000.25), RxRate: rate(64),
			TCP: &snapshot.TCPStats{SRTT: 48_250, Total: snapshot.TCPCounters{SegsOut: 4031, RetransSegs: 12}}},
		{Cookie: 2, Proto: "tcp", Family: 4, Closed: true, State: "close",
			Local:  snapshot.Endpoint{Addr: "10.0.0.5", Port: 51000},
			Remote: snapshot.Endpoint{Addr: "93.184.216.34", Port: 22},
			Owner:  snapshot.Owner{PID: 5150, Comm: "ssh"},
			Total:  tr(123456789012, 98765)},
	}
	s.Unattributed = []snapshot.Bucket{
		{Name: "kernel", Total: tr(6000, 2000), Delta: tr(120, 60)},
		{Name: "overflow", Total: tr(0, 0)},
	}
	s.Engine = &snapshot.EngineStats{Sockets: 7}
	return s
}

func TestFlowTablesGolden(t *testing.T) {
	tests := []struct {
		golden string
		fn     func(io.Writer, snapshot.Snapshot, TableOptions) error
		opt    TableOptions
	}{
		{"processes.golden", Processes, TableOptions{}},
		{"processes_exact_bits.golden", Processes, TableOptions{Exact: true, Bits: true}},
		{"connections.golden", Connections, TableOptions{}},
		{"connections_exact.golden", Connections, TableOptions{Exact: true}},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			var buf bytes.Buffer
			s := flowFixture()
			if err := tt.fn(&buf, s, tt.opt); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(s, flowFixture()) {
				t.Error("the table modified its snapshot")
			}
			checkAligned(t, buf.String())
			golden(t, tt.golden, buf.Bytes())
		})
	}
}

// checkAligned checks that every line is as wide as the header (the last
// column is right-aligned) and has no trailing blanks.
func checkAligned(t *testing.T, out string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	for _, l := range lines {
		if len([]rune(l)) != len([]rune(lines[0])) {
			t.Errorf("line %q has width %d, header %d", l, len([]rune(l)), len([]rune(lines[0])))
		}
		if strings.HasSuffix(l, " ") {
			t.Errorf("trailing blank in %q", l)
		}
	}
}

func TestFlowTablesEmpty(t *testing.T) {
	for name, fn := range map[string]func(io.Writer, snapshot.Snapshot, TableOptions) error{
		"processes": Processes, "connections": Connections,
	} {
		var buf bytes.Buffer
		if err := fn(&buf, snapshot.Snapshot{}, TableOptions{}); err != nil {
			t.Fatal(err)
		}
		if got := strings.Count(buf.String(), "\n"); got != 1 {
			t.Errorf("%s: empty snapshot: got %d lines, want the header only:\n%s", name, got, buf.String())
		}
	}
}

func TestFlowTablesWriteError(t *testing.T) {
	if err := Processes(failWriter{}, flowFixture(), TableOptions{}); err == nil {
		t.Error("Processes to a failing writer: want error")
	}
	if err := Connections(failWriter{}, flowFixture(), TableOptions{}); err == nil {
		t.Error("Connections to a failing writer: want error")
	}
}

func TestFlowTablesHostileRates(t *testing.T) {
	s := flowFixture()
	s.Processes[0].TxRate.Current = math.NaN()
	s.Connections[0].RxRate.Current = math.Inf(1)
	var buf bytes.Buffer
	if err := Processes(&buf, s, TableOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := Connections(&buf, s, TableOptions{}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "NaN") || strings.Contains(buf.String(), "Inf") {
		t.Errorf("invalid rate printed as a number:\n%s", buf.String())
	}
}

func TestFormatEndpoint(t *testing.T) {
	tests := []struct {
		in   snapshot.Endpoint
		want string
	}{
		{snapshot.Endpoint{Addr: "10.0.0.1", Port: 80}, "10.0.0.1:80"},
		{snapshot.Endpoint{Addr: "2001:db8::1", Port: 443}, "[2001:db8::1]:443"},
		{snapshot.Endpoint{Addr: "::1", Port: 0}, "[::1]"},
		{snapshot.Endpoint{Addr: "10.0.0.1"}, "10.0.0.1"},
		{snapshot.Endpoint{Port: 5353}, "*:5353"},
		{snapshot.Endpoint{}, "*"},
	}
	for _, tt := range tests {
		if got := FormatEndpoint(tt.in); got != tt.want {
			t.Errorf("FormatEndpoint(%+v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestNames(t *testing.T) {
	if got := ProgramName(&snapshot.Process{PID: 9, Exe: "/usr/bin/python3"}); got != "python3" {
		t.Errorf("ProgramName without comm = %q", got)
	}
	if got := ProgramName(&snapshot.Process{PID: 9}); got != "pid 9" {
		t.Errorf("ProgramName without comm and exe = %q", got)
	}
	if got := BucketName(&snapshot.Bucket{Name: "kernel"}); got != "[kernel]" {
		t.Errorf("BucketName = %q", got)
	}
	if got := BucketName(&snapshot.Bucket{}); got != "[unattributed]" {
		t.Errorf("BucketName of an unnamed bucket = %q", got)
	}
	if tx, rx := BucketRates(&snapshot.Bucket{Delta: snapshot.Traffic{TxBytes: 100, RxBytes: 50}}, 2*time.Second); tx != 50 || rx != 25 {
		t.Errorf("BucketRates = %v, %v; want 50, 25", tx, rx)
	}
	if tx, rx := BucketRates(&snapshot.Bucket{Delta: snapshot.Traffic{TxBytes: 100}}, 0); tx != 0 || rx != 0 {
		t.Errorf("BucketRates with no interval = %v, %v; want 0, 0", tx, rx)
	}
}

func TestEngineNote(t *testing.T) {
	if n := EngineNote(snapshot.Snapshot{Engine: &snapshot.EngineStats{Kind: "ebpf"}}); n != "" {
		t.Errorf("eBPF: %q", n)
	}
	n := EngineNote(snapshot.Snapshot{Engine: &snapshot.EngineStats{Kind: "classic", Approximate: true, CaptureDropped: 3}})
	if !strings.HasPrefix(n, "approximate: classic engine") || !strings.Contains(n, "3 packets dropped") {
		t.Errorf("classic: %q", n)
	}
}
