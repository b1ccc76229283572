package health

import (
	"encoding/json"
	"net/netip"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/netmeter/netmeter/internal/snapshot"
)

func TestGrouping(t *testing.T) {
	user := []Group{
		{Name: "office", CIDRs: []string{"10.0.0.0/8"}},
		{Name: "lab", CIDRs: []string{"10.1.0.0/16", "2001:db8:1::/48"}},
		{Name: "db", CIDRs: []string{"10.1.2.0/24"}},
		{Name: "db-twin", CIDRs: []string{"10.1.2.0/24"}}, // same prefix: the earlier group wins
		{Name: "mapped", CIDRs: []string{"::ffff:172.16.0.0/108"}},
	}
	for _, tc := range []struct {
		name   string
		cfg    Config
		remote string
		want   string
		kind   groupKind
	}{
		{"longest prefix", Config{Groups: user}, "10.1.2.3", "db", kindUser},
		{"middle prefix", Config{Groups: user}, "10.1.3.4", "lab", kindUser},
		{"shortest prefix", Config{Groups: user}, "10.9.9.9", "office", kindUser},
		{"user v6", Config{Groups: user}, "2001:db8:1:5::1", "lab", kindUser},
		{"mapped prefix", Config{Groups: user}, "172.16.3.4", "mapped", kindUser},
		{"default /24", Config{Groups: user}, "192.168.1.7", "192.168.1.0/24", kindDefault},
		{"mapped address", Config{}, "::ffff:192.168.1.7", "192.168.1.0/24", kindDefault},
		{"default /64", Config{}, "2001:db8:2:3:4::5", "2001:db8:2:3::/64", kindDefault},
		{"zone", Config{}, "fe80::1%eth0", "fe80::/64", kindDefault},
		{"loopback v4", Config{}, "127.0.0.53", GroupLoopback, kindLoopback},
		{"loopback v6", Config{}, "::1", GroupLoopback, kindLoopback},
		{"user group over loopback", Config{Groups: []Group{{Name: "local", CIDRs: []string{"127.0.0.0/8"}}}}, "127.0.0.1", "local", kindUser},
		{"unconnected", Config{}, "", GroupUnconnected, kindUnconnected},
		{"unspecified", Config{}, "0.0.0.0", GroupUnconnected, kindUnconnected},
		{"unspecified v6", Config{}, "::", GroupUnconnected, kindUnconnected},
		{"garbage", Config{}, "not-an-ip", GroupUnconnected, kindUnconnected},
		{"prefix4", Config{DefaultPrefix4: 16}, "192.168.1.7", "192.168.0.0/16", kindDefault},
		{"prefix6", Config{DefaultPrefix6: 48}, "2001:db8:2:3::5", "2001:db8:2::/48", kindDefault},
		{"by address", Config{ByAddress: true}, "192.168.1.7", "192.168.1.7", kindDefault},
		{"by address v6", Config{ByAddress: true}, "2001:db8::7", "2001:db8::7", kindDefault},
		{"by address keeps user groups", Config{ByAddress: true, Groups: user}, "10.1.2.3", "db", kindUser},
		{"by address keeps loopback", Config{ByAddress: true}, "127.0.0.1", GroupLoopback, kindLoopback},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := New(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if got, kind := a.grp.group(tc.remote); got != tc.want || kind != tc.kind {
				t.Fatalf("group(%q) = %q (%d), want %q (%d)", tc.remote, got, kind, tc.want, tc.kind)
			}
		})
	}
}

// flowsOf adds intervals of links (one slice per interval) and returns the
// flows of the window by ID.
func flowsOf(t *testing.T, cfg Config, window time.Duration, intervals ...[]link) map[string]Flow {
	t.Helper()
	s := newSim(t, cfg)
	for _, ls := range intervals {
		s.step(ls)
	}
	fs, err := s.a.TopFlows(window, "bytes", 0)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]Flow{}
	for _, f := range fs {
		m[f.ID] = f
	}
	return m
}

func TestFlowWindowSums(t *testing.T) {
	// Three intervals; curl talks to 10.1.1.0/24 over cookies 1 (all
	// three), 2 (only the second) and 3 (second and third).
	c1 := link{cookie: 1, comm: "curl", pid: 100, remote: "10.1.1.9", tx: 1000, rx: 10, segs: 10, retrans: 1, samples: 10, rttUS: 100}
	c2 := link{cookie: 2, comm: "curl", pid: 101, remote: "10.1.1.10", tx: 500, rx: 50, segs: 20, retrans: 0, samples: 30, rttUS: 200, rtos: 1, resetsRecv: 1}
	c3 := link{cookie: 3, comm: "curl", pid: 101, remote: "10.1.1.11", tx: 7, rx: 3, segs: 5}
	udp := link{cookie: 4, comm: "dig", pid: 7, remote: "", tx: 60, rx: 0, noTCP: true}
	intervals := [][]link{{c1, udp}, {c1, c2, c3}, {c1, c3}}

	all := flowsOf(t, Config{}, time.Hour, intervals...)
	f := all["process:curl->group:10.1.1.0/24"]
	want := Flow{
		ID: "process:curl->group:10.1.1.0/24", Group: "10.1.1.0/24", GroupID: "group:10.1.1.0/24",
		Local:    Entity{ID: "process:curl", Kind: "process", Name: "curl", PIDs: []int{100, 101}},
		Health:   StateUnknown,
		WindowMS: 3000, Intervals: 3,
		TxBytes: 3*1000 + 500 + 2*7, RxBytes: 3*10 + 50 + 2*3,
		TxPayload: 3*900 + 450 + 2*6, RxPayload: 3*9 + 45 + 2*2,
		Connections: 3,
		SegsOut:     3*10 + 20 + 2*5, RetransSegs: 3, RTOs: 1, ResetsReceived: 1,
		RTTSamples: 3*10 + 30, RTTMeanUS: (3*10*100 + 30*200) / 60, RTTMinUS: 100, RTTMaxUS: 200, RTTSource: "samples",
	}
	want.TxRate, want.RxRate = float64(want.TxBytes)/3, float64(want.RxBytes)/3
	want.LastRate = float64(1000+10+7+3) / 1
	want.RetransPercent = 100 * 3.0 / 60
	if !reflect.DeepEqual(f, want) {
		t.Errorf("whole window:\n got %+v\nwant %+v", f, want)
	}
	if u := all["process:dig->group:unconnected"]; u.TxBytes != 60 || u.Connections != 1 || u.Health != "" {
		t.Errorf("unconnected flow %+v", u)
	}

	// The last two intervals: the two seconds ending at the latest.
	last2 := flowsOf(t, Config{}, 2*time.Second, intervals...)["process:curl->group:10.1.1.0/24"]
	if last2.TxBytes != 2*1000+500+2*7 || last2.Connections != 3 || last2.Intervals != 2 || last2.WindowMS != 2000 || len(all) != 2 {
		t.Errorf("last 2 s: %+v", last2)
	}
	// Only the latest interval (a window shorter than one counts one).
	last := flowsOf(t, Config{}, time.Millisecond, intervals...)
	if f := last["process:curl->group:10.1.1.0/24"]; f.TxBytes != 1007 || f.Connections != 2 || f.RTTSamples != 10 || !slices.Equal(f.Local.PIDs, []int{100, 101}) {
		t.Errorf("latest: %+v", f)
	}
	if _, ok := last["process:dig->group:unconnected"]; ok {
		t.Error("dig's flow is outside the window")
	}
}

func TestFlowConnectionsAcrossWindowStart(t *testing.T) {
	// Cookie 1 lives through intervals 1–4; cookie 2 starts in 3. A window
	// of the last two sees both; closed-and-idle connections count nowhere.
	c1 := link{cookie: 1, comm: "app", remote: "10.0.0.1", tx: 1}
	c2 := link{cookie: 2, comm: "app", remote: "10.0.0.2", tx: 1}
	gone := link{cookie: 3, comm: "app", remote: "10.0.0.3", closed: true}
	f := flowsOf(t, Config{}, 2*time.Second, []link{c1, gone}, []link{c1, gone}, []link{c1, c2}, []link{c1, c2})["process:app->group:10.0.0.0/24"]
	if f.Connections != 2 {
		t.Fatalf("%+v", f)
	}
	f = flowsOf(t, Config{}, time.Hour, []link{c1, gone}, []link{c1, gone}, []link{c1, c2}, []link{c1, c2})["process:app->group:10.0.0.0/24"]
	if f.Connections != 2 {
		t.Fatalf("%+v", f)
	}
}

func TestFlowSRTTFallback(t *testing.T) {
	a := link{cookie: 1, comm: "app", remote: "10.0.0.1", tx: 10, srttUS: 300}
	b := link{cookie: 2, comm: "app", remote: "10.0.0.2", tx: 10, srttUS: 500}
	idle := link{cookie: 3, comm: "app", remote: "10.0.0.3", srttUS: 90_000} // moved nothing: not counted
	f := flowsOf(t, Config{}, time.Hour, []link{a, b, idle})["process:app->group:10.0.0.0/24"]
	if f.RTTMeanUS != 400 || f.RTTSource != "srtt" || f.RTTSamples != 2 || f.RTTMinUS != 0 {
		t.Fatalf("%+v", f)
	}
}

func TestFlowEntities(t *testing.T) {
	containers := []snapshot.Container{
		{ID: "4f1c2a9b3d7e0000111122223333444455556666777788889999aaaabbbbcccc", Name: "web", Account: "shop/web", NetnsInode: 77,
			Addresses: []string{"172.17.0.2"}},
		{ID: "deadbeefcafe0000", Name: "db", Account: "shop/db", Addresses: []string{"172.17.0.3"}},
		{ID: "hostnet", Name: "agent", HostNetwork: true, Addresses: []string{"192.0.2.10"}},
	}
	resolved := func(pid int, netns uint64) string {
		switch pid {
		case 10:
			return "4f1c2a9b3d7e" // short ID
		case 11:
			return "db"
		case 12:
			return "gone-container" // not in the snapshot
		}
		return ""
	}
	ls := []link{
		{cookie: 1, comm: "nginx", pid: 10, remote: "10.0.0.1", tx: 1},
		{cookie: 2, comm: "postgres", pid: 11, remote: "10.0.0.1", tx: 2},
		{cookie: 3, comm: "job", pid: 12, remote: "10.0.0.1", tx: 4},
		{cookie: 4, comm: "nginx", pid: 20, local: "172.17.0.2", remote: "10.0.0.1", tx: 8}, // by address
		{cookie: 5, comm: "curl", pid: 21, remote: "10.0.0.1", tx: 16},                      // host address of a host-network container: a process
		{cookie: 6, pid: 0, remote: "10.0.0.1", tx: 32},
		{cookie: 7, pid: 99, remote: "10.0.0.1", tx: 64},
	}
	s := newSim(t, Config{ContainerOf: resolved})
	snap := snapshotOf(s.now, ls, containers)
	snap.Connections[3].NetnsInode = 77
	s.a.Add(snap)
	fs, _ := s.a.TopFlows(time.Hour, "bytes", 0)
	got := map[string]uint64{}
	for _, f := range fs {
		got[f.Local.ID] = f.TxBytes
		if f.Local.ID == "container:web" && f.Local.Account != "shop/web" {
			t.Errorf("web %+v", f.Local)
		}
	}
	want := map[string]uint64{"container:web": 1 + 8, "container:db": 2, "container:gone-container": 4,
		"process:curl": 16, "process:[no process]": 32, "process:[pid 99]": 64}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
}

func TestTopFlowsOrder(t *testing.T) {
	ls := []link{
		{cookie: 1, comm: "big", remote: "10.0.1.1", tx: 9000, segs: 1000, retrans: 5, samples: 10, rttUS: 1000},
		{cookie: 2, comm: "lossy", remote: "10.0.2.1", tx: 500, segs: 100, retrans: 40, samples: 10, rttUS: 3000},
		{cookie: 3, comm: "slow", remote: "10.0.3.1", tx: 100, segs: 10, samples: 10, rttUS: 90_000},
		{cookie: 4, comm: "dropped", remote: "10.0.4.1", tx: 50},
		{cookie: 5, comm: "burst", remote: "10.0.5.1", tx: 1},
	}
	s := newSim(t, Config{})
	s.step(ls)
	ls[4].tx = 20_000 // burst is the busiest now, not over the window
	for i := range 4 {
		ls[i].tx = 0
	}
	s.step(ls, snapshot.Drop{Reason: "NETFILTER_DROP", Cookie: 4, DeltaPackets: 9}, snapshot.Drop{Reason: "SOCKET_RCVBUFF", Cookie: 1, DeltaPackets: 2})
	for _, tc := range []struct {
		by   string
		want []string
	}{
		{"bytes", []string{"burst", "big", "lossy", "slow", "dropped"}},
		{"retrans", []string{"lossy", "big", "burst", "slow", "dropped"}},
		{"rtt", []string{"slow", "lossy", "big", "burst", "dropped"}},
		{"drops", []string{"dropped", "big", "burst", "lossy", "slow"}},
		{"rate", []string{"burst", "big", "lossy", "slow", "dropped"}},
	} {
		fs, err := s.a.TopFlows(time.Minute, tc.by, 0)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, f := range fs {
			got = append(got, f.Local.Name)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("by %s: %v, want %v", tc.by, got, tc.want)
		}
		if top, _ := s.a.TopFlows(time.Minute, tc.by, 2); len(top) != 2 || top[0].Local.Name != tc.want[0] {
			t.Errorf("by %s limit 2: %+v", tc.by, top)
		}
	}
	if _, err := s.a.TopFlows(time.Minute, "colour", 5); err == nil || !strings.Contains(err.Error(), `"bytes"`) {
		t.Errorf("unknown key: %v", err)
	}
}

func TestDropAttribution(t *testing.T) {
	ls := []link{
		{cookie: 1, comm: "one", pid: 1, remote: "10.0.1.1", tx: 1},
		{cookie: 2, comm: "two", pid: 2, remote: "10.0.1.1", tx: 1},
		{cookie: 3, comm: "two", pid: 2, remote: "10.0.2.1", tx: 1},
		{cookie: 4, comm: "srv", pid: 3, remote: "", tx: 1}, // a listener
	}
	s := newSim(t, Config{})
	s.step(ls,
		snapshot.Drop{Reason: "SOCKET_RCVBUFF", Cookie: 1, DeltaPackets: 1},      // by cookie
		snapshot.Drop{Reason: "SOCKET_RCVBUFF", PID: 1, DeltaPackets: 2},         // by pid, one flow
		snapshot.Drop{Reason: "SOCKET_BACKLOG", PID: 2, DeltaPackets: 4},         // by pid, two groups
		snapshot.Drop{Reason: "TCP_LISTEN_OVERFLOW", Cookie: 4, DeltaPackets: 8}, // a listener
		snapshot.Drop{Reason: "NETFILTER_DROP", Cookie: 1, DeltaPackets: 16},     // not a socket reason
		snapshot.Drop{Reason: "SOCKET_RCVBUFF", Cookie: 999, DeltaPackets: 32},   // unknown socket
		snapshot.Drop{Reason: "SOCKET_RCVBUFF", Cookie: 1, DeltaPackets: 0},      // nothing new
	)
	fs, _ := s.a.TopFlows(time.Minute, "drops", 0)
	got := map[string][2]uint64{}
	for _, f := range fs {
		got[f.ID] = [2]uint64{f.Drops, f.SocketDrops}
	}
	want := map[string][2]uint64{
		"process:one->group:10.0.1.0/24": {1 + 2 + 16, 1 + 2},
		"process:two->group:10.0.1.0/24": {0, 0},
		"process:two->group:10.0.2.0/24": {0, 0},
		"process:two->group:unconnected": {4, 4},
		"process:srv->group:unconnected": {8, 8},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
	// Host-wide: pid 2's, the listener's and the unknown socket's.
	if st := statusOf(t, s.a.Health(), "10.0.1.0/24"); st.Evidence.HostSocketDrops != 4+8+32 || st.Evidence.SocketDrops != 3 {
		t.Fatalf("%+v", st.Evidence)
	}
}

func TestMonitorMatching(t *testing.T) {
	ctr := []snapshot.Container{{ID: "c1", Name: "web-1", Account: "shop/web", Addresses: []string{"172.17.0.2"}}}
	ls := []link{
		{cookie: 1, comm: "nginx", pid: 1, local: "172.17.0.2", remote: "10.1.2.3", tx: 1},         // container web-1
		{cookie: 2, comm: "curl", pid: 2, local: "192.0.2.10", remote: "10.1.2.3", tx: 2},          // host process
		{cookie: 3, comm: "curl", pid: 2, local: "192.0.2.10", remote: "203.0.113.5", tx: 4},       // to the internet
		{cookie: 4, comm: "redis", pid: 3, local: "127.0.0.1", remote: "127.0.0.1", tx: 8},         // loopback
		{cookie: 5, comm: "dnsmasq", pid: 4, local: "198.51.100.1", remote: "", tx: 16},            // unconnected
		{cookie: 6, comm: "sshd", pid: 5, local: "2001:db8::10", remote: "2001:db8:ff::1", tx: 32}, // v6
	}
	groups := []Group{{Name: "corp", CIDRs: []string{"10.0.0.0/8"}}}
	ifaces := func(name string) []netip.Prefix {
		if name == "eth0" {
			return []netip.Prefix{netip.MustParsePrefix("192.0.2.10/24")}
		}
		return nil
	}
	everywhere := RemoteMatch{Everywhere: true}
	for _, tc := range []struct {
		name string
		m    Monitor
		want uint64 // sum of the tx of the matched links
	}{
		{"everything", Monitor{Remote: everywhere}, 63},
		{"process glob", Monitor{Local: LocalMatch{Processes: []string{"cur?"}}, Remote: everywhere}, 6},
		{"container name", Monitor{Local: LocalMatch{Containers: []string{"web-*"}}, Remote: everywhere}, 1},
		{"container account", Monitor{Local: LocalMatch{Containers: []string{"shop/*"}}, Remote: everywhere}, 1},
		{"local cidr", Monitor{Local: LocalMatch{CIDRs: []string{"192.0.2.0/24", "2001:db8::/64"}}, Remote: everywhere}, 38},
		{"interface", Monitor{Local: LocalMatch{Interfaces: []string{"eth0"}}, Remote: everywhere}, 6},
		{"any local selector", Monitor{Local: LocalMatch{Processes: []string{"redis"}, Containers: []string{"web-1"}}, Remote: everywhere}, 9},
		{"remote group", Monitor{Remote: RemoteMatch{Groups: []string{"corp"}}}, 3},
		{"remote default group", Monitor{Remote: RemoteMatch{Groups: []string{"203.0.113.0/24", "loopback"}}}, 12},
		{"remote cidr", Monitor{Remote: RemoteMatch{CIDRs: []string{"2001:db8:ff::/48", "203.0.113.5"}}}, 36},
		{"both sides", Monitor{Local: LocalMatch{Processes: []string{"curl"}}, Remote: RemoteMatch{Groups: []string{"corp"}}}, 2},
		{"nothing", Monitor{Local: LocalMatch{Processes: []string{"nope"}}, Remote: everywhere}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.m.Name = tc.name
			s := newSim(t, Config{Groups: groups, Monitors: []Monitor{tc.m}, InterfaceAddrs: ifaces})
			snap := snapshotOf(s.now, ls, ctr)
			s.a.Add(snap)
			p := s.a.Monitors()[0].Points
			if len(p) != 1 || p[0].TxBytes != tc.want {
				t.Fatalf("points %+v, want tx %d", p, tc.want)
			}
		})
	}
}

func TestTopology(t *testing.T) {
	ls := []link{
		{cookie: 1, comm: "curl", pid: 1, remote: "10.1.2.3", tx: 100, rx: 1, samples: 2, rttUS: 500, segs: 10, retrans: 1},
		{cookie: 2, comm: "curl", pid: 2, remote: "127.0.0.1", tx: 10, rx: 2},
		{cookie: 3, comm: "wget", pid: 3, remote: "10.1.2.4", tx: 1000, rx: 3},
	}
	s := newSim(t, Config{})
	s.step(ls)
	topo := s.a.Topology(time.Minute)
	var ids []string
	for _, n := range topo.Nodes {
		ids = append(ids, n.ID)
	}
	if !slices.Equal(ids, []string{"group:10.1.2.0/24", "group:loopback", "process:curl", "process:wget"}) {
		t.Fatalf("nodes %v", ids)
	}
	if n := topo.Nodes[0]; n.Kind != "group" || n.TxBytes != 1100 || n.RxBytes != 4 || n.Health != StateUnknown {
		t.Errorf("group node %+v", n)
	}
	if n := topo.Nodes[2]; n.Kind != "process" || n.TxBytes != 110 || !slices.Equal(n.PIDs, []int{1, 2}) {
		t.Errorf("curl node %+v", n)
	}
	if len(topo.Edges) != 3 || topo.Edges[0].ID != "process:curl->group:10.1.2.0/24" || topo.Edges[0].Source != "process:curl" ||
		topo.Edges[0].Target != "group:10.1.2.0/24" || topo.Edges[0].RTTMeanUS != 500 || topo.Edges[0].RetransPercent != 10 {
		t.Errorf("edges %+v", topo.Edges)
	}
	if topo.WindowMS != 1000 || !topo.Time.Equal(t0) {
		t.Errorf("window %d, time %v", topo.WindowMS, topo.Time)
	}
	empty, _ := New(Config{})
	if b, _ := json.Marshal(empty.Topology(time.Minute)); !strings.Contains(string(b), `"nodes":[],"edges":[]`) {
		t.Errorf("empty topology %s", b)
	}
}

// TestJSONNames: every field of the output types has a snake_case JSON
// name, and durations are named in ms or µs.
func TestJSONNames(t *testing.T) {
	snake := regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type)
	walk = func(typ reflect.Type) {
		for typ.Kind() == reflect.Slice || typ.Kind() == reflect.Pointer {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || seen[typ] || typ.PkgPath() != reflect.TypeFor[Report]().PkgPath() {
			return
		}
		seen[typ] = true
		for i := range typ.NumField() {
			f := typ.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if !snake.MatchString(name) {
				t.Errorf("%s.%s: JSON name %q is not snake_case", typ.Name(), f.Name, name)
			}
			if f.Type == reflect.TypeFor[time.Duration]() {
				t.Errorf("%s.%s is a Duration; export *_ms or *_us integers", typ.Name(), f.Name)
			}
			walk(f.Type)
		}
	}
	for _, v := range []any{Report{}, []Flow{}, []MonitorSeries{}, Topology{}} {
		walk(reflect.TypeOf(v))
	}
	if len(seen) < 8 {
		t.Fatalf("walked only %d types", len(seen))
	}
}
