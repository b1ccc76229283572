package nftcount

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"

	"github.com/netmeter/netmeter/internal/testnet"
)

func TestMain(m *testing.M) { testnet.Main(m) }

// devStats is the part of a /proc/net/dev line the tests compare.
type devStats struct{ RxBytes, RxPackets, TxBytes, TxPackets uint64 }

func netDev(t testing.TB, ns *testnet.Netns, link string) devStats {
	t.Helper()
	c, err := ns.LinkCounters(link)
	if err != nil {
		t.Fatal(err)
	}
	return devStats{RxBytes: c.RxBytes, RxPackets: c.RxPackets, TxBytes: c.TxBytes, TxPackets: c.TxPackets}
}

// openIn opens the counters in ns and registers their removal, even when
// the test fails.
func openIn(t testing.TB, ns *testnet.Netns, table string) *Counters {
	t.Helper()
	c, err := Open(ns.Path(), table)
	if err != nil {
		t.Fatalf("open in %s: %v", ns, err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		if err := Cleanup(ns.Path(), table); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return c
}

// tablesIn lists the inet tables in ns through the library.
func tablesIn(t testing.TB, ns *testnet.Netns) []string {
	t.Helper()
	f, err := os.Open(ns.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	conn, err := nftables.New(nftables.WithNetNSFd(int(f.Fd())))
	if err != nil {
		t.Fatal(err)
	}
	tabs, err := conn.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tb := range tabs {
		names = append(names, tb.Name)
	}
	return names
}

func sendUDP(t *testing.T, p *testnet.Pair, dst netip.Addr, k, size int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	c, err := p.B.ListenUDP(ctx, "udp", netip.AddrPortFrom(dst, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	r := testnet.ReceiveUDP(c)
	defer r.Close()
	sent, err := testnet.SendUDP(ctx, p.A.Dial, r.Addr().String(), k, size)
	if err != nil {
		t.Fatal(err)
	}
	got, err := r.Wait(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	if sent.Datagrams != k || got.Datagrams != k || got.Lost != 0 {
		t.Fatalf("to %s: sent %d, received %d datagrams, lost %d; want %d", dst, sent.Datagrams, got.Datagrams, got.Lost, k)
	}
}

func TestCountersUDP(t *testing.T) {
	testnet.RequirePrivileged(t)
	const (
		k4, k6 = 1000, 700
		size   = 1000
		table  = "nmtest"
	)
	p := testnet.NewPair(t)
	c := openIn(t, p.A, table)
	if got := tablesIn(t, p.A); len(got) != 1 || got[0] != table {
		t.Fatalf("inet tables in A after Open: %q, want [%s]", got, table)
	}
	// A sends to B: B's addresses are the destination (_in), A's the
	// source (_out).
	if err := c.Set([]Rule{{"b4", p.B4}, {"b6", p.B6}, {"a4", p.A4}, {"a6", p.A6}}); err != nil {
		t.Fatal(err)
	}
	a0 := netDev(t, p.A, testnet.PairLinkA)
	sendUDP(t, p, p.B4, k4, size)
	sendUDP(t, p, p.B6, k6, size)
	a1 := netDev(t, p.A, testnet.PairLinkA)
	da := devStats{a1.RxBytes - a0.RxBytes, a1.RxPackets - a0.RxPackets, a1.TxBytes - a0.TxBytes, a1.TxPackets - a0.TxPackets}

	got, err := c.Read()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("counters %+v; veth A tx %d pkts %d B, rx %d pkts %d B", got, da.TxPackets, da.TxBytes, da.RxPackets, da.RxBytes)
	v4 := uint64(k4 * (size + 8 + 20))
	v6 := uint64(k6 * (size + 8 + 40))
	want := map[string]Counter{
		"b4": {InPackets: k4, InBytes: v4},
		"b6": {InPackets: k6, InBytes: v6},
		"a4": {OutPackets: k4, OutBytes: v4},
		"a6": {OutPackets: k6, OutBytes: v6},
	}
	checkCounters(t, got, want)
	// Ground truth from the kernel's own counters: the veth sent exactly
	// these packets, each with a 14-byte Ethernet header that nftables
	// does not count.
	if da.RxPackets != 0 || da.TxPackets != k4+k6 {
		t.Errorf("veth A moved tx %d rx %d packets, want tx %d rx 0 (pair not quiet?)", da.TxPackets, da.RxPackets, k4+k6)
	}
	if l3 := da.TxBytes - 14*da.TxPackets; l3 != got["a4"].OutBytes+got["a6"].OutBytes {
		t.Errorf("veth A sent %d L3 bytes (%d B - 14 B × %d), counters %d", l3, da.TxBytes, da.TxPackets, got["a4"].OutBytes+got["a6"].OutBytes)
	}
	if n := got["a4"].OutPackets + got["a6"].OutPackets; n != da.TxPackets {
		t.Errorf("counters saw %d packets out, veth A %d", n, da.TxPackets)
	}

	// Replace the rule set: b6 and a6 go, b4 and a4 stay with their
	// values, c4 is new.
	if err := c.Set([]Rule{{"b4", p.B4}, {"a4", p.A4}, {"c4", p.B4}}); err != nil {
		t.Fatal(err)
	}
	sendUDP(t, p, p.B4, 10, 100)
	got, err = c.Read()
	if err != nil {
		t.Fatal(err)
	}
	checkCounters(t, got, map[string]Counter{
		"b4": {InPackets: k4 + 10, InBytes: v4 + 10*(100+28)},
		"a4": {OutPackets: k4 + 10, OutBytes: v4 + 10*(100+28)},
		"c4": {InPackets: 10, InBytes: 10 * (100 + 28)},
	})
	objs := objectsIn(t, p.A, table)
	if want := []string{"a4_in", "a4_out", "b4_in", "b4_out", "c4_in", "c4_out"}; !equal(objs, want) {
		t.Errorf("counter objects after second Set: %q, want %q", objs, want)
	}

	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if got := tablesIn(t, p.A); len(got) != 0 {
		t.Errorf("inet tables in A after Close: %q, want none", got)
	}
	if _, err := c.Read(); err == nil {
		t.Error("Read after Close succeeded")
	}
}

func checkCounters(t *testing.T, got, want map[string]Counter) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("read %d names %+v, want %d %+v", len(got), got, len(want), want)
	}
	for n, w := range want {
		if g, ok := got[n]; !ok || g != w {
			t.Errorf("counter %s = %+v (present %v), want %+v", n, g, ok, w)
		}
	}
}

// objectsIn lists the sorted names of the named objects of table in ns.
func objectsIn(t testing.TB, ns *testnet.Netns, table string) []string {
	t.Helper()
	f, err := os.Open(ns.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	conn, err := nftables.New(nftables.WithNetNSFd(int(f.Fd())))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := conn.GetObjects(&nftables.Table{Name: table, Family: nftables.TableFamilyINet})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range objs {
		if co, ok := o.(*nftables.CounterObj); ok {
			names = append(names, co.Name)
		}
	}
	slices.Sort(names)
	return names
}

func equal(a, b []string) bool { return slices.Equal(a, b) }

func TestOpenTwiceAndCleanup(t *testing.T) {
	testnet.RequirePrivileged(t)
	ns := testnet.NewNetns(t)
	openIn(t, ns, "")
	_, err := Open(ns.Path(), "")
	if !errors.Is(err, ErrTableExists) {
		t.Fatalf("second Open: %v, want ErrTableExists", err)
	}
	t.Logf("second Open: %v", err)
	if err := Cleanup(ns.Path(), ""); err != nil {
		t.Fatal(err)
	}
	if got := tablesIn(t, ns); len(got) != 0 {
		t.Fatalf("tables after Cleanup: %q", got)
	}
	if err := Cleanup(ns.Path(), ""); err != nil {
		t.Errorf("Cleanup of a missing table: %v", err)
	}
	c := openIn(t, ns, "")
	if c.Table() != DefaultTable {
		t.Errorf("table %q, want %q", c.Table(), DefaultTable)
	}
}

func TestSetBadName(t *testing.T) {
	testnet.RequirePrivileged(t)
	p := testnet.NewPair(t)
	c := openIn(t, p.A, "")
	if err := c.Set([]Rule{{"good", p.B4}}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"bad name", "9lives", "", "a/b"} {
		err := c.Set([]Rule{{"good", p.B4}, {bad, p.B6}})
		if err == nil || !strings.Contains(err.Error(), strconv.Quote(bad)) && bad != "" {
			t.Errorf("Set with name %q: %v, want an error naming it", bad, err)
		}
		t.Logf("%q: %v", bad, err)
	}
	if got := objectsIn(t, p.A, DefaultTable); !equal(got, []string{"good_in", "good_out"}) {
		t.Errorf("objects after refused Sets: %q", got)
	}
}
