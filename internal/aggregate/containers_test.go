package aggregate

import (
	"fmt"
	"strings"
	"testing"

	"github.com/netmeter/netmeter/internal/attribution/container"
	"github.com/netmeter/netmeter/internal/attribution/procfs"
	"github.com/netmeter/netmeter/internal/snapshot"
	"github.com/netmeter/netmeter/internal/source/engine"
)

// fakeProcs stands in for /proc: pid → cgroup path and netns.
type fakeProcs map[int]procfs.Info

func (f fakeProcs) Lookup(pid int, _ uint64) (procfs.Info, bool) {
	i, ok := f[pid]
	return i, ok
}

type fakeRuntime map[string]container.Info

func (f fakeRuntime) Lookup(r container.Ref) (container.Info, bool) {
	i, ok := f[r.ID]
	return i, ok
}

// A container whose runtime did not answer (a lookup that timed out under
// load) keeps its short id only until a later lookup succeeds, even when it
// has gone quiet by then.
func TestContainerNamedWhenRuntimeAnswersLater(t *testing.T) {
	id := strings.Repeat("c", 64)
	procs := fakeProcs{10: {PID: 10, Comm: "web", CgroupPath: "/docker/" + id, NetnsInode: 2}}
	rt := fakeRuntime{}
	f := NewFlows(FlowOptions{Resolver: procs, Containers: rt, HostNetns: 1})
	s := sock(1, 10, "172.17.0.2:80", "172.17.0.1:50000", engine.RoleServer, 100, 1000)
	s.Netns = 2
	f.Observe(sec(1), engine.Reading{Live: []engine.Socket{s}})
	if c := f.Containers(); len(c) != 1 || c[0].Name != id[:12] {
		t.Fatalf("before the runtime answers: %+v", c)
	}
	rt[id] = container.Info{Runtime: container.Docker, ID: id, Name: "web", Account: "shop"}
	f.Observe(sec(2), engine.Reading{Live: []engine.Socket{s}}) // no new bytes
	if c := f.Containers(); len(c) != 1 || c[0].Name != "web" || c[0].Account != "shop" {
		t.Fatalf("after the runtime answered: %+v", c)
	}
}

func TestContainersByPeer(t *testing.T) {
	idA, idB := strings.Repeat("a", 64), strings.Repeat("b", 64)
	const host, nsA, nsB = 1, 2, 3
	procs := fakeProcs{
		10: {PID: 10, Comm: "web", CgroupPath: "/", Cgroups: map[string]string{"pids": "/docker/" + idA}, NetnsInode: nsA},
		20: {PID: 20, Comm: "db", CgroupPath: "/docker/" + idB, NetnsInode: nsB},
		30: {PID: 30, Comm: "curl", CgroupPath: "/user.slice", NetnsInode: host},
	}
	rt := fakeRuntime{idA: {Runtime: container.Docker, ID: idA, Name: "web", Image: "busybox", Account: "shop/web", Labels: map[string]string{"netmeter.account": "shop/web"}}}
	f := NewFlows(FlowOptions{Resolver: procs, Containers: rt, HostNetns: host})
	mk := func(cookie uint64, pid uint32, ns uint32, local, remote string, role engine.Role, tx, rx uint64) engine.Socket {
		s := sock(cookie, pid, local, remote, role, tx, rx)
		s.Netns = ns
		return s
	}
	live := []engine.Socket{
		mk(1, 10, nsA, "172.17.0.2:80", "172.17.0.3:40000", engine.RoleServer, 100, 1000),     // from container B
		mk(2, 20, nsB, "172.17.0.3:40000", "172.17.0.2:80", engine.RoleClient, 1000, 100),     // B's end
		mk(3, 10, nsA, "172.17.0.2:80", "172.17.0.1:50000", engine.RoleServer, 200, 2000),     // from the host
		mk(4, 30, host, "172.17.0.1:50000", "172.17.0.2:80", engine.RoleClient, 2000, 200),    // the host's end
		mk(5, 10, nsA, "172.17.0.2:41000", "93.184.216.34:443", engine.RoleClient, 300, 3000), // the internet
		mk(6, 10, nsA, "127.0.0.1:9000", "127.0.0.1:41001", engine.RoleServer, 40, 400),       // inside A
	}
	f.Observe(sec(1), engine.Reading{Live: live})
	ctrs := f.Containers()
	if len(ctrs) != 2 {
		t.Fatalf("%d containers, want 2 (the host process is none): %+v", len(ctrs), ctrs)
	}
	byID := map[string]snapshot.Container{}
	for _, c := range ctrs {
		byID[c.ID] = c
	}
	a, b := byID[idA], byID[idB]
	if a.Name != "web" || a.Account != "shop/web" || a.Runtime != "docker" || a.NetnsInode != nsA {
		t.Errorf("A identity %+v", a)
	}
	if b.Name != idB[:12] || b.Account != idB[:12] {
		t.Errorf("B without runtime answer: name %q account %q", b.Name, b.Account)
	}
	check := func(what string, got snapshot.Traffic, tx, rx uint64) {
		t.Helper()
		if got.TxPayload != tx || got.RxPayload != rx {
			t.Errorf("%s: tx %d rx %d, want %d %d", what, got.TxPayload, got.RxPayload, tx, rx)
		}
	}
	check("A container_to_container", a.Local, 100, 1000)
	check("A container_to_host", a.Host, 200, 2000)
	check("A external", a.External, 300, 3000)
	check("A internal", a.Internal, 40, 400)
	check("A total", a.Total, 640, 6400)
	check("B container_to_container", b.Local, 1000, 100)
	if a.Accepted != 3 || a.Opened != 1 || b.Opened != 1 {
		t.Errorf("connections: A accepted %d opened %d, B opened %d", a.Accepted, a.Opened, b.Opened)
	}
	if len(a.Ports) != 2 || a.Ports[0].Port != 80 || a.Ports[0].Accepted != 2 || a.Ports[0].Total.RxPayload != 3000 {
		t.Errorf("A ports %+v", a.Ports)
	}
	if len(a.Remotes) != 4 || a.Remotes[0].Addr != "93.184.216.34" || a.Remotes[0].Total.RxPayload != 3000 {
		t.Errorf("A remotes %+v", a.Remotes)
	}
	// Same sockets again: connections are not counted twice.
	f.Observe(sec(2), engine.Reading{Live: live})
	for _, c := range f.Containers() {
		if c.ID == idA && (c.Accepted != 3 || c.Total.RxPayload != 6400) {
			t.Errorf("second reading: accepted %d total %+v", c.Accepted, c.Total)
		}
	}
}

func TestContainerRemotesBounded(t *testing.T) {
	id := strings.Repeat("c", 64)
	procs := fakeProcs{10: {PID: 10, CgroupPath: "/docker/" + id, NetnsInode: 2}}
	f := NewFlows(FlowOptions{Resolver: procs, HostNetns: 1})
	var live []engine.Socket
	for i := range 2000 { // a port scan's worth of peers
		s := sock(uint64(i+1), 10, "172.17.0.2:40000", fmt.Sprintf("10.%d.%d.1:80", i/250, i%250), engine.RoleClient, uint64(i+1), 0)
		s.Netns = 2
		live = append(live, s)
	}
	f.Observe(sec(1), engine.Reading{Live: live})
	c := f.Containers()[0]
	if n := len(f.ctrs[id].remotes); n > keepRemotes {
		t.Fatalf("%d remotes tracked, bound %d", n, keepRemotes)
	}
	if len(c.Remotes) != maxRemotes || c.Remotes[0].Total.TxPayload != 2000 {
		t.Fatalf("top remotes %d, first %+v", len(c.Remotes), c.Remotes[0])
	}
}
