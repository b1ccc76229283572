package netmeter

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/netmeter/netmeter/internal/pcapfilter"
	"github.com/netmeter/netmeter/internal/testnet"
)

func TestWithPcapFilterRejectsUnsupported(t *testing.T) {
	_, err := New(WithPcapFilter("tcp[13] & 2 != 0"))
	if !errors.Is(err, pcapfilter.ErrUnsupported) || !strings.Contains(err.Error(), "'['") {
		t.Fatalf("New: %v", err)
	}
	if _, err := New(WithStorePcap("")); err == nil {
		t.Fatal("empty path accepted")
	}
}

// TestStorePcap: a Monitor with WithStorePcap and WithPcapFilter writes the
// datagrams the test sends on lo (and nothing the filter rejects) to a
// pcapng file that tshark reads, each naming the sending process.
func TestStorePcap(t *testing.T) {
	testnet.RequirePrivileged(t)
	if _, err := exec.LookPath("tshark"); err != nil {
		if os.Getenv("NETMETER_REQUIRE_PRIVILEGED") == "1" {
			t.Fatal("tshark not installed")
		}
		t.Skip("tshark not installed")
	}
	rx, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	port := rx.LocalAddr().(*net.UDPAddr).Port
	file := filepath.Join(t.TempDir(), "sdk.pcapng")
	m, err := New(WithoutEngine(), WithStorePcap(file), WithPcapFilter("udp dst port "+strconv.Itoa(port)), WithInterval(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	tx, err := net.Dial("udp4", rx.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	const n = 25
	for range n {
		if _, err := tx.Write([]byte("netmeter sdk capture")); err != nil {
			t.Fatal(err)
		}
	}
	// A datagram the filter rejects (another port).
	other, _ := net.Dial("udp4", "127.0.0.1:9")
	other.Write([]byte("x"))
	other.Close()
	time.Sleep(200 * time.Millisecond)
	if err := m.Stop(); err != nil {
		t.Fatal(err)
	}
	st, ok := m.PcapStats()
	// Both ends are local sockets: each datagram is written once leaving
	// tx and once arriving at rx; tx, created after Start, is named.
	if !ok || st.Written != 2*n || st.Dropped != 0 {
		t.Fatalf("PcapStats %+v %v, want %d written", st, ok, 2*n)
	}
	out, err := exec.Command("tshark", "-r", file, "-T", "fields", "-e", "udp.dstport", "-e", "frame.p2p_dir", "-e", "frame.comment").Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2*n {
		t.Fatalf("tshark read %d packets, want %d:\n%s", len(lines), 2*n, out)
	}
	named := 0
	for _, l := range lines {
		if !strings.HasPrefix(l, strconv.Itoa(port)+"\t") {
			t.Fatalf("packet %q is not to port %d", l, port)
		}
		if strings.Contains(l, "pid "+strconv.Itoa(os.Getpid())+" (") {
			named++
		}
	}
	if named != n {
		t.Errorf("%d packets name this process, want %d (tx's):\n%s", named, n, out)
	}
}
