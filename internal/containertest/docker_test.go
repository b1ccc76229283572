package containertest

import (
	"context"
	"net"
	"os"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/netmeter/netmeter/internal/testnet"
	"github.com/vishvananda/netlink"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

var dockerCgroup = regexp.MustCompile(`^/docker/[0-9a-f]{64}$`)

func TestDockerPublishedPortBothWays(t *testing.T) {
	d := RequireDocker(t)
	c := d.Run(t, RunOpts{
		Labels:  map[string]string{"app": "netmeter-test", "io.netmeter.role": "sink"},
		Publish: map[int]int{8080: 0},
	})
	t.Logf("container %s id %.12s pid %d ip %s netns %s cgroup %s host port %d v1 %v",
		c.Name, c.ID, c.PID, c.IP, c.Netns, c.Cgroup, c.HostPort, c.CgroupsV1)
	if !dockerCgroup.MatchString(c.Cgroup) || c.Cgroup != "/docker/"+c.ID {
		t.Errorf("cgroup %q, want /docker/%s", c.Cgroup, c.ID)
	}
	if c.Labels["app"] != "netmeter-test" || c.Labels["io.netmeter.role"] != "sink" {
		t.Errorf("labels %v", c.Labels)
	}
	if !d.Subnet.Contains(c.IP) || c.Gateway != d.Gateway {
		t.Errorf("ip %s gateway %s, want in %s via %s", c.IP, c.Gateway, d.Subnet, d.Gateway)
	}
	if c.HostPort == 0 || c.Ports[8080] != c.HostPort {
		t.Fatalf("host port %d, ports %v", c.HostPort, c.Ports)
	}

	// Host → container through the published port (docker-proxy).
	const in = 1_234_567
	sink := c.Sink(t, 8080)
	got, err := SendCount(ctxT(t), nil, net.JoinHostPort("127.0.0.1", strconv.Itoa(c.HostPort)), in)
	if err != nil {
		t.Fatal(err)
	}
	inside, err := sink.Wait(ctxT(t))
	if err != nil || inside != in || got != in {
		t.Fatalf("host→container: container counted %d (%v), reply %d, sent %d", inside, err, got, in)
	}

	// Container → host, to a receiver on the bridge's address.
	const out = 765_432
	srv := ListenCount(t, net.JoinHostPort(d.Gateway.String(), "0"))
	c.Send(t, srv.Addr().String(), out)
	counts, err := srv.Wait(ctxT(t), 1)
	if err != nil || len(counts) != 1 || counts[0] != out {
		t.Fatalf("container→host: host counted %v (%v), want [%d]", counts, err, out)
	}
}

func TestDockerTwoContainers(t *testing.T) {
	d := RequireDocker(t)
	a := d.Run(t, RunOpts{Name: "nmt-a-" + randHex(3)})
	b := d.Run(t, RunOpts{Name: "nmt-b-" + randHex(3)})
	const n = 2_000_003
	sink := a.Sink(t, 9000)
	b.Send(t, net.JoinHostPort(a.IP.String(), "9000"), n)
	if got, err := sink.Wait(ctxT(t)); err != nil || got != n {
		t.Fatalf("a counted %d (%v), b sent %d", got, err, n)
	}
}

func TestDockerRoleInContainer(t *testing.T) {
	d := RequireDocker(t)
	c := d.Run(t, RunOpts{})
	ch := c.StartRole(t, testnet.RoleTCPServer, "-listen", "0.0.0.0:7000")
	rep, err := ch.Ready(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Cgroup != c.Cgroup {
		t.Errorf("role's cgroup %q, want the container's %q", rep.Cgroup, c.Cgroup)
	}
	const n = 3_000_000
	var host *testnet.Netns // nil: the test's own namespace
	res, err := testnet.SendTCP(ctxT(t), host.Dial, net.JoinHostPort(c.IP.String(), "7000"), n, 1)
	if err != nil || res.Bytes != n {
		t.Fatalf("send to role: %+v %v", res, err)
	}
	if r, err := ch.Wait(ctxT(t)); err != nil || r.Bytes != n {
		t.Fatalf("role received %+v %v", r, err)
	}
	// StartRole also moved it into the container's v1 hierarchies.
	probe := d.Run(t, RunOpts{})
	idle := probe.StartRole(t, testnet.RoleIdle)
	if _, err := idle.Ready(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	pc := &Container{PID: idle.Pid()}
	if err := pc.readCgroups(); err != nil {
		t.Fatal(err)
	}
	if pc.Cgroup != probe.Cgroup {
		t.Errorf("idle role in %q, want %q", pc.Cgroup, probe.Cgroup)
	}
	for ctrl, rel := range probe.CgroupsV1 {
		if pc.CgroupsV1[ctrl] != rel {
			t.Errorf("idle role in v1 %s:%s, want %s", ctrl, pc.CgroupsV1[ctrl], rel)
		}
	}
}

func TestDockerHostNetwork(t *testing.T) {
	d := RequireDocker(t)
	c := d.Run(t, RunOpts{Network: "host"})
	if c.IP.IsValid() {
		t.Errorf("host network container has ip %s", c.IP)
	}
	srv := ListenCount(t, "127.0.0.1:0")
	c.Send(t, srv.Addr().String(), 4096)
	if counts, err := srv.Wait(ctxT(t), 1); err != nil || counts[0] != 4096 {
		t.Fatalf("counts %v %v", counts, err)
	}
}

// Without Main keeping it, the daemon stops when the last test holding it
// ends, and everything it made goes with it.
func TestDockerStopsWithLastReference(t *testing.T) {
	keepMu.Lock()
	keepDaemons = false
	keepMu.Unlock()
	t.Cleanup(func() {
		keepMu.Lock()
		keepDaemons = true
		keepMu.Unlock()
	})
	var d *Docker
	t.Run("hold", func(t *testing.T) {
		d = RequireDocker(t)
		d.Run(t, RunOpts{})
	})
	if d == nil {
		t.Skip("no docker: the subtest was skipped or failed")
	}
	select {
	case <-d.done:
	default:
		t.Fatalf("dockerd %d still runs after the last reference went", d.PID)
	}
	if _, err := os.Stat(d.Dir); !os.IsNotExist(err) {
		t.Errorf("%s still exists (%v)", d.Dir, err)
	}
	if _, err := netlink.LinkByName(d.Bridge); err == nil {
		t.Errorf("bridge %s still exists", d.Bridge)
	}
	if left := pidsUnder(d.Dir); len(left) > 0 {
		t.Errorf("processes left: %v", left)
	}
}

func TestRuntimes(t *testing.T) {
	for _, rt := range []func(testing.TB) Runtime{
		func(t testing.TB) Runtime { return RequireDocker(t) },
		func(t testing.TB) Runtime { return RequirePodman(t) },
	} {
		r := rt(t)
		t.Run(r.Name(), func(t *testing.T) {
			c := r.Run(t, RunOpts{Labels: map[string]string{"k": "v"}})
			if c.Runtime != r.Name() || c.Labels["k"] != "v" || c.PID <= 0 || !c.IP.IsValid() {
				t.Fatalf("%+v", c)
			}
			if got := c.Exec(t, "cat", "/etc/hostname"); got == "" {
				t.Error("empty hostname")
			}
		})
	}
}
