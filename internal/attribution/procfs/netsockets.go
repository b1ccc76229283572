package procfs

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
)

// NetSocket is one line of /proc/net/{tcp,udp}{,6}: a socket of the reader's
// network namespace. Addresses of IPv4 peers of dual-stack sockets
// (::ffff:a.b.c.d) are unmapped, so they compare equal to what an IPv4
// packet carries.
type NetSocket struct {
	Protocol uint8 // 6 (TCP) or 17 (UDP), as the caller said
	Local    netip.AddrPort
	Remote   netip.AddrPort
	State    uint8 // TCP state (1 established … 12); 7 for unconnected UDP
	UID      uint32
	// Inode is the socket's inode (the "socket:[N]" of /proc/<pid>/fd); 0
	// for sockets no file refers to any more (TIME_WAIT, orphans).
	Inode uint64
}

// ParseNetSockets appends to dst the sockets of one /proc/net/{tcp,udp}{,6}
// file, whose bytes are b (the first line is the header). The address width
// (8 or 32 hex digits) says the family. A malformed line is an error naming
// it; the sockets before it are returned.
func ParseNetSockets(b []byte, protocol uint8, dst []NetSocket) ([]NetSocket, error) {
	first := true
	for line := 1; len(b) > 0; line++ {
		var l []byte
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			l, b = b[:i], b[i+1:]
		} else {
			l, b = b, nil
		}
		if first {
			first = false
			continue // "  sl  local_address rem_address   st ..."
		}
		if len(bytes.TrimSpace(l)) == 0 {
			continue
		}
		s, ok := parseNetLine(l)
		if !ok {
			return dst, fmt.Errorf("parse /proc/net line %d: malformed %q", line, truncate(l, 80))
		}
		s.Protocol = protocol
		dst = append(dst, s)
	}
	return dst, nil
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// parseNetLine parses "sl: local remote st tx:rx tr:tm retr uid timeout
// inode ..." without allocating.
func parseNetLine(l []byte) (NetSocket, bool) {
	var s NetSocket
	var field [10][]byte
	n := 0
	for n < len(field) {
		l = bytes.TrimLeft(l, " \t")
		if len(l) == 0 {
			break
		}
		end := bytes.IndexAny(l, " \t")
		if end < 0 {
			end = len(l)
		}
		field[n], l = l[:end], l[end:]
		n++
	}
	if n < len(field) || len(field[0]) < 2 || field[0][len(field[0])-1] != ':' {
		return s, false
	}
	var ok bool
	if s.Local, ok = parseHexAddrPort(field[1]); !ok {
		return s, false
	}
	if s.Remote, ok = parseHexAddrPort(field[2]); !ok || s.Remote.Addr().Is4() != s.Local.Addr().Is4() {
		return s, false
	}
	st, ok := parseHex(field[3])
	if !ok || len(field[3]) != 2 {
		return s, false
	}
	s.State = uint8(st)
	uid, ok := parseDecimal(field[7])
	if !ok || uid > 1<<32-1 {
		return s, false
	}
	s.UID = uint32(uid)
	if s.Inode, ok = parseDecimal(field[9]); !ok {
		return s, false
	}
	if l, r := s.Local.Addr(), s.Remote.Addr(); l.Is4In6() || r.Is4In6() {
		// An IPv4 peer of a dual-stack socket: both ends are IPv4, an
		// unspecified one (a listener, an unconnected socket) included.
		l, r = unmap(l), unmap(r)
		if !l.Is4() || !r.Is4() {
			return s, false
		}
		s.Local = netip.AddrPortFrom(l, s.Local.Port())
		s.Remote = netip.AddrPortFrom(r, s.Remote.Port())
	}
	return s, true
}

// parseHexAddrPort parses "0100007F:0277" (IPv4) or 32 hex digits and a port
// (IPv6). The kernel prints each 32-bit word of the address in host byte
// order.
func parseHexAddrPort(b []byte) (netip.AddrPort, bool) {
	i := bytes.IndexByte(b, ':')
	if i < 0 || len(b)-i-1 != 4 {
		return netip.AddrPort{}, false
	}
	port, ok := parseHex(b[i+1:])
	if !ok {
		return netip.AddrPort{}, false
	}
	a := b[:i]
	var buf [16]byte
	switch len(a) {
	case 8, 32:
	default:
		return netip.AddrPort{}, false
	}
	for w := 0; w*8 < len(a); w++ {
		v, ok := parseHex(a[w*8 : w*8+8])
		if !ok {
			return netip.AddrPort{}, false
		}
		binary.NativeEndian.PutUint32(buf[w*4:], uint32(v))
	}
	var addr netip.Addr
	if len(a) == 8 {
		addr = netip.AddrFrom4([4]byte(buf[:4]))
	} else {
		addr = netip.AddrFrom16(buf)
	}
	return netip.AddrPortFrom(addr, uint16(port)), true
}

// parseHex parses 1–8 hex digits.
func parseHex(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 8 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			n = n<<4 | uint64(c-'0')
		case c >= 'A' && c <= 'F':
			n = n<<4 | uint64(c-'A'+10)
		case c >= 'a' && c <= 'f':
			n = n<<4 | uint64(c-'a'+10)
		default:
			return 0, false
		}
	}
	return n, true
}

func unmap(a netip.Addr) netip.Addr {
	if a.Is6() && a.IsUnspecified() {
		return netip.IPv4Unspecified()
	}
	return a.Unmap()
}
