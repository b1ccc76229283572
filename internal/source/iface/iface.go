// Package iface reads per-interface counters and link attributes: rtnetlink
// (RTM_GETLINK with IFLA_STATS64, plus ethtool netlink for link speed) first,
// /proc/net/dev as a fallback. It also watches links appearing and
// disappearing. It reads; it does not compute deltas or rates (see
// internal/aggregate).
package iface

import (
	"github.com/netmeter/netmeter/internal/snapshot"
)

// Link is one reading of one interface.
type Link struct {
	Index       int
	Name        string
	Kind        string // rtnetlink IFLA_INFO_KIND, or "loopback"/"device" for drivers without one
	OperState   string
	AdminUp     bool
	Carrier     bool
	MTU         int
	SpeedMbps   uint32 // 0 when unknown
	MAC         string
	Qdisc       string
	MasterIndex int
	Master      string
	Counters    snapshot.LinkCounters
}

// Source yields readings of every interface in one network namespace.
type Source interface {
	// Name is "netlink" or "procfs".
	Name() string
	// Links returns one reading of every interface.
	Links() ([]Link, error)
	Close() error
}

// Event is a link appearing, changing or disappearing. A deletion carries the
// interface's final counters, so the last bytes before it vanished are not
// lost between two polls.
type Event struct {
	Deleted bool
	Link    Link
}
