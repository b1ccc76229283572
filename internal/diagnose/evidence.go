package diagnose

import "time"

// Counter is a kernel counter read at the start and at the end of the
// sampling window.
type Counter struct {
	Start uint64 `json:"start"`
	End   uint64 `json:"end"`
}

// Delta is how much the counter grew during the window (0 if it went
// backwards, e.g. after a reset).
func (c Counter) Delta() uint64 {
	if c.End < c.Start {
		return 0
	}
	return c.End - c.Start
}

// Rate is Delta per second over window.
func (c Counter) Rate(window time.Duration) float64 {
	if window <= 0 {
		return 0
	}
	return float64(c.Delta()) / window.Seconds()
}

// Process owns a socket.
type Process struct {
	PID  int    `json:"pid"`
	Comm string `json:"comm"`
}

// Layer names the level of the walk a finding or note belongs to.
type Layer string

// The layers, bottom-up.
const (
	LayerPhysical    Layer = "physical"
	LayerKernel      Layer = "kernel"
	LayerProtocol    Layer = "protocol"
	LayerApplication Layer = "application"
)

// Layers lists the layers in walk order.
var Layers = []Layer{LayerPhysical, LayerKernel, LayerProtocol, LayerApplication}

// Note says that a check did not apply or could not run, and why.
type Note struct {
	Layer Layer  `json:"layer"`
	Check string `json:"check"`
	// Status is "not_applicable" or "unavailable".
	Status string `json:"status"`
	Why    string `json:"why"`
}

// Note statuses.
const (
	NotApplicable = "not_applicable"
	Unavailable   = "unavailable"
)

// Evidence is everything the collector read, at the start and end of one
// window.
type Evidence struct {
	Start  time.Time     `json:"start"`
	Window time.Duration `json:"-"`
	// Netns is the namespace read ("" = the caller's); HostWide says
	// whether host-wide counters (softnet) describe it.
	Netns     string `json:"netns,omitempty"`
	Interface string `json:"interface,omitempty"`

	Links      []Link             `json:"links"`
	Softnet    *Softnet           `json:"softnet,omitempty"`
	Qdiscs     []Qdisc            `json:"qdiscs"`
	Netfilter  []NftRule          `json:"netfilter"`
	Conntrack  *Conntrack         `json:"conntrack,omitempty"`
	SNMP       map[string]Counter `json:"-"`
	Somaxconn  uint64             `json:"somaxconn,omitempty"`
	Sockets    []Socket           `json:"-"`
	Drops      []Drop             `json:"-"`
	DropTraced bool               `json:"-"`
	Notes      []Note             `json:"-"`
}

// Link is one interface.
type Link struct {
	Name  string `json:"name"`
	Index int    `json:"index"`
	// Kind is the rtnetlink kind ("veth", "bridge", …), "loopback" for
	// lo, "" for a device without one (usually a NIC).
	Kind     string `json:"kind,omitempty"`
	AdminUp  bool   `json:"admin_up"`
	Carrier  bool   `json:"carrier"`
	Oper     string `json:"oper_state"`
	SpeedMbs int    `json:"speed_mbps,omitempty"`
	Duplex   string `json:"duplex,omitempty"`
	Driver   string `json:"driver,omitempty"`
	Firmware string `json:"firmware,omitempty"`
	BusInfo  string `json:"bus_info,omitempty"`
	Rings    *Rings `json:"rings,omitempty"`

	CarrierChanges Counter `json:"carrier_changes"`
	RxPackets      Counter `json:"rx_packets"`
	RxDropped      Counter `json:"rx_dropped"`
	TxDropped      Counter `json:"tx_dropped"`
	RxErrors       Counter `json:"rx_errors"`
	TxErrors       Counter `json:"tx_errors"`
	RxMissed       Counter `json:"rx_missed_errors"`
	RxFifo         Counter `json:"rx_fifo_errors"`
	RxOver         Counter `json:"rx_over_errors"`
	TxFifo         Counter `json:"tx_fifo_errors"`
	RxNoHandler    Counter `json:"rx_nohandler"`
	// NIC holds the driver's own counters (ethtool -S) whose names say
	// missed, no buffer, fifo or dropped.
	NIC map[string]Counter `json:"nic_stats,omitempty"`
}

// Virtual says the link has no NIC behind it (no bus, or a software kind).
func (l Link) Virtual() bool {
	return l.Kind != "" || l.BusInfo == ""
}

// Rings are a NIC's ring sizes (ethtool -g).
type Rings struct {
	RxPending uint32 `json:"rx"`
	RxMax     uint32 `json:"rx_max"`
	TxPending uint32 `json:"tx"`
	TxMax     uint32 `json:"tx_max"`
}

// Softnet is /proc/net/softnet_stat summed over CPUs. It is host-wide:
// HostWide is false when the diagnosed namespace is not the host's, and the
// counters are then context only.
type Softnet struct {
	Dropped      Counter `json:"dropped"`
	TimeSqueezed Counter `json:"time_squeezed"`
	HostWide     bool    `json:"describes_target"`
}

// Qdisc is one queueing discipline.
type Qdisc struct {
	Link       string  `json:"link"`
	Kind       string  `json:"kind"`
	Handle     string  `json:"handle"`
	Parent     string  `json:"parent"`
	Drops      Counter `json:"drops"`
	Overlimits Counter `json:"overlimits"`
	Requeues   Counter `json:"requeues"`
	Packets    Counter `json:"packets"`
	Backlog    uint32  `json:"backlog_bytes"`
	Qlen       uint32  `json:"qlen"`
	// RateBps and LimitBytes are set for tbf (bytes per second, queue
	// limit in bytes).
	RateBps    uint64 `json:"rate_bytes_per_second,omitempty"`
	LimitBytes uint32 `json:"limit_bytes,omitempty"`
}

// NftRule is an nftables rule whose verdict is drop or reject, or a base
// chain whose policy is drop (Policy set, Handle 0).
type NftRule struct {
	Family  string  `json:"family"`
	Table   string  `json:"table"`
	Chain   string  `json:"chain"`
	Handle  uint64  `json:"handle,omitempty"`
	Verdict string  `json:"verdict"`
	Policy  bool    `json:"policy,omitempty"`
	Counted bool    `json:"has_counter"`
	Packets Counter `json:"packets"`
	Comment string  `json:"comment,omitempty"`
}

// Conntrack is the connection tracking table.
type Conntrack struct {
	Count        uint64  `json:"count"`
	Max          uint64  `json:"max"`
	InsertFailed Counter `json:"insert_failed"`
	Drop         Counter `json:"drop"`
	EarlyDrop    Counter `json:"early_drop"`
}

// Socket is a TCP or UDP socket seen at both ends of the window.
type Socket struct {
	Proto  string `json:"proto"` // "tcp" or "udp"
	State  string `json:"state"` // "listen", "established", … ; "" for udp
	Local  string `json:"local"`
	Remote string `json:"remote,omitempty"`
	Inode  uint64 `json:"inode"`
	Cookie uint64 `json:"cookie,omitempty"`
	// RecvQ and SendQ are queued bytes; for a listener RecvQ is the accept
	// queue (connections) and Backlog its limit.
	RecvQ   Counter `json:"recv_q"`
	SendQ   Counter `json:"send_q"`
	Backlog uint32  `json:"backlog,omitempty"`
	// Drops is the socket's drop counter (UDP: /proc/net/udp "drops").
	Drops  Counter   `json:"drops"`
	Owners []Process `json:"owners,omitempty"`
}

// Owner is the first owner, or nil.
func (s Socket) Owner() *Process {
	if len(s.Owners) == 0 {
		return nil
	}
	p := s.Owners[0]
	return &p
}

// Drop is what the kernel dropped during the window for one reason, on one
// interface or socket (skb:kfree_skb).
type Drop struct {
	Reason  string   `json:"reason"`
	Link    string   `json:"link,omitempty"`
	Proto   string   `json:"proto,omitempty"`
	Packets uint64   `json:"packets"`
	Cookie  uint64   `json:"-"`
	Socket  string   `json:"socket,omitempty"`
	Owner   *Process `json:"owner,omitempty"`
}
