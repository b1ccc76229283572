package testnet

import (
	"encoding/binary"
	"fmt"
	"os"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ImpairTable is the nftables table the impairment helpers create in a test
// namespace (never in the host's): it goes with the namespace.
const ImpairTable = "nmt_impair"

// DropIn makes the namespace drop incoming IPv4/IPv6 TCP and UDP packets to
// or from port (0 = every port) at the input hook: percent of them, chosen at
// random per packet (nftables numgen random — this kernel has no netem), or
// all of them with percent >= 100. Each call adds a rule; RemoveImpairments
// removes them all. The drops carry reason NETFILTER_DROP.
func (ns *Netns) DropIn(port uint16, percent int) error {
	return ns.addDropRule(nftables.ChainHookInput, port, percent)
}

// DropOut is DropIn at the output hook: the namespace's own packets.
func (ns *Netns) DropOut(port uint16, percent int) error {
	return ns.addDropRule(nftables.ChainHookOutput, port, percent)
}

func (ns *Netns) nft() (*nftables.Conn, *os.File, error) {
	f, err := os.Open(ns.Path())
	if err != nil {
		return nil, nil, fmt.Errorf("testnet: open %s: %w", ns, err)
	}
	c, err := nftables.New(nftables.WithNetNSFd(int(f.Fd())))
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("testnet: nftables in %s: %w", ns, err)
	}
	return c, f, nil
}

func (ns *Netns) addDropRule(hook *nftables.ChainHook, port uint16, percent int) error {
	c, f, err := ns.nft()
	if err != nil {
		return err
	}
	defer f.Close()
	table := c.AddTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: ImpairTable})
	name := "in"
	if hook == nftables.ChainHookOutput {
		name = "out"
	}
	accept := nftables.ChainPolicyAccept
	chain := c.AddChain(&nftables.Chain{
		Name: name, Table: table, Hooknum: hook, Priority: nftables.ChainPriorityFilter,
		Type: nftables.ChainTypeFilter, Policy: &accept,
	})
	var e []expr.Any
	// meta l4proto {tcp, udp}: both have their ports at the same offsets.
	if port != 0 {
		p := make([]byte, 2)
		binary.BigEndian.PutUint16(p, port)
		for _, off := range []uint32{0, 2} { // source port, then destination port
			rule := []expr.Any{
				&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: off, Len: 2},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: p},
			}
			c.AddRule(&nftables.Rule{Table: table, Chain: chain, Exprs: append(rule, dropExprs(percent)...)})
			udp := append([]expr.Any{}, rule...)
			udp[1] = &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_UDP}}
			c.AddRule(&nftables.Rule{Table: table, Chain: chain, Exprs: append(udp, dropExprs(percent)...)})
		}
	} else {
		c.AddRule(&nftables.Rule{Table: table, Chain: chain, Exprs: append(e, dropExprs(percent)...)})
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("testnet: add drop rule in %s: %w", ns, err)
	}
	return nil
}

func dropExprs(percent int) []expr.Any {
	if percent >= 100 {
		return []expr.Any{&expr.Verdict{Kind: expr.VerdictDrop}}
	}
	lim := make([]byte, 4)
	binary.NativeEndian.PutUint32(lim, uint32(percent))
	return []expr.Any{
		&expr.Numgen{Register: 1, Modulus: 100, Type: unix.NFT_NG_RANDOM},
		&expr.Cmp{Op: expr.CmpOpLt, Register: 1, Data: lim},
		&expr.Verdict{Kind: expr.VerdictDrop},
	}
}

// RemoveImpairments deletes ImpairTable (if any) from the namespace.
func (ns *Netns) RemoveImpairments() error {
	c, f, err := ns.nft()
	if err != nil {
		return err
	}
	defer f.Close()
	c.DelTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: ImpairTable})
	if err := c.Flush(); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("testnet: remove %s in %s: %w", ImpairTable, ns, err)
	}
	return nil
}

// Shape replaces the root qdisc of link with a token bucket filter of rate
// bytes per second holding up to limit bytes: traffic above the rate queues,
// which adds queueing delay (a bufferbloated link), and overflow is dropped.
func (ns *Netns) Shape(link string, rate uint64, limit uint32) error {
	l, err := ns.link(link)
	if err != nil {
		return err
	}
	q := &netlink.Tbf{
		QdiscAttrs: netlink.QdiscAttrs{LinkIndex: l.Attrs().Index, Handle: netlink.MakeHandle(1, 0), Parent: netlink.HANDLE_ROOT},
		Rate:       rate, Limit: limit, Buffer: 16 * 1024,
	}
	// tbf takes its burst as a time at the rate, in ticks: convert 16 KiB.
	q.Buffer = uint32(float64(16*1024) / float64(rate) * 1e6 * float64(netlink.TickInUsec()))
	if err := ns.nl.QdiscReplace(q); err != nil {
		return fmt.Errorf("testnet: tbf on %s in %s: %w", link, ns, err)
	}
	return nil
}

// Unshape puts link's default qdisc back.
func (ns *Netns) Unshape(link string) error {
	l, err := ns.link(link)
	if err != nil {
		return err
	}
	q := &netlink.GenericQdisc{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: l.Attrs().Index, Handle: netlink.MakeHandle(1, 0), Parent: netlink.HANDLE_ROOT}, QdiscType: "tbf"}
	if err := ns.nl.QdiscDel(q); err != nil {
		return fmt.Errorf("testnet: remove qdisc on %s in %s: %w", link, ns, err)
	}
	return nil
}
