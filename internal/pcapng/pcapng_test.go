package pcapng

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// udp4 is an IPv4/UDP packet 127.0.0.1:1000 -> 127.0.0.1:2000 with payload "hi".
var udp4 = []byte{
	0x45, 0x00, 0x00, 0x1e, 0x00, 0x01, 0x40, 0x00, 0x40, 0x11, 0x3c, 0xcc, 127, 0, 0, 1, 127, 0, 0, 1,
	0x03, 0xe8, 0x07, 0xd0, 0x00, 0x0a, 0x00, 0x00, 'h', 'i',
}

// block is one block read back by readBlocks.
type block struct {
	typ  uint32
	body []byte
}

// readBlocks splits a little-endian pcapng stream into blocks, checking
// that both length fields agree.
func readBlocks(b []byte) ([]block, error) {
	var out []block
	for len(b) > 0 {
		if len(b) < 12 {
			return nil, fmt.Errorf("short block: %d bytes", len(b))
		}
		typ := binary.LittleEndian.Uint32(b)
		n := binary.LittleEndian.Uint32(b[4:])
		if n < 12 || n%4 != 0 || uint64(n) > uint64(len(b)) {
			return nil, fmt.Errorf("block length %d of %d", n, len(b))
		}
		if tail := binary.LittleEndian.Uint32(b[n-4:]); tail != n {
			return nil, fmt.Errorf("trailing length %d != %d", tail, n)
		}
		out = append(out, block{typ, b[8 : n-4]})
		b = b[n:]
	}
	return out, nil
}

// options parses an option list into code -> values.
func options(b []byte) (map[uint16][]string, error) {
	m := map[uint16][]string{}
	for len(b) >= 4 {
		code := binary.LittleEndian.Uint16(b)
		n := int(binary.LittleEndian.Uint16(b[2:]))
		if code == optEnd {
			return m, nil
		}
		padded := (n + 3) &^ 3
		if 4+padded > len(b) {
			return nil, fmt.Errorf("option %d of %d bytes overruns", code, n)
		}
		m[code] = append(m[code], string(b[4:4+n]))
		b = b[4+padded:]
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%d stray option bytes", len(b))
	}
	return m, nil
}

func writeSample(t testing.TB, comment string, data []byte) []byte {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, "netmeter test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.AddInterface(Interface{LinkType: 101, SnapLen: 65535, Name: "lo", Description: "netmeter: pid 42 (curl)"}); err != nil {
		t.Fatal(err)
	}
	ts := time.Unix(1700000000, 123456789)
	if err := w.WritePacket(Packet{Time: ts, Data: data, OrigLen: len(data) + 5, Direction: DirOutbound, Comment: comment}); err != nil {
		t.Fatal(err)
	}
	if err := w.WritePacket(Packet{Time: ts.Add(time.Millisecond), Data: data, Direction: DirInbound}); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestRoundTrip(t *testing.T) {
	b := writeSample(t, "pid 42 curl", udp4)
	blocks, err := readBlocks(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks) != 4 || blocks[0].typ != blockSHB || blocks[1].typ != blockIDB || blocks[2].typ != blockEPB {
		t.Fatalf("blocks %+v", blocks)
	}
	epb := blocks[2].body
	capLen := binary.LittleEndian.Uint32(epb[12:])
	orig := binary.LittleEndian.Uint32(epb[16:])
	if int(capLen) != len(udp4) || int(orig) != len(udp4)+5 || !bytes.Equal(epb[20:20+capLen], udp4) {
		t.Fatalf("caplen %d orig %d", capLen, orig)
	}
	opts, err := options(epb[20+((capLen+3)&^3):])
	if err != nil {
		t.Fatal(err)
	}
	if opts[optComment][0] != "pid 42 curl" {
		t.Errorf("comment %q", opts[optComment])
	}
	if _, err := w(t).AddInterface(Interface{}); err != nil {
		t.Fatal(err)
	}
}

func w(t *testing.T) *Writer {
	pw, err := NewWriter(&bytes.Buffer{}, "")
	if err != nil {
		t.Fatal(err)
	}
	return pw
}

func TestPacketOnUnknownInterface(t *testing.T) {
	if err := w(t).WritePacket(Packet{Interface: 0}); err == nil {
		t.Fatal("packet without interface accepted")
	}
}

// TestReadByTsharkAndTcpdump: tshark and tcpdump read the file, with the
// interface description, the comment, the direction (p2p_dir 0 sent, 1
// received) and nanosecond times.
func TestReadByTsharkAndTcpdump(t *testing.T) {
	for _, tool := range []string{"tshark", "tcpdump"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("NETMETER_REQUIRE_PRIVILEGED") == "1" {
				t.Fatalf("%s not installed", tool)
			}
			t.Skipf("%s not installed", tool)
		}
	}
	f := filepath.Join(t.TempDir(), "x.pcapng")
	if err := os.WriteFile(f, writeSample(t, "pid 42 curl, with ünïcode", udp4), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("tshark", "-r", f, "-T", "fields", "-E", "separator=|",
		"-e", "frame.comment", "-e", "frame.interface_description", "-e", "frame.interface_name",
		"-e", "udp.srcport", "-e", "frame.len", "-e", "frame.time_epoch", "-e", "frame.p2p_dir").Output()
	if err != nil {
		t.Fatalf("tshark: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	t.Logf("tshark:\n%s", out)
	if len(lines) != 2 {
		t.Fatalf("tshark read %d packets, want 2", len(lines))
	}
	if !strings.Contains(lines[0], "pid 42 curl, with ünïcode") || !strings.Contains(lines[0], "netmeter: pid 42 (curl)") ||
		!strings.HasSuffix(lines[0], "|lo|1000|35|1700000000.123456789|0") || !strings.HasSuffix(lines[1], "|1") {
		t.Errorf("tshark line 1: %s", lines[0])
	}
	out, err = exec.Command("tcpdump", "-r", f, "-nn", "--time-stamp-precision=nano", "-tt").CombinedOutput()
	if err != nil {
		t.Fatalf("tcpdump: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "1700000000.123456789") || !strings.Contains(string(out), "127.0.0.1.1000 > 127.0.0.1.2000: UDP, length 2") {
		t.Errorf("tcpdump:\n%s", out)
	}
}

// FuzzWriter: any packet bytes and comment give a well-formed file whose
// packet and comment read back unchanged (a comment cut at MaxOptionLen).
func FuzzWriter(f *testing.F) {
	f.Add("pid 1 x", udp4, 0)
	f.Add("", []byte{}, 7)
	f.Add(strings.Repeat("é", 40000), []byte{1, 2, 3}, 1)
	f.Fuzz(func(t *testing.T, comment string, data []byte, orig int) {
		var buf bytes.Buffer
		pw, _ := NewWriter(&buf, comment)
		if _, err := pw.AddInterface(Interface{LinkType: 1, Name: comment, Description: comment}); err != nil {
			t.Fatal(err)
		}
		if err := pw.WritePacket(Packet{Data: data, OrigLen: orig, Comment: comment, Direction: Direction(orig & 3)}); err != nil {
			t.Fatal(err)
		}
		if err := pw.Flush(); err != nil {
			t.Fatal(err)
		}
		blocks, err := readBlocks(buf.Bytes())
		if err != nil || len(blocks) != 3 {
			t.Fatalf("%d blocks, %v", len(blocks), err)
		}
		epb := blocks[2].body
		capLen := binary.LittleEndian.Uint32(epb[12:])
		if !bytes.Equal(epb[20:20+capLen], data) {
			t.Fatal("data changed")
		}
		opts, err := options(epb[20+((capLen+3)&^3):])
		if err != nil {
			t.Fatal(err)
		}
		want := comment
		if len(want) > MaxOptionLen {
			want = opts[optComment][0]
			if !strings.HasPrefix(comment, want) || len(want) > MaxOptionLen || len(want) < MaxOptionLen-3 {
				t.Fatalf("cut comment of %d bytes", len(want))
			}
		}
		if got := opts[optComment]; want != "" && (len(got) != 1 || got[0] != want) {
			t.Fatalf("comment %q, want %q", got, want)
		}
	})
}
