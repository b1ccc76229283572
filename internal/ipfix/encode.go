package ipfix

import (
	"encoding/binary"
	"net/netip"
)

// Information elements, from IANA's "IPFIX Information Elements" registry
// (all in the IETF space, enterprise number 0).
const (
	ieOctetDeltaCount          = 1   // unsigned64
	iePacketDeltaCount         = 2   // unsigned64
	ieProtocolIdentifier       = 4   // unsigned8
	ieSourceTransportPort      = 7   // unsigned16
	ieSourceIPv4Address        = 8   // ipv4Address
	ieDestinationTransportPort = 11  // unsigned16
	ieDestinationIPv4Address   = 12  // ipv4Address
	ieSourceIPv6Address        = 27  // ipv6Address
	ieDestinationIPv6Address   = 28  // ipv6Address
	ieFlowStartMilliseconds    = 152 // dateTimeMilliseconds
	ieFlowEndMilliseconds      = 153 // dateTimeMilliseconds
)

// Wire constants of RFC 7011 §3.
const (
	version          = 10
	headerLen        = 16 // version, length, export time, sequence, domain
	setHeaderLen     = 4  // set ID, length
	templateSetID    = 2
	templateIDv4     = 256
	templateIDv6     = 257
	recordHeaderLen  = 4 // template ID, field count
	fieldSpecLen     = 4 // element ID, field length (no enterprise number)
	maxMessageLength = 1<<16 - 1
)

type field struct{ id, length uint16 }

// The two templates differ only in the address elements. A record is laid
// out in this order, without padding.
var (
	templateV4 = []field{
		{ieSourceIPv4Address, 4}, {ieDestinationIPv4Address, 4},
		{ieSourceTransportPort, 2}, {ieDestinationTransportPort, 2}, {ieProtocolIdentifier, 1},
		{ieOctetDeltaCount, 8}, {iePacketDeltaCount, 8},
		{ieFlowStartMilliseconds, 8}, {ieFlowEndMilliseconds, 8},
	}
	templateV6 = []field{
		{ieSourceIPv6Address, 16}, {ieDestinationIPv6Address, 16},
		{ieSourceTransportPort, 2}, {ieDestinationTransportPort, 2}, {ieProtocolIdentifier, 1},
		{ieOctetDeltaCount, 8}, {iePacketDeltaCount, 8},
		{ieFlowStartMilliseconds, 8}, {ieFlowEndMilliseconds, 8},
	}
	recordLenV4 = recordLen(templateV4)
	recordLenV6 = recordLen(templateV6)
	// templateSetLen is the Template Set that carries both templates.
	templateSetLen = setHeaderLen + 2*recordHeaderLen + fieldSpecLen*(len(templateV4)+len(templateV6))
	// minMessage is the smallest message size limit the encoder works
	// with: the templates alone, or one IPv6 record in its Data Set.
	minMessage = headerLen + max(templateSetLen, setHeaderLen+recordLenV6)
)

func recordLen(fs []field) int {
	n := 0
	for _, f := range fs {
		n += int(f.length)
	}
	return n
}

// flow is one unidirectional data record.
type flow struct {
	src, dst     netip.Addr // both IPv4 or both IPv6
	sport, dport uint16
	proto        uint8
	octets       uint64
	packets      uint64
	start, end   uint64 // milliseconds since the Unix epoch
}

func (f *flow) templateID() uint16 {
	if f.src.Is4() {
		return templateIDv4
	}
	return templateIDv6
}

func (f *flow) recordLen() int {
	if f.src.Is4() {
		return recordLenV4
	}
	return recordLenV6
}

// appendRecord appends f in the layout of its template.
func appendRecord(b []byte, f *flow) []byte {
	b = append(b, f.src.AsSlice()...)
	b = append(b, f.dst.AsSlice()...)
	b = binary.BigEndian.AppendUint16(b, f.sport)
	b = binary.BigEndian.AppendUint16(b, f.dport)
	b = append(b, f.proto)
	b = binary.BigEndian.AppendUint64(b, f.octets)
	b = binary.BigEndian.AppendUint64(b, f.packets)
	b = binary.BigEndian.AppendUint64(b, f.start)
	return binary.BigEndian.AppendUint64(b, f.end)
}

func appendTemplateSet(b []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, templateSetID)
	b = binary.BigEndian.AppendUint16(b, uint16(templateSetLen))
	for _, t := range []struct {
		id     uint16
		fields []field
	}{{templateIDv4, templateV4}, {templateIDv6, templateV6}} {
		b = binary.BigEndian.AppendUint16(b, t.id)
		b = binary.BigEndian.AppendUint16(b, uint16(len(t.fields)))
		for _, f := range t.fields {
			b = binary.BigEndian.AppendUint16(b, f.id)
			b = binary.BigEndian.AppendUint16(b, f.length)
		}
	}
	return b
}

// encoder packs templates and data records into IPFIX Messages of at most
// max bytes, one buffer reused for every message, and hands each finished
// message to send. Sequence numbers count the data records of every message
// handed to send (RFC 7011 §3.1), whether or not send succeeded: a lost
// message shows as a gap at the collector.
type encoder struct {
	max    int
	domain uint32
	seq    uint32
	send   func([]byte) error

	buf        []byte
	exportTime uint32
	setStart   int    // offset of the open Data Set's header; 0 when none
	setID      uint16 // the open Data Set's template ID
	records    uint32 // data records in buf
	err        error  // first error of send; no more messages after it

	messages uint64 // messages handed to send
}

func newEncoder(maxLen int, domain uint32, send func([]byte) error) *encoder {
	return &encoder{max: maxLen, domain: domain, send: send, buf: make([]byte, 0, maxLen)}
}

// begin starts a batch of messages stamped with exportTime (seconds since
// the Unix epoch), the first one carrying the templates when templates is
// set.
func (e *encoder) begin(exportTime uint32, templates bool) {
	e.exportTime, e.err = exportTime, nil
	e.open()
	if templates {
		e.buf = appendTemplateSet(e.buf)
	}
}

func (e *encoder) open() {
	e.buf = append(e.buf[:0], make([]byte, headerLen)...)
	e.setStart, e.records = 0, 0
}

// add appends f, sending the message first when f does not fit.
func (e *encoder) add(f *flow) {
	if e.err != nil {
		return
	}
	id, n := f.templateID(), f.recordLen()
	need := n
	if e.setStart == 0 || e.setID != id {
		need += setHeaderLen
	}
	if len(e.buf)+need > e.max {
		e.flush() // and open the next message
		if e.err != nil {
			return
		}
		need = n + setHeaderLen
	}
	if need > n { // a new Data Set
		e.closeSet()
		e.setStart, e.setID = len(e.buf), id
		e.buf = binary.BigEndian.AppendUint16(e.buf, id)
		e.buf = append(e.buf, 0, 0) // length, set by closeSet
	}
	e.buf = appendRecord(e.buf, f)
	e.records++
}

func (e *encoder) closeSet() {
	if e.setStart != 0 {
		binary.BigEndian.PutUint16(e.buf[e.setStart+2:], uint16(len(e.buf)-e.setStart))
		e.setStart = 0
	}
}

// flush sends what the current message holds, if anything.
func (e *encoder) flush() {
	if e.err != nil || len(e.buf) == headerLen {
		return
	}
	e.closeSet()
	binary.BigEndian.PutUint16(e.buf[0:], version)
	binary.BigEndian.PutUint16(e.buf[2:], uint16(len(e.buf)))
	binary.BigEndian.PutUint32(e.buf[4:], e.exportTime)
	binary.BigEndian.PutUint32(e.buf[8:], e.seq)
	binary.BigEndian.PutUint32(e.buf[12:], e.domain)
	e.err = e.send(e.buf)
	e.seq += e.records
	e.messages++
	e.open()
}
