package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/netmeter/netmeter/internal/snapshot"
)

// ifaceCols are node_exporter's netdev counters (its default, non-detailed
// names), each from one field of netmeter's Total.
var ifaceCols = [...]struct {
	name, help string
	get        func(*snapshot.LinkCounters) uint64
}{
	{"receive_bytes_total", "Bytes received.", func(c *snapshot.LinkCounters) uint64 { return c.RxBytes }},
	{"receive_packets_total", "Packets received.", func(c *snapshot.LinkCounters) uint64 { return c.RxPackets }},
	{"receive_errs_total", "Receive errors (rx_errors).", func(c *snapshot.LinkCounters) uint64 { return c.RxErrors }},
	{"receive_drop_total", "Received packets dropped by the device or its driver (rx_dropped).", func(c *snapshot.LinkCounters) uint64 { return c.RxDropped }},
	{"receive_fifo_total", "Receive FIFO overruns (rx_fifo_errors).", func(c *snapshot.LinkCounters) uint64 { return c.RxFIFOErrors }},
	{"receive_frame_total", "Receive frame alignment errors (rx_frame_errors).", func(c *snapshot.LinkCounters) uint64 { return c.RxFrameErrors }},
	{"receive_compressed_total", "Compressed packets received.", func(c *snapshot.LinkCounters) uint64 { return c.RxCompressed }},
	{"receive_multicast_total", "Multicast packets received.", func(c *snapshot.LinkCounters) uint64 { return c.Multicast }},
	{"receive_nohandler_total", "Packets received with no protocol handler (rx_nohandler).", func(c *snapshot.LinkCounters) uint64 { return c.RxNoHandler }},
	{"transmit_bytes_total", "Bytes transmitted.", func(c *snapshot.LinkCounters) uint64 { return c.TxBytes }},
	{"transmit_packets_total", "Packets transmitted.", func(c *snapshot.LinkCounters) uint64 { return c.TxPackets }},
	{"transmit_errs_total", "Transmit errors (tx_errors).", func(c *snapshot.LinkCounters) uint64 { return c.TxErrors }},
	{"transmit_drop_total", "Packets dropped on transmit (tx_dropped).", func(c *snapshot.LinkCounters) uint64 { return c.TxDropped }},
	{"transmit_fifo_total", "Transmit FIFO errors (tx_fifo_errors).", func(c *snapshot.LinkCounters) uint64 { return c.TxFIFOErrors }},
	{"transmit_colls_total", "Collisions on transmit.", func(c *snapshot.LinkCounters) uint64 { return c.Collisions }},
	{"transmit_carrier_total", "Transmit carrier errors (tx_carrier_errors).", func(c *snapshot.LinkCounters) uint64 { return c.TxCarrierErrors }},
	{"transmit_compressed_total", "Compressed packets transmitted.", func(c *snapshot.LinkCounters) uint64 { return c.TxCompressed }},
}

// col is one counter of a family: its value index and labels appended to
// the series' own.
type col struct {
	desc  *prometheus.Desc
	idx   int
	extra []string
}

// descs are the Exporter's metric descriptors. The interface ones come in
// two variants, indexed by the number of labels minus one: {device} for
// netmeter's own namespace, {device, netns} for another.
type descs struct {
	iface                           [2][len(ifaceCols)]*prometheus.Desc
	ifUp, ifCarrier, ifSpeed, ifMTU [2]*prometheus.Desc
	procCols, ctrCols, tcpCols      []col
	dropCols, unattrCols, acctCols  []col
	rtt                             *prometheus.Desc
	groupState, monitorState        *prometheus.Desc
	quotaUsed, quotaLimit           *prometheus.Desc
	quotaEstimate, quotaStatus      *prometheus.Desc
	quotaStart, quotaEnd, acctStart *prometheus.Desc
	engineUp, engineSockets         *prometheus.Desc
	engineMapFull, engineRingLost   *prometheus.Desc
	engineInfo, engineCaptureDrops  *prometheus.Desc
	poll, snapTime, buildInfo       *prometheus.Desc
	evicted                         *prometheus.Desc
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("netmeter_"+name, help, labels, nil)
}

// Label names of the families.
var (
	deviceLabels    = [2][]string{{"device"}, {"device", "netns"}}
	containerLabels = []string{"id", "name", "image", "runtime", "account", "pod", "namespace"}
)

const totalNote = " Counted by netmeter since it first saw the device: survives driver resets, re-creation and 32-bit wraps."

func newDescs() *descs {
	d := &descs{}
	for n, labels := range deviceLabels {
		for i, c := range ifaceCols {
			d.iface[n][i] = desc("network_"+c.name, "Network device statistic: "+c.help+totalNote, labels...)
		}
		d.ifUp[n] = desc("network_up", "1 when the device's operational state is up, else 0.", labels...)
		d.ifCarrier[n] = desc("network_carrier", "1 when the device has a carrier, else 0.", labels...)
		d.ifSpeed[n] = desc("network_speed_bytes", "Negotiated link speed in bytes per second; absent when the driver reports none.", labels...)
		d.ifMTU[n] = desc("network_mtu_bytes", "MTU of the device in bytes.", labels...)
	}

	prog := []string{"program"}
	d.procCols = []col{
		{desc: desc("process_receive_bytes_total", "IP bytes (headers and retransmissions included) received by the sockets of a program (process comm); program=\"other\" sums the programs beyond the cap.", prog...), idx: 0},
		{desc: desc("process_transmit_bytes_total", "IP bytes (headers and retransmissions included) sent by the sockets of a program (process comm); program=\"other\" sums the programs beyond the cap.", prog...), idx: 1},
		{desc: desc("process_receive_packets_total", "IP packets received by the sockets of a program (process comm).", prog...), idx: 2},
		{desc: desc("process_transmit_packets_total", "IP packets sent by the sockets of a program (process comm).", prog...), idx: 3},
	}

	ctr := containerLabels
	d.ctrCols = []col{
		{desc: desc("container_network_receive_bytes_total", "IP bytes received by the sockets of a container's processes.", ctr...), idx: 0},
		{desc: desc("container_network_transmit_bytes_total", "IP bytes sent by the sockets of a container's processes.", ctr...), idx: 1},
		{desc: desc("container_network_receive_packets_total", "IP packets received by the sockets of a container's processes.", ctr...), idx: 2},
		{desc: desc("container_network_transmit_packets_total", "IP packets sent by the sockets of a container's processes.", ctr...), idx: 3},
		{desc: desc("container_connections_accepted_total", "TCP connections a container accepted.", ctr...), idx: ctrAccepted},
		{desc: desc("container_connections_opened_total", "TCP connections a container opened.", ctr...), idx: ctrOpened},
		{desc: desc("container_http_requests_total", "HTTP/1.x requests a container received (TLS and HTTP/2 are not parsed).", ctr...), idx: ctrRequests},
	}
	peer := append(append([]string(nil), ctr...), "peer")
	peerRx := desc("container_peer_receive_bytes_total", "IP bytes a container received, by where the peer lives: external (other hosts), container (another container on this host), host (this host's processes), internal (the container's own namespace), unclassified (no single peer: listeners' handshakes, unconnected UDP).", peer...)
	peerTx := desc("container_peer_transmit_bytes_total", "IP bytes a container sent, by where the peer lives (see netmeter_container_peer_receive_bytes_total).", peer...)
	for j, p := range peerClasses {
		d.ctrCols = append(d.ctrCols,
			col{desc: peerRx, idx: ctrPeers + 2*j, extra: []string{p}},
			col{desc: peerTx, idx: ctrPeers + 2*j + 1, extra: []string{p}})
	}

	grp := []string{"group"}
	d.tcpCols = []col{
		{desc: desc("tcp_segments_sent_total", "TCP segments sent on connections to a remote group, retransmissions included.", grp...), idx: tcpSegsOut},
		{desc: desc("tcp_retransmitted_segments_total", "TCP segments retransmitted on connections to a remote group.", grp...), idx: tcpRetrans},
		{desc: desc("tcp_rto_total", "TCP retransmission timeouts on connections to a remote group.", grp...), idx: tcpRTOs},
		{desc: desc("tcp_resets_received_total", "TCP resets received from a remote group.", grp...), idx: tcpResetsIn},
		{desc: desc("tcp_resets_sent_total", "TCP resets sent to a remote group.", grp...), idx: tcpResetsOut},
	}
	d.rtt = desc("tcp_rtt_seconds", "TCP round-trip time to a remote group: each connection's mean RTT of the interval, observed once per RTT sample the kernel took.", grp...)

	dl := []string{"reason", "proto", "device"}
	d.dropCols = []col{
		{desc: desc("drops_total", "Packets the kernel dropped, by drop reason (enum skb_drop_reason), protocol and device (set for devices netmeter reads).", dl...), idx: 0},
		{desc: desc("drops_bytes_total", "Bytes of the packets the kernel dropped, by drop reason, protocol and device.", dl...), idx: 1},
	}
	bl := []string{"bucket"}
	d.unattrCols = []col{
		{desc: desc("unattributed_receive_bytes_total", "IP bytes received with no owning process: kernel (timewait and request sockets, kernel replies), unattributed (the classic engine found no owner in time), overflow (a bounded map was full).", bl...), idx: 0},
		{desc: desc("unattributed_transmit_bytes_total", "IP bytes sent with no owning process, by bucket.", bl...), idx: 1},
		{desc: desc("unattributed_receive_packets_total", "IP packets received with no owning process, by bucket.", bl...), idx: 2},
		{desc: desc("unattributed_transmit_packets_total", "IP packets sent with no owning process, by bucket.", bl...), idx: 3},
	}
	al := []string{"account"}
	d.acctCols = []col{
		{desc: desc("account_receive_bytes_total", "IP bytes an account's containers received in the current billing period; restarts at zero when a period begins.", al...), idx: 0},
		{desc: desc("account_transmit_bytes_total", "IP bytes an account's containers sent in the current billing period; restarts at zero when a period begins.", al...), idx: 1},
	}
	d.acctStart = desc("account_period_start_time_seconds", "Start of the current billing period of the account counters, in seconds since the epoch.")

	d.groupState = desc("health_state", "Network Health Indicator of a remote group or a monitor: 1 for its current state, 0 for the others.", "group", "state")
	d.monitorState = desc("health_state", "Network Health Indicator of a remote group or a monitor: 1 for its current state, 0 for the others.", "monitor", "state")

	ql := []string{"quota", "entity", "direction"}
	d.quotaUsed = desc("quota_used_bytes", "Bytes a quota's entity used in the current period.", ql...)
	d.quotaLimit = desc("quota_limit_bytes", "A quota's limit in bytes.", ql...)
	d.quotaEstimate = desc("quota_estimate_bytes", "Projected use at the end of the period at the average rate so far; absent until enough of the period has passed.", ql...)
	d.quotaStatus = desc("quota_status", "1 for a quota's current status (ok, forecast_exceeded, warning, exceeded), 0 for the others.", "quota", "status")
	d.quotaStart = desc("quota_period_start_time_seconds", "Start of a quota's current period, in seconds since the epoch.", "quota")
	d.quotaEnd = desc("quota_period_end_time_seconds", "End of a quota's current period, in seconds since the epoch.", "quota")

	d.engineUp = desc("engine_up", "1 when the eBPF engine's per-socket view is in the snapshot, else 0.")
	d.engineInfo = desc("engine_info", "Always 1 while an engine measures processes and connections: kind is ebpf or classic (packet capture joined to /proc, where eBPF cannot load); approximate is true when its numbers are estimates.", "kind", "approximate")
	d.engineCaptureDrops = desc("engine_capture_dropped_total", "Packets the classic engine's capture ring had no room for (the kernel's packet socket drops); 0 with eBPF.")
	d.engineSockets = desc("engine_sockets", "Sockets with counters in the kernel.")
	d.engineMapFull = desc("engine_map_full_total", "Updates refused because a bounded BPF map was full; their bytes are in the overflow bucket.")
	d.engineRingLost = desc("engine_ring_lost_total", "Socket-death records the ring buffer could not hold.")
	d.poll = desc("poll_duration_seconds", "How long the agent took to read the latest interval's counters.")
	d.snapTime = desc("snapshot_timestamp_seconds", "Time of the latest snapshot, in seconds since the epoch.")
	d.buildInfo = desc("build_info", "Always 1; the labels name netmeter's version and the Go version it was built with.", "version", "goversion")
	d.evicted = desc("exporter_evicted_series_total", "Label sets of a family removed from the exposition to stay under its cap; their later traffic is in the family's \"other\" series.", "family")
	return d
}
