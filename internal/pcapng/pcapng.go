// Package pcapng writes packet captures in the pcapng format
// (draft-ietf-opsawg-pcapng) that tcpdump, tshark and Wireshark read: one
// section header, interface description blocks with a name and a
// description, and enhanced packet blocks with nanosecond timestamps, a
// direction flag and an optional comment.
//
// It is a writer only, in pure Go, for `netmeter capture` and the SDK's
// WithStorePcap; tests read the files back with tshark and tcpdump.
package pcapng

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
)

// Block types and option codes used here (pcapng spec, sections 4 and 3.5).
const (
	blockSHB = 0x0A0D0D0A
	blockIDB = 0x00000001
	blockEPB = 0x00000006

	byteOrderMagic = 0x1A2B3C4D

	optEnd     = 0
	optComment = 1
	// SHB options.
	optSHBUserAppl = 4
	// IDB options.
	optIfName        = 2
	optIfDescription = 3
	optIfTsresol     = 9
	// EPB options.
	optEPBFlags = 2
)

// MaxOptionLen is the longest option value (a comment, an interface name or
// description) the format can hold; longer strings are cut to it.
const MaxOptionLen = 0xFFFF

// MaxPacketLen bounds the captured bytes of one packet, so a block's total
// length always fits its 32-bit field.
const MaxPacketLen = 1 << 24

// Direction is where a packet went, recorded in the EPB flags word.
type Direction uint8

// Directions as the epb_flags option encodes them (bits 0-1).
const (
	DirUnknown  Direction = 0
	DirInbound  Direction = 1
	DirOutbound Direction = 2
)

// Interface describes one interface description block.
type Interface struct {
	// LinkType is the LINKTYPE_ value of every packet on the interface
	// (1 Ethernet, 101 raw IP, 276 Linux cooked v2).
	LinkType uint16
	// SnapLen is the most bytes captured per packet (0: no limit).
	SnapLen uint32
	// Name is if_name (e.g. "eth0"), Description if_description (e.g.
	// "netmeter: pid 1234 (curl)"). Either may be empty.
	Name, Description string
}

// Packet is one enhanced packet block.
type Packet struct {
	Interface int       // index returned by AddInterface
	Time      time.Time // stored with nanosecond resolution
	Data      []byte    // captured bytes (at most MaxPacketLen)
	OrigLen   int       // length on the wire; len(Data) if smaller
	Direction Direction
	Comment   string // opt_comment; empty for none
}

// Writer writes one pcapng section. It is not safe for concurrent use.
type Writer struct {
	w    *bufio.Writer
	nifs int
	buf  []byte
}

// NewWriter writes the section header block, naming app as the writing
// application (shb_userappl), and returns a Writer. Call Flush at the end.
func NewWriter(w io.Writer, app string) (*Writer, error) {
	pw := &Writer{w: bufio.NewWriterSize(w, 256<<10)}
	body := make([]byte, 16)
	le := binary.LittleEndian
	le.PutUint32(body[0:], byteOrderMagic)
	le.PutUint16(body[4:], 1) // major
	le.PutUint16(body[6:], 0) // minor
	le.PutUint64(body[8:], ^uint64(0))
	body = appendStringOpt(body, optSHBUserAppl, app)
	body = appendEnd(body)
	if err := pw.block(blockSHB, body); err != nil {
		return nil, err
	}
	return pw, nil
}

// AddInterface writes an interface description block and returns the
// interface's index for Packet.Interface. Interfaces may be added at any
// time, before the first packet that uses them.
func (pw *Writer) AddInterface(ifc Interface) (int, error) {
	body := make([]byte, 8, 64)
	le := binary.LittleEndian
	le.PutUint16(body[0:], ifc.LinkType)
	le.PutUint32(body[4:], ifc.SnapLen)
	body = appendStringOpt(body, optIfName, ifc.Name)
	body = appendStringOpt(body, optIfDescription, ifc.Description)
	body = appendOpt(body, optIfTsresol, []byte{9}) // nanoseconds
	body = appendEnd(body)
	if err := pw.block(blockIDB, body); err != nil {
		return 0, err
	}
	pw.nifs++
	return pw.nifs - 1, nil
}

// WritePacket writes one enhanced packet block.
func (pw *Writer) WritePacket(p Packet) error {
	if p.Interface < 0 || p.Interface >= pw.nifs {
		return fmt.Errorf("pcapng: packet on interface %d, but %d interfaces were added", p.Interface, pw.nifs)
	}
	if len(p.Data) > MaxPacketLen {
		return fmt.Errorf("pcapng: packet of %d bytes exceeds %d", len(p.Data), MaxPacketLen)
	}
	orig := p.OrigLen
	if orig < len(p.Data) {
		orig = len(p.Data)
	}
	if uint64(orig) > 0xFFFFFFFF {
		orig = 0xFFFFFFFF
	}
	ts := uint64(p.Time.UnixNano())
	if p.Time.IsZero() || p.Time.UnixNano() < 0 {
		ts = 0
	}
	b := pw.buf[:0]
	b = binary.LittleEndian.AppendUint32(b, uint32(p.Interface))
	b = binary.LittleEndian.AppendUint32(b, uint32(ts>>32))
	b = binary.LittleEndian.AppendUint32(b, uint32(ts))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(p.Data)))
	b = binary.LittleEndian.AppendUint32(b, uint32(orig))
	b = append(b, p.Data...)
	b = pad4(b)
	hasOpts := false
	if p.Direction == DirInbound || p.Direction == DirOutbound {
		b = appendOpt(b, optEPBFlags, binary.LittleEndian.AppendUint32(nil, uint32(p.Direction)))
		hasOpts = true
	}
	if p.Comment != "" {
		b = appendStringOpt(b, optComment, p.Comment)
		hasOpts = true
	}
	if hasOpts {
		b = appendEnd(b)
	}
	pw.buf = b
	return pw.block(blockEPB, b)
}

// Flush writes buffered blocks to the underlying writer.
func (pw *Writer) Flush() error { return pw.w.Flush() }

// ErrTooLong is returned for a block whose length does not fit 32 bits.
var ErrTooLong = errors.New("pcapng: block too long")

func (pw *Writer) block(typ uint32, body []byte) error {
	total := uint64(12 + len(body))
	if total > 0xFFFFFFFF {
		return ErrTooLong
	}
	var hdr [8]byte
	binary.LittleEndian.PutUint32(hdr[0:], typ)
	binary.LittleEndian.PutUint32(hdr[4:], uint32(total))
	if _, err := pw.w.Write(hdr[:]); err != nil {
		return err
	}
	if _, err := pw.w.Write(body); err != nil {
		return err
	}
	_, err := pw.w.Write(hdr[4:8])
	return err
}

func pad4(b []byte) []byte {
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func appendOpt(b []byte, code uint16, val []byte) []byte {
	if len(val) > MaxOptionLen {
		val = val[:MaxOptionLen]
	}
	b = binary.LittleEndian.AppendUint16(b, code)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(val)))
	b = append(b, val...)
	return pad4(b)
}

// appendStringOpt appends a UTF-8 string option; empty strings are omitted.
// A string cut at MaxOptionLen is cut at a rune boundary.
func appendStringOpt(b []byte, code uint16, s string) []byte {
	if s == "" {
		return b
	}
	if len(s) > MaxOptionLen {
		n := MaxOptionLen
		for n > 0 && s[n]&0xC0 == 0x80 {
			n--
		}
		s = s[:n]
	}
	return appendOpt(b, code, []byte(s))
}

func appendEnd(b []byte) []byte { return append(b, 0, 0, 0, 0) }
