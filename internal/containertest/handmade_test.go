package containertest

import (
	"net"
	"regexp"
	"testing"

	"github.com/netmeter/netmeter/internal/testnet"
)

var handMadeCgroup = regexp.MustCompile(`^/netmeter-test/docker/[0-9a-f]{64}$`)

func TestHandMade(t *testing.T) {
	hn := NewHandMadeNet(t)
	a := HandMade(t, HandMadeOpts{Net: hn})
	b := HandMade(t, HandMadeOpts{Net: hn, Layout: "podman"})
	t.Logf("a: pid %d ip %s netns %s cgroup %s; b: %s %s", a.PID, a.IP, a.Netns, a.Cgroup, b.IP, b.Cgroup)
	if !handMadeCgroup.MatchString(a.Cgroup) || b.Cgroup != "/netmeter-test/libpod_parent/libpod-"+b.ID {
		t.Errorf("cgroups %q %q", a.Cgroup, b.Cgroup)
	}

	// Host side → container, counted by busybox inside it.
	const in = 2_500_000
	sink := a.Sink(t, 8080)
	if _, err := SendCount(ctxT(t), hn.HostDial, net.JoinHostPort(a.IP.String(), "8080"), in); err != nil {
		t.Fatal(err)
	}
	if got, err := sink.Wait(ctxT(t)); err != nil || got != in {
		t.Fatalf("container counted %d (%v), sent %d", got, err, in)
	}

	// Container → host side.
	const out = 123_457
	var srv *CountServer
	if err := hn.Host.Do(func() error {
		ln, err := hn.Host.ListenTCP(ctxT(t), "tcp4", net.JoinHostPort(hn.Gateway.String(), "0"))
		if err == nil {
			srv = ServeCount(t, ln)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	a.Send(t, srv.Addr().String(), out)
	if counts, err := srv.Wait(ctxT(t), 1); err != nil || counts[0] != out {
		t.Fatalf("host side counted %v (%v), want [%d]", counts, err, out)
	}

	// Container → container, and a testnet role in a container.
	sinkB := b.Sink(t, 9000)
	a.Send(t, net.JoinHostPort(b.IP.String(), "9000"), 777)
	if got, err := sinkB.Wait(ctxT(t)); err != nil || got != 777 {
		t.Fatalf("b counted %d (%v)", got, err)
	}
	ch := b.StartRole(t, testnet.RoleTCPServer, "-listen", net.JoinHostPort(b.IP.String(), "7000"))
	rep, err := ch.Ready(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Cgroup != b.Cgroup {
		t.Errorf("role in %q, want %q", rep.Cgroup, b.Cgroup)
	}
	if res, err := testnet.SendTCP(ctxT(t), a.Dial, rep.Addr, 1<<20, 1); err != nil || res.Bytes != 1<<20 {
		t.Fatalf("a→b role: %+v %v", res, err)
	}
	if r, err := ch.Wait(ctxT(t)); err != nil || r.Bytes != 1<<20 {
		t.Fatalf("role got %+v %v", r, err)
	}
}
