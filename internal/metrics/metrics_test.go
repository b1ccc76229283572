package metrics

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/netmeter/netmeter/internal/aggregate"
	"github.com/netmeter/netmeter/internal/health"
	"github.com/netmeter/netmeter/internal/quota"
	"github.com/netmeter/netmeter/internal/snapshot"
)

var t0 = time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)

func newExporter(t testing.TB, opt Options) *Exporter {
	t.Helper()
	e, err := New(opt)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// compare checks the exposition of the named metrics.
func compare(t *testing.T, e *Exporter, want string, names ...string) {
	t.Helper()
	if err := testutil.CollectAndCompare(e, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
}

func rate(bps float64) snapshot.Rate { return snapshot.Rate{EWMA: bps} }

func proc(pid int, comm string, rx, tx uint64, bps float64) snapshot.Process {
	return snapshot.Process{PID: pid, Comm: comm,
		Delta:  snapshot.Traffic{RxBytes: rx, TxBytes: tx, RxPackets: rx / 100, TxPackets: tx / 100},
		RxRate: rate(bps / 2), TxRate: rate(bps / 2)}
}

func TestInterfaces(t *testing.T) {
	e := newExporter(t, Options{})
	s := &snapshot.Snapshot{Time: t0, Interfaces: []snapshot.Interface{
		{Name: "eth0", Present: true, OperState: "up", Carrier: true, MTU: 1500, SpeedMbps: 1000,
			Total: snapshot.LinkCounters{RxBytes: 1000, TxBytes: 2000, RxPackets: 10, TxPackets: 20,
				RxErrors: 1, TxErrors: 2, RxDropped: 3, TxDropped: 4, Multicast: 5, Collisions: 6}},
		{Name: "veth1", Netns: "blue", NetnsInode: 4026532000, Present: true, OperState: "down", MTU: 1400,
			Total: snapshot.LinkCounters{RxBytes: 7}},
		{Name: "lo", Present: true, OperState: "unknown", MTU: 65536}, // no traffic yet: still shown
	}}
	e.Update(Input{Snapshot: s})
	// The kernel's counters of eth0 were reset; netmeter's Total was not.
	s2 := *s
	s2.Interfaces = append([]snapshot.Interface(nil), s.Interfaces...)
	s2.Interfaces[0].Kernel = snapshot.LinkCounters{RxBytes: 3}
	s2.Interfaces[0].Total.RxBytes = 1500
	s2.Interfaces[0].Total.TxErrors = 3
	e.Update(Input{Snapshot: &s2})

	compare(t, e, `
# HELP netmeter_network_receive_bytes_total Network device statistic: Bytes received. Counted by netmeter since it first saw the device: survives driver resets, re-creation and 32-bit wraps.
# TYPE netmeter_network_receive_bytes_total counter
netmeter_network_receive_bytes_total{device="eth0"} 1500
netmeter_network_receive_bytes_total{device="lo"} 0
netmeter_network_receive_bytes_total{device="veth1",netns="blue"} 7
# HELP netmeter_network_transmit_bytes_total Network device statistic: Bytes transmitted. Counted by netmeter since it first saw the device: survives driver resets, re-creation and 32-bit wraps.
# TYPE netmeter_network_transmit_bytes_total counter
netmeter_network_transmit_bytes_total{device="eth0"} 2000
netmeter_network_transmit_bytes_total{device="lo"} 0
netmeter_network_transmit_bytes_total{device="veth1",netns="blue"} 0
# HELP netmeter_network_transmit_errs_total Network device statistic: Transmit errors (tx_errors). Counted by netmeter since it first saw the device: survives driver resets, re-creation and 32-bit wraps.
# TYPE netmeter_network_transmit_errs_total counter
netmeter_network_transmit_errs_total{device="eth0"} 3
netmeter_network_transmit_errs_total{device="lo"} 0
netmeter_network_transmit_errs_total{device="veth1",netns="blue"} 0
# HELP netmeter_network_receive_multicast_total Network device statistic: Multicast packets received. Counted by netmeter since it first saw the device: survives driver resets, re-creation and 32-bit wraps.
# TYPE netmeter_network_receive_multicast_total counter
netmeter_network_receive_multicast_total{device="eth0"} 5
netmeter_network_receive_multicast_total{device="lo"} 0
netmeter_network_receive_multicast_total{device="veth1",netns="blue"} 0
# HELP netmeter_network_transmit_colls_total Network device statistic: Collisions on transmit. Counted by netmeter since it first saw the device: survives driver resets, re-creation and 32-bit wraps.
# TYPE netmeter_network_transmit_colls_total counter
netmeter_network_transmit_colls_total{device="eth0"} 6
netmeter_network_transmit_colls_total{device="lo"} 0
netmeter_network_transmit_colls_total{device="veth1",netns="blue"} 0
# HELP netmeter_network_up 1 when the device's operational state is up, else 0.
# TYPE netmeter_network_up gauge
netmeter_network_up{device="eth0"} 1
netmeter_network_up{device="lo"} 0
netmeter_network_up{device="veth1",netns="blue"} 0
# HELP netmeter_network_speed_bytes Negotiated link speed in bytes per second; absent when the driver reports none.
# TYPE netmeter_network_speed_bytes gauge
netmeter_network_speed_bytes{device="eth0"} 1.25e+08
# HELP netmeter_network_mtu_bytes MTU of the device in bytes.
# TYPE netmeter_network_mtu_bytes gauge
netmeter_network_mtu_bytes{device="eth0"} 1500
netmeter_network_mtu_bytes{device="lo"} 65536
netmeter_network_mtu_bytes{device="veth1",netns="blue"} 1400
`, "netmeter_network_receive_bytes_total", "netmeter_network_transmit_bytes_total", "netmeter_network_transmit_errs_total",
		"netmeter_network_receive_multicast_total", "netmeter_network_transmit_colls_total",
		"netmeter_network_up", "netmeter_network_speed_bytes", "netmeter_network_mtu_bytes")

	// A gone interface keeps its counters while it fits under the cap, and
	// loses its state gauges.
	s3 := s2
	s3.Interfaces = append([]snapshot.Interface(nil), s2.Interfaces...)
	s3.Interfaces[1].Present = false
	e.Update(Input{Snapshot: &s3})
	compare(t, e, `
# HELP netmeter_network_receive_bytes_total Network device statistic: Bytes received. Counted by netmeter since it first saw the device: survives driver resets, re-creation and 32-bit wraps.
# TYPE netmeter_network_receive_bytes_total counter
netmeter_network_receive_bytes_total{device="eth0"} 1500
netmeter_network_receive_bytes_total{device="lo"} 0
netmeter_network_receive_bytes_total{device="veth1",netns="blue"} 7
# HELP netmeter_network_up 1 when the device's operational state is up, else 0.
# TYPE netmeter_network_up gauge
netmeter_network_up{device="eth0"} 1
netmeter_network_up{device="lo"} 0
`, "netmeter_network_receive_bytes_total", "netmeter_network_up")
}

func TestProcessesByProgram(t *testing.T) {
	e := newExporter(t, Options{})
	e.Update(Input{Snapshot: &snapshot.Snapshot{Time: t0, Processes: []snapshot.Process{
		proc(100, "nginx", 1000, 5000, 10), proc(101, "nginx", 500, 0, 10), proc(200, "curl", 300, 100, 1),
	}}})
	// curl exits and leaves the snapshot; nginx's workers are replaced.
	e.Update(Input{Snapshot: &snapshot.Snapshot{Time: t0.Add(time.Second), Processes: []snapshot.Process{
		proc(102, "nginx", 200, 200, 10),
	}}})
	compare(t, e, `
# HELP netmeter_process_receive_bytes_total IP bytes (headers and retransmissions included) received by the sockets of a program (process comm); program="other" sums the programs beyond the cap.
# TYPE netmeter_process_receive_bytes_total counter
netmeter_process_receive_bytes_total{program="curl"} 300
netmeter_process_receive_bytes_total{program="nginx"} 1700
# HELP netmeter_process_transmit_bytes_total IP bytes (headers and retransmissions included) sent by the sockets of a program (process comm); program="other" sums the programs beyond the cap.
# TYPE netmeter_process_transmit_bytes_total counter
netmeter_process_transmit_bytes_total{program="curl"} 100
netmeter_process_transmit_bytes_total{program="nginx"} 5200
# HELP netmeter_process_receive_packets_total IP packets received by the sockets of a program (process comm).
# TYPE netmeter_process_receive_packets_total counter
netmeter_process_receive_packets_total{program="curl"} 3
netmeter_process_receive_packets_total{program="nginx"} 17
`, "netmeter_process_receive_bytes_total", "netmeter_process_transmit_bytes_total", "netmeter_process_receive_packets_total")
}

// TestProgramCap walks the cap through admission, eviction, the overflow
// series and re-admission, checking exact values at each step.
func TestProgramCap(t *testing.T) {
	e := newExporter(t, Options{MaxPrograms: 2})
	step := func(ps ...snapshot.Process) { e.Update(Input{Snapshot: &snapshot.Snapshot{Time: t0, Processes: ps}}) }
	rx := func(want string) {
		t.Helper()
		compare(t, e, `
# HELP netmeter_process_receive_bytes_total IP bytes (headers and retransmissions included) received by the sockets of a program (process comm); program="other" sums the programs beyond the cap.
# TYPE netmeter_process_receive_bytes_total counter
`+want, "netmeter_process_receive_bytes_total")
	}

	// Three programs, room for two: the busiest two get series.
	step(proc(1, "a", 100, 0, 100), proc(2, "b", 10, 0, 10), proc(3, "c", 1, 0, 1))
	rx(`netmeter_process_receive_bytes_total{program="a"} 100
netmeter_process_receive_bytes_total{program="b"} 10
netmeter_process_receive_bytes_total{program="other"} 1
`)
	// c gets busier, but not twice b: no swap (hysteresis).
	step(proc(1, "a", 100, 0, 100), proc(2, "b", 10, 0, 10), proc(3, "c", 15, 0, 15))
	rx(`netmeter_process_receive_bytes_total{program="a"} 200
netmeter_process_receive_bytes_total{program="b"} 20
netmeter_process_receive_bytes_total{program="other"} 16
`)
	// c at more than twice b: b is evicted, c starts from what it sends
	// from now on; what it sent before stays in "other".
	step(proc(1, "a", 100, 0, 100), proc(2, "b", 10, 0, 10), proc(3, "c", 50, 0, 50))
	rx(`netmeter_process_receive_bytes_total{program="a"} 300
netmeter_process_receive_bytes_total{program="c"} 50
netmeter_process_receive_bytes_total{program="other"} 26
`)
	// b exits: nothing moves. a vanishes too: its series stays.
	step(proc(3, "c", 50, 0, 50))
	rx(`netmeter_process_receive_bytes_total{program="a"} 300
netmeter_process_receive_bytes_total{program="c"} 100
netmeter_process_receive_bytes_total{program="other"} 26
`)
	// b comes back busy: it replaces the gone a, and continues from the
	// 20 it had when it was evicted (a is remembered in turn).
	step(proc(3, "c", 50, 0, 50), proc(4, "b", 7, 0, 70))
	rx(`netmeter_process_receive_bytes_total{program="b"} 27
netmeter_process_receive_bytes_total{program="c"} 150
netmeter_process_receive_bytes_total{program="other"} 26
`)
	// Nothing was lost or counted twice: the series, "other" and the
	// remembered a add up to everything sent.
	var sum uint64
	e.procs.each(func(_ []string, v []uint64) { sum += v[0] })
	for _, r := range e.procs.retired {
		sum += r.v[0]
	}
	if want := uint64(100 + 10 + 1 + 100 + 10 + 15 + 100 + 10 + 50 + 50 + 50 + 7); sum != want {
		t.Errorf("series + other + evicted = %d bytes, want %d", sum, want)
	}
	compare(t, e, `
# HELP netmeter_exporter_evicted_series_total Label sets of a family removed from the exposition to stay under its cap; their later traffic is in the family's "other" series.
# TYPE netmeter_exporter_evicted_series_total counter
netmeter_exporter_evicted_series_total{family="account"} 0
netmeter_exporter_evicted_series_total{family="container"} 0
netmeter_exporter_evicted_series_total{family="drop"} 0
netmeter_exporter_evicted_series_total{family="group"} 0
netmeter_exporter_evicted_series_total{family="interface"} 0
netmeter_exporter_evicted_series_total{family="process"} 2
netmeter_exporter_evicted_series_total{family="unattributed"} 0
`, "netmeter_exporter_evicted_series_total")
}

// TestProgramNamedOther keeps a real program called "other" from
// duplicating the overflow series.
func TestProgramNamedOther(t *testing.T) {
	e := newExporter(t, Options{MaxPrograms: 1})
	e.Update(Input{Snapshot: &snapshot.Snapshot{Processes: []snapshot.Process{
		proc(1, "other", 5, 0, 100), proc(2, "a", 10, 0, 50), proc(3, "b", 1, 0, 1),
	}}})
	compare(t, e, `
# HELP netmeter_process_receive_bytes_total IP bytes (headers and retransmissions included) received by the sockets of a program (process comm); program="other" sums the programs beyond the cap.
# TYPE netmeter_process_receive_bytes_total counter
netmeter_process_receive_bytes_total{program="a"} 10
netmeter_process_receive_bytes_total{program="other"} 6
`, "netmeter_process_receive_bytes_total")
}

func TestContainers(t *testing.T) {
	e := newExporter(t, Options{})
	web := snapshot.Container{ID: "abc123", Runtime: "docker", Name: "web", Image: "nginx:1.27", Account: "acme",
		Total:    snapshot.Traffic{RxBytes: 1000, TxBytes: 4000, RxPackets: 10, TxPackets: 40},
		External: snapshot.Traffic{RxBytes: 600, TxBytes: 3000}, Local: snapshot.Traffic{RxBytes: 400, TxBytes: 1000},
		Accepted: 3, Opened: 1, Requests: 9, RxRate: rate(10)}
	pod := snapshot.Container{ID: "def456", Runtime: "containerd", Name: "api", Image: "api:2", Account: "shop/api",
		PodName: "api-7d9", PodNamespace: "shop", Total: snapshot.Traffic{RxBytes: 50, TxBytes: 60},
		Host: snapshot.Traffic{RxBytes: 50, TxBytes: 60}}
	e.Update(Input{Snapshot: &snapshot.Snapshot{Containers: []snapshot.Container{web, pod}}})
	web.Total.RxBytes, web.External.RxBytes, web.Accepted, web.Requests = 1500, 1100, 4, 11
	e.Update(Input{Snapshot: &snapshot.Snapshot{Containers: []snapshot.Container{web}}}) // api idle and gone

	const labelsWeb = `account="acme",id="abc123",image="nginx:1.27",name="web",namespace="",pod="",runtime="docker"`
	const labelsAPI = `account="shop/api",id="def456",image="api:2",name="api",namespace="shop",pod="api-7d9",runtime="containerd"`
	compare(t, e, `
# HELP netmeter_container_network_receive_bytes_total IP bytes received by the sockets of a container's processes.
# TYPE netmeter_container_network_receive_bytes_total counter
netmeter_container_network_receive_bytes_total{`+labelsWeb+`} 1500
netmeter_container_network_receive_bytes_total{`+labelsAPI+`} 50
# HELP netmeter_container_network_transmit_packets_total IP packets sent by the sockets of a container's processes.
# TYPE netmeter_container_network_transmit_packets_total counter
netmeter_container_network_transmit_packets_total{`+labelsWeb+`} 40
netmeter_container_network_transmit_packets_total{`+labelsAPI+`} 0
# HELP netmeter_container_connections_accepted_total TCP connections a container accepted.
# TYPE netmeter_container_connections_accepted_total counter
netmeter_container_connections_accepted_total{`+labelsWeb+`} 4
netmeter_container_connections_accepted_total{`+labelsAPI+`} 0
# HELP netmeter_container_connections_opened_total TCP connections a container opened.
# TYPE netmeter_container_connections_opened_total counter
netmeter_container_connections_opened_total{`+labelsWeb+`} 1
netmeter_container_connections_opened_total{`+labelsAPI+`} 0
# HELP netmeter_container_http_requests_total HTTP/1.x requests a container received (TLS and HTTP/2 are not parsed).
# TYPE netmeter_container_http_requests_total counter
netmeter_container_http_requests_total{`+labelsWeb+`} 11
netmeter_container_http_requests_total{`+labelsAPI+`} 0
`, "netmeter_container_network_receive_bytes_total", "netmeter_container_network_transmit_packets_total",
		"netmeter_container_connections_accepted_total", "netmeter_container_connections_opened_total",
		"netmeter_container_http_requests_total")

	var b strings.Builder
	b.WriteString(`# HELP netmeter_container_peer_receive_bytes_total IP bytes a container received, by where the peer lives: external (other hosts), container (another container on this host), host (this host's processes), internal (the container's own namespace), unclassified (no single peer: listeners' handshakes, unconnected UDP).
# TYPE netmeter_container_peer_receive_bytes_total counter
`)
	for _, row := range []struct {
		labels, peer string
		v            int
	}{
		{labelsWeb, "container", 400}, {labelsWeb, "external", 1100}, {labelsWeb, "host", 0}, {labelsWeb, "internal", 0}, {labelsWeb, "unclassified", 0},
		{labelsAPI, "container", 0}, {labelsAPI, "external", 0}, {labelsAPI, "host", 50}, {labelsAPI, "internal", 0}, {labelsAPI, "unclassified", 0},
	} {
		// Labels in name order, as the exposition writes them: peer between namespace and pod.
		before, after, _ := strings.Cut(row.labels, ",pod=")
		fmt.Fprintf(&b, "netmeter_container_peer_receive_bytes_total{%s,peer=%q,pod=%s} %d\n", before, row.peer, after, row.v)
	}
	compare(t, e, b.String(), "netmeter_container_peer_receive_bytes_total")
}

func TestTCPByGroup(t *testing.T) {
	groupOf := func(addr string) string {
		switch {
		case strings.HasPrefix(addr, "10."):
			return "dc"
		case strings.HasPrefix(addr, "192.0.2."):
			return "cdn"
		}
		return DefaultGroupOf(addr)
	}
	e := newExporter(t, Options{GroupOf: groupOf, RTTBuckets: []float64{0.001, 0.01, 0.1}})
	conn := func(remote string, mean, samples uint32, d snapshot.TCPCounters) snapshot.Connection {
		return snapshot.Connection{Proto: "tcp", Remote: snapshot.Endpoint{Addr: remote, Port: 443},
			TCP: &snapshot.TCPStats{SRTT: mean, Interval: snapshot.RTTWindow{Samples: samples, Mean: mean}, Delta: d}}
	}
	s := &snapshot.Snapshot{Connections: []snapshot.Connection{
		conn("10.0.0.5", 500, 10, snapshot.TCPCounters{SegsOut: 100, RetransSegs: 2, RTOs: 1, ResetsReceived: 1}),
		conn("10.0.0.6", 5000, 4, snapshot.TCPCounters{SegsOut: 50, ResetsSent: 2}),
		conn("192.0.2.1", 250000, 1, snapshot.TCPCounters{SegsOut: 10, RetransSegs: 1}), // above every bucket
		conn("127.0.0.1", 20, 0, snapshot.TCPCounters{SegsOut: 7}),                      // no RTT sample
		conn("", 0, 0, snapshot.TCPCounters{SegsOut: 99}),                               // a listener
		conn("::", 0, 0, snapshot.TCPCounters{SegsOut: 99}),                             // unconnected
		{Proto: "udp", Remote: snapshot.Endpoint{Addr: "10.0.0.7"}},                     // not TCP
	}}
	e.Update(Input{Snapshot: s})
	compare(t, e, `
# HELP netmeter_tcp_rtt_seconds TCP round-trip time to a remote group: each connection's mean RTT of the interval, observed once per RTT sample the kernel took.
# TYPE netmeter_tcp_rtt_seconds histogram
netmeter_tcp_rtt_seconds_bucket{group="cdn",le="0.001"} 0
netmeter_tcp_rtt_seconds_bucket{group="cdn",le="0.01"} 0
netmeter_tcp_rtt_seconds_bucket{group="cdn",le="0.1"} 0
netmeter_tcp_rtt_seconds_bucket{group="cdn",le="+Inf"} 1
netmeter_tcp_rtt_seconds_sum{group="cdn"} 0.25
netmeter_tcp_rtt_seconds_count{group="cdn"} 1
netmeter_tcp_rtt_seconds_bucket{group="dc",le="0.001"} 10
netmeter_tcp_rtt_seconds_bucket{group="dc",le="0.01"} 14
netmeter_tcp_rtt_seconds_bucket{group="dc",le="0.1"} 14
netmeter_tcp_rtt_seconds_bucket{group="dc",le="+Inf"} 14
netmeter_tcp_rtt_seconds_sum{group="dc"} 0.025
netmeter_tcp_rtt_seconds_count{group="dc"} 14
netmeter_tcp_rtt_seconds_bucket{group="loopback",le="0.001"} 0
netmeter_tcp_rtt_seconds_bucket{group="loopback",le="0.01"} 0
netmeter_tcp_rtt_seconds_bucket{group="loopback",le="0.1"} 0
netmeter_tcp_rtt_seconds_bucket{group="loopback",le="+Inf"} 0
netmeter_tcp_rtt_seconds_sum{group="loopback"} 0
netmeter_tcp_rtt_seconds_count{group="loopback"} 0
# HELP netmeter_tcp_segments_sent_total TCP segments sent on connections to a remote group, retransmissions included.
# TYPE netmeter_tcp_segments_sent_total counter
netmeter_tcp_segments_sent_total{group="cdn"} 10
netmeter_tcp_segments_sent_total{group="dc"} 150
netmeter_tcp_segments_sent_total{group="loopback"} 7
# HELP netmeter_tcp_retransmitted_segments_total TCP segments retransmitted on connections to a remote group.
# TYPE netmeter_tcp_retransmitted_segments_total counter
netmeter_tcp_retransmitted_segments_total{group="cdn"} 1
netmeter_tcp_retransmitted_segments_total{group="dc"} 2
netmeter_tcp_retransmitted_segments_total{group="loopback"} 0
# HELP netmeter_tcp_rto_total TCP retransmission timeouts on connections to a remote group.
# TYPE netmeter_tcp_rto_total counter
netmeter_tcp_rto_total{group="cdn"} 0
netmeter_tcp_rto_total{group="dc"} 1
netmeter_tcp_rto_total{group="loopback"} 0
# HELP netmeter_tcp_resets_received_total TCP resets received from a remote group.
# TYPE netmeter_tcp_resets_received_total counter
netmeter_tcp_resets_received_total{group="cdn"} 0
netmeter_tcp_resets_received_total{group="dc"} 1
netmeter_tcp_resets_received_total{group="loopback"} 0
# HELP netmeter_tcp_resets_sent_total TCP resets sent to a remote group.
# TYPE netmeter_tcp_resets_sent_total counter
netmeter_tcp_resets_sent_total{group="cdn"} 0
netmeter_tcp_resets_sent_total{group="dc"} 2
netmeter_tcp_resets_sent_total{group="loopback"} 0
`, "netmeter_tcp_rtt_seconds", "netmeter_tcp_segments_sent_total", "netmeter_tcp_retransmitted_segments_total",
		"netmeter_tcp_rto_total", "netmeter_tcp_resets_received_total", "netmeter_tcp_resets_sent_total")
}

func TestGroupCap(t *testing.T) {
	e := newExporter(t, Options{MaxGroups: 2})
	var conns []snapshot.Connection
	for i := range 5 {
		conns = append(conns, snapshot.Connection{Remote: snapshot.Endpoint{Addr: fmt.Sprintf("198.51.%d.1", i)},
			TxRate: rate(float64(100 * (i + 1))), TCP: &snapshot.TCPStats{Delta: snapshot.TCPCounters{SegsOut: uint64(i + 1)}}})
	}
	e.Update(Input{Snapshot: &snapshot.Snapshot{Connections: conns}})
	compare(t, e, `
# HELP netmeter_tcp_segments_sent_total TCP segments sent on connections to a remote group, retransmissions included.
# TYPE netmeter_tcp_segments_sent_total counter
netmeter_tcp_segments_sent_total{group="198.51.3.0/24"} 4
netmeter_tcp_segments_sent_total{group="198.51.4.0/24"} 5
netmeter_tcp_segments_sent_total{group="other"} 6
`, "netmeter_tcp_segments_sent_total")
}

func TestDropsAndEngine(t *testing.T) {
	e := newExporter(t, Options{})
	s := &snapshot.Snapshot{Time: t0,
		Interfaces: []snapshot.Interface{{Name: "eth0", NetnsInode: 1, Present: true}},
		Drops: []snapshot.Drop{
			{Reason: "NETFILTER_DROP", Proto: "tcp", Interface: "eth0", NetnsInode: 1, DeltaPackets: 3, DeltaBytes: 180, Packets: 3},
			{Reason: "NETFILTER_DROP", Proto: "tcp", Interface: "eth0", NetnsInode: 1, Cookie: 7, PID: 42, DeltaPackets: 1, DeltaBytes: 60},
			{Reason: "SOCKET_RCVBUFF", Proto: "udp", Cookie: 9, DeltaPackets: 5, DeltaBytes: 5000},
			{Reason: "NO_SOCKET", Proto: "tcp", Interface: "vethX", NetnsInode: 99, DeltaPackets: 2, DeltaBytes: 120}, // not a device netmeter reads
		},
		Unattributed: []snapshot.Bucket{
			{Name: "kernel", CgroupID: 1, Delta: snapshot.Traffic{RxBytes: 40, TxBytes: 60}},
			{Name: "kernel", CgroupID: 2, Delta: snapshot.Traffic{RxBytes: 2}},
			{Name: "overflow", Delta: snapshot.Traffic{TxBytes: 9}},
		},
		Engine: &snapshot.EngineStats{Kind: "ebpf", Sockets: 321, MapFull: 4, RingLost: 1},
	}
	e.Update(Input{Snapshot: s, PollDuration: 1500 * time.Microsecond})
	compare(t, e, `
# HELP netmeter_drops_total Packets the kernel dropped, by drop reason (enum skb_drop_reason), protocol and device (set for devices netmeter reads).
# TYPE netmeter_drops_total counter
netmeter_drops_total{device="",proto="tcp",reason="NO_SOCKET"} 2
netmeter_drops_total{device="",proto="udp",reason="SOCKET_RCVBUFF"} 5
netmeter_drops_total{device="eth0",proto="tcp",reason="NETFILTER_DROP"} 4
# HELP netmeter_drops_bytes_total Bytes of the packets the kernel dropped, by drop reason, protocol and device.
# TYPE netmeter_drops_bytes_total counter
netmeter_drops_bytes_total{device="",proto="tcp",reason="NO_SOCKET"} 120
netmeter_drops_bytes_total{device="",proto="udp",reason="SOCKET_RCVBUFF"} 5000
netmeter_drops_bytes_total{device="eth0",proto="tcp",reason="NETFILTER_DROP"} 240
# HELP netmeter_unattributed_receive_bytes_total IP bytes received with no owning process: kernel (timewait and request sockets, kernel replies), unattributed (the classic engine found no owner in time), overflow (a bounded map was full).
# TYPE netmeter_unattributed_receive_bytes_total counter
netmeter_unattributed_receive_bytes_total{bucket="kernel"} 42
netmeter_unattributed_receive_bytes_total{bucket="overflow"} 0
# HELP netmeter_unattributed_transmit_bytes_total IP bytes sent with no owning process, by bucket.
# TYPE netmeter_unattributed_transmit_bytes_total counter
netmeter_unattributed_transmit_bytes_total{bucket="kernel"} 60
netmeter_unattributed_transmit_bytes_total{bucket="overflow"} 9
# HELP netmeter_engine_up 1 when the eBPF engine's per-socket view is in the snapshot, else 0.
# TYPE netmeter_engine_up gauge
netmeter_engine_up 1
# HELP netmeter_engine_sockets Sockets with counters in the kernel.
# TYPE netmeter_engine_sockets gauge
netmeter_engine_sockets 321
# HELP netmeter_engine_map_full_total Updates refused because a bounded BPF map was full; their bytes are in the overflow bucket.
# TYPE netmeter_engine_map_full_total counter
netmeter_engine_map_full_total 4
# HELP netmeter_engine_ring_lost_total Socket-death records the ring buffer could not hold.
# TYPE netmeter_engine_ring_lost_total counter
netmeter_engine_ring_lost_total 1
# HELP netmeter_engine_info Always 1 while an engine measures processes and connections: kind is ebpf or classic (packet capture joined to /proc, where eBPF cannot load); approximate is true when its numbers are estimates.
# TYPE netmeter_engine_info gauge
netmeter_engine_info{approximate="false",kind="ebpf"} 1
# HELP netmeter_engine_capture_dropped_total Packets the classic engine's capture ring had no room for (the kernel's packet socket drops); 0 with eBPF.
# TYPE netmeter_engine_capture_dropped_total counter
netmeter_engine_capture_dropped_total 0
# HELP netmeter_poll_duration_seconds How long the agent took to read the latest interval's counters.
# TYPE netmeter_poll_duration_seconds gauge
netmeter_poll_duration_seconds 0.0015
# HELP netmeter_snapshot_timestamp_seconds Time of the latest snapshot, in seconds since the epoch.
# TYPE netmeter_snapshot_timestamp_seconds gauge
netmeter_snapshot_timestamp_seconds 1.7734896e+09
`, "netmeter_drops_total", "netmeter_drops_bytes_total", "netmeter_unattributed_receive_bytes_total",
		"netmeter_unattributed_transmit_bytes_total", "netmeter_engine_up", "netmeter_engine_sockets",
		"netmeter_engine_map_full_total", "netmeter_engine_ring_lost_total", "netmeter_poll_duration_seconds",
		"netmeter_snapshot_timestamp_seconds", "netmeter_engine_info", "netmeter_engine_capture_dropped_total")

	// The classic engine says its numbers are approximate.
	e.Update(Input{Snapshot: &snapshot.Snapshot{Time: t0, Engine: &snapshot.EngineStats{Kind: "classic", Approximate: true, CaptureDropped: 12}}})
	compare(t, e, `
# HELP netmeter_engine_info Always 1 while an engine measures processes and connections: kind is ebpf or classic (packet capture joined to /proc, where eBPF cannot load); approximate is true when its numbers are estimates.
# TYPE netmeter_engine_info gauge
netmeter_engine_info{approximate="true",kind="classic"} 1
# HELP netmeter_engine_capture_dropped_total Packets the classic engine's capture ring had no room for (the kernel's packet socket drops); 0 with eBPF.
# TYPE netmeter_engine_capture_dropped_total counter
netmeter_engine_capture_dropped_total 12
`, "netmeter_engine_info", "netmeter_engine_capture_dropped_total")

	// Without the engine: engine_up 0 and no engine numbers.
	e.Update(Input{Snapshot: &snapshot.Snapshot{Time: t0}})
	compare(t, e, `
# HELP netmeter_engine_up 1 when the eBPF engine's per-socket view is in the snapshot, else 0.
# TYPE netmeter_engine_up gauge
netmeter_engine_up 0
`, "netmeter_engine_up", "netmeter_engine_sockets", "netmeter_poll_duration_seconds", "netmeter_engine_info")
}

func TestHealthAndQuotas(t *testing.T) {
	e := newExporter(t, Options{MaxGroups: 2})
	rep := &health.Report{
		Groups: []health.Status{
			{Name: "10.0.0.0/24", State: health.StateHealthy},
			{Name: "loopback", State: health.StateUnknown},
			{Name: "peers", State: health.StateNetwork},
		},
		Monitors: []health.Status{{Name: "db", State: health.StateThisHost}},
	}
	quotas := []quota.Result{
		{Name: "uplink", Entity: "interface:eth0", Direction: "total", Used: 800, Limit: 1000, Status: quota.StatusWarning,
			Estimate: 1200, EstimateValid: true, PeriodStart: t0, PeriodEnd: t0.Add(24 * time.Hour)},
		{Name: "acme", Entity: "account:acme", Direction: "tx", Used: 5, Limit: 100, Status: quota.StatusOK},
	}
	e.Update(Input{Health: rep, Quotas: quotas})
	compare(t, e, `
# HELP netmeter_health_state Network Health Indicator of a remote group or a monitor: 1 for its current state, 0 for the others.
# TYPE netmeter_health_state gauge
netmeter_health_state{group="10.0.0.0/24",state="degraded: network"} 0
netmeter_health_state{group="10.0.0.0/24",state="degraded: remote"} 0
netmeter_health_state{group="10.0.0.0/24",state="degraded: this host"} 0
netmeter_health_state{group="10.0.0.0/24",state="healthy"} 1
netmeter_health_state{group="10.0.0.0/24",state="unknown"} 0
netmeter_health_state{group="peers",state="degraded: network"} 1
netmeter_health_state{group="peers",state="degraded: remote"} 0
netmeter_health_state{group="peers",state="degraded: this host"} 0
netmeter_health_state{group="peers",state="healthy"} 0
netmeter_health_state{group="peers",state="unknown"} 0
netmeter_health_state{monitor="db",state="degraded: network"} 0
netmeter_health_state{monitor="db",state="degraded: remote"} 0
netmeter_health_state{monitor="db",state="degraded: this host"} 1
netmeter_health_state{monitor="db",state="healthy"} 0
netmeter_health_state{monitor="db",state="unknown"} 0
# HELP netmeter_quota_used_bytes Bytes a quota's entity used in the current period.
# TYPE netmeter_quota_used_bytes gauge
netmeter_quota_used_bytes{direction="total",entity="interface:eth0",quota="uplink"} 800
netmeter_quota_used_bytes{direction="tx",entity="account:acme",quota="acme"} 5
# HELP netmeter_quota_limit_bytes A quota's limit in bytes.
# TYPE netmeter_quota_limit_bytes gauge
netmeter_quota_limit_bytes{direction="total",entity="interface:eth0",quota="uplink"} 1000
netmeter_quota_limit_bytes{direction="tx",entity="account:acme",quota="acme"} 100
# HELP netmeter_quota_estimate_bytes Projected use at the end of the period at the average rate so far; absent until enough of the period has passed.
# TYPE netmeter_quota_estimate_bytes gauge
netmeter_quota_estimate_bytes{direction="total",entity="interface:eth0",quota="uplink"} 1200
# HELP netmeter_quota_status 1 for a quota's current status (ok, forecast_exceeded, warning, exceeded), 0 for the others.
# TYPE netmeter_quota_status gauge
netmeter_quota_status{quota="acme",status="exceeded"} 0
netmeter_quota_status{quota="acme",status="forecast_exceeded"} 0
netmeter_quota_status{quota="acme",status="ok"} 1
netmeter_quota_status{quota="acme",status="warning"} 0
netmeter_quota_status{quota="uplink",status="exceeded"} 0
netmeter_quota_status{quota="uplink",status="forecast_exceeded"} 0
netmeter_quota_status{quota="uplink",status="ok"} 0
netmeter_quota_status{quota="uplink",status="warning"} 1
# HELP netmeter_quota_period_end_time_seconds End of a quota's current period, in seconds since the epoch.
# TYPE netmeter_quota_period_end_time_seconds gauge
netmeter_quota_period_end_time_seconds{quota="uplink"} 1.773576e+09
`, "netmeter_health_state", "netmeter_quota_used_bytes", "netmeter_quota_limit_bytes", "netmeter_quota_estimate_bytes",
		"netmeter_quota_status", "netmeter_quota_period_end_time_seconds")

	// The next update without them drops them.
	e.Update(Input{})
	if n := testutil.CollectAndCount(e, "netmeter_health_state", "netmeter_quota_used_bytes"); n != 0 {
		t.Errorf("%d health and quota series after an update without them", n)
	}
}

func TestLedger(t *testing.T) {
	l, err := aggregate.NewLedger(15, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	e := newExporter(t, Options{})
	now := t0 // 2026-03-14: the period that began on 2026-02-15
	l.Add(now, []snapshot.Container{
		{Account: "acme", Delta: snapshot.Traffic{RxBytes: 100, TxBytes: 10}},
		{Account: "globex", Delta: snapshot.Traffic{RxBytes: 1}},
	})
	e.Update(Input{Ledger: LedgerOf(l, now)})
	l.Add(now, []snapshot.Container{{Account: "acme", Delta: snapshot.Traffic{RxBytes: 50}}})
	e.Update(Input{Ledger: LedgerOf(l, now)})
	compare(t, e, `
# HELP netmeter_account_receive_bytes_total IP bytes an account's containers received in the current billing period; restarts at zero when a period begins.
# TYPE netmeter_account_receive_bytes_total counter
netmeter_account_receive_bytes_total{account="acme"} 150
netmeter_account_receive_bytes_total{account="globex"} 1
# HELP netmeter_account_transmit_bytes_total IP bytes an account's containers sent in the current billing period; restarts at zero when a period begins.
# TYPE netmeter_account_transmit_bytes_total counter
netmeter_account_transmit_bytes_total{account="acme"} 10
netmeter_account_transmit_bytes_total{account="globex"} 0
# HELP netmeter_account_period_start_time_seconds Start of the current billing period of the account counters, in seconds since the epoch.
# TYPE netmeter_account_period_start_time_seconds gauge
netmeter_account_period_start_time_seconds 1.7711136e+09
`, "netmeter_account_receive_bytes_total", "netmeter_account_transmit_bytes_total", "netmeter_account_period_start_time_seconds")

	// A new period: the counters restart from its totals.
	next := time.Date(2026, 3, 15, 0, 0, 1, 0, time.UTC)
	l.Add(next, []snapshot.Container{{Account: "acme", Delta: snapshot.Traffic{RxBytes: 7, TxBytes: 3}}})
	e.Update(Input{Ledger: LedgerOf(l, next)})
	compare(t, e, `
# HELP netmeter_account_receive_bytes_total IP bytes an account's containers received in the current billing period; restarts at zero when a period begins.
# TYPE netmeter_account_receive_bytes_total counter
netmeter_account_receive_bytes_total{account="acme"} 7
# HELP netmeter_account_period_start_time_seconds Start of the current billing period of the account counters, in seconds since the epoch.
# TYPE netmeter_account_period_start_time_seconds gauge
netmeter_account_period_start_time_seconds 1.7735328e+09
`, "netmeter_account_receive_bytes_total", "netmeter_account_period_start_time_seconds")
}

func TestBuildInfo(t *testing.T) {
	e := newExporter(t, Options{Version: "1.2.3"})
	compare(t, e, `
# HELP netmeter_build_info Always 1; the labels name netmeter's version and the Go version it was built with.
# TYPE netmeter_build_info gauge
netmeter_build_info{goversion="`+runtime.Version()+`",version="1.2.3"} 1
`, "netmeter_build_info")
}

// fullInput exercises every family.
func fullInput(i int) Input {
	u := uint64(i)
	s := &snapshot.Snapshot{Time: t0.Add(time.Duration(i) * time.Second),
		Interfaces: []snapshot.Interface{
			{Name: "eth0", Present: true, OperState: "up", Carrier: true, MTU: 1500, SpeedMbps: 10000,
				Total: snapshot.LinkCounters{RxBytes: 1000 * u, TxBytes: 1000 * u, RxPackets: u, TxPackets: u}},
			{Name: "veth0", Netns: "ns1", Present: true, OperState: "up", Total: snapshot.LinkCounters{RxBytes: u}},
		},
		Processes: []snapshot.Process{proc(1, "nginx", 100, 200, 300), proc(2, fmt.Sprintf("job%d", i%30), 10, 10, 20)},
		Containers: []snapshot.Container{{ID: "c1", Name: "web", Image: "nginx", Runtime: "docker", Account: "acme",
			Total: snapshot.Traffic{RxBytes: 10 * u}, External: snapshot.Traffic{RxBytes: 10 * u}, Accepted: u, Requests: 2 * u}},
		Connections: []snapshot.Connection{{Remote: snapshot.Endpoint{Addr: "10.1.2.3"},
			TCP: &snapshot.TCPStats{Interval: snapshot.RTTWindow{Samples: 3, Mean: 800}, Delta: snapshot.TCPCounters{SegsOut: 30, RetransSegs: 1}}}},
		Drops:        []snapshot.Drop{{Reason: "NO_SOCKET", Proto: "udp", DeltaPackets: 1, DeltaBytes: 64}},
		Unattributed: []snapshot.Bucket{{Name: "kernel", Delta: snapshot.Traffic{RxBytes: 5}}},
		Engine:       &snapshot.EngineStats{Sockets: 10 + i, MapFull: u, RingLost: u},
	}
	return Input{
		Snapshot: s,
		Health:   &health.Report{Groups: []health.Status{{Name: "10.1.2.0/24", State: health.StateHealthy}}, Monitors: []health.Status{{Name: "api", State: health.StateUnknown}}},
		Quotas:   []quota.Result{{Name: "q", Entity: "interface:eth0", Direction: "rx", Used: 1000 * u, Limit: 1 << 30, Status: quota.StatusOK, PeriodStart: t0, PeriodEnd: t0.AddDate(0, 1, 0)}},
		Ledger: &Ledger{Period: "2026-03", Start: t0, Entries: []aggregate.Entry{
			{Account: "acme", Period: "2026-03", Total: snapshot.Traffic{RxBytes: 10 * u}}}},
		PollDuration: time.Millisecond,
	}
}

func TestLint(t *testing.T) {
	e := newExporter(t, Options{})
	e.Update(fullInput(1))
	e.Update(fullInput(2))
	problems, err := testutil.CollectAndLint(e)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	if n := testutil.CollectAndCount(e); n < 100 {
		t.Errorf("only %d series: is a family missing?", n)
	}
}

// TestDocumented keeps docs/METRICS.md complete.
func TestDocumented(t *testing.T) {
	doc, err := readDoc()
	if err != nil {
		t.Fatal(err)
	}
	e := newExporter(t, Options{})
	e.Update(fullInput(1))
	e.Update(Input{Snapshot: fullInput(2).Snapshot, Quotas: []quota.Result{{Name: "q", EstimateValid: true, PeriodStart: t0, PeriodEnd: t0}},
		Ledger: fullInput(2).Ledger, Health: fullInput(2).Health, PollDuration: 1})
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(e)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if !strings.Contains(doc, "`"+mf.GetName()+"`") {
			t.Errorf("docs/METRICS.md does not document %s", mf.GetName())
		}
	}
}

// scrape gathers the exporter's counters and gauges by series.
func scrape(t testing.TB, g prometheus.Gatherer) map[string]float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var b strings.Builder
			b.WriteString(mf.GetName())
			for _, l := range m.GetLabel() {
				fmt.Fprintf(&b, ",%s=%s", l.GetName(), l.GetValue())
			}
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				out[b.String()] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[b.String()] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[b.String()+",count"] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

// TestCountersMonotonic drives many updates in which programs and
// containers come, go, and are evicted, and checks that no counter series
// ever goes down between two scrapes (while the series exists).
func TestCountersMonotonic(t *testing.T) {
	e := newExporter(t, Options{MaxPrograms: 3, MaxContainers: 2})
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(e)
	counters := map[string]bool{}
	prev := map[string]float64{}
	for i := range 200 {
		var ps []snapshot.Process
		var cs []snapshot.Container
		for j := range 6 {
			if (i+j)%4 == 0 {
				continue // absent this interval
			}
			bps := float64((i*7+j*13)%50) + 1
			ps = append(ps, proc(j, fmt.Sprintf("p%d", (i/20+j)%9), uint64(bps), 1, bps))
			id := fmt.Sprintf("c%d", (i/15+j)%7)
			cs = append(cs, snapshot.Container{ID: id, Name: id, RxRate: rate(bps),
				Total: snapshot.Traffic{RxBytes: uint64(i * (j + 1))}, Accepted: uint64(i)})
		}
		e.Update(Input{Snapshot: &snapshot.Snapshot{Processes: ps, Containers: cs}})
		got := scrape(t, reg)
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetType() == dto.MetricType_COUNTER {
				counters[mf.GetName()] = true
			}
		}
		for k, v := range got {
			name, _, _ := strings.Cut(k, ",")
			if p, ok := prev[k]; ok && counters[name] && v < p {
				t.Fatalf("update %d: %s went down from %v to %v", i, k, p, v)
			}
		}
		prev = got
		if n := testutil.CollectAndCount(e, "netmeter_process_receive_bytes_total"); n > 4 {
			t.Fatalf("update %d: %d program series, cap 3 + other", i, n)
		}
	}
	if e.procs.evicted == 0 || e.ctrs.evicted == 0 {
		t.Errorf("evictions: %d programs, %d containers; the test should evict", e.procs.evicted, e.ctrs.evicted)
	}
}

// TestCardinalityBounded feeds 10,000 distinct programs and containers,
// all at once and then a hundred new ones per interval.
func TestCardinalityBounded(t *testing.T) {
	e := newExporter(t, Options{})
	var ps []snapshot.Process
	var cs []snapshot.Container
	var want uint64
	for i := range 10000 {
		ps = append(ps, proc(i, fmt.Sprintf("prog%05d", i), uint64(i%97+1), 0, float64(i%97+1)))
		cs = append(cs, snapshot.Container{ID: fmt.Sprintf("%064d", i), Name: fmt.Sprintf("ctr%05d", i),
			Total: snapshot.Traffic{RxBytes: uint64(i%89 + 1)}, RxRate: rate(float64(i%89 + 1))})
		want += uint64(i%97 + 1)
	}
	e.Update(Input{Snapshot: &snapshot.Snapshot{Processes: ps, Containers: cs}})
	for round := range 100 {
		lo := round * 100
		var ps []snapshot.Process
		var cs []snapshot.Container
		for i := lo; i < lo+100; i++ {
			bps := float64(round*3 + i%100)
			ps = append(ps, proc(i, fmt.Sprintf("new%05d", i), uint64(bps), 0, bps))
			cs = append(cs, snapshot.Container{ID: fmt.Sprintf("n%05d", i), Total: snapshot.Traffic{RxBytes: 1}, RxRate: rate(bps)})
			want += uint64(bps)
		}
		e.Update(Input{Snapshot: &snapshot.Snapshot{Processes: ps, Containers: cs}})
		for _, f := range []*family{e.procs, e.ctrs} {
			if len(f.series) > f.max || len(f.retired) > f.max || len(f.retiredQ) > 2*f.max+16 {
				t.Fatalf("round %d: %s: %d series, %d remembered, queue %d; cap %d", round, f.name, len(f.series), len(f.retired), len(f.retiredQ), f.max)
			}
		}
		if len(e.ctrPrev) > 100 {
			t.Fatalf("round %d: %d containers remembered between updates, 100 in the snapshot", round, len(e.ctrPrev))
		}
	}
	if n := testutil.CollectAndCount(e, "netmeter_process_receive_bytes_total"); n != DefaultMaxPrograms+1 {
		t.Errorf("%d program series, want %d + other", n, DefaultMaxPrograms)
	}
	if n := testutil.CollectAndCount(e, "netmeter_container_network_receive_bytes_total"); n != DefaultMaxContainers+1 {
		t.Errorf("%d container series, want %d + other", n, DefaultMaxContainers)
	}
	// The busiest programs of the last interval have series.
	var got uint64
	e.procs.each(func(_ []string, v []uint64) { got += v[0] })
	for _, r := range e.procs.retired {
		got += r.v[0]
	}
	if got > want {
		t.Errorf("series + other + remembered = %d bytes, more than the %d sent", got, want)
	}
	if _, ok := e.procs.series[labelKey([]string{"new09999"})]; !ok {
		t.Error("the busiest program of the last interval has no series")
	}
}

// TestConcurrentScrapes updates while scraping; every scrape must see one
// whole update: values written together are read together.
func TestConcurrentScrapes(t *testing.T) {
	e := newExporter(t, Options{})
	reg := prometheus.NewRegistry()
	reg.MustRegister(e)
	const updates = 300
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 1; i <= updates; i++ {
			e.Update(fullInput(i))
		}
	})
	for range 2 {
		wg.Go(func() {
			for range 100 {
				got := scrape(t, reg)
				rx, ok := got["netmeter_network_receive_bytes_total,device=eth0"]
				if !ok {
					continue // before the first update
				}
				tx := got["netmeter_network_transmit_bytes_total,device=eth0"]
				sockets := got["netmeter_engine_sockets"]
				quotaUsed := got["netmeter_quota_used_bytes,direction=rx,entity=interface:eth0,quota=q"]
				if rx != tx || sockets != rx/1000+10 || quotaUsed != rx {
					t.Errorf("torn scrape: rx %v tx %v sockets %v quota %v", rx, tx, sockets, quotaUsed)
					return
				}
			}
		})
	}
	wg.Wait()
	if got := scrape(t, reg)["netmeter_network_receive_bytes_total,device=eth0"]; got != 1000*updates {
		t.Errorf("after %d updates: rx %v", updates, got)
	}
}

// TestUpdateKeepsNoReference changes the input after Update.
func TestUpdateKeepsNoReference(t *testing.T) {
	e := newExporter(t, Options{})
	in := fullInput(3)
	e.Update(in)
	before := scrape(t, promRegistry(e))
	in.Snapshot.Engine.Sockets = 9999
	in.Quotas[0].Used = 1
	in.Health.Monitors[0].State = health.StateHealthy
	in.Snapshot.Processes[0].Comm = "changed"
	after := scrape(t, promRegistry(e))
	for k, v := range before {
		if after[k] != v {
			t.Errorf("%s changed from %v to %v with the input", k, v, after[k])
		}
	}
}

func readDoc() (string, error) {
	b, err := os.ReadFile("../../docs/METRICS.md")
	return string(b), err
}

func promRegistry(c prometheus.Collector) *prometheus.Registry {
	r := prometheus.NewPedanticRegistry()
	r.MustRegister(c)
	return r
}

func TestOptions(t *testing.T) {
	for _, o := range []Options{
		{MaxPrograms: -1},
		{MaxDrops: -5},
		{RTTBuckets: []float64{0.1, 0.1}},
		{RTTBuckets: []float64{0, 1}},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
	e := newExporter(t, Options{})
	if e.opt.MaxPrograms != DefaultMaxPrograms || e.opt.MaxGroups != DefaultMaxGroups || len(e.opt.RTTBuckets) != len(DefaultRTTBuckets) {
		t.Errorf("defaults not applied: %+v", e.opt)
	}
}

func TestDefaultGroupOf(t *testing.T) {
	for addr, want := range map[string]string{
		"192.0.2.77":       "192.0.2.0/24",
		"::ffff:192.0.2.7": "192.0.2.0/24",
		"2001:db8:1:2::9":  "2001:db8:1:2::/64",
		"127.0.0.53":       "loopback",
		"::1":              "loopback",
		"fe80::1%eth0":     "fe80::/64",
		"not an address":   "",
	} {
		if got := DefaultGroupOf(addr); got != want {
			t.Errorf("DefaultGroupOf(%q) = %q, want %q", addr, got, want)
		}
	}
}

func BenchmarkUpdate(b *testing.B) {
	e := newExporter(b, Options{})
	s := &snapshot.Snapshot{Time: t0, Engine: &snapshot.EngineStats{}}
	for i := range 2000 {
		s.Processes = append(s.Processes, proc(i, fmt.Sprintf("p%d", i%300), 100, 100, float64(i)))
	}
	for i := range 200 {
		s.Containers = append(s.Containers, snapshot.Container{ID: fmt.Sprintf("c%d", i), Name: fmt.Sprintf("c%d", i), RxRate: rate(float64(i))})
	}
	for i := range 10000 {
		s.Connections = append(s.Connections, snapshot.Connection{Remote: snapshot.Endpoint{Addr: fmt.Sprintf("10.%d.%d.1", i%50, i%200)},
			TCP: &snapshot.TCPStats{Interval: snapshot.RTTWindow{Samples: 2, Mean: uint32(i)}, Delta: snapshot.TCPCounters{SegsOut: 10}}})
	}
	for i := range 20 {
		s.Interfaces = append(s.Interfaces, snapshot.Interface{Name: fmt.Sprintf("eth%d", i), Present: true, OperState: "up"})
	}
	b.ReportAllocs()
	for b.Loop() {
		e.Update(Input{Snapshot: s})
	}
}

func BenchmarkCollect(b *testing.B) {
	e := newExporter(b, Options{})
	for i := 1; i <= 3; i++ {
		e.Update(fullInput(i))
	}
	b.ReportAllocs()
	for b.Loop() {
		ch := make(chan prometheus.Metric, 4096)
		e.Collect(ch)
	}
}
