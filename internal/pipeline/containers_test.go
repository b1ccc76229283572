package pipeline_test

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/netmeter/netmeter/internal/aggregate"
	"github.com/netmeter/netmeter/internal/containertest"
	"github.com/netmeter/netmeter/internal/pipeline"
	"github.com/netmeter/netmeter/internal/snapshot"
	"github.com/netmeter/netmeter/internal/testnet"
)

func TestMain(m *testing.M) { containertest.Main(m) }

// collector polls a pipeline every 100 ms in the background.
type collector struct {
	mu     sync.Mutex
	last   snapshot.Snapshot
	stop   func()
	ledger *aggregate.Ledger
}

// ledgerEntries returns this period's tx payload per account.
func (c *collector) ledgerEntries() map[string]uint64 {
	out := map[string]uint64{}
	for _, e := range c.ledger.Entries(c.ledger.Period(time.Now())) {
		out[e.Account] += e.Total.TxPayload
	}
	return out
}

func collect(t *testing.T, cfg pipeline.Config) *collector {
	t.Helper()
	cfg.Interval, cfg.Engine, cfg.Source = 100*time.Millisecond, "on", "auto"
	p, err := pipeline.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan snapshot.Snapshot, 1)
	done := make(chan error, 1)
	go func() { done <- p.Loop.Run(ctx, out) }()
	c := &collector{ledger: p.Ledger}
	go func() {
		for s := range out {
			c.mu.Lock()
			c.last = s
			c.mu.Unlock()
		}
	}()
	c.stop = func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		close(out)
		p.Close()
	}
	t.Cleanup(c.stop)
	return c
}

func (c *collector) container(name string) snapshot.Container {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ct := range c.last.Containers {
		if ct.Name == name {
			return ct
		}
	}
	return snapshot.Container{}
}

// settle waits until the named containers' totals stop changing.
func (c *collector) settle(t *testing.T, names ...string) {
	t.Helper()
	var prev string
	for range 100 {
		time.Sleep(300 * time.Millisecond)
		var cur []string
		for _, n := range names {
			cur = append(cur, fmt.Sprint(c.container(n).Total))
		}
		if s := strings.Join(cur, "|"); s == prev && !strings.Contains(s, "{0 0 0 0 0 0}") {
			return
		} else {
			prev = s
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ct := range c.last.Containers {
		t.Logf("container %s %q runtime %q total %+v", ct.ID, ct.Name, ct.Runtime, ct.Total)
	}
	for _, p := range c.last.Processes {
		t.Logf("process %d %q cgroup %q netns %d total %+v", p.PID, p.Comm, p.Cgroup, p.NetnsInode, p.Total)
	}
	t.Fatalf("containers %v never settled", names)
}

func rl(n int64) uint64 { return uint64(containertest.ReplyLen(n)) }

// TestDockerContainers runs two busybox containers on a private dockerd and
// sends exact byte counts host→container through a published port
// (docker-proxy), container→host and container→container. Each container's
// payload per peer class must equal what was sent (tolerance 0), and the
// name, image and labels come from Docker's API.
func TestDockerContainers(t *testing.T) {
	d := containertest.RequireDocker(t)
	c := collect(t, pipeline.Config{DockerSockets: []string{d.Socket}, CRIEndpoints: []string{}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	web := d.Run(t, containertest.RunOpts{Name: "nm-web", Labels: map[string]string{"netmeter.account": "acme"}, Publish: map[int]int{8080: 0}})
	db := d.Run(t, containertest.RunOpts{Name: "nm-db", Labels: map[string]string{"tier": "db"}})
	const n1, n2, n3 = 3_000_000, 2_000_000, 1_000_000

	// 1. host → web through the published port (docker-proxy relays).
	sink := web.Sink(t, 8080)
	if _, err := containertest.SendCount(ctx, nil, fmt.Sprintf("127.0.0.1:%d", web.HostPort), n1); err != nil {
		t.Fatal(err)
	}
	if got, err := sink.Wait(ctx); err != nil || got != n1 {
		t.Fatalf("sink got %d, %v", got, err)
	}
	// 2. web → a host process on the bridge's gateway address.
	srv := containertest.ListenCount(t, netip.AddrPortFrom(d.Gateway, 0).String())
	web.Send(t, srv.Addr().String(), n2)
	// 3. db → web, container to container.
	sink = web.Sink(t, 9000)
	db.Send(t, netip.AddrPortFrom(web.IP, 9000).String(), n3)
	if got, err := sink.Wait(ctx); err != nil || got != n3 {
		t.Fatalf("sink got %d, %v", got, err)
	}

	c.settle(t, "nm-web", "nm-db")
	w, b := c.container("nm-web"), c.container("nm-db")
	t.Logf("web %s %s %q: total %+v\n host %+v\n c2c %+v\n external %+v", w.ID[:12], w.Image, w.Account, w.Total, w.Host, w.Local, w.External)
	t.Logf("db %s: total %+v c2c %+v", b.ID[:12], b.Total, b.Local)
	if w.Runtime != "docker" || w.Account != "acme" || w.Labels["netmeter.account"] != "acme" || !strings.Contains(w.Image, "busybox") || w.ID != web.ID {
		t.Errorf("web identity: runtime %q account %q image %q labels %v id %s", w.Runtime, w.Account, w.Image, w.Labels, w.ID)
	}
	if b.Account != "nm-db" || b.Labels["tier"] != "db" {
		t.Errorf("db identity: account %q labels %v", b.Account, b.Labels)
	}
	check := func(what string, got snapshot.Traffic, tx, rx uint64) {
		t.Helper()
		if got.TxPayload != tx || got.RxPayload != rx {
			t.Errorf("%s payload: tx %d rx %d, want tx %d rx %d", what, got.TxPayload, got.RxPayload, tx, rx)
		}
	}
	check("web↔host", w.Host, rl(n1)+n2, n1+rl(n2))
	check("web↔containers", w.Local, rl(n3), n3)
	check("web total", w.Total, rl(n1)+n2+rl(n3), n1+rl(n2)+n3)
	check("db↔containers", b.Local, n3, rl(n3))
	check("db total", b.Total, n3, rl(n3))
	if w.External != (snapshot.Traffic{}) || b.External != (snapshot.Traffic{}) {
		t.Errorf("external traffic where there is none: web %+v db %+v", w.External, b.External)
	}
	// Cross-check with the kernel's counters of db's own namespace: its eth0
	// carried db's packets (plus an Ethernet header each, and ARP).
	if b.Netns == nil {
		t.Error("db: no namespace interface counters")
	} else {
		wire := b.Total.TxBytes + 14*b.Total.TxPackets
		t.Logf("db: sockets %d IP bytes in %d packets (%d on the wire); its eth0 sent %d bytes in %d packets", b.Total.TxBytes, b.Total.TxPackets, wire, b.Netns.TxBytes, b.Netns.TxPackets)
		if b.Netns.TxBytes < wire || float64(b.Netns.TxBytes) > 1.01*float64(wire)+2000 {
			t.Errorf("db's eth0 sent %d bytes, sockets account for %d: beyond 1 %% + 2 kB of ARP", b.Netns.TxBytes, wire)
		}
	}
	if w.Accepted != 2 || b.Opened != 1 {
		t.Errorf("connections: web accepted %d (want 2), db opened %d (want 1)", w.Accepted, b.Opened)
	}
	// docker-proxy's own bytes are its own (a host process), never the
	// container's, and its relay connection names the container it serves.
	c.mu.Lock()
	defer c.mu.Unlock()
	var proxied bool
	for _, cn := range c.last.Connections {
		if cn.Owner.Comm == "docker-proxy" && cn.PeerContainer == "nm-web" {
			proxied = true
			t.Logf("docker-proxy relay %s:%d → %s:%d (%s): %+v", cn.Local.Addr, cn.Local.Port, cn.Remote.Addr, cn.Remote.Port, cn.PeerContainer, cn.Total)
			if cn.Total.TxPayload != n1 {
				t.Errorf("docker-proxy relayed %d payload bytes, want %d", cn.Total.TxPayload, n1)
			}
		}
	}
	if !proxied {
		t.Error("no docker-proxy connection linked to nm-web")
	}
	// docker-proxy relays with splice(), which passes no recv hook: its
	// payload read is counted from TCP's copied_seq. It read the client's
	// n1 bytes and the sink's reply, and sent them on.
	for _, p := range c.last.Processes {
		if p.Comm == "docker-proxy" && p.Total.RxPayload != 0 {
			if p.Total.RxPayload != n1+rl(n1) || p.Total.TxPayload != n1+rl(n1) {
				t.Errorf("docker-proxy pid %d payload %+v, want rx = tx = %d", p.PID, p.Total, n1+rl(n1))
			}
		}
	}
}

// TestPodmanContainers: the same exact transfers with Podman (runc, its own
// bridge), named through Podman's Docker-compatible API.
func TestPodmanContainers(t *testing.T) {
	pm := containertest.RequirePodman(t)
	sock := pm.ServeAPI(t)
	c := collect(t, pipeline.Config{DockerSockets: []string{sock}, CRIEndpoints: []string{}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	web := pm.Run(t, containertest.RunOpts{Name: "nm-pweb", Labels: map[string]string{"netmeter.account": "beta"}})
	cli := pm.Run(t, containertest.RunOpts{Name: "nm-pcli"})
	const n1, n2 = 2_500_000, 700_000
	srv := containertest.ListenCount(t, netip.AddrPortFrom(pm.Gateway, 0).String())
	web.Send(t, srv.Addr().String(), n1)
	sink := web.Sink(t, 9000)
	cli.Send(t, netip.AddrPortFrom(web.IP, 9000).String(), n2)
	if got, err := sink.Wait(ctx); err != nil || got != n2 {
		t.Fatalf("sink got %d, %v", got, err)
	}
	c.settle(t, "nm-pweb", "nm-pcli")
	w, k := c.container("nm-pweb"), c.container("nm-pcli")
	t.Logf("web %s %q %q: host %+v c2c %+v", w.Runtime, w.Account, w.Image, w.Host, w.Local)
	if w.Runtime != "podman" || w.Account != "beta" || w.ID != web.ID {
		t.Errorf("web identity: runtime %q account %q id %s", w.Runtime, w.Account, w.ID)
	}
	if w.Host.TxPayload != n1 || w.Host.RxPayload != rl(n1) || w.Local.RxPayload != n2 || w.Local.TxPayload != rl(n2) {
		t.Errorf("web payload: host %+v c2c %+v", w.Host, w.Local)
	}
	if k.Local.TxPayload != n2 || k.Total.TxPayload != n2 {
		t.Errorf("client payload: %+v", k.Total)
	}
}

// TestHandMadeContainers: no runtime at all, just a cgroup with a
// runtime-like path and a network namespace: traffic is grouped by container
// id, two containers on the same internal port are kept apart.
func TestHandMadeContainers(t *testing.T) {
	c := collect(t, pipeline.Config{DockerSockets: []string{}, CRIEndpoints: []string{}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	net := containertest.NewHandMadeNet(t)
	a := containertest.HandMade(t, containertest.HandMadeOpts{Net: net})
	b := containertest.HandMade(t, containertest.HandMadeOpts{Net: net, Layout: "podman"})
	const na, nb = 1_200_000, 3_400_000
	// Both listen on port 8080; the host side of the test network sends to each.
	for _, x := range []struct {
		ctr *containertest.Container
		n   int64
	}{{a, na}, {b, nb}} {
		sink := x.ctr.Sink(t, 8080)
		if _, err := containertest.SendCount(ctx, net.HostDial, netip.AddrPortFrom(x.ctr.IP, 8080).String(), x.n); err != nil {
			t.Fatal(err)
		}
		if got, err := sink.Wait(ctx); err != nil || got != x.n {
			t.Fatalf("sink got %d, %v", got, err)
		}
	}
	short := func(id string) string { return id[:12] }
	c.settle(t, short(a.ID), short(b.ID))
	ca, cb := c.container(short(a.ID)), c.container(short(b.ID))
	t.Logf("a %s %q: %+v\nb %s %q: %+v", ca.Runtime, ca.Name, ca.Total, cb.Runtime, cb.Name, cb.Total)
	if ca.Total.RxPayload != na || cb.Total.RxPayload != nb || ca.Total.TxPayload != rl(na) || cb.Total.TxPayload != rl(nb) {
		t.Errorf("payload: a %+v b %+v", ca.Total, cb.Total)
	}
	if ca.Runtime != "docker" || cb.Runtime != "podman" || ca.ID != a.ID || cb.ID != b.ID {
		t.Errorf("identity from cgroup paths: a %q %s, b %q %s", ca.Runtime, ca.ID, cb.Runtime, cb.ID)
	}
	if len(ca.Ports) != 1 || ca.Ports[0].Port != 8080 || ca.Ports[0].Total.RxPayload != na || len(cb.Ports) != 1 || cb.Ports[0].Total.RxPayload != nb {
		t.Errorf("ports: a %+v b %+v", ca.Ports, cb.Ports)
	}
}

// TestAccountsSurviveRestartAndIPReuse: a container recreated under its
// name keeps its account (and the ledger its total) although its id changes;
// another container that gets the first one's old IP is not billed for it.
func TestAccountsSurviveRestartAndIPReuse(t *testing.T) {
	d := containertest.RequireDocker(t)
	state := t.TempDir() + "/state.json"
	c := collect(t, pipeline.Config{DockerSockets: []string{d.Socket}, CRIEndpoints: []string{}, StateFile: state, BillingDay: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv := containertest.ListenCount(t, netip.AddrPortFrom(d.Gateway, 0).String())

	first := d.Run(t, containertest.RunOpts{Name: "nm-shop"})
	first.Send(t, srv.Addr().String(), 1_000_000)
	oldIP := first.IP
	if _, err := d.CLI(ctx, "rm", "-f", first.ID); err != nil {
		t.Fatal(err)
	}
	// Docker hands the freed address to the next container.
	other := d.Run(t, containertest.RunOpts{Name: "nm-other"})
	again := d.Run(t, containertest.RunOpts{Name: "nm-shop"})
	t.Logf("nm-shop %s → %s (new id %s); nm-other got %s", oldIP, again.IP, again.ID[:12], other.IP)
	if other.IP != oldIP {
		t.Logf("note: the old IP went to neither container as expected (%s)", other.IP)
	}
	other.Send(t, srv.Addr().String(), 300_000)
	again.Send(t, srv.Addr().String(), 2_000_000)
	c.settle(t, "nm-shop", "nm-other")

	p := c.ledgerEntries()
	t.Logf("ledger: %+v", p)
	if p["nm-shop"] != 3_000_000 || p["nm-other"] != 300_000 {
		t.Errorf("ledger payload by account %v, want nm-shop 3000000 (both lives), nm-other 300000", p)
	}
}

// roleHTTP serves HTTP/1.1 (keep-alive) on -http and HTTPS on -https until
// killed; run inside a container with Container.StartRole.
const roleHTTP = "http-server"

func init() {
	testnet.RegisterRole(roleHTTP, func(ctx context.Context, args []string, rep *testnet.Reporter) error {
		fs := flag.NewFlagSet(roleHTTP, flag.ContinueOnError)
		plain := fs.String("http", ":8080", "")
		secure := fs.String("https", ":8443", "")
		if err := fs.Parse(args); err != nil {
			return err
		}
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body); fmt.Fprint(w, "ok") })
		ts := httptest.NewUnstartedServer(h)
		ln, err := net.Listen("tcp4", *secure)
		if err != nil {
			return err
		}
		ts.Listener = ln
		ts.StartTLS()
		defer ts.Close()
		pln, err := net.Listen("tcp4", *plain)
		if err != nil {
			return err
		}
		go http.Serve(pln, h)
		rep.Ready(pln.Addr().String())
		<-ctx.Done()
		return nil
	})
}

// TestContainerHTTPRequests: N keep-alive and M one-shot HTTP/1.1 requests
// to a container are N+M requests on its port; K TLS connections are K
// connections and no request.
func TestContainerHTTPRequests(t *testing.T) {
	d := containertest.RequireDocker(t)
	c := collect(t, pipeline.Config{DockerSockets: []string{d.Socket}, CRIEndpoints: []string{}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	web := d.Run(t, containertest.RunOpts{Name: "nm-http"})
	srv := web.StartRole(t, roleHTTP)
	if _, err := srv.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	base := "http://" + netip.AddrPortFrom(web.IP, 8080).String()
	get := func(cl *http.Client, url string) {
		t.Helper()
		resp, err := cl.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	const n, m, k = 30, 12, 5
	ka := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	for range n {
		get(ka, base+"/a")
	}
	ka.CloseIdleConnections()
	once := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for range m {
		get(once, base+"/b")
	}
	tlsc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	for range k {
		get(tlsc, "https://"+netip.AddrPortFrom(web.IP, 8443).String()+"/c")
	}
	c.settle(t, "nm-http")
	w := c.container("nm-http")
	ports := map[uint16]snapshot.Port{}
	for _, p := range w.Ports {
		ports[p.Port] = p
	}
	t.Logf("requests %d, ports %+v", w.Requests, w.Ports)
	if p := ports[8080]; p.HTTPRequests["GET"] != n+m || p.Accepted != 1+m || len(p.HTTPRequests) != 1 {
		t.Errorf("port 8080: %d GETs over %d connections, want %d over %d", p.HTTPRequests["GET"], p.Accepted, n+m, 1+m)
	}
	if p := ports[8443]; p.Accepted != k || len(p.HTTPRequests) != 0 {
		t.Errorf("port 8443: %d connections, requests %v; want %d connections, no request", p.Accepted, p.HTTPRequests, k)
	}
	if w.Requests != n+m {
		t.Errorf("container requests %d, want %d", w.Requests, n+m)
	}
}

// TestHostNetworkContainer: a container sharing the host's network namespace
// is charged only its own sockets' traffic (by its cgroup; its short-lived
// `docker exec` processes are read the moment they create a socket), and is
// flagged as host network; the host's other traffic is not its.
func TestHostNetworkContainer(t *testing.T) {
	d := containertest.RequireDocker(t)
	c := collect(t, pipeline.Config{DockerSockets: []string{d.Socket}, CRIEndpoints: []string{}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	h := d.Run(t, containertest.RunOpts{Name: "nm-hostnet", Network: "host"})
	srv := containertest.ListenCount(t, "127.0.0.1:0")
	const n, other = 1_500_000, 4_000_000
	h.Send(t, srv.Addr().String(), n)
	// Traffic of the host itself on the same loopback, at the same time.
	if _, err := containertest.SendCount(ctx, nil, srv.Addr().String(), other); err != nil {
		t.Fatal(err)
	}
	c.settle(t, "nm-hostnet")
	ct := c.container("nm-hostnet")
	t.Logf("host-network container: host_network=%v total %+v host %+v", ct.HostNetwork, ct.Total, ct.Host)
	if !ct.HostNetwork {
		t.Error("not flagged as host network")
	}
	if ct.Total.TxPayload != n || ct.Total.RxPayload != rl(n) || ct.Host.TxPayload != n {
		t.Errorf("payload %+v (host %+v), want tx %d rx %d, all with the host", ct.Total, ct.Host, n, rl(n))
	}
}

// TestFirewallCounters: with NftCounters, the nftables named counters of a
// container's address (in the test's host-side namespace, never the real
// host's firewall) count the same IP bytes as its sockets.
func TestFirewallCounters(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	net := containertest.NewHandMadeNet(t)
	c := collect(t, pipeline.Config{DockerSockets: []string{}, CRIEndpoints: []string{},
		NetnsPath: net.Host.Path(), NftCounters: true, NftTable: "nmtest"})
	a := containertest.HandMade(t, containertest.HandMadeOpts{Net: net})
	send := func(n int64) {
		t.Helper()
		sink := a.Sink(t, 8080)
		if _, err := containertest.SendCount(ctx, net.HostDial, netip.AddrPortFrom(a.IP, 8080).String(), n); err != nil {
			t.Fatal(err)
		}
		if got, err := sink.Wait(ctx); err != nil || got != n {
			t.Fatalf("sink got %d, %v", got, err)
		}
	}
	name := a.ID[:12]
	send(1000) // netmeter learns the container's address from its sockets
	var before snapshot.Container
	for range 50 {
		time.Sleep(200 * time.Millisecond)
		if before = c.container(name); before.Firewall != nil {
			break
		}
	}
	if before.Firewall == nil {
		t.Fatalf("no firewall counters for %s (addresses %v)", name, before.Addresses)
	}
	const n = 2_000_000
	send(n)
	c.settle(t, name)
	time.Sleep(300 * time.Millisecond)
	after := c.container(name)
	fw := snapshot.FirewallCounters{InBytes: after.Firewall.InBytes - before.Firewall.InBytes, OutBytes: after.Firewall.OutBytes - before.Firewall.OutBytes,
		InPackets: after.Firewall.InPackets - before.Firewall.InPackets, OutPackets: after.Firewall.OutPackets - before.Firewall.OutPackets}
	rx, tx := after.Total.RxBytes-before.Total.RxBytes, after.Total.TxBytes-before.Total.TxBytes
	t.Logf("container %s %v: sockets rx %d tx %d IP bytes; nftables in %d (%d pkts) out %d (%d pkts)", name, after.Addresses, rx, tx, fw.InBytes, fw.InPackets, fw.OutBytes, fw.OutPackets)
	if fw.InBytes != rx || fw.OutBytes != tx {
		t.Errorf("nftables in/out %d/%d, sockets rx/tx %d/%d", fw.InBytes, fw.OutBytes, rx, tx)
	}
}
