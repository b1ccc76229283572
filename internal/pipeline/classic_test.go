package pipeline_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/netmeter/netmeter/internal/pipeline"
	"github.com/netmeter/netmeter/internal/snapshot"
	"github.com/netmeter/netmeter/internal/testnet"
)

// TestClassicEngine: --engine classic in a fresh namespace yields processes
// with their traffic in the right direction, marked approximate.
func TestClassicEngine(t *testing.T) {
	testnet.RequirePrivileged(t)
	ns := testnet.NewNetns(t)
	p, err := pipeline.Open(pipeline.Config{Interval: 200 * time.Millisecond, Engine: "classic", NetnsPath: ns.Path(), NoTCPHealth: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.EngineKind != "classic" || p.Loop.Health != nil {
		t.Fatalf("engine %q, health %v", p.EngineKind, p.Loop.Health)
	}
	if _, err := p.Loop.Poll(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	// Long enough to outlive a /proc scan on a loaded machine: connections
	// shorter than that are the classic engine's known miss (docs/CLASSIC.md).
	const n = 100 << 20
	server := testnet.StartChild(t, testnet.Command(t, ns, nil, testnet.RoleTCPServer))
	rep, err := server.Ready(ctx)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // a periodic scan sees the listener
	client := testnet.StartChild(t, testnet.Command(t, ns, nil, testnet.RoleTCPSend, "-addr", rep.Addr, "-bytes", strconv.Itoa(n)))
	for _, c := range []*testnet.Child{client, server} {
		if _, err := c.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(2500 * time.Millisecond) // the engine's grace period for sockets it has not tied to a process
	s, err := p.Loop.Poll()
	if err != nil {
		t.Fatal(err)
	}
	if e := s.Engine; e == nil || e.Kind != "classic" || !e.Approximate {
		t.Fatalf("engine stats %+v, want kind classic, approximate", s.Engine)
	}
	byPID := map[int]snapshot.Traffic{}
	for _, pr := range s.Processes {
		byPID[pr.PID] = pr.Total
	}
	if c := byPID[client.Pid()]; c.TxPayload != n || c.RxPayload != testnet.TCPAckSize {
		t.Errorf("client %+v: want tx payload %d, rx %d", c, n, testnet.TCPAckSize)
	}
	if sv := byPID[server.Pid()]; sv.RxPayload != n || sv.TxPayload != testnet.TCPAckSize {
		t.Errorf("server %+v: want rx payload %d, tx %d", sv, n, testnet.TCPAckSize)
	}
}
