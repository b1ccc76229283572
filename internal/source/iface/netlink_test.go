package iface_test

import (
	"testing"
	"time"

	"github.com/netmeter/netmeter/internal/source/iface"
	"github.com/netmeter/netmeter/internal/testnet"
)

func TestMain(m *testing.M) { testnet.Main(m) }

// TestNetlinkAttributes builds a bridge with an enslaved veth in a test
// namespace and checks every link attribute netmeter reports.
func TestNetlinkAttributes(t *testing.T) {
	testnet.RequirePrivileged(t)
	a, b := testnet.NewNetns(t), testnet.NewNetns(t)
	if err := a.AddBridge("br0"); err != nil {
		t.Fatal(err)
	}
	if err := a.AddVeth(testnet.VethConfig{Name: "port0", Peer: b, PeerName: "peer0", MTU: 1400}); err != nil {
		t.Fatal(err)
	}
	for _, step := range []error{a.SetMaster("port0", "br0"), a.SetUp("br0"), a.SetUp("port0"), b.SetUp("peer0")} {
		if step != nil {
			t.Fatal(step)
		}
	}
	if err := a.WaitOperUp("port0", 5e9); err != nil {
		t.Fatal(err)
	}
	src, err := iface.OpenNetlink(a.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	links, err := src.Links()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]iface.Link{}
	for _, l := range links {
		got[l.Name] = l
	}
	if len(got) != 3 {
		t.Fatalf("want lo, br0, port0 in the namespace, got %+v", links)
	}
	lo, br, port := got["lo"], got["br0"], got["port0"]
	if lo.Kind != "loopback" || !lo.AdminUp || lo.MTU != 65536 {
		t.Errorf("lo: %+v", lo)
	}
	if br.Kind != "bridge" || !br.AdminUp || br.Master != "" {
		t.Errorf("br0: %+v", br)
	}
	mac, err := a.HardwareAddr("port0")
	if err != nil {
		t.Fatal(err)
	}
	if port.Kind != "veth" || port.Master != "br0" || port.MasterIndex != br.Index || port.MTU != 1400 ||
		port.MAC != mac.String() || port.OperState != "up" || !port.Carrier || port.Qdisc != "noqueue" || port.SpeedMbps != 10000 {
		t.Errorf("port0: %+v", port)
	}
	// The peer end's state follows: down peer → no carrier at once, and an
	// operational state other than up once the kernel's link watcher runs
	// (asynchronous, up to a second).
	if err := b.SetDown("peer0"); err != nil {
		t.Fatal(err)
	}
	var port0 iface.Link
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		links, err = src.Links()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range links {
			if l.Name == "port0" {
				port0 = l
			}
		}
		if port0.OperState != "up" {
			break
		}
	}
	if port0.Carrier || port0.OperState == "up" {
		t.Errorf("port0 with its peer down: %+v", port0)
	}
}

// TestOpenMissingNamespace: a namespace that does not exist is an error
// that names it.
func TestOpenMissingNamespace(t *testing.T) {
	if _, _, err := iface.Open("/run/netns/nmt-missing"); err == nil {
		t.Fatal("opening a missing namespace succeeded")
	}
}

func BenchmarkNetlinkLinks(b *testing.B) {
	src, err := iface.OpenNetlink("")
	if err != nil {
		b.Skip(err)
	}
	defer src.Close()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := src.Links(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkProcFSLinks is the baseline for BenchmarkNetlinkLinks: the
// classic /proc/net/dev read that ifstat-like tools do.
func BenchmarkProcFSLinks(b *testing.B) {
	src := iface.NewProcFS("")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := src.Links(); err != nil {
			b.Fatal(err)
		}
	}
}
