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

// healthRig is a pipeline with the engine and a health analyzer, polled by
// hand every healthInterval.
type healthRig struct {
	t  *testing.T
	p  *pipeline.Pipeline
	an *health.Analyzer
}

const healthInterval = 200 * time.Millisecond

func openHealthRig(t *testing.T, cfg health.Config) *healthRig {
	t.Helper()
	testnet.RequirePrivileged(t)
	p, err := pipeline.Open(pipeline.Config{Interval: healthInterval, Engine: "on", Source: "auto"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	an, err := pipeline.Analyze(p.Loop, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &healthRig{t: t, p: p, an: an}
}

// state is a group's status now ("absent" when the analyzer has none).
func (r *healthRig) state(name string) health.Status {
	for _, s := range r.an.Health().Groups {
		if s.Name == name {
			return s
		}
	}
	return health.Status{Name: name, State: "absent"}
}

func (r *healthRig) poll() {
	r.t.Helper()
	time.Sleep(healthInterval)
	if _, err := r.p.Loop.Poll(); err != nil {
		r.t.Fatal(err)
	}
}

// warmUp polls (at most 40 intervals) until every group is healthy: they
// need 20 intervals with traffic to learn their baselines.
func (r *healthRig) warmUp(groups ...string) {
	r.t.Helper()
	healthy := func() bool {
		for _, g := range groups {
			if r.state(g).State != health.StateHealthy {
				return false
			}
		}
		return true
	}
	for i := 0; i < 40 && !healthy(); i++ {
		r.poll()
	}
	for _, g := range groups {
		if s := r.state(g); s.State != health.StateHealthy {
			r.t.Fatalf("after warm-up group %s is %q (%s)", g, s.State, s.Explanation)
		}
	}
}

// The Network Health Indicator on the real kernel: two remote groups with
// steady traffic learn their baselines; then 5 % of one group's packets are
// dropped. That group must turn "degraded: network" within the documented
// time (WindowIntervals + DegradeIntervals − 1 = 6 intervals after the loss
// shows; the test allows 10) and the other must stay healthy throughout.
func TestHealthIndicatorFlips(t *testing.T) {
	r := openHealthRig(t, health.Config{})
	bad := testnet.NewPair(t, testnet.WithoutIPv6())
	good := testnet.NewPair(t, testnet.WithoutIPv6())
	badGroup := netip.PrefixFrom(bad.B4, 24).Masked().String()
	goodGroup := netip.PrefixFrom(good.B4, 24).Masked().String()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	badPort := steady(t, ctx, bad.A, bad.B, bad.B4)
	steady(t, ctx, good.A, good.B, good.B4)
	r.warmUp(badGroup, goodGroup)
	if err := bad.B.DropIn(badPort, 5); err != nil {
		t.Fatal(err)
	}
	flipped := -1
	for i := 1; i <= 10; i++ {
		r.poll()
		if s := r.state(goodGroup); s.State != health.StateHealthy {
			t.Errorf("interval %d: unimpaired group %s turned %q: %s", i, goodGroup, s.State, s.Explanation)
		}
		if r.state(badGroup).State.Degraded() {
			flipped = i
			break
		}
	}
	s := r.state(badGroup)
	t.Logf("impaired group %s: %q after %d intervals of %v: %s (evidence %+v)", badGroup, s.State, flipped, healthInterval, s.Explanation, s.Evidence)
	if flipped < 0 || s.State != health.StateNetwork {
		t.Fatalf("impaired group %s is %q after 10 intervals, want %q", badGroup, s.State, health.StateNetwork)
	}
	// A few more intervals: the good group stays healthy.
	for range 5 {
		r.poll()
		if s := r.state(goodGroup); s.State != health.StateHealthy {
			t.Errorf("unimpaired group %s turned %q: %s", goodGroup, s.State, s.Explanation)
		}
	}
}

// A receiver that stops reading: seen per address (ByAddress groups), the
// server's side (its peer is the client's address) must read "degraded:
// this host" — this host's application is the bottleneck — and the client's
// side (its peer is the server) "degraded: remote". Neither is the network.
func TestHealthIndicatorReceiverStall(t *testing.T) {
	r := openHealthRig(t, health.Config{ByAddress: true})
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
	r.warmUp(serverSide, clientSide)
	close(stall)
	for i := 1; i <= 25; i++ {
		r.poll()
		if r.state(serverSide).State.Degraded() && r.state(clientSide).State.Degraded() {
			t.Logf("both degraded after %d intervals", i)
			break
		}
	}
	srv, cli := r.state(serverSide), r.state(clientSide)
	t.Logf("server side (%s): %q — %s", serverSide, srv.State, srv.Explanation)
	t.Logf("client side (%s): %q — %s", clientSide, cli.State, cli.Explanation)
	if srv.State != health.StateThisHost {
		t.Errorf("the stalled reader's side is %q, want %q (evidence %+v)", srv.State, health.StateThisHost, srv.Evidence)
	}
	if cli.State != health.StateRemote {
		t.Errorf("the sender's side is %q, want %q (evidence %+v)", cli.State, health.StateRemote, cli.Evidence)
	}
}
