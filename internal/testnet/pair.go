package testnet

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"
)

// Names of the two veth ends of a [Pair], one in each namespace.
const (
	PairLinkA = "nmt-a"
	PairLinkB = "nmt-b"
)

// Pair is two namespaces, A and B, joined by one veth (PairLinkA in A,
// PairLinkB in B). It is quiet: both ends are IFF_NOARP with permanent
// neighbour entries for the peer's addresses, IPv6 has no link-local
// address, no DAD, no router solicitation, no autoconf and joins no
// solicited-node group, so the veth carries exactly the packets the test
// sends and nothing else.
//
// Addresses are unique per Pair (a random 10.X.Y.0/24 and fd00:6e6d:X:Y::/64)
// so traffic of concurrent tests can be told apart by address. They exist
// only inside the namespaces.
type Pair struct {
	// A and B are the two namespaces.
	A, B *Netns
	// MACA and MACB are the hardware addresses of PairLinkA and PairLinkB.
	MACA, MACB net.HardwareAddr
	// A4 and B4 are the IPv4 addresses of PairLinkA and PairLinkB (/24).
	A4, B4 netip.Addr
	// A6 and B6 are the IPv6 addresses (/64); invalid (zero) when the Pair
	// was made [WithoutIPv6].
	A6, B6 netip.Addr
	// MTU is the veth's MTU.
	MTU int

	noIPv6 bool
}

// PairOption changes how [NewPair] builds a Pair.
type PairOption func(*Pair)

// WithoutIPv6 disables IPv6 on the veth (disable_ipv6=1): no IPv6 addresses,
// and the kernel sends no IPv6 packet of any kind on it.
func WithoutIPv6() PairOption { return func(p *Pair) { p.noIPv6 = true } }

// WithMTU sets the veth's MTU (default 1500).
func WithMTU(mtu int) PairOption { return func(p *Pair) { p.MTU = mtu } }

// NewPair creates two namespaces joined by one quiet veth and registers their
// removal with t.Cleanup. It fails t on error.
func NewPair(t testing.TB, opts ...PairOption) *Pair {
	t.Helper()
	RequirePrivileged(t)
	p := &Pair{MTU: 1500}
	for _, o := range opts {
		o(p)
	}
	p.A = NewNetns(t)
	p.B = NewNetns(t)
	xy := randBytes(2)
	x, y := xy[0], xy[1]
	p.MACA = net.HardwareAddr{0x02, 0x6e, 0x6d, x, y, 0x0a}
	p.MACB = net.HardwareAddr{0x02, 0x6e, 0x6d, x, y, 0x0b}
	p.A4 = netip.AddrFrom4([4]byte{10, x, y, 1})
	p.B4 = netip.AddrFrom4([4]byte{10, x, y, 2})
	if !p.noIPv6 {
		p.A6 = netip.AddrFrom16([16]byte{0xfd, 0x00, 0x6e, 0x6d, 0, x, 0, y, 15: 1})
		p.B6 = netip.AddrFrom16([16]byte{0xfd, 0x00, 0x6e, 0x6d, 0, x, 0, y, 15: 2})
	}
	for _, ns := range []*Netns{p.A, p.B} {
		if err := quietDefaults(ns, p.noIPv6); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.CreateLink(); err != nil {
		t.Fatal(err)
	}
	return p
}

// quietDefaults sets the namespace-wide sysctls that links created later
// inherit, so they come up without IPv6 noise.
func quietDefaults(ns *Netns, noIPv6 bool) error {
	for _, conf := range []string{"all", "default"} {
		kv := [][2]string{
			{"accept_dad", "0"},
			{"dad_transmits", "0"},
			{"accept_ra", "0"},
			{"autoconf", "0"},
			{"router_solicitations", "0"},
			{"use_tempaddr", "0"},
		}
		if conf == "default" {
			kv = append(kv, [2]string{"addr_gen_mode", "1"}) // no link-local address
		}
		if noIPv6 {
			kv = append(kv, [2]string{"disable_ipv6", "1"})
		}
		for _, e := range kv {
			if err := ns.Sysctl("net/ipv6/conf/"+conf+"/"+e[0], e[1]); err != nil {
				return err
			}
		}
	}
	return nil
}

// CreateLink creates the veth with the Pair's names, MACs, MTU, addresses
// and permanent neighbours, brings both ends up and waits until they are
// operationally up and their addresses usable (see [Netns.WaitOperUp] and
// [Netns.WaitAddrUsable]). [NewPair] calls it; call it
// again after [Pair.DeleteLink] to re-create the interface.
func (p *Pair) CreateLink() error {
	err := p.A.AddVeth(VethConfig{
		Name: PairLinkA, MAC: p.MACA,
		Peer: p.B, PeerName: PairLinkB, PeerMAC: p.MACB,
		MTU: p.MTU, NoARP: true,
	})
	if err != nil {
		return err
	}
	sides := []struct {
		ns         *Netns
		link       string
		own4, own6 netip.Addr
		peer4      netip.Addr
		peer6      netip.Addr
		peerMAC    net.HardwareAddr
	}{
		{p.A, PairLinkA, p.A4, p.A6, p.B4, p.B6, p.MACB},
		{p.B, PairLinkB, p.B4, p.B6, p.A4, p.A6, p.MACA},
	}
	for _, s := range sides {
		if err := quietLink(s.ns, s.link, p.noIPv6); err != nil {
			return err
		}
		if err := s.ns.AddAddr(s.link, netip.PrefixFrom(s.own4, 24)); err != nil {
			return err
		}
		if err := s.ns.AddNeigh(s.link, s.peer4, s.peerMAC); err != nil {
			return err
		}
		if !p.noIPv6 {
			if err := s.ns.AddAddr(s.link, netip.PrefixFrom(s.own6, 64)); err != nil {
				return err
			}
			if err := s.ns.AddNeigh(s.link, s.peer6, s.peerMAC); err != nil {
				return err
			}
		}
	}
	for _, s := range sides {
		if err := s.ns.SetUp(s.link); err != nil {
			return err
		}
	}
	for _, s := range sides {
		if err := s.ns.WaitOperUp(s.link, 5*time.Second); err != nil {
			return err
		}
		for _, a := range []netip.Addr{s.own4, s.own6} {
			if !a.IsValid() {
				continue
			}
			if err := s.ns.WaitAddrUsable(a, 5*time.Second); err != nil {
				return err
			}
		}
	}
	return nil
}

// quietLink sets the per-interface sysctls of a new, still down, link.
func quietLink(ns *Netns, link string, noIPv6 bool) error {
	base := "net/ipv6/conf/" + link + "/"
	if noIPv6 {
		return ns.Sysctl(base+"disable_ipv6", "1")
	}
	for _, e := range [][2]string{
		{"accept_dad", "0"},
		{"dad_transmits", "0"},
		{"accept_ra", "0"},
		{"autoconf", "0"},
		{"router_solicitations", "0"},
		{"addr_gen_mode", "1"},
	} {
		if err := ns.Sysctl(base+e[0], e[1]); err != nil {
			return err
		}
	}
	return nil
}

// DeleteLink deletes the veth (both ends). Its addresses and neighbour
// entries go with it; [Pair.CreateLink] restores them all.
func (p *Pair) DeleteLink() error { return p.A.DelLink(PairLinkA) }

// Recreate deletes the veth and creates it again with the same names, MACs,
// addresses and neighbours, as an "interface deleted and re-created" event.
// The new ends get new ifindexes and zeroed counters.
func (p *Pair) Recreate() error {
	if err := p.DeleteLink(); err != nil {
		return err
	}
	if err := p.CreateLink(); err != nil {
		return fmt.Errorf("re-create veth: %w", err)
	}
	return nil
}
