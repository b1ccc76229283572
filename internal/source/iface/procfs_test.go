package iface

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/netmeter/netmeter/internal/snapshot"
)

func TestParseProcNetDevFixture(t *testing.T) {
	f, err := os.Open("testdata/proc_net_dev")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	links, err := ParseProcNetDev(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(links) != 3 {
		t.Fatalf("got %d links, want 3", len(links))
	}
	want := snapshot.LinkCounters{
		RxBytes: 1, RxPackets: 2, RxErrors: 3, RxDropped: 4, RxFIFOErrors: 5, RxFrameErrors: 6, RxCompressed: 7, Multicast: 8,
		TxBytes: 9, TxPackets: 10, TxErrors: 11, TxDropped: 12, TxFIFOErrors: 13, Collisions: 14, TxCarrierErrors: 15, TxCompressed: 16,
	}
	if links[1].Name != "eth0" || links[1].Counters != want {
		t.Errorf("eth0 = %+v\nwant %+v", links[1], want)
	}
	if links[0].Name != "lo" || links[0].Kind != "loopback" || links[0].Counters.RxBytes != 3193 {
		t.Errorf("lo = %+v", links[0])
	}
	// A name running into the first counter (no space after ':') and a
	// counter at 2^64-1.
	if l := links[2]; l.Name != "veth-with-long-name" || l.Counters.RxBytes != 1<<64-1 || l.Counters.RxPackets != 2 {
		t.Errorf("long name = %+v", l)
	}
}

func TestParseProcNetDevErrors(t *testing.T) {
	head := "h1\nh2\n"
	for _, tc := range []struct{ name, in, want string }{
		{"empty", "", "missing header"},
		{"short line", head + "eth0: 1 2 3\n", "3 counters, want 16"},
		{"no colon", head + "eth0 1 2 3\n", "no ':'"},
		{"empty name", head + ": 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n", "empty interface name"},
		{"not a number", head + "eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 x\n", "column 16"},
		{"negative", head + "eth0: -1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n", "column 1"},
		{"overflow", head + "eth0: 18446744073709551616 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n", "column 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseProcNetDev(strings.NewReader(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestProcFSLive(t *testing.T) {
	links, err := NewProcFS("").Links()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		if l.Name == "lo" {
			return
		}
	}
	t.Fatalf("lo missing from live /proc/net/dev: %+v", links)
}

func TestProcFSMissingFile(t *testing.T) {
	p := &ProcFS{path: "/nonexistent/net/dev"}
	if _, err := p.Links(); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v, want ErrNotExist", err)
	}
}

// FuzzParseProcNetDev: the parser sees kernel bytes and must never panic
// (procfs' parser panicked on a short line).
func FuzzParseProcNetDev(f *testing.F) {
	data, err := os.ReadFile("testdata/proc_net_dev")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add([]byte("h\nh\neth0: 1\n"))
	f.Add([]byte("h\nh\n:::\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		links, err := ParseProcNetDev(strings.NewReader(string(b)))
		if err != nil {
			return
		}
		for _, l := range links {
			if l.Name == "" || strings.ContainsRune(l.Name, '\n') {
				t.Fatalf("bad name %q", l.Name)
			}
		}
	})
}

func BenchmarkParseProcNetDev(b *testing.B) {
	data, err := os.ReadFile("testdata/proc_net_dev")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseProcNetDev(strings.NewReader(string(data))); err != nil {
			b.Fatal(err)
		}
	}
}
