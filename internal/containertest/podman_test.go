package containertest

import (
	"encoding/json"
	"io"
	"net"
	"regexp"
	"strconv"
	"testing"
)

var podmanCgroup = regexp.MustCompile(`^/libpod_parent/libpod-[0-9a-f]{64}$`)

func TestPodmanPublishedPortBothWays(t *testing.T) {
	p := RequirePodman(t)
	c := p.Run(t, RunOpts{
		Labels:  map[string]string{"app": "netmeter-test"},
		Publish: map[int]int{8080: 0},
	})
	t.Logf("container %s id %.12s pid %d ip %s cgroup %s host port %d", c.Name, c.ID, c.PID, c.IP, c.Cgroup, c.HostPort)
	if !podmanCgroup.MatchString(c.Cgroup) || c.Cgroup != "/libpod_parent/libpod-"+c.ID {
		t.Errorf("cgroup %q, want /libpod_parent/libpod-%s", c.Cgroup, c.ID)
	}
	if !p.Subnet.Contains(c.IP) || c.Gateway != p.Gateway {
		t.Errorf("ip %s gateway %s, want in %s via %s", c.IP, c.Gateway, p.Subnet, p.Gateway)
	}
	if c.HostPort == 0 {
		t.Fatalf("no host port: %v", c.Ports)
	}

	// Host → container through the published port (netavark's DNAT).
	const in = 1_500_001
	sink := c.Sink(t, 8080)
	if _, err := SendCount(ctxT(t), nil, net.JoinHostPort("127.0.0.1", strconv.Itoa(c.HostPort)), in); err != nil {
		t.Fatal(err)
	}
	if got, err := sink.Wait(ctxT(t)); err != nil || got != in {
		t.Fatalf("host→container: container counted %d (%v), sent %d", got, err, in)
	}

	// Container → host.
	const out = 654_321
	srv := ListenCount(t, net.JoinHostPort(p.Gateway.String(), "0"))
	c.Send(t, srv.Addr().String(), out)
	if counts, err := srv.Wait(ctxT(t), 1); err != nil || counts[0] != out {
		t.Fatalf("container→host: host counted %v (%v), want [%d]", counts, err, out)
	}
}

func TestPodmanTwoContainers(t *testing.T) {
	p := RequirePodman(t)
	a := p.Run(t, RunOpts{})
	b := p.Run(t, RunOpts{})
	const n = 999_999
	sink := a.Sink(t, 9000)
	b.Send(t, net.JoinHostPort(a.IP.String(), "9000"), n)
	if got, err := sink.Wait(ctxT(t)); err != nil || got != n {
		t.Fatalf("a counted %d (%v), b sent %d", got, err, n)
	}
}

func TestPodmanDockerAPI(t *testing.T) {
	p := RequirePodman(t)
	c := p.Run(t, RunOpts{Labels: map[string]string{"io.netmeter.test": "api"}})
	sock := p.ServeAPI(t)
	resp, err := unixHTTPClient(sock).Get("http://d/v1.41/containers/json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var list []struct {
		ID     string `json:"Id"`
		Labels map[string]string
	}
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatalf("containers/json: %v: %s", err, body)
	}
	found := false
	for _, x := range list {
		if x.ID == c.ID && x.Labels["io.netmeter.test"] == "api" {
			found = true
		}
	}
	if !found {
		t.Fatalf("container %s not listed by the Docker API: %s", c.ID, body)
	}
}
