package ipfix

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/netmeter/netmeter/internal/pipeline"
	"github.com/netmeter/netmeter/internal/snapshot"
	"github.com/netmeter/netmeter/internal/testnet"
)

// Real traffic through the real pipeline and nfcapd: a UDP transfer of k
// datagrams of size payload bytes, over IPv4 and over IPv6, between two
// namespaces. Every snapshot's deltas are exported while the transfer runs;
// nfdump's totals for each transfer's 5-tuple must equal netmeter's own
// per-interval deltas summed, and the generator's ground truth: k packets
// and k*(size + UDP header + IP header) bytes. Tolerance: zero.
func TestNfdumpRealTraffic(t *testing.T) {
	testnet.RequirePrivileged(t)
	nf := startNfcapd(t)
	p, err := pipeline.Open(pipeline.Config{Engine: "on", Interval: 200 * time.Millisecond, Source: "auto"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	x, err := New(Options{Collector: nf.addr, ObservationDomain: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	var snaps []snapshot.Snapshot
	export := func() {
		t.Helper()
		s, err := p.Loop.Poll()
		if err != nil {
			t.Fatal(err)
		}
		if err := x.Export(&s); err != nil {
			t.Fatal(err)
		}
		snaps = append(snaps, s)
	}
	export()

	pair := testnet.NewPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const k, size = 20000, 1200
	type transfer struct {
		name     string
		dst      netip.Addr
		hdr      uint64
		src, rcv netip.AddrPort
	}
	transfers := []*transfer{{name: "ipv4", dst: pair.B4, hdr: 8 + 20}, {name: "ipv6", dst: pair.B6, hdr: 8 + 40}}
	for _, tr := range transfers {
		c, err := pair.B.ListenUDP(ctx, "udp", netip.AddrPortFrom(tr.dst, 0).String())
		if err != nil {
			t.Fatal(err)
		}
		r := testnet.ReceiveUDP(c)
		defer r.Close()
		// Export every 20 ms while the generator runs (about 100 ms), so
		// the transfer's bytes are spread over several snapshots.
		type result struct {
			res testnet.Result
			err error
		}
		done := make(chan result, 1)
		go func() {
			res, err := testnet.SendUDP(ctx, pair.A.Dial, r.Addr().String(), k, size)
			done <- result{res, err}
		}()
		var sent result
		for running := true; running; {
			select {
			case sent = <-done:
				running = false
			case <-time.After(20 * time.Millisecond):
				export()
			}
		}
		if sent.err != nil {
			t.Fatal(sent.err)
		}
		got, err := r.Wait(ctx, k)
		if err != nil || got.Datagrams != k || got.Bytes != k*size {
			t.Fatalf("%s: receiver got %+v, %v; want %d datagrams of %d bytes", tr.name, got, err, k, size)
		}
		t.Logf("%s: sent in %v", tr.name, sent.res.Elapsed)
		tr.src = netip.MustParseAddrPort(sent.res.Local)
		tr.rcv = netip.MustParseAddrPort(r.Addr().String())
	}
	// Two more intervals: the last datagrams are in a snapshot.
	time.Sleep(200 * time.Millisecond)
	export()
	time.Sleep(200 * time.Millisecond)
	export()
	st := x.Stats()
	file := nf.stop()
	flows, _ := nf.readFlows(file)
	t.Logf("%d snapshots, %d records in %d messages; nfdump read %d flows", len(snaps), st.Records, st.Messages, len(flows))
	if st.Failed != 0 {
		t.Errorf("%d messages failed", st.Failed)
	}

	split := false
	for _, tr := range transfers {
		match := func(k key) bool {
			return k.proto == 17 && k.src == tr.src.Addr() && k.sport == tr.src.Port() && k.dst == tr.rcv.Addr() && k.dport == tr.rcv.Port()
		}
		var nfB, nfP, nmB, nmP uint64
		var nfN, nmN int
		for i, f := range flows {
			fk, err := f.key()
			if err != nil {
				t.Fatalf("nfdump flow %d: %v", i, err)
			}
			if match(fk) {
				nfB, nfP, nfN = nfB+fk.octets, nfP+fk.packets, nfN+1
			}
		}
		for i := range snaps {
			for _, sk := range keys(t, &snaps[i]) {
				if match(sk) {
					nmB, nmP, nmN = nmB+sk.octets, nmP+sk.packets, nmN+1
				}
			}
		}
		wantB, wantP := uint64(k)*(size+tr.hdr), uint64(k)
		t.Logf("%s %v → %v: generator %d datagrams of %d B + %d B headers = %d B; netmeter %d B %d pkts in %d intervals; nfdump %d B %d pkts in %d flows",
			tr.name, tr.src, tr.rcv, k, size, tr.hdr, wantB, nmB, nmP, nmN, nfB, nfP, nfN)
		if nfB != nmB || nfP != nmP || nfN != nmN {
			t.Errorf("%s: nfdump %d B %d pkts in %d flows, netmeter exported %d B %d pkts in %d records", tr.name, nfB, nfP, nfN, nmB, nmP, nmN)
		}
		if nmB != wantB || nmP != wantP {
			t.Errorf("%s: netmeter counted %d B %d pkts, the generator sent %d B %d pkts", tr.name, nmB, nmP, wantB, wantP)
		}
		split = split || nfN > 1
	}
	if !split {
		t.Error("neither transfer spans two snapshots: the sums over intervals were not tested")
	}
}
