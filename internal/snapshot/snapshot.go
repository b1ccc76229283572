// Package snapshot defines the immutable per-interval Snapshot that every
// collector produces and every sink (TUI, JSON output, exporters) consumes.
//
// Units are fixed and never rounded: counters are bytes or packets as uint64,
// rates are bytes (or packets) per second as float64.
package snapshot

import "time"

// LinkCounters is the full rtnetlink stats64 counter set of one interface.
// JSON names follow the kernel's struct rtnl_link_stats64.
type LinkCounters struct {
	RxBytes    uint64 `json:"rx_bytes"`
	TxBytes    uint64 `json:"tx_bytes"`
	RxPackets  uint64 `json:"rx_packets"`
	TxPackets  uint64 `json:"tx_packets"`
	RxErrors   uint64 `json:"rx_errors"`
	TxErrors   uint64 `json:"tx_errors"`
	RxDropped  uint64 `json:"rx_dropped"`
	TxDropped  uint64 `json:"tx_dropped"`
	Multicast  uint64 `json:"multicast"`
	Collisions uint64 `json:"collisions"`

	// Detailed receive errors.
	RxLengthErrors uint64 `json:"rx_length_errors"`
	RxOverErrors   uint64 `json:"rx_over_errors"`
	RxCRCErrors    uint64 `json:"rx_crc_errors"`
	RxFrameErrors  uint64 `json:"rx_frame_errors"`
	RxFIFOErrors   uint64 `json:"rx_fifo_errors"`
	RxMissedErrors uint64 `json:"rx_missed_errors"`

	// Detailed transmit errors.
	TxAbortedErrors   uint64 `json:"tx_aborted_errors"`
	TxCarrierErrors   uint64 `json:"tx_carrier_errors"`
	TxFIFOErrors      uint64 `json:"tx_fifo_errors"`
	TxHeartbeatErrors uint64 `json:"tx_heartbeat_errors"`
	TxWindowErrors    uint64 `json:"tx_window_errors"`

	RxCompressed uint64 `json:"rx_compressed"`
	TxCompressed uint64 `json:"tx_compressed"`
	RxNoHandler  uint64 `json:"rx_nohandler"`
	// RxOtherhostDropped counts frames dropped for a foreign destination MAC.
	RxOtherhostDropped uint64 `json:"rx_otherhost_dropped"`
}

// Rate describes one direction's throughput in units per second.
type Rate struct {
	// Current is the rate over the last interval.
	Current float64 `json:"current"`
	// Window2s, Window10s and Window40s are moving averages over the last 2,
	// 10 and 40 seconds of wall-clock time (iftop's three columns). They fall
	// to zero when traffic stops, because every tick adds a sample.
	Window2s  float64 `json:"window_2s"`
	Window10s float64 `json:"window_10s"`
	Window40s float64 `json:"window_40s"`
	// Min, Avg and Max are over the whole session (since the interface was
	// first seen by this process). Avg is total / elapsed.
	Min float64 `json:"min"`
	Avg float64 `json:"avg"`
	Max float64 `json:"max"`
	// EWMA is an exponentially weighted moving average of the per-interval
	// rates with a 5 s time constant.
	EWMA float64 `json:"ewma"`
}

// Interface is the state of one network interface at one instant.
type Interface struct {
	Index int    `json:"index"`
	Name  string `json:"name"`
	// Netns is the name of the network namespace (as in /run/netns), or ""
	// for the namespace netmeter itself runs in. NetnsInode identifies it.
	Netns      string `json:"netns"`
	NetnsInode uint64 `json:"netns_inode"`
	Kind       string `json:"kind"`       // "veth", "bridge", "loopback", "device", …
	OperState  string `json:"oper_state"` // RFC 2863 state: "up", "down", "unknown", …
	AdminUp    bool   `json:"admin_up"`
	Carrier    bool   `json:"carrier"`
	MTU        int    `json:"mtu"`
	// SpeedMbps is the negotiated link speed in Mbit/s; 0 when the driver does
	// not report one (loopback, veth, bridges).
	SpeedMbps uint32 `json:"speed_mbps"`
	MAC       string `json:"mac"`
	Qdisc     string `json:"qdisc"`
	Master    string `json:"master"` // bridge or bond this interface is enslaved to, or ""
	// Present is false when the interface has disappeared; its totals are kept.
	Present bool `json:"present"`

	// Kernel holds the kernel's raw counters as last read. They restart at
	// zero when the interface is re-created or the driver resets them.
	Kernel LinkCounters `json:"kernel"`
	// Total holds what netmeter counted since it first saw the interface,
	// surviving resets, re-creation and 32-bit wraps.
	Total LinkCounters `json:"total"`
	// Delta holds what was counted during the last interval.
	Delta LinkCounters `json:"delta"`

	RxBytesRate   Rate `json:"rx_bytes_per_second"`
	TxBytesRate   Rate `json:"tx_bytes_per_second"`
	RxPacketsRate Rate `json:"rx_packets_per_second"`
	TxPacketsRate Rate `json:"tx_packets_per_second"`

	// Resets counts how often the kernel counters went backwards (driver
	// reset, interface re-created) and were re-based.
	Resets    uint64    `json:"resets"`
	FirstSeen time.Time `json:"first_seen"`
}

// Snapshot is one interval's immutable view. Consumers must not modify it.
type Snapshot struct {
	Time     time.Time     `json:"time"`
	Interval time.Duration `json:"interval_ns"`
	// Source names where interface counters came from: "netlink" or
	// "procfs" (the /proc/net/dev fallback, which lacks link attributes).
	Source     string      `json:"source"`
	Interfaces []Interface `json:"interfaces"`

	// Processes, Connections and Unattributed come from the eBPF engine;
	// they are empty when it is not running. Engine is nil then.
	Processes    []Process    `json:"processes,omitempty"`
	Connections  []Connection `json:"connections,omitempty"`
	Containers   []Container  `json:"containers,omitempty"`
	Unattributed []Bucket     `json:"unattributed,omitempty"`
	Engine       *EngineStats `json:"engine,omitempty"`
	// Drops are the packets the kernel dropped, by reason and place (the
	// busiest 256), from the health hooks; empty when they are off.
	Drops []Drop `json:"drops,omitempty"`
}
