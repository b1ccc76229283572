package snapshot

import "time"

// Traffic counts one socket's, process's or connection's bytes. Three byte
// kinds are real and differ; each view names the one it shows:
//   - payload: what the application passed to send/recv (sendfile included);
//   - IP bytes and packets: what crossed the cgroup_skb hooks, IP header and
//     transport header included, retransmissions included;
//   - acked/received (TCP only): bytes_acked and bytes_received of the
//     socket.
//
// Tx is from the local socket toward the remote end; Rx the reverse.
type Traffic struct {
	TxPayload uint64 `json:"tx_payload_bytes"`
	RxPayload uint64 `json:"rx_payload_bytes"`
	TxBytes   uint64 `json:"tx_bytes"`
	RxBytes   uint64 `json:"rx_bytes"`
	TxPackets uint64 `json:"tx_packets"`
	RxPackets uint64 `json:"rx_packets"`
}

// Add returns t+o.
func (t Traffic) Add(o Traffic) Traffic {
	return Traffic{
		TxPayload: t.TxPayload + o.TxPayload, RxPayload: t.RxPayload + o.RxPayload,
		TxBytes: t.TxBytes + o.TxBytes, RxBytes: t.RxBytes + o.RxBytes,
		TxPackets: t.TxPackets + o.TxPackets, RxPackets: t.RxPackets + o.RxPackets,
	}
}

// Process is one process (thread group) that owned sockets.
type Process struct {
	PID       int       `json:"pid"`
	Comm      string    `json:"comm"`
	Exe       string    `json:"exe"`
	Cmdline   string    `json:"cmdline"`
	UID       uint32    `json:"uid"`
	User      string    `json:"user"`
	StartTime time.Time `json:"start_time"`
	// CgroupID is the cgroup v2 id of the process's sockets; Cgroup its path
	// below the cgroup2 mount, when known.
	CgroupID   uint64 `json:"cgroup_id"`
	Cgroup     string `json:"cgroup"`
	NetnsInode uint64 `json:"netns_inode"`
	// Exited is true once the process has gone; it stays for a while so its
	// final bytes are visible.
	Exited bool `json:"exited"`
	// Sockets is the number of its sockets seen alive in the last interval.
	Sockets int `json:"sockets"`

	Total Traffic `json:"total"` // since netmeter first saw the process
	Delta Traffic `json:"delta"` // during the last interval

	// Rates of IP bytes (the bytes an interface or a bill counts).
	TxRate Rate `json:"tx_bytes_per_second"`
	RxRate Rate `json:"rx_bytes_per_second"`
	// TxRecent and RxRecent are the last (up to 60) per-interval rates,
	// oldest first.
	TxRecent []float64 `json:"tx_recent,omitempty"`
	RxRecent []float64 `json:"rx_recent,omitempty"`
}

// Endpoint is one end of a connection.
type Endpoint struct {
	Addr string `json:"addr"` // IPv4 or IPv6 text; "" when unbound/unconnected
	Port uint16 `json:"port"`
}

// Owner is the process at one end of a connection.
type Owner struct {
	PID  int    `json:"pid"`
	Comm string `json:"comm"`
}

// Connection is one socket's traffic: a TCP connection, a UDP or ICMP socket.
// A connection between two local sockets (loopback, or two namespaces both
// watched) is one Connection with both ends: Local is the end that was
// created first (usually the client), Peer the other; Total counts Local's
// view (Tx = Local → Remote).
type Connection struct {
	Cookie     uint64   `json:"cookie"`
	Proto      string   `json:"proto"`  // "tcp", "udp", "icmp", "raw"
	Family     int      `json:"family"` // 4 or 6
	NetnsInode uint64   `json:"netns_inode"`
	Local      Endpoint `json:"local"`
	Remote     Endpoint `json:"remote"`
	State      string   `json:"state"` // TCP state ("established", …); "" for others
	Owner      Owner    `json:"owner"`
	// Peer is the owner of the other end when it is a local socket too.
	Peer       *Owner `json:"peer,omitempty"`
	PeerCookie uint64 `json:"peer_cookie,omitempty"`
	// PeerContainer names the container at the remote end when it lives on
	// this host (e.g. the container docker-proxy relays to).
	PeerContainer string    `json:"peer_container,omitempty"`
	FirstSeen     time.Time `json:"first_seen"`
	Closed        bool      `json:"closed"`

	Total  Traffic `json:"total"`
	Delta  Traffic `json:"delta"`
	TxRate Rate    `json:"tx_bytes_per_second"`
	RxRate Rate    `json:"rx_bytes_per_second"`

	// TCPBytesAcked and TCPBytesReceived are TCP's own lifetime counters of
	// Local's socket (payload + 1 for SYN and FIN each), including what it
	// carried before netmeter started.
	TCPBytesAcked    uint64 `json:"tcp_bytes_acked,omitempty"`
	TCPBytesReceived uint64 `json:"tcp_bytes_received,omitempty"`

	// Drops are packets the kernel dropped for or from this socket since
	// netmeter started (e.g. a UDP receive queue that was full), all
	// reasons; DeltaDrops during the last interval. From the health hooks.
	Drops      uint64 `json:"drops,omitempty"`
	DeltaDrops uint64 `json:"delta_drops,omitempty"`

	// TCP is the connection's health (RTT, windows, retransmissions,
	// timeouts); nil for other protocols or when the health hooks are off.
	TCP *TCPStats `json:"tcp,omitempty"`
}

// Bucket is traffic with no owning process, labelled by why: "kernel"
// (timewait and request sockets, kernel-generated replies such as RSTs),
// "unattributed" (the classic engine found no socket or owner in time),
// "overflow" (a bounded map was full; see EngineStats.MapFull).
type Bucket struct {
	Name     string  `json:"name"`
	CgroupID uint64  `json:"cgroup_id"`
	Total    Traffic `json:"total"`
	Delta    Traffic `json:"delta"`
}

// EngineStats says which engine measured processes and connections, and how
// complete its view is.
type EngineStats struct {
	// Kind is "ebpf" (per-socket counters in the kernel) or "classic"
	// (packet capture joined to /proc, where eBPF cannot load).
	Kind string `json:"kind"`
	// Approximate is set when the numbers are estimates: the classic
	// engine misses connections that come and go between two /proc scans
	// (their bytes are unattributed), and loses packets when its ring is
	// full.
	Approximate bool `json:"approximate"`
	// CaptureDropped counts packets the classic engine's capture ring had
	// no room for (the kernel's PACKET_STATISTICS drops), since start.
	CaptureDropped uint64 `json:"capture_dropped"`
	// Sockets is the number of sockets with counters in the kernel.
	Sockets int `json:"sockets"`
	// MapFull counts updates refused because a bounded map was full; those
	// bytes are in the "overflow" bucket.
	MapFull uint64 `json:"map_full"`
	// RingLost counts socket-death records the ring buffer could not hold;
	// their last bytes are recovered from the previous reading.
	RingLost uint64 `json:"ring_lost"`
}

// Container is one container's traffic, from the sockets of its processes.
type Container struct {
	ID      string `json:"id"`
	Runtime string `json:"runtime"` // "docker", "podman", "containerd", "cri-o", …; "" when unknown
	Name    string `json:"name"`
	Image   string `json:"image"`
	// Account is the stable billing identity: label netmeter.account, else
	// compose project/service, else pod namespace/name, else the name.
	Account        string            `json:"account"`
	Labels         map[string]string `json:"labels,omitempty"`
	ComposeService string            `json:"compose_service,omitempty"`
	PodName        string            `json:"pod_name,omitempty"`
	PodNamespace   string            `json:"pod_namespace,omitempty"`
	// HostNetwork is set for containers sharing the host's network
	// namespace; their traffic is still only their own sockets'.
	HostNetwork bool   `json:"host_network"`
	NetnsInode  uint64 `json:"netns_inode"`
	Processes   int    `json:"processes"` // with traffic in the last interval
	Sockets     int    `json:"sockets"`

	Total Traffic `json:"total"`
	Delta Traffic `json:"delta"`
	// By peer: other hosts and the internet, other containers on this
	// host, this host's own processes, and the container's own namespace
	// (loopback inside it).
	External Traffic `json:"external"`
	Local    Traffic `json:"container_to_container"`
	Host     Traffic `json:"container_to_host"`
	Internal Traffic `json:"internal"`
	// Unclassified is traffic whose peer is not one address: a listening
	// socket's handshakes, unconnected UDP.
	Unclassified Traffic `json:"unclassified"`
	TxRate       Rate    `json:"tx_bytes_per_second"`
	RxRate       Rate    `json:"rx_bytes_per_second"`
	Accepted     uint64  `json:"connections_accepted"` // TCP connections accepted since netmeter started
	Requests     uint64  `json:"http_requests"`        // HTTP/1.x requests received since netmeter started
	// AcceptedRate, OpenedRate and RequestRate are per second.
	AcceptedRate Rate   `json:"connections_accepted_per_second"`
	OpenedRate   Rate   `json:"connections_opened_per_second"`
	RequestRate  Rate   `json:"http_requests_per_second"`
	Opened       uint64 `json:"connections_opened"` // TCP connections opened
	Ports        []Port `json:"ports,omitempty"`    // per local listening port
	// Remotes are the busiest remote addresses (up to 16), by bytes.
	Remotes []Remote `json:"remotes,omitempty"`
	// Netns is the kernel's interface counters of its network namespace
	// (nil for host networking or when no process of it can be read).
	Netns *NetnsCounters `json:"netns_interfaces,omitempty"`
	// Firewall holds the nftables counters of its addresses (--nft-counters).
	Firewall *FirewallCounters `json:"firewall,omitempty"`
	// Addresses are the container's own addresses, as its sockets use them.
	Addresses []string  `json:"addresses,omitempty"`
	FirstSeen time.Time `json:"first_seen"`
}

// NetnsCounters are the kernel's counters of a container's own network
// namespace, summed over its interfaces except loopback: L2 bytes (the
// Ethernet header included), since the interfaces were created. They are a
// cross-check of the socket counts, not a replacement (they include ARP and
// every process in the namespace, and say nothing for host networking).
type NetnsCounters struct {
	RxBytes   uint64 `json:"rx_bytes"`
	TxBytes   uint64 `json:"tx_bytes"`
	RxPackets uint64 `json:"rx_packets"`
	TxPackets uint64 `json:"tx_packets"`
	RxDropped uint64 `json:"rx_dropped"`
	TxDropped uint64 `json:"tx_dropped"`
}

// FirewallCounters are nftables named counters of a container's addresses,
// kept only when the user asks for them (--nft-counters): L3 bytes at the
// input, output and forward hooks of the host.
type FirewallCounters struct {
	InBytes    uint64 `json:"in_bytes"`
	InPackets  uint64 `json:"in_packets"`
	OutBytes   uint64 `json:"out_bytes"`
	OutPackets uint64 `json:"out_packets"`
}

// Port is the traffic of the connections a container accepted on one port.
type Port struct {
	Proto    string  `json:"proto"`
	Port     uint16  `json:"port"`
	Accepted uint64  `json:"connections_accepted"`
	Total    Traffic `json:"total"`
	// HTTPRequests counts HTTP/1.x requests by method (TLS and HTTP/2
	// connections are counted in Accepted only).
	HTTPRequests map[string]uint64 `json:"http_requests,omitempty"`
}

// Remote is a container's traffic with one remote address.
type Remote struct {
	Addr  string  `json:"addr"`
	Total Traffic `json:"total"`
}
