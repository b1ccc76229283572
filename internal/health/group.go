package health

import (
	"cmp"
	"net/netip"
	"slices"
)

// groupKind says how a group was formed.
type groupKind uint8

const (
	kindUser        groupKind = iota // a Config.Groups entry
	kindDefault                      // the remote's default prefix or address
	kindLoopback                     // 127.0.0.0/8, ::1
	kindUnconnected                  // no remote address
	kindOther                        // overflow
)

// evaluated reports whether groups of this kind get a health status.
func (k groupKind) evaluated() bool { return k == kindUser || k == kindDefault || k == kindLoopback }

// counted says whether groups of this kind count against MaxGroups.
func (k groupKind) counted() bool { return k == kindUser || k == kindDefault }

type namedPrefix struct {
	prefix netip.Prefix
	name   string
	order  int // index of the group in the config
}

// grouper maps remote addresses to group names.
type grouper struct {
	prefixes   []namedPrefix // longest first, then config order
	bits4      int
	bits6      int
	byAddress  bool
	userGroups map[string]bool
}

// newGrouper builds a grouper from a validated config.
func newGrouper(c Config) *grouper {
	g := &grouper{bits4: c.DefaultPrefix4, bits6: c.DefaultPrefix6, byAddress: c.ByAddress, userGroups: map[string]bool{}}
	for i, grp := range c.Groups {
		g.userGroups[grp.Name] = true
		for _, s := range grp.CIDRs {
			p, err := parsePrefix(s)
			if err != nil {
				continue // Validate has reported it
			}
			g.prefixes = append(g.prefixes, namedPrefix{prefix: p, name: grp.Name, order: i})
		}
	}
	slices.SortStableFunc(g.prefixes, func(a, b namedPrefix) int {
		if c := cmp.Compare(b.prefix.Bits(), a.prefix.Bits()); c != 0 {
			return c
		}
		return cmp.Compare(a.order, b.order)
	})
	return g
}

// group returns the group of a remote address as a snapshot writes it.
func (g *grouper) group(remote string) (string, groupKind) {
	if remote == "" {
		return GroupUnconnected, kindUnconnected
	}
	a, err := netip.ParseAddr(remote)
	if err != nil {
		return GroupUnconnected, kindUnconnected
	}
	a = a.WithZone("").Unmap()
	if a.IsUnspecified() {
		return GroupUnconnected, kindUnconnected
	}
	for _, p := range g.prefixes {
		if p.prefix.Contains(a) {
			return p.name, kindUser
		}
	}
	if a.IsLoopback() {
		return GroupLoopback, kindLoopback
	}
	if g.byAddress {
		return a.String(), kindDefault
	}
	bits := g.bits6
	if a.Is4() {
		bits = g.bits4
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return a.String(), kindDefault
	}
	return p.String(), kindDefault
}

// GroupOf names the remote group of an address ("10.1.2.0/24", "loopback",
// a user group's name, "unconnected" for ""), the same grouping the flows and
// the health indicator use. Safe for concurrent use.
func (a *Analyzer) GroupOf(remote string) string {
	name, _ := a.grp.group(remote)
	return name
}
