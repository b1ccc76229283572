package pipeline_test

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/netmeter/netmeter/internal/health"
	"github.com/netmeter/netmeter/internal/metrics"
	"github.com/netmeter/netmeter/internal/pipeline"
	"github.com/netmeter/netmeter/internal/testnet"
)

func heapMB() float64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return float64(m.HeapInuse) / (1 << 20)
}

// A flood of new flows — 20,000 sockets to 20,000 ports — against the
// agent's tables with small bounds: every table stays within its bound,
// the overflow is counted, and the heap does not grow with the flood.
func TestFloodOfFlowsStaysBounded(t *testing.T) {
	testnet.RequirePrivileged(t)
	const maxConns = 2000
	p, err := pipeline.Open(pipeline.Config{Interval: 200 * time.Millisecond, Engine: "on", Source: "auto", MaxConnections: maxConns})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	an, err := pipeline.Analyze(p.Loop, health.Config{MaxFlows: 256, ByAddress: true, MaxGroups: 128})
	if err != nil {
		t.Fatal(err)
	}
	exp, err := metrics.New(metrics.Options{GroupOf: an.GroupOf})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(exp)
	pair := testnet.NewPair(t, testnet.WithoutIPv6())
	if _, err := p.Loop.Poll(); err != nil {
		t.Fatal(err)
	}
	before := heapMB()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const flows = 20000
	for i := 0; i < flows; i++ {
		// A distinct remote address and port each: a scan.
		addr := fmt.Sprintf("%s:%d", pair.B4, 1024+i)
		c, err := pair.A.Dial(ctx, "udp4", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte("x"))
		c.Close()
		if i%2000 == 1999 {
			s, err := p.Loop.Poll()
			if err != nil {
				t.Fatal(err)
			}
			exp.Update(metrics.Input{Snapshot: &s})
		}
	}
	s, err := p.Loop.Poll()
	if err != nil {
		t.Fatal(err)
	}
	exp.Update(metrics.Input{Snapshot: &s})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	series := 0
	for _, mf := range mfs {
		series += len(mf.GetMetric())
	}
	lim := an.Health().Limits
	after := heapMB()
	t.Logf("connections listed %d (bound %d), flows dropped %d; analyzer flows %d/%d, groups %d/%d, overflow %d; metric series %d; heap %.1f → %.1f MiB",
		len(s.Connections), maxConns, p.Loop.Flows.Dropped(), lim.Flows, lim.MaxFlows, lim.Groups, lim.MaxGroups, lim.OverflowConnections, series, before, after)
	if len(s.Connections) > maxConns {
		t.Errorf("%d connections listed, bound %d", len(s.Connections), maxConns)
	}
	if lim.Flows > lim.MaxFlows || lim.Groups > lim.MaxGroups {
		t.Errorf("analyzer over its bounds: %+v", lim)
	}
	if series > 2000 {
		t.Errorf("%d metric series after a scan", series)
	}
	if after-before > 64 {
		t.Errorf("heap grew %.1f MiB during a 20,000-flow scan", after-before)
	}
	_ = net.IPv4len
}
