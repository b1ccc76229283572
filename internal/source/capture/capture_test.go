package capture

import (
	"bytes"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"testing/fstest"
	"time"

	"github.com/cilium/ebpf"

	"github.com/netmeter/netmeter/internal/bpfload"
	"github.com/netmeter/netmeter/internal/pcapfilter"
	"github.com/netmeter/netmeter/internal/pcapng"
)

func TestNamesMatchC(t *testing.T) {
	spec, err := loadCapture()
	if err != nil {
		t.Fatal(err)
	}
	if err := bpfload.CheckNames(spec, &captureSpecs{}); err != nil {
		t.Fatal(err)
	}
	if got := spec.Maps[captureMapCapEvents].Type; got != ebpf.RingBuf {
		t.Fatalf("events map is %v", got)
	}
}

// record builds a ring record as bpf/capture.c writes it.
func record(t testing.TB, r captureCapRecord, data []byte) []byte {
	b, err := binary.Append(nil, binary.NativeEndian, r)
	if err != nil {
		t.Fatal(err)
	}
	return append(b, data...)
}

func TestDecodeRecord(t *testing.T) {
	var comm [16]int8
	copyComm(&comm, "curl")
	data := []byte{0x45, 0, 0, 20}
	b := record(t, captureCapRecord{TsNs: 5, Cookie: 77, Ifindex: 1, OrigLen: 1500, CapLen: 4, Tgid: 42, Comm: comm,
		Direction: uint8(captureCapDirectionCAP_DIR_EGRESS)}, data)
	b = append(b, 0, 0, 0, 0) // the ring rounds records up
	var p Packet
	if err := decodeRecord(b, &p); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(p.Data, data) || p.OrigLen != 1500 || p.Pid != 42 || p.Comm != "curl" || p.Dir != DirOut || p.Cookie != 77 || p.mono != 5 {
		t.Fatalf("%+v", p)
	}
	if err := decodeRecord(b[:recordSize+3], &p); err == nil {
		t.Fatal("short record accepted")
	}
	if err := decodeRecord(b[:10], &p); err == nil {
		t.Fatal("truncated header accepted")
	}
}

// FuzzDecodeRecord: any bytes from the ring decode or fail, never panic,
// and decoded data lies inside the record.
func FuzzDecodeRecord(f *testing.F) {
	f.Add(record(f, captureCapRecord{CapLen: 3, Direction: 1}, []byte{1, 2, 3}))
	f.Add(record(f, captureCapRecord{CapLen: 1 << 31}, nil))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var p Packet
		if err := decodeRecord(b, &p); err != nil {
			return
		}
		if len(p.Data) > len(b)-recordSize {
			t.Fatalf("data of %d bytes from a record of %d", len(p.Data), len(b))
		}
	})
}

func TestPidsByName(t *testing.T) {
	fsys := fstest.MapFS{
		"proc/42/fd/0": {Data: []byte("/dev/null"), Mode: os.ModeSymlink},
		"proc/42/fd/3": {Data: []byte("socket:[1234]"), Mode: os.ModeSymlink},
		"proc/42/fd/4": {Data: []byte("socket:[99]"), Mode: os.ModeSymlink},
		"proc/42/fd/5": {Data: []byte("pipe:[5]"), Mode: os.ModeSymlink},
		"proc/42/fd/6": {Data: []byte("socket:[x]"), Mode: os.ModeSymlink},
		"proc/42/comm": {Data: []byte("curl\n")},
		"proc/43/comm": {Data: []byte("nginx\n")},
		"proc/44/comm": {Data: []byte("curl\n")},
	}
	pids, err := PidsByName(fsys, "curl")
	if err != nil || !slices.Equal(pids, []int{42, 44}) {
		t.Fatalf("PidsByName: %v %v", pids, err)
	}
}

// fakeSource replays records as the ring delivers them.
type fakeSource struct {
	recs [][]byte
	i    int
}

func (f *fakeSource) Next(time.Time) (Packet, error) {
	if f.i == len(f.recs) {
		return Packet{}, io.EOF
	}
	var p Packet
	err := decodeRecord(f.recs[f.i], &p)
	f.i++
	return p, err
}

// BenchmarkPerPacket measures the userspace path of one kernel-side packet
// (decode the ring record, run the filter, write a pcapng block with the
// owner comment) and reports it as a ratio ("x-baseline") to a baseline
// measured in the same run: copying the record's bytes to a buffered writer
// with no decoding.
func BenchmarkPerPacket(b *testing.B) {
	var comm [16]int8
	copyComm(&comm, "curl")
	pkt := make([]byte, 1400)
	pkt[0], pkt[9] = 0x45, 6 // IPv4 TCP
	rec := record(b, captureCapRecord{CapLen: uint32(len(pkt)), OrigLen: uint32(len(pkt)), Tgid: 42, Comm: comm, Cookie: 9, Direction: 2}, pkt)
	// The baseline, timed by hand (testing.Benchmark cannot nest).
	const baseN = 200000
	w := bufioDiscard()
	start := time.Now()
	for range baseN {
		_, _ = w.Write(rec)
	}
	baseNs := float64(time.Since(start).Nanoseconds()) / baseN
	pw, err := pcapng.NewWriter(io.Discard, "bench")
	if err != nil {
		b.Fatal(err)
	}
	if _, err := pw.AddInterface(pcapng.Interface{LinkType: 101}); err != nil {
		b.Fatal(err)
	}
	prog, err := pcapfilter.Compile("tcp or udp port 53", pcapfilter.LinkTypeRaw, 0)
	if err != nil {
		b.Fatal(err)
	}
	match, err := pcapfilter.NewMatcher(prog)
	if err != nil {
		b.Fatal(err)
	}
	var comments commentCache
	b.ReportAllocs()
	b.SetBytes(int64(len(rec)))
	for b.Loop() {
		var p Packet
		if err := decodeRecord(rec, &p); err != nil {
			b.Fatal(err)
		}
		if !match(p.Data) {
			b.Fatal("filter rejected")
		}
		if err := pw.WritePacket(toPcapng(0, &p, &comments)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/baseNs, "x-baseline")
	b.ReportMetric(baseNs, "baseline-ns/op")
}

func TestRunWritesFakeSource(t *testing.T) {
	// Run's loop is exercised on the real kernel by the command's tests;
	// here only the record → pcapng conversion, through the writer.
	var comm [16]int8
	copyComm(&comm, "curl")
	rec := record(t, captureCapRecord{CapLen: 1, OrigLen: 60, Tgid: 42, Comm: comm, Cookie: 9, Direction: 1}, []byte{0x45})
	src := &fakeSource{recs: [][]byte{rec}}
	p, err := src.Next(time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	q := toPcapng(3, &p, &commentCache{})
	if q.Comment != "pid 42 (curl) socket 9" || q.Direction != pcapng.DirInbound || q.OrigLen != 60 || q.Interface != 3 {
		t.Fatalf("%+v", q)
	}
	_ = filepath.Join
}

// TestRecordLayout: the header the decoder copies is exactly what
// encoding/binary makes of the generated mirror (no padding, host order).
func TestRecordLayout(t *testing.T) {
	if n := binary.Size(captureCapRecord{}); n != recordSize {
		t.Fatalf("binary size %d, memory size %d", n, recordSize)
	}
	want := captureCapRecord{TsNs: 1 << 40, Cookie: 3, Ifindex: 4, OrigLen: 5, CapLen: 0, Tgid: 7, Direction: 2}
	var p Packet
	if err := decodeRecord(record(t, want, nil), &p); err != nil {
		t.Fatal(err)
	}
	if p.mono != want.TsNs || p.Cookie != 3 || p.Ifindex != 4 || p.OrigLen != 5 || p.Pid != 7 || p.Dir != DirOut {
		t.Fatalf("%+v", p)
	}
}

// -B sizes become valid BPF ring buffer sizes: a power of two, at least a
// page, never smaller than asked.
func TestRingSize(t *testing.T) {
	for _, tt := range []struct{ in, want int }{{0, 0}, {-5, 0}, {1, 4096}, {4096, 4096}, {4097, 8192}, {16 << 10, 16 << 10}, {3 << 20, 4 << 20}} {
		if got := ringSize(tt.in); got != tt.want {
			t.Errorf("ringSize(%d) = %d, want %d", tt.in, got, tt.want)
		}
	}
}
