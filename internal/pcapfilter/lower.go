package pcapfilter

import (
	"fmt"
)

// cond is the program before code generation: a boolean tree over tests of
// packet bytes at offsets the link type fixes.
type cond interface{ isCond() }

type (
	cAnd   struct{ l, r cond }
	cOr    struct{ l, r cond }
	cNot   struct{ x cond }
	cConst bool
	// cTest loads ld, ANDs it with mask if mask is not 0, and compares the
	// result with val using op (bpfJEQ, bpfJGT, bpfJGE or bpfJSET).
	cTest struct {
		ld   load
		mask uint32
		op   uint16
		val  uint32
	}
)

// load is a packet load: size bytes (bpfW, bpfH or bpfB) at off, or, if ind,
// at off plus the IPv4 header length 4*(packet[xoff]&0xf).
type load struct {
	size uint16
	off  uint32
	ind  bool
	xoff uint32
}

func (cAnd) isCond()   {}
func (cOr) isCond()    {}
func (cNot) isCond()   {}
func (cConst) isCond() {}
func (cTest) isCond()  {}

// and, or and not build conds, folding constants where that changes no
// decision. A load beyond the packet rejects it at once, whatever encloses
// the test, so "x and false" and "x or true" keep x: in "(x and false) or
// y", a packet too short for x is rejected, not decided by y.
func and(a, b cond) cond {
	if k, ok := a.(cConst); ok {
		if !k {
			return a
		}
		return b
	}
	if k, ok := b.(cConst); ok && bool(k) {
		return a
	}
	return cAnd{a, b}
}

func or(a, b cond) cond {
	if k, ok := a.(cConst); ok {
		if k {
			return a
		}
		return b
	}
	if k, ok := b.(cConst); ok && !bool(k) {
		return a
	}
	return cOr{a, b}
}

func not(a cond) cond {
	if k, ok := a.(cConst); ok {
		return !k
	}
	if n, ok := a.(cNot); ok {
		return n.x
	}
	return cNot{a}
}

func eq(size uint16, off, val uint32) cond {
	return cTest{ld: load{size: size, off: off}, op: bpfJEQ, val: val}
}

// link is where a link type puts the network-layer protocol and header.
type link struct {
	nh      uint32 // offset of the IPv4/IPv6/ARP header
	typeOff uint32 // offset of the 16-bit EtherType-valued protocol field
	raw     bool   // no link header: the IP version nibble tells the protocol
}

func linkFor(lt LinkType) (link, error) {
	switch lt {
	case LinkTypeEthernet:
		return link{nh: 14, typeOff: 12}, nil
	case LinkTypeLinuxSLL:
		return link{nh: 16, typeOff: 14}, nil
	case LinkTypeLinuxSLL2:
		return link{nh: 20, typeOff: 0}, nil
	case LinkTypeRaw:
		return link{raw: true}, nil
	}
	return link{}, fmt.Errorf("link type %s: not supported; supported: %s, %s, %s, %s",
		lt, LinkTypeEthernet, LinkTypeLinuxSLL, LinkTypeLinuxSLL2, LinkTypeRaw)
}

const (
	etherIPv4 = 0x0800
	etherARP  = 0x0806
	etherRARP = 0x8035
	etherIPv6 = 0x86dd

	protoICMP   = 1
	protoTCP    = 6
	protoUDP    = 17
	protoFrag6  = 44
	protoICMPv6 = 58
	protoSCTP   = 132
)

// is tests the packet's network-layer protocol.
func (l link) is(ethertype uint32) cond {
	if l.raw {
		var version uint32
		switch ethertype {
		case etherIPv4:
			version = 0x40
		case etherIPv6:
			version = 0x60
		default:
			return cConst(false)
		}
		return cTest{ld: load{size: bpfB, off: 0}, mask: 0xf0, op: bpfJEQ, val: version}
	}
	return eq(bpfH, l.typeOff, ethertype)
}

// ipProto is "ip proto n": IPv4's protocol field.
func (l link) ipProto(n uint32) cond {
	return and(l.is(etherIPv4), eq(bpfB, l.nh+9, n))
}

// ip6Proto is "ip6 proto n": IPv6's next header, or the next header of a
// fragment header directly after the fixed header.
func (l link) ip6Proto(n uint32) cond {
	nh := l.nh + 6
	return and(l.is(etherIPv6), or(eq(bpfB, nh, n), and(eq(bpfB, nh, protoFrag6), eq(bpfB, l.nh+40, n))))
}

// lower turns the syntax tree into tests for the link type.
func lower(n node, l link) (cond, error) {
	switch n := n.(type) {
	case constNode:
		return cConst(n), nil
	case andNode, orNode:
		var a, b node
		if x, ok := n.(andNode); ok {
			a, b = x.l, x.r
		} else {
			x := n.(orNode)
			a, b = x.l, x.r
		}
		ca, err := lower(a, l)
		if err != nil {
			return nil, err
		}
		cb, err := lower(b, l)
		if err != nil {
			return nil, err
		}
		if _, ok := n.(andNode); ok {
			return and(ca, cb), nil
		}
		return or(ca, cb), nil
	case notNode:
		c, err := lower(n.x, l)
		if err != nil {
			return nil, err
		}
		return not(c), nil
	case protoNode:
		switch n.p {
		case pIP:
			return l.is(etherIPv4), nil
		case pIP6:
			return l.is(etherIPv6), nil
		case pARP:
			return l.is(etherARP), nil
		case pRARP:
			return l.is(etherRARP), nil
		case pTCP:
			return or(l.ipProto(protoTCP), l.ip6Proto(protoTCP)), nil
		case pUDP:
			return or(l.ipProto(protoUDP), l.ip6Proto(protoUDP)), nil
		case pSCTP:
			return or(l.ipProto(protoSCTP), l.ip6Proto(protoSCTP)), nil
		case pICMP:
			return l.ipProto(protoICMP), nil
		case pICMP6:
			return l.ip6Proto(protoICMPv6), nil
		}
	case protoNumNode:
		switch n.fam {
		case pIP:
			return l.ipProto(n.n), nil
		case pIP6:
			return l.ip6Proto(n.n), nil
		default:
			return or(l.ipProto(n.n), l.ip6Proto(n.n)), nil
		}
	case addrNode:
		return l.addr(n), nil
	case portNode:
		return l.port(n), nil
	}
	return nil, fmt.Errorf("internal error: cannot lower %T", n)
}

func byDir(d dir, src, dst cond) cond {
	switch d {
	case dSrc:
		return src
	case dDst:
		return dst
	case dSrcAndDst:
		return and(src, dst)
	}
	return or(src, dst)
}

// addr is host or net. An IPv4 address is matched in IPv4 and, unless ip
// narrows it, in ARP and RARP's sender and target protocol addresses.
func (l link) addr(n addrNode) cond {
	if n.v6 {
		words := func(off uint32) cond {
			var c cond = cConst(true)
			for i := range uint32(4) {
				c = and(c, wordTest(off+4*i, be32(n.addr[4*i:]), be32(n.mask[4*i:])))
			}
			return c
		}
		return and(l.is(etherIPv6), byDir(n.dir, words(l.nh+8), words(l.nh+24)))
	}
	a, m := be32(n.addr[:]), be32(n.mask[:])
	ip := and(l.is(etherIPv4), byDir(n.dir, wordTest(l.nh+12, a, m), wordTest(l.nh+16, a, m)))
	arpAddrs := byDir(n.dir, wordTest(l.nh+14, a, m), wordTest(l.nh+24, a, m))
	switch n.fam {
	case pIP:
		return ip
	case pARP:
		return and(l.is(etherARP), arpAddrs)
	case pRARP:
		return and(l.is(etherRARP), arpAddrs)
	}
	return or(ip, and(or(l.is(etherARP), l.is(etherRARP)), arpAddrs))
}

// wordTest compares the 32-bit word at off, masked, with a. A word the mask
// leaves out is still loaded, as libpcap does before optimisation, so a
// packet too short for it is rejected.
func wordTest(off, a, m uint32) cond {
	switch m {
	case 0:
		return cTest{ld: load{size: bpfW, off: off}, op: bpfJGE, val: 0}
	case 0xffffffff:
		return eq(bpfW, off, a)
	}
	return cTest{ld: load{size: bpfW, off: off}, mask: m, op: bpfJEQ, val: a & m}
}

func be32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// port is port or portrange over TCP, UDP and SCTP (or the one named).
// IPv6: the fixed header's next header only, ports right after it. IPv4:
// fragment offset 0 only, ports after the IHL-sized header.
func (l link) port(n portNode) cond {
	protos := []uint32{protoSCTP, protoTCP, protoUDP} // libpcap's order
	switch n.proto {
	case pTCP:
		protos = []uint32{protoTCP}
	case pUDP:
		protos = []uint32{protoUDP}
	case pSCTP:
		protos = []uint32{protoSCTP}
	}
	anyOf := func(off uint32) cond {
		var c cond = cConst(false)
		for _, p := range protos {
			c = or(c, eq(bpfB, off, p))
		}
		return c
	}
	inRange := func(ld load) cond {
		if n.lo == n.hi {
			return cTest{ld: ld, op: bpfJEQ, val: uint32(n.lo)}
		}
		return and(cTest{ld: ld, op: bpfJGE, val: uint32(n.lo)}, not(cTest{ld: ld, op: bpfJGT, val: uint32(n.hi)}))
	}
	v6 := and(l.is(etherIPv6), and(anyOf(l.nh+6),
		byDir(n.dir, inRange(load{size: bpfH, off: l.nh + 40}), inRange(load{size: bpfH, off: l.nh + 42}))))
	firstFragment := not(cTest{ld: load{size: bpfH, off: l.nh + 6}, op: bpfJSET, val: 0x1fff})
	v4 := and(l.is(etherIPv4), and(anyOf(l.nh+9), and(firstFragment,
		byDir(n.dir, inRange(load{size: bpfH, ind: true, xoff: l.nh, off: l.nh}), inRange(load{size: bpfH, ind: true, xoff: l.nh, off: l.nh + 2})))))
	return or(v6, v4)
}
