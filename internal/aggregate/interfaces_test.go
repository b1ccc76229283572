package aggregate

import (
	"fmt"
	"testing"
	"time"

	"github.com/netmeter/netmeter/internal/counter"
	"github.com/netmeter/netmeter/internal/snapshot"
	"github.com/netmeter/netmeter/internal/source/iface"
)

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func sec(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }

func link(name string, index int, rx, tx uint64) iface.Link {
	return iface.Link{Name: name, Index: index, Counters: snapshot.LinkCounters{RxBytes: rx, TxBytes: tx, RxPackets: rx / 100, TxPackets: tx / 100}}
}

func find(t *testing.T, ifs []snapshot.Interface, name string) snapshot.Interface {
	t.Helper()
	for _, i := range ifs {
		if i.Name == name {
			return i
		}
	}
	t.Fatalf("%s missing from %+v", name, ifs)
	return snapshot.Interface{}
}

func TestTotalsScenarios(t *testing.T) {
	type step struct {
		links   []iface.Link
		deleted []iface.Link // deletion events before this reading
	}
	tests := []struct {
		name              string
		steps             []step
		wantRx, wantTx    uint64
		wantResets        uint64
		wantPresent       bool
		wantAnomalyVerdct counter.Verdict
	}{
		{
			name:   "baseline then growth",
			steps:  []step{{links: []iface.Link{link("eth0", 2, 1e9, 5e8)}}, {links: []iface.Link{link("eth0", 2, 1e9+3000, 5e8+1000)}}},
			wantRx: 3000, wantTx: 1000, wantPresent: true,
		},
		{
			// vnStat "+16 EiB": counters drop (driver reset). The new value
			// is counted; nothing near 2^64 appears.
			name: "driver reset",
			steps: []step{
				{links: []iface.Link{link("eth0", 2, 5000, 5000)}},
				{links: []iface.Link{link("eth0", 2, 7000, 6000)}},
				{links: []iface.Link{link("eth0", 2, 300, 200)}},
			},
			wantRx: 2300, wantTx: 1200, wantResets: 1, wantPresent: true, wantAnomalyVerdct: counter.Reset,
		},
		{
			// Re-created between readings with larger counters than before:
			// only the new index reveals it.
			name: "recreated between readings",
			steps: []step{
				{links: []iface.Link{link("veth0", 5, 1000, 1000)}},
				{links: []iface.Link{link("veth0", 5, 1500, 1100)}},
				{links: []iface.Link{link("veth0", 9, 4000, 4000)}},
			},
			wantRx: 4500, wantTx: 4100, wantPresent: true,
		},
		{
			name: "deleted with final counters",
			steps: []step{
				{links: []iface.Link{link("veth0", 5, 1000, 1000)}},
				{links: []iface.Link{link("veth0", 5, 1500, 1100)}},
				{deleted: []iface.Link{link("veth0", 5, 2500, 1200)}},
			},
			wantRx: 1500, wantTx: 200, wantPresent: false,
		},
		{
			name: "deleted and recreated between readings",
			steps: []step{
				{links: []iface.Link{link("veth0", 5, 1000, 1000)}},
				{deleted: []iface.Link{link("veth0", 5, 2000, 1500)}, links: []iface.Link{link("veth0", 6, 700, 300)}},
				{links: []iface.Link{link("veth0", 6, 900, 400)}},
			},
			wantRx: 1900, wantTx: 900, wantPresent: true,
		},
		{
			name: "deletion event arriving after the reading that saw it gone",
			steps: []step{
				{links: []iface.Link{link("veth0", 5, 1000, 1000)}},
				{links: []iface.Link{link("veth0", 5, 1500, 1100)}},
				{links: nil},
				{deleted: []iface.Link{link("veth0", 5, 1800, 1300)}},
			},
			wantRx: 800, wantTx: 300, wantPresent: false,
		},
		{
			name: "stale deletion event for an older index is ignored",
			steps: []step{
				{links: []iface.Link{link("veth0", 6, 1000, 1000)}},
				{deleted: []iface.Link{link("veth0", 5, 1<<40, 1<<40)}, links: []iface.Link{link("veth0", 6, 1100, 1000)}},
			},
			wantRx: 100, wantPresent: true,
		},
		{
			name: "appears after start counts from zero",
			steps: []step{
				{links: []iface.Link{link("lo", 1, 10, 10)}},
				{links: []iface.Link{link("lo", 1, 10, 10), link("veth9", 7, 640, 320)}},
			},
			wantRx: 640, wantTx: 320, wantPresent: true,
		},
		{
			name: "32-bit wrap",
			steps: []step{
				{links: []iface.Link{{Name: "old0", Index: 3, Counters: snapshot.LinkCounters{RxBytes: 1<<32 - 1000, TxBytes: 100}}}},
				{links: []iface.Link{{Name: "old0", Index: 3, Counters: snapshot.LinkCounters{RxBytes: 500, TxBytes: 200}}}},
			},
			wantRx: 1500, wantTx: 100, wantPresent: true, wantAnomalyVerdct: counter.Wrap32,
		},
		{
			name: "garbage jump is dropped",
			steps: []step{
				{links: []iface.Link{link("eth0", 2, 100, 100)}},
				{links: []iface.Link{link("eth0", 2, 1<<63, 200)}},
			},
			wantRx: 0, wantTx: 100, wantPresent: true, wantAnomalyVerdct: counter.Implausible,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := NewInterfaces(Options{})
			var ifs []snapshot.Interface
			var anomalies []Anomaly
			name := ""
			for i, st := range tt.steps {
				for _, d := range st.deleted {
					tr.Deleted(d)
					name = d.Name
				}
				var an []Anomaly
				ifs, an = tr.Observe(sec(i), st.links)
				anomalies = append(anomalies, an...)
				for _, l := range st.links {
					if l.Name != "lo" {
						name = l.Name
					}
				}
			}
			got := find(t, ifs, name)
			if got.Total.RxBytes != tt.wantRx || got.Total.TxBytes != tt.wantTx {
				t.Errorf("totals rx %d tx %d, want %d %d", got.Total.RxBytes, got.Total.TxBytes, tt.wantRx, tt.wantTx)
			}
			if got.Total.RxBytes > 1<<50 || got.Total.TxBytes > 1<<50 {
				t.Errorf("absurd total %+v", got.Total)
			}
			if got.Resets != tt.wantResets || got.Present != tt.wantPresent {
				t.Errorf("resets %d present %v, want %d %v", got.Resets, got.Present, tt.wantResets, tt.wantPresent)
			}
			if tt.wantAnomalyVerdct != counter.Normal {
				if len(anomalies) == 0 || anomalies[0].Verdict != tt.wantAnomalyVerdct {
					t.Errorf("anomalies %+v, want first %v", anomalies, tt.wantAnomalyVerdct)
				}
			} else if len(anomalies) != 0 {
				t.Errorf("unexpected anomalies %+v", anomalies)
			}
		})
	}
}

func TestRatesFallWhenInterfaceGoes(t *testing.T) {
	tr := NewInterfaces(Options{})
	tr.Observe(sec(0), []iface.Link{link("veth0", 5, 0, 0)})
	ifs, _ := tr.Observe(sec(1), []iface.Link{link("veth0", 5, 8000, 0)})
	if r := find(t, ifs, "veth0").RxBytesRate; r.Current != 8000 || r.Window2s != 8000 {
		t.Fatalf("rate %+v", r)
	}
	var got snapshot.Interface
	for i := 2; i <= 45; i++ {
		ifs, _ = tr.Observe(sec(i), nil)
		got = find(t, ifs, "veth0")
	}
	if r := got.RxBytesRate; r.Current != 0 || r.Window2s != 0 || r.Window10s != 0 || r.Window40s != 0 || r.Max != 8000 {
		t.Fatalf("rates did not fall to zero after the interface vanished: %+v", r)
	}
	if got.Total.RxBytes != 8000 || got.Present {
		t.Fatalf("gone interface lost its totals: %+v", got)
	}
}

func TestDeltaIsPerInterval(t *testing.T) {
	tr := NewInterfaces(Options{})
	tr.Observe(sec(0), []iface.Link{link("eth0", 2, 0, 0)})
	ifs, _ := tr.Observe(sec(1), []iface.Link{link("eth0", 2, 500, 0)})
	if d := find(t, ifs, "eth0").Delta.RxBytes; d != 500 {
		t.Fatalf("delta %d", d)
	}
	ifs, _ = tr.Observe(sec(2), []iface.Link{link("eth0", 2, 500, 0)})
	if d := find(t, ifs, "eth0").Delta.RxBytes; d != 0 {
		t.Fatalf("delta did not clear: %d", d)
	}
}

func TestBoundedInterfaces(t *testing.T) {
	tr := NewInterfaces(Options{MaxInterfaces: 10, ForgetAfter: time.Minute})
	for i := 0; i < 100; i++ {
		tr.Observe(sec(i), []iface.Link{link(fmt.Sprintf("veth%d", i), 100+i, 10, 10)})
	}
	if n := len(tr.entries); n > 10 {
		t.Fatalf("%d interfaces tracked, bound 10", n)
	}
	if _, ok := tr.entries["veth99"]; !ok {
		t.Fatal("the present interface was evicted")
	}
	tr.Observe(sec(200), nil)
	tr.Observe(sec(261), nil)
	if n := len(tr.entries); n != 0 {
		t.Fatalf("%d interfaces kept past ForgetAfter", n)
	}
}

func BenchmarkObserve(b *testing.B) {
	links := make([]iface.Link, 64)
	for i := range links {
		links[i] = link(fmt.Sprintf("veth%d", i), i+1, 0, 0)
	}
	tr := NewInterfaces(Options{})
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		for j := range links {
			links[j].Counters.RxBytes += 1500
		}
		tr.Observe(sec(i), links)
	}
}
