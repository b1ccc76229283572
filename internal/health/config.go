package health

import (
	"errors"
	"fmt"
	"net/netip"
	"path"
	"time"
)

// Defaults of [Config]; a zero field takes its default.
const (
	DefaultPrefix4   = 24
	DefaultPrefix6   = 64
	DefaultCapacity  = 120
	DefaultMaxFlows  = 2048
	DefaultMaxGroups = 1024
)

// Names of the reserved groups. User groups may not take them.
const (
	// GroupLoopback holds 127.0.0.0/8 and ::1.
	GroupLoopback = "loopback"
	// GroupUnconnected holds sockets without a remote address (listeners,
	// unconnected UDP): their bytes count, their health does not.
	GroupUnconnected = "unconnected"
	// GroupOther holds what did not fit under MaxGroups or MaxFlows.
	GroupOther = "other"
)

// Config configures an [Analyzer]. The YAML keys are those of the health
// section of the netmeter config file.
type Config struct {
	// Groups are the user's remote groups. A remote address belongs to the
	// group with the longest prefix containing it (the earlier group on a
	// tie); addresses no group contains get a default group.
	Groups []Group `yaml:"groups"`
	// DefaultPrefix4 and DefaultPrefix6 size the default groups: the
	// remote's /24 (IPv4) and /64 (IPv6) unless set.
	DefaultPrefix4 int `yaml:"default_prefix4"`
	DefaultPrefix6 int `yaml:"default_prefix6"`
	// ByAddress makes the default group one remote address instead of a
	// prefix. User groups and loopback are unaffected.
	ByAddress bool `yaml:"by_address"`

	Monitors []Monitor    `yaml:"monitors"`
	Health   HealthConfig `yaml:"indicator"`

	// Capacity is how many intervals of aggregates are kept (default 120):
	// the longest window TopFlows and Topology can sum, and the length of
	// the monitors' series.
	Capacity int `yaml:"capacity"`
	// MaxFlows bounds the (local entity, remote group) pairs tracked
	// (default 2048) and MaxGroups the remote groups (default 1024). Beyond
	// them traffic is summed into group "other" and counted in
	// [Limits.OverflowConnections].
	MaxFlows  int `yaml:"max_flows"`
	MaxGroups int `yaml:"max_groups"`

	// ContainerOf, when set, names the container a process belongs to (its
	// ID or name, "" for none). Snapshots list containers but not their
	// processes; without it a connection belongs to a container only when
	// its local address is one of the container's addresses.
	ContainerOf func(pid int, netns uint64) string `yaml:"-"`
	// InterfaceAddrs, when set, returns an interface's addresses, so that
	// Monitor.Local.Interfaces can match connections by local address.
	// Snapshots do not carry interface addresses; without it New refuses
	// local.interfaces. Both resolvers are called from Add and must not
	// block.
	InterfaceAddrs func(name string) []netip.Prefix `yaml:"-"`
}

// Group is a named set of remote networks.
type Group struct {
	Name string `yaml:"name"`
	// CIDRs are prefixes ("10.1.0.0/16", "2001:db8::/48") or single
	// addresses; host bits are ignored.
	CIDRs []string `yaml:"cidrs"`
}

// Monitor selects connections by their local and remote sides and keeps a
// time series and a health status of what it selects.
type Monitor struct {
	Name   string      `yaml:"name"`
	Local  LocalMatch  `yaml:"local"`
	Remote RemoteMatch `yaml:"remote"`
}

// LocalMatch selects the local side; a connection matches when any selector
// does. An empty LocalMatch matches every connection.
type LocalMatch struct {
	// Interfaces match by the local address being one of the interface's
	// (needs Config.InterfaceAddrs).
	Interfaces []string `yaml:"interfaces"`
	// Processes are globs (path.Match) over the process name (comm).
	Processes []string `yaml:"processes"`
	// Containers are globs over the container's name or account.
	Containers []string `yaml:"containers"`
	// CIDRs contain the local address.
	CIDRs []string `yaml:"cidrs"`
}

// RemoteMatch selects the remote side: everywhere, or any of the CIDRs or
// groups (user group names or default group names such as "10.1.2.0/24" or
// "loopback"). One of them must be set.
type RemoteMatch struct {
	CIDRs      []string `yaml:"cidrs"`
	Groups     []string `yaml:"groups"`
	Everywhere bool     `yaml:"everywhere"`
}

// HealthConfig holds the thresholds of the Network Health Indicator (see
// [State]). A zero field takes the default in its comment; negative values
// are errors. Counts of intervals assume nothing about their length; at
// netmeter's default 1 s interval, an interval is a second.
type HealthConfig struct {
	// WindowIntervals is the recent window compared with the baseline (5).
	WindowIntervals int `yaml:"window_intervals"`
	// DegradeIntervals consecutive degraded verdicts turn a healthy status
	// degraded (2); RecoverIntervals consecutive healthy verdicts turn a
	// degraded one healthy again (5).
	DegradeIntervals int `yaml:"degrade_intervals"`
	RecoverIntervals int `yaml:"recover_intervals"`
	// WarmupIntervals is how many intervals with TCP traffic the baseline
	// learns from before any verdict (20); until then the state is unknown.
	WarmupIntervals int `yaml:"warmup_intervals"`
	// BaselineIntervals is the time constant of the baseline's moving
	// average, in intervals with traffic (60).
	BaselineIntervals int `yaml:"baseline_intervals"`

	// RTT is high when the window's mean exceeds RTTFactor × baseline (2)
	// and baseline + RTTFloor (5ms), over at least MinRTTSamples (5).
	RTTFactor     float64       `yaml:"rtt_factor"`
	RTTFloor      time.Duration `yaml:"rtt_floor"`
	MinRTTSamples int           `yaml:"min_rtt_samples"`

	// Retransmissions are high when retransmitted segments exceed
	// RetransPercent (1) % of segments sent and RetransFactor (3) × the
	// baseline ratio, over at least MinSegments (100) segments sent.
	RetransPercent float64 `yaml:"retrans_percent"`
	RetransFactor  float64 `yaml:"retrans_factor"`
	MinSegments    int     `yaml:"min_segments"`

	// Timeouts are high when the window holds at least RTOMin (1) RTO
	// events and more than RTOFactor (3) × the baseline's per window.
	RTOMin    int     `yaml:"rto_min"`
	RTOFactor float64 `yaml:"rto_factor"`

	// Resets received point at the remote end when the window holds at
	// least ResetsMin (10) and more than ResetsFactor (3) × the baseline's.
	ResetsMin    int     `yaml:"resets_min"`
	ResetsFactor float64 `yaml:"resets_factor"`

	// A zero window (advertised by this end, or by the peer) is evidence
	// when seen on an active connection in at least ZeroWindowIntervals (2)
	// intervals of the window.
	ZeroWindowIntervals int `yaml:"zero_window_intervals"`
	// The receive queue grows when its sum over the active connections rose
	// in each of the last QueueGrowthIntervals (3) intervals and ends above
	// QueueGrowthBytes (256 KiB).
	QueueGrowthIntervals int    `yaml:"queue_growth_intervals"`
	QueueGrowthBytes     uint64 `yaml:"queue_growth_bytes"`
	// SocketDropsMin drops with a reason in SocketDropReasons within the
	// window are evidence against this host (1). The default reasons are
	// DefaultSocketDropReasons.
	SocketDropsMin    int      `yaml:"socket_drops_min"`
	SocketDropReasons []string `yaml:"socket_drop_reasons"`
	// HostWideMinGroups: when at least this many non-loopback groups are
	// active (2) and all are degraded by the network or this host at once,
	// the cause is taken to be this host.
	HostWideMinGroups int `yaml:"host_wide_min_groups"`
}

// DefaultSocketDropReasons are the kernel drop reasons (enum
// skb_drop_reason without SKB_DROP_REASON_) that mean a local socket could
// not take the packet.
var DefaultSocketDropReasons = []string{
	"SOCKET_RCVBUFF", "SOCKET_BACKLOG", "SOCKET_FILTER", "PROTO_MEM",
	"TCP_LISTEN_OVERFLOW", "TCP_ZEROWINDOW", "TCP_OFO_QUEUE_PRUNE", "TCP_OFO_DROP",
}

// withDefaults returns h with every zero field set to its default.
func (h HealthConfig) withDefaults() HealthConfig {
	setInt := func(p *int, d int) {
		if *p == 0 {
			*p = d
		}
	}
	setFloat := func(p *float64, d float64) {
		if *p == 0 {
			*p = d
		}
	}
	setInt(&h.WindowIntervals, 5)
	setInt(&h.DegradeIntervals, 2)
	setInt(&h.RecoverIntervals, 5)
	setInt(&h.WarmupIntervals, 20)
	setInt(&h.BaselineIntervals, 60)
	setFloat(&h.RTTFactor, 2)
	if h.RTTFloor == 0 {
		h.RTTFloor = 5 * time.Millisecond
	}
	setInt(&h.MinRTTSamples, 5)
	setFloat(&h.RetransPercent, 1)
	setFloat(&h.RetransFactor, 3)
	setInt(&h.MinSegments, 100)
	setInt(&h.RTOMin, 1)
	setFloat(&h.RTOFactor, 3)
	setInt(&h.ResetsMin, 10)
	setFloat(&h.ResetsFactor, 3)
	setInt(&h.ZeroWindowIntervals, 2)
	setInt(&h.QueueGrowthIntervals, 3)
	if h.QueueGrowthBytes == 0 {
		h.QueueGrowthBytes = 256 << 10
	}
	setInt(&h.SocketDropsMin, 1)
	if len(h.SocketDropReasons) == 0 {
		h.SocketDropReasons = DefaultSocketDropReasons
	}
	setInt(&h.HostWideMinGroups, 2)
	return h
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.DefaultPrefix4 == 0 {
		c.DefaultPrefix4 = DefaultPrefix4
	}
	if c.DefaultPrefix6 == 0 {
		c.DefaultPrefix6 = DefaultPrefix6
	}
	if c.Capacity == 0 {
		c.Capacity = DefaultCapacity
	}
	if c.MaxFlows == 0 {
		c.MaxFlows = DefaultMaxFlows
	}
	if c.MaxGroups == 0 {
		c.MaxGroups = DefaultMaxGroups
	}
	c.Health = c.Health.withDefaults()
	return c
}

// Validate reports every problem of the configuration, each naming the
// config key to change. The zero Config is valid. It checks what a config
// file can hold; New also checks the resolvers the monitors need.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	if c.DefaultPrefix4 < 0 || c.DefaultPrefix4 > 32 {
		bad("default_prefix4: %d is not a prefix length between 1 and 32", c.DefaultPrefix4)
	}
	if c.DefaultPrefix6 < 0 || c.DefaultPrefix6 > 128 {
		bad("default_prefix6: %d is not a prefix length between 1 and 128", c.DefaultPrefix6)
	}
	for _, f := range []struct {
		key string
		v   int
	}{{"capacity", c.Capacity}, {"max_flows", c.MaxFlows}, {"max_groups", c.MaxGroups}} {
		if f.v < 0 {
			bad("%s: %d is negative; leave it 0 for the default", f.key, f.v)
		}
	}

	names := map[string]int{}
	for i, g := range c.Groups {
		key := fmt.Sprintf("groups[%d]", i)
		switch {
		case g.Name == "":
			bad("%s: name is empty; every group needs a name", key)
		case g.Name == GroupLoopback || g.Name == GroupUnconnected || g.Name == GroupOther:
			bad("%s: name %q is reserved for a built-in group; choose another", key, g.Name)
		default:
			if j, dup := names[g.Name]; dup {
				bad("%s: name %q is already used by groups[%d]; group names must be unique", key, g.Name, j)
			}
			names[g.Name] = i
			key = fmt.Sprintf("%s (%q)", key, g.Name)
		}
		if len(g.CIDRs) == 0 {
			bad("%s: cidrs is empty; list at least one prefix such as 10.0.0.0/8", key)
		}
		for j, s := range g.CIDRs {
			if _, err := parsePrefix(s); err != nil {
				bad("%s: cidrs[%d]: %w", key, j, err)
			}
		}
	}

	mnames := map[string]int{}
	for i, m := range c.Monitors {
		key := fmt.Sprintf("monitors[%d]", i)
		if m.Name == "" {
			bad("%s: name is empty; every monitor needs a name", key)
		} else {
			if j, dup := mnames[m.Name]; dup {
				bad("%s: name %q is already used by monitors[%d]; monitor names must be unique", key, m.Name, j)
			}
			mnames[m.Name] = i
			key = fmt.Sprintf("%s (%q)", key, m.Name)
		}
		for j, p := range m.Local.Processes {
			if _, err := path.Match(p, ""); err != nil {
				bad("%s: local.processes[%d]: glob %q: %w", key, j, p, err)
			}
		}
		for j, p := range m.Local.Containers {
			if _, err := path.Match(p, ""); err != nil {
				bad("%s: local.containers[%d]: glob %q: %w", key, j, p, err)
			}
		}
		for j, s := range m.Local.CIDRs {
			if _, err := parsePrefix(s); err != nil {
				bad("%s: local.cidrs[%d]: %w", key, j, err)
			}
		}
		for j, s := range m.Remote.CIDRs {
			if _, err := parsePrefix(s); err != nil {
				bad("%s: remote.cidrs[%d]: %w", key, j, err)
			}
		}
		for j, g := range m.Remote.Groups {
			if _, ok := names[g]; ok || g == GroupLoopback || g == GroupOther {
				continue
			}
			if _, err := netip.ParsePrefix(g); err == nil {
				continue // a default group's name
			}
			bad("%s: remote.groups[%d]: %q is neither a group under groups, %q, %q, nor a default group name such as 10.1.2.0/24", key, j, g, GroupLoopback, GroupOther)
		}
		if !m.Remote.Everywhere && len(m.Remote.CIDRs) == 0 && len(m.Remote.Groups) == 0 {
			bad("%s: remote selects nothing; set remote.everywhere: true, remote.cidrs or remote.groups", key)
		}
	}

	if err := c.Health.validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("health config: %w", err)
	}
	return nil
}

func (h HealthConfig) validate() error {
	var errs []error
	for _, f := range []struct {
		key string
		v   float64
	}{
		{"window_intervals", float64(h.WindowIntervals)}, {"degrade_intervals", float64(h.DegradeIntervals)},
		{"recover_intervals", float64(h.RecoverIntervals)}, {"warmup_intervals", float64(h.WarmupIntervals)},
		{"baseline_intervals", float64(h.BaselineIntervals)}, {"rtt_factor", h.RTTFactor},
		{"rtt_floor", h.RTTFloor.Seconds()}, {"min_rtt_samples", float64(h.MinRTTSamples)},
		{"retrans_percent", h.RetransPercent}, {"retrans_factor", h.RetransFactor}, {"min_segments", float64(h.MinSegments)},
		{"rto_min", float64(h.RTOMin)}, {"rto_factor", h.RTOFactor}, {"resets_min", float64(h.ResetsMin)},
		{"resets_factor", h.ResetsFactor}, {"zero_window_intervals", float64(h.ZeroWindowIntervals)},
		{"queue_growth_intervals", float64(h.QueueGrowthIntervals)}, {"socket_drops_min", float64(h.SocketDropsMin)},
		{"host_wide_min_groups", float64(h.HostWideMinGroups)},
	} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("health.%s: %v is negative; leave it 0 for the default", f.key, f.v))
		}
	}
	d := h.withDefaults()
	if d.RTTFactor < 1 {
		errs = append(errs, fmt.Errorf("health.rtt_factor: %v is below 1, so the baseline itself would be high", d.RTTFactor))
	}
	if d.ZeroWindowIntervals > d.WindowIntervals {
		errs = append(errs, fmt.Errorf("health.zero_window_intervals: %d exceeds window_intervals (%d), so it could never be met",
			d.ZeroWindowIntervals, d.WindowIntervals))
	}
	for i, r := range h.SocketDropReasons {
		if r == "" {
			errs = append(errs, fmt.Errorf("health.socket_drop_reasons[%d]: empty reason", i))
		}
	}
	return errors.Join(errs...)
}

// parsePrefix parses a prefix ("10.0.0.0/8") or a single address, with its
// host bits cleared.
func parsePrefix(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			// ::ffff:10.0.0.0/104 is 10.0.0.0/8: remotes are looked up unmapped.
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is neither a prefix such as 10.0.0.0/8 nor an address", s)
	}
	a = a.WithZone("").Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}
