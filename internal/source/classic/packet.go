package classic

// endpoint is one end of a flow: an address (IPv4 in its 16-byte IPv4-mapped
// form) and a port.
type endpoint struct {
	addr [16]byte
	port uint16
}

// key names a socket by its local and remote ends, or a flow by the end
// whose traffic it holds.
type key struct {
	proto         uint8
	local, remote endpoint
}

// packet is what the per-packet path needs of a captured packet.
type packet struct {
	proto    uint8
	src, dst endpoint
	ipBytes  uint64 // IP header + L4 header + payload (the original length)
	payload  uint64
	seq      uint32 // TCP sequence number of the first payload byte
}

const (
	protoTCP = 6
	protoUDP = 17
)

// parsePacket decodes the network and transport headers of a packet read
// from a SOCK_DGRAM AF_PACKET socket (data starts at the IP header). origLen
// is the packet's length before truncation (tp_len). It reports false for
// what is neither TCP nor UDP, and for fragments after the first (no ports).
func parsePacket(data []byte, origLen int) (packet, bool) {
	var p packet
	if len(data) < 1 || origLen <= 0 {
		return p, false
	}
	var hl int
	switch data[0] >> 4 {
	case 4:
		if len(data) < 20 {
			return p, false
		}
		hl = int(data[0]&0x0f) * 4
		if hl < 20 || len(data) < hl {
			return p, false
		}
		if frag := uint16(data[6]&0x1f)<<8 | uint16(data[7]); frag != 0 {
			return p, false // not the first fragment
		}
		p.proto = data[9]
		p.src.addr = v4mapped(data[12:16])
		p.dst.addr = v4mapped(data[16:20])
	case 6:
		if len(data) < 40 {
			return p, false
		}
		copy(p.src.addr[:], data[8:24])
		copy(p.dst.addr[:], data[24:40])
		next, off := data[6], 40
	ext:
		for {
			switch next {
			case 0, 43, 60: // hop-by-hop, routing, destination options
				if len(data) < off+8 {
					return p, false
				}
				next, off = data[off], off+(int(data[off+1])+1)*8
			case 44: // fragment
				if len(data) < off+8 {
					return p, false
				}
				if frag := uint16(data[off+2])<<8 | uint16(data[off+3]&0xf8); frag != 0 {
					return p, false
				}
				next, off = data[off], off+8
			default:
				break ext
			}
		}
		p.proto, hl = next, off
	default:
		return p, false
	}
	if hl > len(data) { // extension headers longer than what was captured
		return p, false
	}
	l4 := data[hl:]
	var l4hl int
	switch p.proto {
	case protoTCP:
		if len(l4) < 20 {
			return p, false
		}
		l4hl = int(l4[12]>>4) * 4
	case protoUDP:
		if len(l4) < 8 {
			return p, false
		}
		l4hl = 8
	default:
		return p, false
	}
	if p.proto == protoTCP {
		p.seq = uint32(l4[4])<<24 | uint32(l4[5])<<16 | uint32(l4[6])<<8 | uint32(l4[7])
	}
	p.src.port = uint16(l4[0])<<8 | uint16(l4[1])
	p.dst.port = uint16(l4[2])<<8 | uint16(l4[3])
	p.ipBytes = uint64(origLen)
	if h := uint64(hl + l4hl); p.ipBytes > h {
		p.payload = p.ipBytes - h
	}
	return p, true
}

func v4mapped(b []byte) [16]byte {
	return [16]byte{10: 0xff, 11: 0xff, 12: b[0], 13: b[1], 14: b[2], 15: b[3]}
}
