package ipfix

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// A strict decoder of IPFIX Messages (RFC 7011 §3), written from the RFC
// rather than from the encoder: it checks every length, knows templates only
// from Template Sets it has seen, and decodes data records by element ID.

type record struct {
	templateID   uint16
	src, dst     netip.Addr
	sport, dport uint16
	proto        uint8
	octets       uint64
	packets      uint64
	start, end   uint64
}

type message struct {
	length     int
	exportTime uint32
	seq        uint32
	domain     uint32
	templates  []uint16 // template IDs defined in this message, in order
	records    []record
}

type decoder struct {
	templates map[uint16][]field
}

func newDecoder() *decoder { return &decoder{templates: map[uint16][]field{}} }

func (d *decoder) decode(b []byte) (message, error) {
	var m message
	if len(b) < headerLen {
		return m, fmt.Errorf("message of %d bytes is shorter than the header", len(b))
	}
	if v := binary.BigEndian.Uint16(b); v != version {
		return m, fmt.Errorf("version %d", v)
	}
	m.length = int(binary.BigEndian.Uint16(b[2:]))
	if m.length != len(b) {
		return m, fmt.Errorf("header length %d, message %d bytes", m.length, len(b))
	}
	m.exportTime = binary.BigEndian.Uint32(b[4:])
	m.seq = binary.BigEndian.Uint32(b[8:])
	m.domain = binary.BigEndian.Uint32(b[12:])
	for rest := b[headerLen:]; len(rest) > 0; {
		if len(rest) < setHeaderLen {
			return m, fmt.Errorf("%d bytes left, less than a set header", len(rest))
		}
		id, n := binary.BigEndian.Uint16(rest), int(binary.BigEndian.Uint16(rest[2:]))
		if n < setHeaderLen || n > len(rest) {
			return m, fmt.Errorf("set %d: length %d with %d bytes left", id, n, len(rest))
		}
		body := rest[setHeaderLen:n]
		rest = rest[n:]
		var err error
		switch {
		case id == templateSetID:
			err = d.templateSet(&m, body)
		case id >= 256:
			err = d.dataSet(&m, id, body)
		default:
			err = fmt.Errorf("unexpected set ID %d", id)
		}
		if err != nil {
			return m, err
		}
	}
	return m, nil
}

func (d *decoder) templateSet(m *message, b []byte) error {
	for len(b) >= recordHeaderLen {
		id, count := binary.BigEndian.Uint16(b), int(binary.BigEndian.Uint16(b[2:]))
		b = b[recordHeaderLen:]
		if id < 256 {
			return fmt.Errorf("template ID %d < 256", id)
		}
		if count == 0 {
			return fmt.Errorf("template %d: withdrawal (must not be sent over UDP)", id)
		}
		var fs []field
		for range count {
			if len(b) < fieldSpecLen {
				return fmt.Errorf("template %d: truncated", id)
			}
			f := field{binary.BigEndian.Uint16(b), binary.BigEndian.Uint16(b[2:])}
			b = b[fieldSpecLen:]
			if f.id&0x8000 != 0 {
				return fmt.Errorf("template %d: enterprise element %d", id, f.id&0x7fff)
			}
			if f.length == 0xffff {
				return fmt.Errorf("template %d: variable-length element %d", id, f.id)
			}
			fs = append(fs, f)
		}
		d.templates[id] = fs
		m.templates = append(m.templates, id)
	}
	if len(b) != 0 {
		return fmt.Errorf("template set: %d bytes of padding", len(b))
	}
	return nil
}

func (d *decoder) dataSet(m *message, id uint16, b []byte) error {
	fs, ok := d.templates[id]
	if !ok {
		return fmt.Errorf("data set %d before its template", id)
	}
	n := recordLen(fs)
	if len(b) < n {
		return fmt.Errorf("data set %d: %d bytes, a record is %d", id, len(b), n)
	}
	for len(b) >= n {
		r := record{templateID: id}
		for _, f := range fs {
			v := b[:f.length]
			b = b[f.length:]
			if err := r.set(f, v); err != nil {
				return fmt.Errorf("data set %d: %w", id, err)
			}
		}
		m.records = append(m.records, r)
	}
	if len(b) != 0 {
		return fmt.Errorf("data set %d: %d trailing bytes (padding is allowed but this encoder adds none)", id, len(b))
	}
	return nil
}

func (r *record) set(f field, v []byte) error {
	want := map[uint16]int{
		ieSourceIPv4Address: 4, ieDestinationIPv4Address: 4, ieSourceIPv6Address: 16, ieDestinationIPv6Address: 16,
		ieSourceTransportPort: 2, ieDestinationTransportPort: 2, ieProtocolIdentifier: 1,
		ieOctetDeltaCount: 8, iePacketDeltaCount: 8, ieFlowStartMilliseconds: 8, ieFlowEndMilliseconds: 8,
	}[f.id]
	if want == 0 {
		return fmt.Errorf("unknown element %d", f.id)
	}
	if len(v) != want {
		return fmt.Errorf("element %d: %d bytes, want %d", f.id, len(v), want)
	}
	switch f.id {
	case ieSourceIPv4Address, ieSourceIPv6Address:
		r.src, _ = netip.AddrFromSlice(v)
	case ieDestinationIPv4Address, ieDestinationIPv6Address:
		r.dst, _ = netip.AddrFromSlice(v)
	case ieSourceTransportPort:
		r.sport = binary.BigEndian.Uint16(v)
	case ieDestinationTransportPort:
		r.dport = binary.BigEndian.Uint16(v)
	case ieProtocolIdentifier:
		r.proto = v[0]
	case ieOctetDeltaCount:
		r.octets = binary.BigEndian.Uint64(v)
	case iePacketDeltaCount:
		r.packets = binary.BigEndian.Uint64(v)
	case ieFlowStartMilliseconds:
		r.start = binary.BigEndian.Uint64(v)
	case ieFlowEndMilliseconds:
		r.end = binary.BigEndian.Uint64(v)
	}
	return nil
}

// checkStream decodes a stream of messages and checks the rules that span
// messages: one domain, sequence numbers counting data records, the first
// message carrying the templates.
func checkStream(msgs [][]byte, domain uint32, maxLen int) ([]message, error) {
	d := newDecoder()
	var out []message
	var seq uint32
	var errs []error
	for i, b := range msgs {
		m, err := d.decode(b)
		if err != nil {
			return out, fmt.Errorf("message %d: %w", i, err)
		}
		if i == 0 && len(m.templates) == 0 {
			errs = append(errs, errors.New("first message has no templates"))
		}
		if m.domain != domain {
			errs = append(errs, fmt.Errorf("message %d: domain %d, want %d", i, m.domain, domain))
		}
		if m.seq != seq {
			errs = append(errs, fmt.Errorf("message %d: sequence %d, want %d", i, m.seq, seq))
		}
		if maxLen > 0 && m.length > maxLen {
			errs = append(errs, fmt.Errorf("message %d: %d bytes > %d", i, m.length, maxLen))
		}
		seq += uint32(len(m.records))
		out = append(out, m)
	}
	return out, errors.Join(errs...)
}
