package output

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/netmeter/netmeter/internal/snapshot"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// fixture is a fixed snapshot exercising every column: a netns interface,
// a gone one, unsorted input, huge counters and fractional rates.
func fixture() snapshot.Snapshot {
	t0 := time.Date(2026, 3, 14, 15, 9, 26, 535897932, time.UTC)
	return snapshot.Snapshot{
		Time:     t0,
		Interval: time.Second,
		Source:   "netlink",
		Interfaces: []snapshot.Interface{
			{
				Index: 2, Name: "eth0", Kind: "device", OperState: "up", AdminUp: true, Carrier: true,
				MTU: 1500, SpeedMbps: 1000, MAC: "52:54:00:12:34:56", Qdisc: "fq_codel", Present: true,
				Kernel: snapshot.LinkCounters{
					RxBytes: 1234567890123, TxBytes: 98765432109,
					RxPackets: 987654321, TxPackets: 123456789,
					RxErrors: 3, TxErrors: 0, RxDropped: 17, TxDropped: 2,
				},
				Total:       snapshot.LinkCounters{RxBytes: 5 << 20, TxBytes: 1 << 20, RxPackets: 4000, TxPackets: 1000, RxErrors: 1},
				Delta:       snapshot.LinkCounters{RxBytes: 1536000, TxBytes: 64000, RxPackets: 1100, TxPackets: 700, RxErrors: 1},
				RxBytesRate: snapshot.Rate{Current: 1536000.25, Window2s: 1400000, Window10s: 900000.5, Window40s: 300000, Min: 0, Avg: 250000, Max: 2000000},
				TxBytesRate: snapshot.Rate{Current: 64000.125, Window2s: 60000, Window10s: 50000, Window40s: 20000, Avg: 10000, Max: 80000},
				FirstSeen:   t0.Add(-time.Minute),
			},
			{
				Index: 1, Name: "lo", Kind: "loopback", OperState: "unknown", AdminUp: true, Carrier: true,
				MTU: 65536, Qdisc: "noqueue", Present: true,
				Kernel:      snapshot.LinkCounters{RxBytes: 1023, TxBytes: 1023, RxPackets: 9, TxPackets: 9},
				RxBytesRate: snapshot.Rate{Current: 0.5},
				TxBytesRate: snapshot.Rate{Current: 0.5},
				FirstSeen:   t0.Add(-time.Minute),
			},
			{
				Index: 7, Name: "veth-app", Netns: "app", NetnsInode: 4026532999, Kind: "veth", OperState: "up",
				AdminUp: true, Carrier: true, MTU: 1500, Master: "br0", Present: true,
				Kernel:      snapshot.LinkCounters{RxBytes: math.MaxUint64, TxBytes: 1 << 40, RxPackets: math.MaxUint64, TxPackets: 1},
				RxBytesRate: snapshot.Rate{Current: 1.25e9},
				TxBytesRate: snapshot.Rate{Current: 1023.6},
				FirstSeen:   t0.Add(-time.Minute),
			},
			{
				Index: 7, Name: "veth-app", OperState: "lowerlayerdown", Kind: "veth", Present: true,
				FirstSeen: t0,
			},
			{
				Index: 9, Name: "tun0", Kind: "tun", OperState: "down", Present: false,
				Kernel:      snapshot.LinkCounters{RxBytes: 4096, TxBytes: 8192, RxPackets: 4, TxPackets: 8, TxDropped: 1},
				RxBytesRate: snapshot.Rate{Current: 0},
				FirstSeen:   t0.Add(-time.Minute),
			},
		},
	}
}

// golden compares got with testdata/name, rewriting it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run go test -update if intended)\n--- got ---\n%s\n--- want ---\n%s", path, got, want)
	}
}

func TestTableGolden(t *testing.T) {
	tests := []struct {
		golden string
		opt    TableOptions
	}{
		{"table.golden", TableOptions{}},
		{"table_bits.golden", TableOptions{Bits: true}},
		{"table_exact.golden", TableOptions{Exact: true}},
		{"table_exact_bits.golden", TableOptions{Exact: true, Bits: true}},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			var buf bytes.Buffer
			if err := Table(&buf, fixture(), tt.opt); err != nil {
				t.Fatal(err)
			}
			golden(t, tt.golden, buf.Bytes())
		})
	}
}

func TestTableDoesNotModifySnapshot(t *testing.T) {
	s := fixture()
	before := fixture()
	if err := Table(&bytes.Buffer{}, s, TableOptions{}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s, before) {
		t.Error("Table modified its snapshot (e.g. sorted Interfaces in place)")
	}
}

func TestTableEmpty(t *testing.T) {
	var buf bytes.Buffer
	if err := Table(&buf, snapshot.Snapshot{}, TableOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(buf.String(), "\n"); got != 1 {
		t.Errorf("empty snapshot: got %d lines, want header only:\n%s", got, buf.String())
	}
}

func TestTableAligned(t *testing.T) {
	var buf bytes.Buffer
	if err := Table(&buf, fixture(), TableOptions{}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	// Right-aligned columns end at the same offset on every line.
	for _, l := range lines[1:] {
		if len(l) != len(lines[0]) {
			t.Errorf("line %q has width %d, header %d", l, len(l), len(lines[0]))
		}
	}
	for _, l := range lines {
		if strings.HasSuffix(l, " ") {
			t.Errorf("trailing blank in %q", l)
		}
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, os.ErrClosed }

func TestTableWriteError(t *testing.T) {
	if err := Table(failWriter{}, fixture(), TableOptions{}); err == nil {
		t.Error("Table to a failing writer: want error")
	}
}

func TestJSONGolden(t *testing.T) {
	var buf bytes.Buffer
	// Two calls, as ifstat --watch does: JSON Lines.
	for range 2 {
		if err := JSON(&buf, fixture()); err != nil {
			t.Fatal(err)
		}
	}
	golden(t, "snapshot.jsonl.golden", buf.Bytes())
}

func TestJSONLinesRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	in := fixture()
	for range 3 {
		if err := JSON(&buf, in); err != nil {
			t.Fatal(err)
		}
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("got %d lines, want 3", len(lines))
	}
	for _, l := range lines {
		var out snapshot.Snapshot
		if err := json.Unmarshal([]byte(l), &out); err != nil {
			t.Fatal(err)
		}
		// Nothing rounded: exact equality, including huge counters, the
		// fractional rates and the nanoseconds of the timestamp.
		if !reflect.DeepEqual(in, out) {
			t.Errorf("round trip differs:\n in  %+v\n out %+v", in, out)
		}
	}
}

func TestJSONNaN(t *testing.T) {
	s := fixture()
	s.Interfaces[0].RxBytesRate.Current = math.NaN()
	if err := JSON(&bytes.Buffer{}, s); err == nil {
		t.Error("JSON with a NaN rate: want error")
	}
}

func BenchmarkTable(b *testing.B) {
	s := fixture()
	// A realistic host: a few hundred interfaces (containers' veths).
	base := s.Interfaces
	for i := range 300 {
		ifc := base[i%len(base)]
		ifc.Name = ifc.Name + "-" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		s.Interfaces = append(s.Interfaces, ifc)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := Table(io.Discard, s, TableOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
