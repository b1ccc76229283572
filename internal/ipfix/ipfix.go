// Package ipfix exports netmeter's per-interval connection deltas as IPFIX
// (RFC 7011) flow records to a standard collector (nfcapd, pmacct, Elastic,
// ntopng, …), over UDP or TCP.
//
// Each [snapshot.Connection] with traffic in the interval becomes up to two
// unidirectional data records, one per direction that carried packets:
// local → remote with the connection's Delta.TxBytes and Delta.TxPackets,
// remote → local with Delta.RxBytes and Delta.RxPackets. The byte counts are
// IP bytes (IP and transport headers included), which is what IPFIX's
// octetDeltaCount means. A record's flowStartMilliseconds and
// flowEndMilliseconds are the interval's bounds, the start no earlier than
// the connection's FirstSeen.
//
// Two templates are used, 256 for IPv4 and 257 for IPv6, each with the
// information elements sourceIPv4Address/sourceIPv6Address (8/27),
// destinationIPv4Address/destinationIPv6Address (12/28),
// sourceTransportPort (7), destinationTransportPort (11),
// protocolIdentifier (4), octetDeltaCount (1), packetDeltaCount (2),
// flowStartMilliseconds (152) and flowEndMilliseconds (153); counters are
// sent in full 64 bits.
//
// What is not exported:
//   - The owning process. IANA has no information element for a process
//     name, and nfdump (the collector this package is tested against,
//     1.7) skips every enterprise-specific element except a few of Cisco's,
//     Nokia's and CERT's (yaf), so a private element would not show there.
//   - Sockets whose protocol netmeter names "raw" (the protocol number is
//     not in the snapshot); they are counted in [Stats].Skipped. ICMP
//     sockets are exported with protocol 1 or 58 and ports 0.
//
// An unconnected or unbound end (Endpoint.Addr "") is exported as the
// unspecified address of the connection's family (0.0.0.0 or ::), so the
// collector's totals still match netmeter's.
//
// Transport rules (RFC 7011 §10): over UDP the templates go in the first
// message of the first export, again every TemplateRefresh, and again after
// an export in which a message could not be sent (the collector may have
// restarted); over TCP once per connection, which is re-dialled after a
// failed write (a new stream: the sequence number starts again at 0). The
// sequence number of each message is the number of data records sent before
// it in the stream. Every message fits the MTU with the IP and UDP headers,
// and the exporter holds one message buffer whatever the number of
// connections.
package ipfix

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/netmeter/netmeter/internal/snapshot"
)

// Defaults of [Options].
const (
	DefaultNetwork = "udp"
	// DefaultTemplateRefresh is shorter than RFC 6728's 600 s: two
	// templates are 84 bytes, and a restarted collector learns them sooner.
	DefaultTemplateRefresh = time.Minute
	// DefaultMTU is Ethernet's; lower it for tunnels and VPNs.
	DefaultMTU = 1500
)

// dialTimeout bounds connecting to a TCP collector; writeTimeout bounds one
// message's write, so a stalled TCP collector cannot stall Export.
const (
	dialTimeout  = 5 * time.Second
	writeTimeout = 5 * time.Second
)

// Options configure an [Exporter]. The zero value of every field but
// Collector means its default.
type Options struct {
	// Collector is the collector's "host:port".
	Collector string
	// Network is "udp" (default) or "tcp".
	Network string
	// ObservationDomain is the Observation Domain ID of every message.
	ObservationDomain uint32
	// TemplateRefresh is how often the templates are sent again over UDP
	// (default [DefaultTemplateRefresh]); unused over TCP.
	TemplateRefresh time.Duration
	// MTU is the path MTU to the collector in bytes (default
	// [DefaultMTU]): each message is at most MTU minus the IP and UDP
	// headers (28 bytes over IPv4, 48 over IPv6).
	MTU int
}

// Stats are an exporter's counts since New.
type Stats struct {
	Messages uint64 // IPFIX Messages written (or attempted)
	Records  uint64 // data records in them
	// Skipped counts connections with traffic that could not be exported
	// (protocol "raw", or an address that is not of the connection's
	// family).
	Skipped uint64
	// Failed counts messages whose write failed.
	Failed uint64
}

// Exporter sends snapshots' connection deltas to one collector. Its methods
// may be called from several goroutines.
type Exporter struct {
	opt    Options
	maxMsg int
	now    func() time.Time // time.Now; tests replace it

	mu        sync.Mutex
	conn      net.Conn // nil after a failed TCP write, until re-dialled
	enc       *encoder
	templates time.Time // when the templates were last sent; zero: due
	stats     Stats
	closed    bool
	// per export
	failed   uint64
	firstErr error
}

// New checks opt and connects to the collector (for UDP, only resolves it).
func New(opt Options) (*Exporter, error) {
	if opt.Collector == "" {
		return nil, errors.New("ipfix: no collector: set Collector to host:port")
	}
	if opt.Network == "" {
		opt.Network = DefaultNetwork
	}
	if opt.Network != "udp" && opt.Network != "tcp" {
		return nil, fmt.Errorf("ipfix: Network %q: want udp or tcp", opt.Network)
	}
	if opt.TemplateRefresh < 0 {
		return nil, fmt.Errorf("ipfix: TemplateRefresh %v is negative", opt.TemplateRefresh)
	}
	if opt.TemplateRefresh == 0 {
		opt.TemplateRefresh = DefaultTemplateRefresh
	}
	if opt.MTU == 0 {
		opt.MTU = DefaultMTU
	}
	x := &Exporter{opt: opt, now: time.Now}
	if err := x.dial(); err != nil {
		return nil, err
	}
	overhead := 20 + 8 // IPv4 and UDP headers
	if a, ok := x.conn.RemoteAddr().(interface{ AddrPort() netip.AddrPort }); ok && !a.AddrPort().Addr().Unmap().Is4() {
		overhead = 40 + 8
	}
	x.maxMsg = min(opt.MTU-overhead, maxMessageLength)
	if x.maxMsg < minMessage {
		x.conn.Close()
		return nil, fmt.Errorf("ipfix: MTU %d is too small: an IPFIX message needs up to %d bytes with the headers", opt.MTU, minMessage+overhead)
	}
	x.enc = newEncoder(x.maxMsg, opt.ObservationDomain, x.write)
	return x, nil
}

func (x *Exporter) dial() error {
	c, err := net.DialTimeout(x.opt.Network, x.opt.Collector, dialTimeout)
	if err != nil {
		return fmt.Errorf("ipfix: collector %s: %w", x.opt.Collector, err)
	}
	x.conn = c
	return nil
}

// write sends one message. Over UDP a failed write (say, the ICMP port
// unreachable of a collector that is down) does not stop the export: the
// next message may well arrive. Over TCP the stream is broken.
func (x *Exporter) write(b []byte) error {
	_ = x.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err := x.conn.Write(b)
	if err == nil {
		return nil
	}
	x.failed++
	if x.firstErr == nil {
		x.firstErr = err
	}
	if x.opt.Network == "tcp" {
		return err
	}
	return nil
}

// Export sends the connections of s that had traffic in its interval.
func (x *Exporter) Export(s *snapshot.Snapshot) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.closed {
		return fmt.Errorf("ipfix: export: %w", net.ErrClosed)
	}
	if s.Time.IsZero() {
		return errors.New("ipfix: export: the snapshot has no time")
	}
	if x.conn == nil {
		if err := x.dial(); err != nil {
			return err
		}
		x.enc.seq, x.templates = 0, time.Time{}
	}
	now := x.now()
	due := x.templates.IsZero() || (x.opt.Network == "udp" && now.Sub(x.templates) >= x.opt.TemplateRefresh)
	x.failed, x.firstErr = 0, nil
	messages0, seq0 := x.enc.messages, x.enc.seq
	x.enc.begin(uint32(now.Unix()), due)

	end := s.Time
	start := end.Add(-s.Interval)
	var f flow
	for i := range s.Connections {
		c := &s.Connections[i]
		d := &c.Delta
		tx, rx := d.TxBytes != 0 || d.TxPackets != 0, d.RxBytes != 0 || d.RxPackets != 0
		if !tx && !rx {
			continue
		}
		if !fill(&f, c, start, end) {
			x.stats.Skipped++
			continue
		}
		if tx {
			f.octets, f.packets = d.TxBytes, d.TxPackets
			x.enc.add(&f)
		}
		if rx {
			f.src, f.dst, f.sport, f.dport = f.dst, f.src, f.dport, f.sport
			f.octets, f.packets = d.RxBytes, d.RxPackets
			x.enc.add(&f)
		}
	}
	x.enc.flush()

	x.stats.Messages += x.enc.messages - messages0
	x.stats.Records += uint64(x.enc.seq - seq0)
	x.stats.Failed += x.failed
	if x.failed == 0 {
		if due {
			x.templates = now
		}
		return nil
	}
	x.templates = time.Time{} // send them again next time
	if x.opt.Network == "tcp" {
		x.conn.Close()
		x.conn = nil
	}
	return fmt.Errorf("ipfix: export to %s: %d of %d messages not sent: %w",
		x.opt.Collector, x.failed, x.enc.messages-messages0, x.firstErr)
}

// fill sets f's addresses, ports, protocol and times from c (src = local);
// false when c cannot be exported.
func fill(f *flow, c *snapshot.Connection, start, end time.Time) bool {
	switch c.Proto {
	case "tcp":
		f.proto = 6
	case "udp":
		f.proto = 17
	case "sctp":
		f.proto = 132
	case "icmp":
		f.proto = 1
		if c.Family == 6 {
			f.proto = 58
		}
	default:
		return false
	}
	var ok bool
	if f.src, ok = addr(c.Local.Addr, c.Family); !ok {
		return false
	}
	if f.dst, ok = addr(c.Remote.Addr, c.Family); !ok {
		return false
	}
	f.sport, f.dport = c.Local.Port, c.Remote.Port
	if f.proto == 1 || f.proto == 58 {
		f.sport, f.dport = 0, 0 // an ICMP socket's "port" is its echo identifier
	}
	if start.Before(c.FirstSeen) {
		start = c.FirstSeen
	}
	if start.After(end) {
		start = end
	}
	f.start, f.end = uint64(start.UnixMilli()), uint64(end.UnixMilli())
	return true
}

// addr parses s as an address of family (4 or 6); "" is the unspecified
// address.
func addr(s string, family int) (netip.Addr, bool) {
	var a netip.Addr
	if s != "" {
		var err error
		if a, err = netip.ParseAddr(s); err != nil {
			return a, false
		}
		a = a.WithZone("")
	}
	switch family {
	case 4:
		if s == "" {
			return netip.IPv4Unspecified(), true
		}
		a = a.Unmap()
		return a, a.Is4()
	case 6:
		if s == "" {
			return netip.IPv6Unspecified(), true
		}
		if a.Is4() {
			a = netip.AddrFrom16(a.As16())
		}
		return a, true
	}
	return a, false
}

// Stats returns the counts since New.
func (x *Exporter) Stats() Stats {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.stats
}

// Close closes the connection to the collector; Export fails after it.
func (x *Exporter) Close() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.closed {
		return nil
	}
	x.closed = true
	if x.conn == nil {
		return nil
	}
	return x.conn.Close()
}
