package health

import (
	"net/netip"
	"path"
	"slices"
	"time"

	"github.com/netmeter/netmeter/internal/snapshot"
)

// MonitorSeries is one monitor's status and its per-interval points, oldest
// first (up to Config.Capacity of them).
type MonitorSeries struct {
	Name   string         `json:"name"`
	Status Status         `json:"status"`
	Points []MonitorPoint `json:"points"`
}

// MonitorPoint is one interval of a monitor.
type MonitorPoint struct {
	Time        time.Time `json:"time"`
	IntervalMS  int64     `json:"interval_ms"`
	TxBytes     uint64    `json:"tx_bytes"` // IP bytes
	RxBytes     uint64    `json:"rx_bytes"`
	Connections int       `json:"connections"`
	SegsOut     uint64    `json:"segs_out"`
	RetransSegs uint64    `json:"retrans_segs"`
	RTOs        uint64    `json:"rto_events"`
	// RTTMeanUS is the interval's mean RTT (0: no sample).
	RTTMeanUS int64  `json:"rtt_mean_us"`
	Drops     uint64 `json:"drops"`
	Health    State  `json:"health"`
}

// monitor is a Monitor's compiled selectors and state.
type monitor struct {
	cfg          Monitor
	matchAll     bool // the local side is unconstrained
	localCIDRs   []netip.Prefix
	ifaceAddrs   map[netip.Addr]bool // addresses of cfg.Local.Interfaces, this interval
	remoteCIDRs  []netip.Prefix
	remoteGroups map[string]bool
	ind          *indicator
	cur          tally // this interval so far
	points       []MonitorPoint
}

func newMonitor(m Monitor, h HealthConfig) *monitor {
	l := m.Local
	mo := &monitor{cfg: m, ind: newIndicator(h), remoteGroups: map[string]bool{},
		matchAll: len(l.Interfaces)+len(l.Processes)+len(l.Containers)+len(l.CIDRs) == 0}
	for _, s := range l.CIDRs {
		if p, err := parsePrefix(s); err == nil {
			mo.localCIDRs = append(mo.localCIDRs, p)
		}
	}
	for _, s := range m.Remote.CIDRs {
		if p, err := parsePrefix(s); err == nil {
			mo.remoteCIDRs = append(mo.remoteCIDRs, p)
		}
	}
	for _, g := range m.Remote.Groups {
		mo.remoteGroups[g] = true
	}
	return mo
}

// refresh reads the monitored interfaces' addresses for this interval.
func (m *monitor) refresh(ifaceAddrs func(string) []netip.Prefix) {
	if len(m.cfg.Local.Interfaces) == 0 || ifaceAddrs == nil {
		return
	}
	m.ifaceAddrs = map[netip.Addr]bool{}
	for _, name := range m.cfg.Local.Interfaces {
		for _, p := range ifaceAddrs(name) {
			m.ifaceAddrs[p.Addr().WithZone("").Unmap()] = true
		}
	}
}

// connView is what monitors match a connection on.
type connView struct {
	conn          *snapshot.Connection
	ent           entity
	group         string
	local, remote netip.Addr // unmapped, no zone; invalid when absent
}

func (m *monitor) matches(v *connView) bool {
	return m.matchesLocal(v) && m.matchesRemote(v)
}

func (m *monitor) matchesLocal(v *connView) bool {
	if m.matchAll {
		return true
	}
	for _, p := range m.cfg.Local.Processes {
		if ok, _ := path.Match(p, v.conn.Owner.Comm); ok {
			return true
		}
	}
	if v.ent.kind == "container" {
		for _, p := range m.cfg.Local.Containers {
			if ok, _ := path.Match(p, v.ent.name); ok {
				return true
			}
			if ok, _ := path.Match(p, v.ent.account); ok && v.ent.account != "" {
				return true
			}
		}
	}
	if !v.local.IsValid() {
		return false
	}
	if m.ifaceAddrs[v.local] {
		return true
	}
	return slices.ContainsFunc(m.localCIDRs, func(p netip.Prefix) bool { return p.Contains(v.local) })
}

func (m *monitor) matchesRemote(v *connView) bool {
	if m.cfg.Remote.Everywhere || m.remoteGroups[v.group] {
		return true
	}
	return v.remote.IsValid() && slices.ContainsFunc(m.remoteCIDRs, func(p netip.Prefix) bool { return p.Contains(v.remote) })
}

// point closes the monitor's interval: its tally becomes a point.
func (m *monitor) point(t time.Time, dur time.Duration, health State, capacity int) {
	c := &m.cur
	rtt, _, _ := c.rtt()
	m.points = pushCapped(m.points, MonitorPoint{
		Time: t, IntervalMS: dur.Milliseconds(), TxBytes: c.traffic.TxBytes, RxBytes: c.traffic.RxBytes,
		Connections: c.conns, SegsOut: c.tcp.SegsOut, RetransSegs: c.tcp.RetransSegs, RTOs: c.tcp.RTOs,
		RTTMeanUS: int64(rtt + 0.5), Drops: c.drops, Health: health,
	}, capacity)
	m.cur = tally{}
}

// Monitors returns every configured monitor's series, in config order.
func (a *Analyzer) Monitors() []MonitorSeries {
	a.mu.RLock()
	defer a.mu.RUnlock()
	out := make([]MonitorSeries, 0, len(a.monitors))
	for _, m := range a.monitors {
		out = append(out, MonitorSeries{Name: m.cfg.Name, Status: m.ind.status(m.cfg.Name), Points: slices.Clone(m.points)})
	}
	return out
}
