package testnet

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// errHostNetns is returned by link operations on a nil *Netns: this package
// never changes the host's own interfaces.
var errHostNetns = errors.New("refusing to change links of the host's namespace")

// VethConfig describes a veth pair for [Netns.AddVeth]. Zero fields take the
// kernel's defaults (random MAC, MTU 1500).
type VethConfig struct {
	// Name is the end created in the receiver's namespace.
	Name string
	// Peer is the namespace of the other end; it must not be nil.
	Peer *Netns
	// PeerName is the other end's name inside Peer.
	PeerName string
	// MAC and PeerMAC set the ends' hardware addresses.
	MAC, PeerMAC net.HardwareAddr
	// MTU sets both ends' MTU.
	MTU int
	// NoARP sets IFF_NOARP on both ends. The kernel then sends no ARP,
	// neighbour discovery, DAD or solicited-node MLD on them; tests must add
	// permanent neighbours ([Netns.AddNeigh]) for unicast to reach the peer.
	NoARP bool
}

// AddVeth creates a veth pair with one end, c.Name, in ns and the other,
// c.PeerName, directly in c.Peer. Both ends stay down. Deleting either end,
// or either namespace, removes both.
func (ns *Netns) AddVeth(c VethConfig) error {
	if ns == nil || c.Peer == nil {
		return errHostNetns
	}
	v := &netlink.Veth{
		LinkAttrs:        netlink.LinkAttrs{Name: c.Name, HardwareAddr: c.MAC, MTU: c.MTU},
		PeerName:         c.PeerName,
		PeerHardwareAddr: c.PeerMAC,
		PeerNamespace:    netlink.NsFd(c.Peer.fd),
		PeerMTU:          uint32(c.MTU),
	}
	if err := ns.nl.LinkAdd(v); err != nil {
		return fmt.Errorf("add veth %s/%s - %s/%s: %w", ns.Name, c.Name, c.Peer.Name, c.PeerName, err)
	}
	if c.NoARP {
		if err := ns.SetNoARP(c.Name); err != nil {
			return err
		}
		if err := c.Peer.SetNoARP(c.PeerName); err != nil {
			return err
		}
	}
	return nil
}

// AddBridge creates a bridge named name in ns, down.
func (ns *Netns) AddBridge(name string) error {
	if ns == nil {
		return errHostNetns
	}
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}
	if err := ns.nl.LinkAdd(br); err != nil {
		return fmt.Errorf("add bridge %s/%s: %w", ns.Name, name, err)
	}
	return nil
}

// SetMaster enslaves link to the bridge (or other master) named master.
func (ns *Netns) SetMaster(link, master string) error {
	l, err := ns.link(link)
	if err != nil {
		return err
	}
	m, err := ns.link(master)
	if err != nil {
		return err
	}
	if err := ns.nl.LinkSetMaster(l, m); err != nil {
		return fmt.Errorf("set master of %s/%s to %s: %w", ns.Name, link, master, err)
	}
	return nil
}

// SetUp brings link up.
func (ns *Netns) SetUp(link string) error {
	l, err := ns.link(link)
	if err != nil {
		return err
	}
	if err := ns.nl.LinkSetUp(l); err != nil {
		return fmt.Errorf("set %s/%s up: %w", ns.Name, link, err)
	}
	return nil
}

// WaitOperUp waits, up to timeout, until link's operational state is up.
// Until then the kernel's link watcher has not attached the link's qdisc and
// silently drops what is sent on it (TCP recovers by retransmitting; UDP
// datagrams are lost), so exact tests wait for this after [Netns.SetUp].
func (ns *Netns) WaitOperUp(link string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		l, err := ns.link(link)
		if err != nil {
			return err
		}
		if l.Attrs().OperState == netlink.OperUp {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s/%s not operationally up after %v (state %s)", ns.Name, link, timeout, l.Attrs().OperState)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// SetDown brings link down.
func (ns *Netns) SetDown(link string) error {
	l, err := ns.link(link)
	if err != nil {
		return err
	}
	if err := ns.nl.LinkSetDown(l); err != nil {
		return fmt.Errorf("set %s/%s down: %w", ns.Name, link, err)
	}
	return nil
}

// SetMTU sets link's MTU.
func (ns *Netns) SetMTU(link string, mtu int) error {
	l, err := ns.link(link)
	if err != nil {
		return err
	}
	if err := ns.nl.LinkSetMTU(l, mtu); err != nil {
		return fmt.Errorf("set mtu of %s/%s to %d: %w", ns.Name, link, mtu, err)
	}
	return nil
}

// SetNoARP sets IFF_NOARP on link (see [VethConfig.NoARP]).
func (ns *Netns) SetNoARP(link string) error {
	l, err := ns.link(link)
	if err != nil {
		return err
	}
	if err := ns.nl.LinkSetARPOff(l); err != nil {
		return fmt.Errorf("set noarp on %s/%s: %w", ns.Name, link, err)
	}
	return nil
}

// DelLink deletes link (both ends, for a veth).
func (ns *Netns) DelLink(link string) error {
	l, err := ns.link(link)
	if err != nil {
		return err
	}
	if err := ns.nl.LinkDel(l); err != nil {
		return fmt.Errorf("delete %s/%s: %w", ns.Name, link, err)
	}
	return nil
}

// AddAddr adds the address prefix (like 10.1.2.1/24 or fd00::1/64) to link.
// IPv6 addresses get IFA_F_NODAD, so they send no duplicate address
// detection probes and are usable as soon as the link is up and
// [Netns.WaitAddrUsable] returns.
func (ns *Netns) AddAddr(link string, prefix netip.Prefix) error {
	l, err := ns.link(link)
	if err != nil {
		return err
	}
	a := &netlink.Addr{IPNet: &net.IPNet{
		IP:   prefix.Addr().AsSlice(),
		Mask: net.CIDRMask(prefix.Bits(), prefix.Addr().BitLen()),
	}}
	if prefix.Addr().Is6() {
		a.Flags = unix.IFA_F_NODAD
	}
	if err := ns.nl.AddrAdd(l, a); err != nil {
		return fmt.Errorf("add address %s to %s/%s: %w", prefix, ns.Name, link, err)
	}
	return nil
}

// WaitAddrUsable waits, up to timeout, until the kernel delivers packets for
// addr (an address of a link in ns) locally: its local route exists. For
// IPv6 that route is added by a deferred work item once the link is up, even
// with IFA_F_NODAD; until then packets to addr are counted on the link and
// dropped, so exact tests wait for this after [Netns.SetUp].
func (ns *Netns) WaitAddrUsable(addr netip.Addr, timeout time.Duration) error {
	if ns == nil {
		return errHostNetns
	}
	deadline := time.Now().Add(timeout)
	for {
		rs, err := ns.nl.RouteGet(addr.AsSlice())
		if err == nil && len(rs) > 0 && rs[0].Type == unix.RTN_LOCAL {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: address %s not usable after %v (route %v, %v)", ns.Name, addr, timeout, rs, err)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// AddNeigh adds a permanent neighbour entry on link mapping ip to mac, so the
// kernel never sends ARP or neighbour solicitations for ip.
func (ns *Netns) AddNeigh(link string, ip netip.Addr, mac net.HardwareAddr) error {
	l, err := ns.link(link)
	if err != nil {
		return err
	}
	fam := netlink.FAMILY_V4
	if ip.Is6() {
		fam = netlink.FAMILY_V6
	}
	n := &netlink.Neigh{
		LinkIndex:    l.Attrs().Index,
		Family:       fam,
		State:        netlink.NUD_PERMANENT,
		IP:           ip.AsSlice(),
		HardwareAddr: mac,
	}
	if err := ns.nl.NeighSet(n); err != nil {
		return fmt.Errorf("add neighbour %s lladdr %s on %s/%s: %w", ip, mac, ns.Name, link, err)
	}
	return nil
}

// LinkIndex returns link's ifindex inside the namespace.
func (ns *Netns) LinkIndex(link string) (int, error) {
	l, err := ns.link(link)
	if err != nil {
		return 0, err
	}
	return l.Attrs().Index, nil
}

// HardwareAddr returns link's MAC address.
func (ns *Netns) HardwareAddr(link string) (net.HardwareAddr, error) {
	l, err := ns.link(link)
	if err != nil {
		return nil, err
	}
	return l.Attrs().HardwareAddr, nil
}

func (ns *Netns) link(name string) (netlink.Link, error) {
	if ns == nil {
		return nil, errHostNetns
	}
	l, err := ns.nl.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("find link %s/%s: %w", ns.Name, name, err)
	}
	return l, nil
}
