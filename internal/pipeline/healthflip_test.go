package pipeline_test

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/netmeter/netmeter/internal/health"
	"github.com/netmeter/netmeter/internal/pipeline"
	"github.com/netmeter/netmeter/internal/testnet"
)

// steady keeps a connection from ns to addr busy at about 3 MB/s until ctx
// ends, and a server draining it.
func steady(t *testing.T, ctx context.Context, client *testnet.Netns, server *testnet.Netns, addr netip.Addr) uint16 {
	t.Helper()
	ln, err := server.ListenTCP(ctx, "tcp4", netip.AddrPortFrom(addr, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 64<<10)
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
		}
	}()
	c, err := client.Dial(ctx, "tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer c.Close()
		buf := make([]byte, 32<<10)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				c.SetWriteDeadline(time.Now().Add(time.Second))
				if _, err := c.Write(buf); err != nil {
					if ne, ok := err.(net.Error); ok && ne.Timeout() {
						continue
					}
					return
				}
			}
		}
	}()
	return netip.MustParseAddrPort(ln.Addr().String()).Port()
}

// The Network Health Indicator on the real kernel: two remote groups with
// steady traffic learn their baselines; then 5 % of one group's packets are
// dropped. That group must turn "degraded: network" within the documented
// time (WindowIntervals + DegradeIntervals − 1 = 6 intervals after the loss
// shows; the test allows 10) and the other must stay healthy throughout.
func TestHealthIndicatorFlips(t *testing.T) {
	testnet.RequirePrivileged(t)
	const interval = 200 * time.Millisecond
	p, err := pipeline.Open(pipeline.Config{Interval: interval, Engine: "on", Source: "auto"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	an, err := pipeline.Analyze(p.Loop, health.Config{})
	if err != nil {
		t.Fatal(err)
	}
	bad := testnet.NewPair(t, testnet.WithoutIPv6())
	good := testnet.NewPair(t, testnet.WithoutIPv6())
	badGroup := netip.PrefixFrom(bad.B4, 24).Masked().String()
	goodGroup := netip.PrefixFrom(good.B4, 24).Masked().String()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	badPort := steady(t, ctx, bad.A, bad.B, bad.B4)
	steady(t, ctx, good.A, good.B, good.B4)

	state := func(name string) health.Status {
		for _, s := range an.Health().Groups {
			if s.Name == name {
				return s
			}
		}
		return health.Status{Name: name, State: "absent"}
	}
	poll := func() {
		time.Sleep(interval)
		if _, err := p.Loop.Poll(); err != nil {
			t.Fatal(err)
		}
	}
	// Warm-up: 20 intervals with traffic, then both must be healthy.
	for i := 0; i < 40; i++ {
		poll()
		if state(badGroup).State == health.StateHealthy && state(goodGroup).State == health.StateHealthy {
			break
		}
	}
	for _, g := range []string{badGroup, goodGroup} {
		if s := state(g); s.State != health.StateHealthy {
			t.Fatalf("after warm-up group %s is %q (%s)", g, s.State, s.Explanation)
		}
	}
	if err := bad.B.DropIn(badPort, 5); err != nil {
		t.Fatal(err)
	}
	flipped := -1
	for i := 1; i <= 10; i++ {
		poll()
		if s := state(goodGroup); s.State != health.StateHealthy {
			t.Errorf("interval %d: unimpaired group %s turned %q: %s", i, goodGroup, s.State, s.Explanation)
		}
		if state(badGroup).State.Degraded() {
			flipped = i
			break
		}
	}
	s := state(badGroup)
	t.Logf("impaired group %s: %q after %d intervals of %v: %s (evidence %+v)", badGroup, s.State, flipped, interval, s.Explanation, s.Evidence)
	if flipped < 0 || s.State != health.StateNetwork {
		t.Fatalf("impaired group %s is %q after 10 intervals, want %q", badGroup, s.State, health.StateNetwork)
	}
	// A few more intervals: the good group stays healthy.
	for range 5 {
		poll()
		if s := state(goodGroup); s.State != health.StateHealthy {
			t.Errorf("unimpaired group %s turned %q: %s", goodGroup, s.State, s.Explanation)
		}
	}
}

// A receiver that stops reading: seen per address (ByAddress groups), the
// server's side (its peer is the client's address) must read "degraded:
// this host" — this host's application is the bottleneck — and the client's
// side (its peer is the server) "degraded: remote". Neither is the network.
func TestHealthIndicatorReceiverStall(t *testing.T) {
	testnet.RequirePrivileged(t)
	const interval = 200 * time.Millisecond
	p, err := pipeline.Open(pipeline.Config{Interval: interval, Engine: "on", Source: "auto"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	an, err := pipeline.Analyze(p.Loop, health.Config{ByAddress: true})
	if err != nil {
		t.Fatal(err)
	}
	pair := testnet.NewPair(t, testnet.WithoutIPv6())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ln, err := pair.B.ListenTCP(ctx, "tcp4", netip.AddrPortFrom(pair.B4, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	stall := make(chan struct{})
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 64<<10)
		for {
			select {
			case <-stall:
				<-ctx.Done()
				return
			default:
			}
			if _, err := c.Read(buf); err != nil {
				return
			}
		}
	}()
	c, err := pair.A.Dial(ctx, "tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	go func() {
		buf := make([]byte, 32<<10)
		for ctx.Err() == nil {
			c.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
			c.Write(buf)
			time.Sleep(10 * time.Millisecond)
		}
	}()
	serverSide, clientSide := pair.A4.String(), pair.B4.String() // groups are named by the peer's address
	state := func(name string) health.Status {
		for _, s := range an.Health().Groups {
			if s.Name == name {
				return s
			}
		}
		return health.Status{Name: name, State: "absent"}
	}
	poll := func() {
		time.Sleep(interval)
		if _, err := p.Loop.Poll(); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 40 && (state(serverSide).State != health.StateHealthy || state(clientSide).State != health.StateHealthy); i++ {
		poll()
	}
	for _, g := range []string{serverSide, clientSide} {
		if s := state(g); s.State != health.StateHealthy {
			t.Fatalf("after warm-up %s is %q (%s)", g, s.State, s.Explanation)
		}
	}
	close(stall)
	for i := 1; i <= 25; i++ {
		poll()
		if state(serverSide).State.Degraded() && state(clientSide).State.Degraded() {
			t.Logf("both degraded after %d intervals", i)
			break
		}
	}
	srv, cli := state(serverSide), state(clientSide)
	t.Logf("server side (%s): %q — %s", serverSide, srv.State, srv.Explanation)
	t.Logf("client side (%s): %q — %s", clientSide, cli.State, cli.Explanation)
	if srv.State != health.StateThisHost {
		t.Errorf("the stalled reader's side is %q, want %q (evidence %+v)", srv.State, health.StateThisHost, srv.Evidence)
	}
	if cli.State != health.StateRemote {
		t.Errorf("the sender's side is %q, want %q (evidence %+v)", cli.State, health.StateRemote, cli.Evidence)
	}
}
