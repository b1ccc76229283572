// Package pcapfilter compiles the common pcap-filter(7) expressions into
// classic BPF, in pure Go (no libpcap, no cgo), for `netmeter capture
// [FILTER]` and the SDK's WithPcapFilter.
//
// The compiled program accepts exactly the packets libpcap's program for
// the same expression accepts, tested packet by packet against `tcpdump
// -ddd` in the same VM (and the kernel decides as the VM). Where
// libpcap's optimiser changes a decision, this package decides as libpcap's
// unoptimised program (`tcpdump -O`) does: on truncated packets (too short
// for a byte the filter reads; the optimiser drops and reorders loads) and
// in the rare expressions the optimiser miscompiles ("net N and N" in libpcap
// 1.10). Programs are up to about twice the size of libpcap's optimised
// ones.
//
// What is not supported is rejected with an [*Error] that names the token
// and its position, never compiled to something that approximates it.
//
// # Grammar
//
//	expr      = term { ("and" | "&&" | "or" | "||") (term | id) }
//	term      = ("not" | "!") term | "(" expr ")" | primitive
//	primitive = pname                        (ip ip6 arp rarp tcp udp sctp icmp icmp6)
//	          | [pname] [dir] [kind] id      (at least one of dir and kind)
//	          | [ip | ip6] "proto" id
//	dir       = "src" | "dst" | "src or dst" | "src and dst" | "dst or src" | "dst and src"
//	kind      = "host" | "net" | "port" | "portrange"
//	id        = value | ("not" | "!") id | "(" id { ("and" | "or") id } ")"
//	value     = IPv4 | IPv6 | IPv4 "/" bits | IPv6 "/" bits | IPv4 "mask" IPv4
//	          | net number (10, 172.16, 192.168.1) | port | lo "-" hi | protocol
//
// As in libpcap, "and" and "or" have the same precedence and associate to the
// left ("a or b and c" is "(a or b) and c"); "not" binds tightest. A bare id
// after "and"/"or" repeats the last qualifiers: "port 80 or 443", "host
// 10.0.0.1 and not 10.0.0.2", "host (10.0.0.1 or 10.0.0.2)". Numbers are
// decimal, 0x hexadecimal or 0-prefixed octal, as libpcap reads them.
// "ip proto" and "proto" take a number or one of \tcp, \udp, \icmp, \igmp,
// \sctp.
//
// # Semantics (libpcap 1.10's, on purpose)
//
//   - host and net without ip/ip6/arp/rarp match IPv4 source or destination,
//     and for an IPv4 address also the ARP and RARP sender/target protocol
//     addresses; an IPv6 address matches IPv6 only. "net 10" is 10.0.0.0/8,
//     "net 172.16" is 172.16.0.0/16; "net" with host bits set is an error.
//   - port and portrange apply to TCP, UDP and SCTP over IPv4 and IPv6 unless
//     tcp, udp or sctp narrows them. IPv4: only a packet whose fragment offset
//     is 0 (an unfragmented packet or a first fragment) can match, and the
//     header length comes from IHL. IPv6: only the fixed header's Next Header
//     is examined and the ports are read right after the 40-byte header, so a
//     packet with any extension header (hop-by-hop, routing, fragment, …)
//     never matches a port filter.
//   - tcp, udp, sctp, icmp6, "ip6 proto N" and "proto N" on IPv6 look through
//     at most one fragment header directly after the fixed header (Next
//     Header 44); other extension headers hide the protocol. icmp and "ip
//     proto N" are IPv4 only.
//   - The link-layer type is matched at its fixed offset: an Ethernet frame
//     with an 802.1Q tag is not ip or ip6 (a Linux AF_PACKET socket usually
//     sees frames with the tag already stripped into metadata).
//   - A load beyond the end of a (truncated) packet rejects it, whatever the
//     expression, as in the kernel. Checks are made in libpcap's order (terms
//     left to right, source before destination, address words in order,
//     words a netmask leaves out included), and no load is moved, so a
//     truncated packet is decided as libpcap's unoptimised program decides
//     it.
//   - An expression found to match nothing is an error, as libpcap says
//     "expression rejects all packets": "arp" on raw IP, "ip and ip6", "icmp
//     and icmp6". The check follows the protocol tests along each path of the
//     program, so it finds fewer such expressions than libpcap's optimiser
//     (the others compile to a program that accepts nothing).
//
// Link types: Ethernet (LINKTYPE_ETHERNET), Linux cooked v1 and v2
// (LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2) and raw IP (LINKTYPE_RAW, the
// version nibble selects IPv4 or IPv6).
//
// Not supported (rejected with the offending token): host, port and protocol
// names, ether/vlan/mpls and other link-layer primitives, gateway, broadcast,
// multicast, less/greater/len, byte-offset and arithmetic expressions
// (tcp[13] & 2 != 0), protochain and the other protocols libpcap knows.
package pcapfilter
