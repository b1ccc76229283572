package netmeter_test

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/netmeter/netmeter"
	"github.com/netmeter/netmeter/internal/testnet"
)

// The SDK's analyses on the real kernel: a loopback transfer shows up as a
// flow of this program to group "loopback", in the topology and the health
// report, and its connection carries TCP health.
func TestSDKFlowsHealthTopology(t *testing.T) {
	testnet.RequirePrivileged(t)
	m, err := netmeter.New(netmeter.WithInterval(100*time.Millisecond),
		netmeter.WithHealth(netmeter.HealthConfig{Groups: nil}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Flows(time.Second, "bytes", 5); !errors.Is(err, netmeter.ErrNoEngine) {
		t.Errorf("Flows before Start = %v, want ErrNoEngine", err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			io.Copy(io.Discard, c)
			c.Close()
		}
	}()
	c, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	const n = 4 << 20
	if _, err := c.Write(make([]byte, n)); err != nil {
		t.Fatal(err)
	}
	var tcpSeen bool
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && !tcpSeen {
		time.Sleep(150 * time.Millisecond)
		if s, ok := m.Snapshot(); ok {
			for _, cn := range s.Connections {
				if cn.Owner.PID == os.Getpid() && cn.TCP != nil && cn.TCP.Total.SegsOut > 0 {
					tcpSeen = true
				}
			}
		}
	}
	c.Close()
	if !tcpSeen {
		t.Error("no connection of this process with TCP health")
	}
	flows, err := m.Flows(10*time.Second, "bytes", 0)
	if err != nil {
		t.Fatal(err)
	}
	var mine *netmeter.Flow
	for i, f := range flows {
		if f.Group == "loopback" && len(f.Local.PIDs) > 0 && f.Local.PIDs[0] == os.Getpid() {
			mine = &flows[i]
		}
	}
	if mine == nil {
		t.Fatalf("no loopback flow of pid %d among %d flows: %+v", os.Getpid(), len(flows), flows)
	}
	t.Logf("flow %s: tx %d rx %d payload %d/%d conns %d rtt %d µs", mine.ID, mine.TxBytes, mine.RxBytes, mine.TxPayload, mine.RxPayload, mine.Connections, mine.RTTMeanUS)
	// A loopback connection is one connection seen from its client end:
	// exactly n payload bytes out, none back.
	if mine.TxPayload != n || mine.RxPayload != 0 {
		t.Errorf("flow payload tx %d rx %d, want %d and 0", mine.TxPayload, mine.RxPayload, n)
	}
	topo, err := m.Topology(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var node, edge bool
	for _, nd := range topo.Nodes {
		node = node || nd.ID == "group:loopback"
	}
	for _, e := range topo.Edges {
		edge = edge || (e.Source == mine.Local.ID && e.Target == "group:loopback")
	}
	if !node || !edge {
		t.Errorf("topology lacks the loopback group node (%v) or the edge from %s (%v)", node, mine.Local.ID, edge)
	}
	rep, err := m.Health()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, g := range rep.Groups {
		found = found || g.Name == "loopback"
	}
	if !found {
		t.Errorf("health report has no loopback group: %+v", rep.Groups)
	}
}
