package pipeline

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/netmeter/netmeter/internal/aggregate"
	"github.com/netmeter/netmeter/internal/health"
	"github.com/netmeter/netmeter/internal/snapshot"
)

// Analyze feeds every snapshot of loop to a new health.Analyzer (flows,
// monitors, the health indicator, topology), after any Observe already set.
// It names containers from loop's Flows and interface addresses from the
// host. Call it before the loop runs; it needs the engine (loop.Flows).
func Analyze(loop *aggregate.Loop, cfg health.Config) (*health.Analyzer, error) {
	if loop.Flows == nil {
		return nil, fmt.Errorf("flows and health need the eBPF engine, which is not running")
	}
	var ctrs map[int]string // rebuilt each interval, in the loop's goroutine
	cfg.ContainerOf = func(pid int, _ uint64) string { return ctrs[pid] }
	if cfg.InterfaceAddrs == nil {
		cfg.InterfaceAddrs = interfaceAddrs
	}
	an, err := health.New(cfg)
	if err != nil {
		return nil, err
	}
	prev := loop.Observe
	flows := loop.Flows
	loop.Observe = func(s *snapshot.Snapshot) {
		if prev != nil {
			prev(s)
		}
		ctrs = flows.ProcessContainers()
		an.Add(s)
	}
	return an, nil
}

// interfaceAddrs returns the addresses of a host interface.
func interfaceAddrs(name string) []netip.Prefix {
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		return nil
	}
	addrs, err := ifc.Addrs()
	if err != nil {
		return nil
	}
	var out []netip.Prefix
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if p, err := netip.ParsePrefix(n.String()); err == nil {
				out = append(out, p)
			}
		}
	}
	return out
}
