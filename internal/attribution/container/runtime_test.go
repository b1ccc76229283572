package container

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/netmeter/netmeter/internal/containertest"
)

func TestMain(m *testing.M) { containertest.Main(m) }

// engine is a real container engine behind a Docker Engine API socket.
type engine struct {
	runtime string // Docker or Podman
	socket  string
	image   string
	run     func(testing.TB, containertest.RunOpts) *containertest.Container
	cli     func(context.Context, ...string) ([]byte, error)
}

func dockerEngine(t *testing.T) engine {
	d := containertest.RequireDocker(t)
	return engine{runtime: Docker, socket: d.Socket, image: d.Image, run: d.Run, cli: d.CLI}
}

func podmanEngine(t *testing.T) engine {
	p := containertest.RequirePodman(t)
	return engine{runtime: Podman, socket: p.ServeAPI(t), image: p.Image, run: p.Run, cli: p.CLI}
}

// TestDockerRuntime runs DockerSource and Registry against a private dockerd
// 20.10 (root; skipped otherwise, failed under
// NETMETER_REQUIRE_PRIVILEGED=1).
func TestDockerRuntime(t *testing.T) { testRuntime(t, dockerEngine(t)) }

// TestPodmanRuntime does the same against Podman 4.3's Docker-compatible
// API service.
func TestPodmanRuntime(t *testing.T) { testRuntime(t, podmanEngine(t)) }

// testRuntime starts a labelled container with a published port and checks
// that List, Lookup (by the cgroup of its init process) and LookupPID
// report its name, image, labels, IP, port, pid and account; then renames,
// stops and starts it and checks the events and the cache; and checks a
// host-network container.
func testRuntime(t *testing.T, e engine) {
	ctx := testCtx(t)
	src, err := NewDocker(e.socket)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if rt, err := src.Runtime(ctx); err != nil || rt != e.runtime {
		t.Fatalf("Runtime = %q, %v; want %q", rt, err, e.runtime)
	}

	events := make(chan Event, 256)
	var errs = make(chan error, 64)
	reg, err := NewRegistry(
		WithDockerSockets(e.socket), WithCRIEndpoints(),
		WithEventHandler(func(ev Event) { events <- ev }),
		WithErrorHandler(func(err error) {
			select {
			case errs <- err:
			default:
			}
		}),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	waitSynced(t, reg)

	name := "nm-meta-" + randName()
	labels := map[string]string{
		LabelComposeProject: "nmtest",
		LabelComposeService: "web",
		"tier":              "front",
	}
	c := e.run(t, containertest.RunOpts{Name: name, Labels: labels, Publish: map[int]int{80: 0}})

	// List.
	infos, err := src.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(infos, func(in Info) bool { return in.ID == c.ID })
	if i < 0 {
		t.Fatalf("List has no %s: %+v", name, infos)
	}
	t.Logf("List: %+v", infos[i])
	checkInfo(t, "List", infos[i], e, c, name, labels)

	// Lookup by the cgroup the kernel reports for the container's process.
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", c.PID))
	if err != nil {
		t.Fatal(err)
	}
	ref := FromCgroupFile(data)
	if ref.ID != c.ID || ref.Runtime != e.runtime {
		t.Fatalf("cgroup of pid %d gives %+v, want %s %s", c.PID, ref, e.runtime, c.ID)
	}
	in, ok := reg.Lookup(ctx, ref)
	if !ok {
		t.Fatal("Lookup reported no container")
	}
	checkInfo(t, "Lookup", in, e, c, name, labels)
	if in, ok := reg.LookupPID(ctx, c.PID); !ok || in.ID != c.ID {
		t.Errorf("LookupPID(%d) = %+v, %v", c.PID, in, ok)
	}

	// Rename: the stream may not be open yet, so rename until one arrives.
	var renamed string
	for n := 1; n <= 20 && renamed == ""; n++ {
		newName := fmt.Sprintf("%s-r%d", name, n)
		if _, err := e.cli(ctx, "rename", name, newName); err != nil {
			t.Fatal(err)
		}
		name = newName
		if ev, ok := waitEvent(t, events, c.ID, EventRename, time.Second); ok {
			renamed = ev.Name
		}
	}
	if renamed != name {
		t.Fatalf("rename event names %q, want %q", renamed, name)
	}
	if in, _ := reg.Lookup(ctx, ref); in.Name != name || in.Account != "nmtest/web" {
		t.Errorf("after rename: name %q account %q, want %q nmtest/web", in.Name, in.Account, name)
	}

	// Stop: a die event; the entry stays for its final bytes, not running.
	if _, err := e.cli(ctx, "stop", "-t", "0", name); err != nil {
		t.Fatal(err)
	}
	if _, ok := waitEvent(t, events, c.ID, EventDie, 10*time.Second); !ok {
		t.Fatal("no die event after stop")
	}
	if in, _ := reg.Lookup(ctx, ref); in.Running || in.PID != 0 || in.Name != name || in.Account != "nmtest/web" {
		t.Errorf("after die: %+v", in)
	}

	// Start: the registry inspects the new process.
	if _, err := e.cli(ctx, "start", name); err != nil {
		t.Fatal(err)
	}
	if _, ok := waitEvent(t, events, c.ID, EventStart, 10*time.Second); !ok {
		t.Fatal("no start event after start")
	}
	in, _ = reg.Lookup(ctx, ref)
	if !in.Running || in.PID == 0 || in.PID == c.PID {
		t.Errorf("after start: running %v pid %d (was %d)", in.Running, in.PID, c.PID)
	} else if data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", in.PID)); err != nil || FromCgroupFile(data).ID != c.ID {
		t.Errorf("new pid %d is not in the container's cgroup: %v", in.PID, err)
	}

	// Host networking.
	h := e.run(t, containertest.RunOpts{Name: "nm-host-" + randName(), Network: "host"})
	hin, err := src.Inspect(ctx, h.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !hin.HostNetwork || hin.NetworkMode != "host" || len(hin.IPs) != 0 || hin.PID != h.PID || hin.Account != h.Name {
		t.Errorf("host-network container: %+v", hin)
	}

	if _, err := src.Inspect(ctx, hexID(1)); !errors.Is(err, ErrNotFound) {
		t.Errorf("Inspect of an unknown id: %v, want ErrNotFound", err)
	}
	select {
	case err := <-errs:
		t.Errorf("registry reported: %v", err)
	default:
	}
}

func checkInfo(t *testing.T, what string, in Info, e engine, c *containertest.Container, name string, labels map[string]string) {
	t.Helper()
	if in.Runtime != e.runtime || in.Name != name || in.Image != e.image {
		t.Errorf("%s: runtime %q name %q image %q; want %q %q %q", what, in.Runtime, in.Name, in.Image, e.runtime, name, e.image)
	}
	for k, v := range labels {
		if in.Labels[k] != v {
			t.Errorf("%s: label %s = %q, want %q (labels %v)", what, k, in.Labels[k], v, in.Labels)
		}
	}
	if in.ComposeProject != "nmtest" || in.ComposeService != "web" || in.Account != "nmtest/web" {
		t.Errorf("%s: compose %q/%q account %q, want nmtest/web", what, in.ComposeProject, in.ComposeService, in.Account)
	}
	if !slices.Contains(in.IPs, c.IP) {
		t.Errorf("%s: IPs %v lack %v", what, in.IPs, c.IP)
	}
	want := Port{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: uint16(c.HostPort), ContainerPort: 80, Proto: "tcp"}
	if !slices.Contains(in.Ports, want) {
		t.Errorf("%s: ports %+v lack %+v", what, in.Ports, want)
	}
	if !in.Running || in.PID != c.PID || in.HostNetwork || in.StartedAt.IsZero() {
		t.Errorf("%s: running %v pid %d (want %d) host network %v started %v", what, in.Running, in.PID, c.PID, in.HostNetwork, in.StartedAt)
	}
	if time.Since(in.StartedAt) > time.Hour || time.Until(in.StartedAt) > time.Minute {
		t.Errorf("%s: started at %v, not just now", what, in.StartedAt)
	}
}

// waitEvent waits for an event of typ for id, dropping others.
func waitEvent(t *testing.T, ch <-chan Event, id string, typ EventType, d time.Duration) (Event, bool) {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case ev := <-ch:
			if ev.ID == id && ev.Type == typ {
				return ev, true
			}
		case <-deadline:
			return Event{}, false
		}
	}
}

func randName() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
