package metrics

import (
	"errors"
	"fmt"
	"net/netip"
)

// Options configure an Exporter. The zero value is valid: every zero field
// takes the default documented next to it. The Max* fields bound the label
// sets of a family; what does not fit is summed into an "other" series (see
// docs/METRICS.md), so a family never exceeds Max* + 1 series.
type Options struct {
	// MaxPrograms is the number of programs (process comm) with a series
	// of their own; default 20.
	MaxPrograms int
	// MaxContainers is the number of containers with series of their own;
	// default 100.
	MaxContainers int
	// MaxGroups is the number of remote groups with TCP series and health
	// states of their own; default 32.
	MaxGroups int
	// MaxInterfaces is the number of interfaces with series of their own;
	// default 512.
	MaxInterfaces int
	// MaxAccounts is the number of ledger accounts with series of their
	// own; default 1000.
	MaxAccounts int
	// MaxDrops is the number of (reason, proto, device) label sets of the
	// drop counters; default 128.
	MaxDrops int

	// RTTBuckets are the upper bounds, in seconds, of the TCP RTT
	// histogram's buckets, strictly increasing; default DefaultRTTBuckets.
	RTTBuckets []float64

	// GroupOf names the remote group of a connection's remote address (the
	// agent passes the health analyzer's grouping, so the TCP series and
	// netmeter_health_state share group names). It is called only for
	// addresses that parse and are not unspecified; "" leaves the
	// connection out. Default: DefaultGroupOf.
	GroupOf func(remoteAddr string) string

	// Version is reported by netmeter_build_info; default "unknown".
	Version string
}

// Defaults of Options.
const (
	DefaultMaxPrograms   = 20
	DefaultMaxContainers = 100
	DefaultMaxGroups     = 32
	DefaultMaxInterfaces = 512
	DefaultMaxAccounts   = 1000
	DefaultMaxDrops      = 128
)

// DefaultRTTBuckets span loopback (tens of µs) to intercontinental paths
// and retransmission timeouts (seconds).
var DefaultRTTBuckets = []float64{
	0.00005, 0.0001, 0.00025, 0.0005,
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
	0.1, 0.25, 0.5, 1, 2.5,
}

// withDefaults validates o and fills its zero fields.
func (o Options) withDefaults() (Options, error) {
	caps := []struct {
		name string
		v    *int
		def  int
	}{
		{"MaxPrograms", &o.MaxPrograms, DefaultMaxPrograms},
		{"MaxContainers", &o.MaxContainers, DefaultMaxContainers},
		{"MaxGroups", &o.MaxGroups, DefaultMaxGroups},
		{"MaxInterfaces", &o.MaxInterfaces, DefaultMaxInterfaces},
		{"MaxAccounts", &o.MaxAccounts, DefaultMaxAccounts},
		{"MaxDrops", &o.MaxDrops, DefaultMaxDrops},
	}
	var errs []error
	for _, c := range caps {
		switch {
		case *c.v < 0:
			errs = append(errs, fmt.Errorf("metrics options: %s is %d: want 0 (default %d) or more", c.name, *c.v, c.def))
		case *c.v == 0:
			*c.v = c.def
		}
	}
	if o.RTTBuckets == nil {
		o.RTTBuckets = DefaultRTTBuckets
	}
	for i, b := range o.RTTBuckets {
		if b <= 0 || (i > 0 && b <= o.RTTBuckets[i-1]) {
			errs = append(errs, fmt.Errorf("metrics options: RTTBuckets %v: want positive, strictly increasing bounds", o.RTTBuckets))
			break
		}
	}
	o.RTTBuckets = append([]float64(nil), o.RTTBuckets...)
	if o.GroupOf == nil {
		o.GroupOf = DefaultGroupOf
	}
	if o.Version == "" {
		o.Version = "unknown"
	}
	return o, errors.Join(errs...)
}

// DefaultGroupOf is the health analyzer's default grouping without user
// groups: "loopback" for 127.0.0.0/8 and ::1, else the address's /24 (IPv4)
// or /64 (IPv6).
func DefaultGroupOf(remote string) string {
	a, err := netip.ParseAddr(remote)
	if err != nil {
		return ""
	}
	a = a.WithZone("").Unmap()
	if a.IsLoopback() {
		return "loopback"
	}
	bits := 64
	if a.Is4() {
		bits = 24
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return ""
	}
	return p.String()
}
