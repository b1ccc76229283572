package pcapfilter

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
)

// The packet corpus: crafted packets whose fields sit on and around the
// values the test expressions name, in every shape the filters distinguish
// (protocols, IPv4 options and fragments, IPv6 extension headers, ARP/RARP,
// VLAN tags, other EtherTypes), then truncated at every interesting length,
// then random bytes behind each EtherType. Deterministic: a fixed seed.

// l3packet is a network-layer packet and the EtherType it travels under.
type l3packet struct {
	name      string
	ethertype uint16
	vlan      bool // an 802.1Q tag in front of the EtherType (Ethernet only)
	data      []byte
}

var (
	corpusV4 = []string{"10.0.0.1", "10.0.0.2", "10.1.2.3", "10.255.255.255", "11.0.0.1", "192.168.0.1",
		"192.168.255.254", "192.169.0.1", "172.16.5.4", "172.31.0.1", "8.8.8.8", "127.0.0.1", "0.0.0.0", "1.2.3.4", "1.2.3.5"}
	corpusV6 = []string{"::1", "::2", "fe80::1", "fe80::1:2", "fe81::1", "2001:db8::1", "2001:db8::2",
		"2001:db8:0:1::1", "2001:db9::1", "::ffff:10.0.0.1", "ff02::1"}
	corpusPorts  = []uint16{0, 1, 7, 8, 20, 21, 22, 23, 53, 54, 79, 80, 81, 443, 999, 1000, 1001, 1500, 1999, 2000, 2001, 8080, 65535}
	corpusProtos = []uint8{protoTCP, protoUDP, protoSCTP, protoICMP, protoICMPv6, 47, 2, 0, 50, 255}
)

func pick[T any](r *rand.Rand, s []T) T { return s[r.IntN(len(s))] }

func v4(s string) [4]byte  { return netip.MustParseAddr(s).As4() }
func v6(s string) [16]byte { return netip.MustParseAddr(s).As16() }

// transport returns a header for proto with the ports (where it has them).
func transport(proto uint8, sport, dport uint16) []byte {
	var b []byte
	switch proto {
	case protoTCP:
		b = make([]byte, 20)
		b[12] = 5 << 4
		b[13] = 0x02
	case protoUDP:
		b = make([]byte, 8)
		binary.BigEndian.PutUint16(b[4:], 8)
	case protoSCTP:
		b = make([]byte, 12)
	case protoICMP, protoICMPv6:
		b = []byte{8, 0, 0, 0, 0, 1, 0, 1}
		binary.BigEndian.PutUint16(b[0:], sport) // type/code from the "ports"
		return append(b, "payload"...)
	default:
		b = make([]byte, 16)
	}
	binary.BigEndian.PutUint16(b[0:], sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	return append(b, "payload"...)
}

type v4opts struct {
	ihl      int    // header length in 32-bit words, 5 to 15
	fragOff  uint16 // in 8-byte units
	mf       bool
	df       bool
	protoRaw uint8
}

func ipv4(src, dst [4]byte, o v4opts, payload []byte) []byte {
	if o.ihl == 0 {
		o.ihl = 5
	}
	h := make([]byte, 4*o.ihl)
	h[0] = 0x40 | byte(o.ihl)
	binary.BigEndian.PutUint16(h[2:], uint16(len(h)+len(payload)))
	frag := o.fragOff & 0x1fff
	if o.mf {
		frag |= 0x2000
	}
	if o.df {
		frag |= 0x4000
	}
	binary.BigEndian.PutUint16(h[6:], frag)
	h[8] = 64
	h[9] = o.protoRaw
	copy(h[12:], src[:])
	copy(h[16:], dst[:])
	for i := 20; i < len(h); i++ {
		h[i] = 1 // NOP options
	}
	return append(h, payload...)
}

// ipv6 builds the fixed header, the extension headers exts (each a
// next-header type: 0 hop-by-hop, 43 routing, 44 fragment, 60 destination
// options) and the payload of protocol nh.
func ipv6(src, dst [16]byte, exts []uint8, nh uint8, fragOff uint16, payload []byte) []byte {
	var ext []byte
	for i, e := range exts {
		next := nh
		if i+1 < len(exts) {
			next = exts[i+1]
		}
		if e == protoFrag6 {
			f := make([]byte, 8)
			f[0] = next
			binary.BigEndian.PutUint16(f[2:], fragOff<<3|1)
			binary.BigEndian.PutUint32(f[4:], 0x1234)
			ext = append(ext, f...)
		} else {
			o := make([]byte, 8)
			o[0] = next
			o[2] = 1 // PadN
			o[3] = 4
			ext = append(ext, o...)
		}
	}
	h := make([]byte, 40)
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:], uint16(len(ext)+len(payload)))
	h[6] = nh
	if len(exts) > 0 {
		h[6] = exts[0]
	}
	h[7] = 64
	copy(h[8:], src[:])
	copy(h[24:], dst[:])
	return append(append(h, ext...), payload...)
}

func arpPacket(op uint16, spa, tpa [4]byte) []byte {
	b := make([]byte, 28)
	binary.BigEndian.PutUint16(b[0:], 1)
	binary.BigEndian.PutUint16(b[2:], etherIPv4)
	b[4], b[5] = 6, 4
	binary.BigEndian.PutUint16(b[6:], op)
	copy(b[8:], []byte{2, 0, 0, 0, 0, 1})
	copy(b[14:], spa[:])
	copy(b[24:], tpa[:])
	return b
}

// frame puts p behind the link-layer header of lt.
func frame(lt LinkType, p l3packet) []byte {
	var h []byte
	switch lt {
	case LinkTypeEthernet:
		h = []byte{0, 0, 0x5e, 0, 0, 1, 2, 0, 0, 0, 0, 2}
		if p.vlan {
			h = append(h, 0x81, 0x00, 0x00, 0x64)
		}
		h = binary.BigEndian.AppendUint16(h, p.ethertype)
	case LinkTypeLinuxSLL:
		h = []byte{0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 2, 0, 0}
		h = binary.BigEndian.AppendUint16(h, p.ethertype)
	case LinkTypeLinuxSLL2:
		h = binary.BigEndian.AppendUint16(nil, p.ethertype)
		h = append(h, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 2, 0, 0, 0, 0, 2, 0, 0)
	case LinkTypeRaw:
	}
	return append(h, p.data...)
}

// corpusL3 returns the structured packets, before truncation.
func corpusL3(r *rand.Rand) []l3packet {
	var ps []l3packet
	add := func(name string, et uint16, data []byte) {
		ps = append(ps, l3packet{name: name, ethertype: et, data: data})
	}
	// IPv4 with every transport, ports and addresses around the filter
	// values, some with options, some fragmented.
	for i := range 260 {
		proto := pick(r, corpusProtos)
		sp, dp := pick(r, corpusPorts), pick(r, corpusPorts)
		if i%5 == 0 {
			sp, dp = uint16(r.IntN(65536)), uint16(r.IntN(65536))
		}
		o := v4opts{protoRaw: proto, df: r.IntN(2) == 0}
		kind := "v4"
		switch r.IntN(8) {
		case 0:
			o.ihl = 6 + r.IntN(10)
			kind = "v4opts"
		case 1:
			o.mf = true // first fragment: ports present
			kind = "v4frag-first"
		case 2:
			o.fragOff = uint16(1 + r.IntN(0x1fff))
			o.mf = r.IntN(2) == 0
			kind = "v4frag-later"
		}
		src, dst := pick(r, corpusV4), pick(r, corpusV4)
		add(fmt.Sprintf("%s %s %s>%s %d>%d", kind, protoName(proto), src, dst, sp, dp), etherIPv4,
			ipv4(v4(src), v4(dst), o, transport(proto, sp, dp)))
	}
	// IPv6, with no extension header, a fragment header, or others.
	for i := range 200 {
		proto := pick(r, corpusProtos)
		sp, dp := pick(r, corpusPorts), pick(r, corpusPorts)
		if i%5 == 0 {
			sp, dp = uint16(r.IntN(65536)), uint16(r.IntN(65536))
		}
		var exts []uint8
		kind := "v6"
		var fragOff uint16
		switch r.IntN(6) {
		case 0:
			exts, kind = []uint8{protoFrag6}, "v6frag"
			if r.IntN(2) == 0 {
				fragOff, kind = uint16(1+r.IntN(100)), "v6frag-later"
			}
		case 1:
			exts, kind = []uint8{0}, "v6hbh"
		case 2:
			exts, kind = []uint8{0, protoFrag6}, "v6hbh+frag"
		case 3:
			exts, kind = []uint8{60}, "v6dstopts"
		}
		src, dst := pick(r, corpusV6), pick(r, corpusV6)
		add(fmt.Sprintf("%s %s %s>%s %d>%d", kind, protoName(proto), src, dst, sp, dp), etherIPv6,
			ipv6(v6(src), v6(dst), exts, proto, fragOff, transport(proto, sp, dp)))
	}
	// ARP and RARP requests and replies.
	for i := range 40 {
		et := uint16(etherARP)
		if i%4 == 3 {
			et = etherRARP
		}
		spa, tpa := pick(r, corpusV4), pick(r, corpusV4)
		add(fmt.Sprintf("arp(%#x) %s>%s", et, spa, tpa), et, arpPacket(uint16(1+i%2), v4(spa), v4(tpa)))
	}
	// VLAN-tagged IPv4 and IPv6 (Ethernet), and other EtherTypes carrying
	// IP-looking bytes.
	for i := range 20 {
		src, dst := pick(r, corpusV4), pick(r, corpusV4)
		p := l3packet{name: fmt.Sprintf("vlan v4 tcp %s>%s", src, dst), ethertype: etherIPv4, vlan: true,
			data: ipv4(v4(src), v4(dst), v4opts{protoRaw: protoTCP}, transport(protoTCP, 80, pick(r, corpusPorts)))}
		ps = append(ps, p)
		et := pick(r, []uint16{0x88cc, 0x8100, 0x0842, 0x88e5, 0x0805})
		add(fmt.Sprintf("ethertype %#x with v4 bytes", et), et,
			ipv4(v4(src), v4(dst), v4opts{protoRaw: protoUDP}, transport(protoUDP, 53, 53)))
		if i%2 == 0 {
			s6, d6 := pick(r, corpusV6), pick(r, corpusV6)
			ps = append(ps, l3packet{name: "vlan v6 udp", ethertype: etherIPv6, vlan: true,
				data: ipv6(v6(s6), v6(d6), nil, protoUDP, 0, transport(protoUDP, 53, 443))})
		}
	}
	// Packets some table expressions need.
	add("rarp 10.0.0.1>192.168.0.1", etherRARP, arpPacket(3, v4("10.0.0.1"), v4("192.168.0.1")))
	add("arp 172.16.5.4>192.168.0.1", etherARP, arpPacket(1, v4("172.16.5.4"), v4("192.168.0.1")))
	add("arp 192.168.0.1>10.0.0.1", etherARP, arpPacket(2, v4("192.168.0.1"), v4("10.0.0.1")))
	add("v4 udp 10.0.0.1>8.8.8.8 40000>53", etherIPv4, ipv4(v4("10.0.0.1"), v4("8.8.8.8"), v4opts{protoRaw: protoUDP}, transport(protoUDP, 40000, 53)))
	add("v4 udp 8.8.8.8>10.0.0.1 53>40000", etherIPv4, ipv4(v4("8.8.8.8"), v4("10.0.0.1"), v4opts{protoRaw: protoUDP}, transport(protoUDP, 53, 40000)))
	// Raw IP packets whose version nibble disagrees with the EtherType.
	for range 6 {
		b := ipv4(v4(pick(r, corpusV4)), v4(pick(r, corpusV4)), v4opts{protoRaw: protoTCP}, transport(protoTCP, 80, 80))
		b[0] = byte(r.IntN(16))<<4 | 5
		add(fmt.Sprintf("v4 with version %d", b[0]>>4), etherIPv4, b)
	}
	// The traffic of internal/source/capture's live comparison with
	// tcpdump, so its expressions are checked here too (no random draws:
	// the packets above stay as they were).
	for _, pr := range []uint8{protoTCP, protoUDP} {
		for _, ports := range [][2]uint16{{40000, 5000}, {5000, 40000}, {40000, 6000}, {6000, 40000}, {40000, 7777}, {40000, 8080}, {8080, 40000}, {40000, 9999}} {
			add(fmt.Sprintf("live v4 %s %d>%d", protoName(pr), ports[0], ports[1]), etherIPv4,
				ipv4(v4("10.0.0.1"), v4("10.0.0.2"), v4opts{protoRaw: pr}, transport(pr, ports[0], ports[1])))
			add(fmt.Sprintf("live v4 %s %d>%d back", protoName(pr), ports[0], ports[1]), etherIPv4,
				ipv4(v4("10.0.0.2"), v4("10.0.0.1"), v4opts{protoRaw: pr}, transport(pr, ports[0], ports[1])))
			add(fmt.Sprintf("live v6 %s %d>%d", protoName(pr), ports[0], ports[1]), etherIPv6,
				ipv6(v6("2001:db8::1"), v6("2001:db8::2"), nil, pr, 0, transport(pr, ports[0], ports[1])))
		}
	}
	return ps
}

func protoName(p uint8) string {
	switch p {
	case protoTCP:
		return "tcp"
	case protoUDP:
		return "udp"
	case protoSCTP:
		return "sctp"
	case protoICMP:
		return "icmp"
	case protoICMPv6:
		return "icmp6"
	}
	return fmt.Sprintf("proto%d", p)
}

type corpusPacket struct {
	name string
	data []byte
	// complete: every byte any supported filter may load is present.
	// Otherwise the packet is truncated (a runt or malformed packet).
	complete bool
}

// corpus returns the packets for lt: the structured ones framed, truncated
// copies of a third of them at a random length plus every length of a few,
// and random bytes behind each EtherType.
func corpus(lt LinkType) []corpusPacket {
	r := rand.New(rand.NewPCG(9, 2026))
	l3 := corpusL3(r)
	var out []corpusPacket
	for _, p := range l3 {
		if p.vlan && lt != LinkTypeEthernet {
			continue
		}
		out = append(out, corpusPacket{p.name, frame(lt, p), true})
	}
	n := len(out)
	for i := 0; i < n; i += 3 {
		p := out[i]
		cut := r.IntN(len(p.data))
		out = append(out, corpusPacket{fmt.Sprintf("%s cut at %d", p.name, cut), p.data[:cut], false})
	}
	for _, prefix := range []string{"v4 tcp", "v4 udp", "v4opts tcp", "v4frag-first udp", "v6 tcp", "v6frag tcp", "v6hbh udp", "arp"} {
		for _, p := range out[:n] {
			if !strings.HasPrefix(p.name, prefix) {
				continue
			}
			for cut := range len(p.data) {
				out = append(out, corpusPacket{fmt.Sprintf("%s cut at %d", p.name, cut), p.data[:cut], false})
			}
			break
		}
	}
	// Random bytes: long enough for every load (an IPv4 header of 60 bytes
	// and ports), or shorter.
	for i := range 120 {
		et := []uint16{etherIPv4, etherIPv6, etherARP, etherRARP}[i%4]
		complete := i < 80
		data := make([]byte, 64+r.IntN(64))
		if !complete {
			data = data[:r.IntN(64)]
		}
		for j := range data {
			data[j] = byte(r.Uint32())
		}
		if len(data) > 0 && lt == LinkTypeRaw {
			data[0] = byte(4+2*(i%2))<<4 | data[0]&0xf
		}
		out = append(out, corpusPacket{fmt.Sprintf("random %d bytes behind %#x", len(data), et), frame(lt, l3packet{ethertype: et, data: data}), complete})
	}
	return out
}
