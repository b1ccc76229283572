package output

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/netmeter/netmeter/internal/snapshot"
)

// Processes writes one row per process of s (the `netmeter top` table, like
// nethogs): pid, user, program, whether it exited, live sockets, current
// IP-byte rates, and IP-byte and payload totals since netmeter first saw it.
// Rows are sorted by current rate (sent+received), highest first, then by
// pid; exited processes come after live ones, and the unattributed buckets
// come last as "[kernel]", "[overflow]", … with no pid. Bucket rates are
// the last interval's bytes divided by s.Interval.
func Processes(w io.Writer, s snapshot.Snapshot, opt TableOptions) error {
	txRate, rxRate := rateHeaders(opt)
	rows := [][]string{{"PID", "USER", "PROGRAM", "STATE", "SOCKETS", txRate, rxRate, "TX BYTES", "RX BYTES", "TX PAYLOAD", "RX PAYLOAD"}}
	align := []int{right, left, left, left, right, right, right, right, right, right, right}

	procs := make([]*snapshot.Process, len(s.Processes))
	for i := range s.Processes {
		procs[i] = &s.Processes[i]
	}
	slices.SortStableFunc(procs, func(a, b *snapshot.Process) int {
		return cmp.Or(
			cmp.Compare(b2i(a.Exited), b2i(b.Exited)),
			cmpDesc(a.TxRate.Current+a.RxRate.Current, b.TxRate.Current+b.RxRate.Current),
			cmp.Compare(a.PID, b.PID),
		)
	})
	f := formatter{opt}
	for _, p := range procs {
		state := "live"
		if p.Exited {
			state = "exited"
		}
		rows = append(rows, []string{
			strconv.Itoa(p.PID), orDash(p.User), ProgramName(p), state, strconv.Itoa(p.Sockets),
			f.rate(p.TxRate.Current), f.rate(p.RxRate.Current),
			f.bytes(p.Total.TxBytes), f.bytes(p.Total.RxBytes),
			f.bytes(p.Total.TxPayload), f.bytes(p.Total.RxPayload),
		})
	}
	for i := range s.Unattributed {
		b := &s.Unattributed[i]
		tx, rx := BucketRates(b, s.Interval)
		rows = append(rows, []string{
			"-", "-", BucketName(b), "-", "-",
			f.rate(tx), f.rate(rx),
			f.bytes(b.Total.TxBytes), f.bytes(b.Total.RxBytes),
			f.bytes(b.Total.TxPayload), f.bytes(b.Total.RxPayload),
		})
	}
	return flush(w, rows, align)
}

// Connections writes one row per connection of s (the `netmeter top
// --connections` table, like iftop -t): protocol, local and remote endpoint
// (IPv6 in brackets, "*" when unbound or unconnected), TCP state or
// "closed", the owning process as pid/comm and, for a connection between
// two local sockets, the peer process; current IP-byte rates and totals.
// Tx is from the local end toward the remote end. Rows are sorted by
// current rate (sent+received), highest first, then by cookie; closed
// connections come after open ones.
func Connections(w io.Writer, s snapshot.Snapshot, opt TableOptions) error {
	txRate, rxRate := rateHeaders(opt)
	rows := [][]string{{"PROTO", "LOCAL", "REMOTE", "STATE", "PROCESS", "PEER", txRate, rxRate, "TX BYTES", "RX BYTES", "RTT", "RETRANS"}}
	align := []int{left, left, left, left, left, left, right, right, right, right, right, right}

	conns := make([]*snapshot.Connection, len(s.Connections))
	for i := range s.Connections {
		conns[i] = &s.Connections[i]
	}
	slices.SortStableFunc(conns, func(a, b *snapshot.Connection) int {
		return cmp.Or(
			cmp.Compare(b2i(a.Closed), b2i(b.Closed)),
			cmpDesc(a.TxRate.Current+a.RxRate.Current, b.TxRate.Current+b.RxRate.Current),
			cmp.Compare(a.Cookie, b.Cookie),
		)
	})
	f := formatter{opt}
	for _, c := range conns {
		peer := "-"
		if c.Peer != nil {
			peer = ownerText(*c.Peer)
		}
		rows = append(rows, []string{
			ProtoName(c), FormatEndpoint(c.Local), FormatEndpoint(c.Remote), ConnState(c),
			ownerText(c.Owner), peer,
			f.rate(c.TxRate.Current), f.rate(c.RxRate.Current),
			f.bytes(c.Total.TxBytes), f.bytes(c.Total.RxBytes),
			RTTText(c.TCP), retransText(c.TCP),
		})
	}
	return flush(w, rows, align)
}

// EngineNote is the line printed above the process and connection tables
// when their numbers are approximate (the classic engine): "" otherwise.
func EngineNote(s snapshot.Snapshot) string {
	e := s.Engine
	if e == nil || !e.Approximate {
		return ""
	}
	note := "approximate: " + e.Kind + " engine (packet capture joined to /proc; connections shorter than a /proc scan are partly unattributed)"
	if e.CaptureDropped > 0 {
		note += fmt.Sprintf("; %d packets dropped by the capture ring", e.CaptureDropped)
	}
	return note
}

// RTTText is a connection's smoothed RTT ("850µs", "12.4ms", "1.20s"), "-"
// without TCP health.
func RTTText(t *snapshot.TCPStats) string {
	if t == nil || t.SRTT == 0 {
		return "-"
	}
	return Micros(uint64(t.SRTT))
}

// Micros formats a duration in microseconds with three significant digits.
func Micros(us uint64) string {
	switch {
	case us < 1000:
		return fmt.Sprintf("%dµs", us)
	case us < 10_000:
		return fmt.Sprintf("%.2fms", float64(us)/1e3)
	case us < 1_000_000:
		return fmt.Sprintf("%.1fms", float64(us)/1e3)
	default:
		return fmt.Sprintf("%.2fs", float64(us)/1e6)
	}
}

// retransText is retransmitted segments over segments sent, since the
// connection opened: "12/4031".
func retransText(t *snapshot.TCPStats) string {
	if t == nil {
		return "-"
	}
	return fmt.Sprintf("%d/%d", t.Total.RetransSegs, t.Total.SegsOut)
}

// FormatEndpoint writes an endpoint as host:port, with an IPv6 address in
// brackets ("[2001:db8::1]:443"). An empty address is "*" (unbound or
// unconnected); a zero port is left out ("10.0.0.1" for ICMP, "*" for an
// unconnected UDP socket's remote end).
func FormatEndpoint(e snapshot.Endpoint) string {
	return HostPort(e.Addr, e.Port)
}

// HostPort joins a host (an address or a name) and a port like
// [FormatEndpoint]: brackets around a host containing ':', "*" for an empty
// host, no ":0" suffix.
func HostPort(host string, port uint16) string {
	if host == "" {
		host = "*"
	} else if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port == 0 {
		return host
	}
	return host + ":" + strconv.FormatUint(uint64(port), 10)
}

// ProgramName is what names a process in a table: its comm, else the base
// name of its executable, else "pid N".
func ProgramName(p *snapshot.Process) string {
	switch {
	case p.Comm != "":
		return p.Comm
	case p.Exe != "":
		return path.Base(p.Exe)
	default:
		return "pid " + strconv.Itoa(p.PID)
	}
}

// BucketName labels unattributed traffic by its reason, in brackets so
// that it cannot be mistaken for a process: "[kernel]", "[overflow]".
func BucketName(b *snapshot.Bucket) string {
	if b.Name == "" {
		return "[unattributed]"
	}
	return "[" + b.Name + "]"
}

// BucketRates is a bucket's IP-byte rate over the last interval (buckets
// carry no Rate of their own): Delta divided by interval, or 0 when the
// interval is not positive.
func BucketRates(b *snapshot.Bucket, interval time.Duration) (tx, rx float64) {
	if interval <= 0 {
		return 0, 0
	}
	sec := interval.Seconds()
	return float64(b.Delta.TxBytes) / sec, float64(b.Delta.RxBytes) / sec
}

// ProtoName is the connection's protocol with a "6" suffix for IPv6, as
// netstat prints it: "tcp", "udp6", "icmp".
func ProtoName(c *snapshot.Connection) string {
	p := c.Proto
	if p == "" {
		p = "?"
	}
	if c.Family == 6 {
		p += "6"
	}
	return p
}

// ConnState is the connection's TCP state, "closed" once the socket is
// gone, or "-".
func ConnState(c *snapshot.Connection) string {
	switch {
	case c.Closed:
		return "closed"
	case c.State != "":
		return c.State
	default:
		return "-"
	}
}

func ownerText(o snapshot.Owner) string {
	if o.PID == 0 && o.Comm == "" {
		return "[no process]" // a socket no process holds (as the live view says)
	}
	name := o.Comm
	if name == "" {
		name = "?"
	}
	return strconv.Itoa(o.PID) + "/" + name
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// cmpDesc orders higher values first; NaN sorts last.
func cmpDesc(a, b float64) int {
	if a != a {
		a = -1
	}
	if b != b {
		b = -1
	}
	return cmp.Compare(b, a)
}

func rateUnit(opt TableOptions) string {
	if opt.Bits {
		return "bit/s"
	}
	return "B/s"
}

// formatter prints rates and byte counts per [TableOptions].
type formatter struct{ opt TableOptions }

func (f formatter) rate(v float64) string {
	if f.opt.Exact {
		return formatExactRate(v, f.opt.Bits)
	}
	return FormatRate(v, f.opt.Bits)
}

func (f formatter) bytes(n uint64) string {
	if f.opt.Exact {
		return strconv.FormatUint(n, 10)
	}
	return FormatBytes(n)
}

func flush(w io.Writer, rows [][]string, align []int) error {
	bw := bufio.NewWriter(w)
	writeAligned(bw, rows, align)
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	return nil
}

// rateHeaders names the two rate columns: plain, or with the unit when
// Exact prints raw numbers.
func rateHeaders(opt TableOptions) (tx, rx string) {
	if opt.Exact {
		return "TX " + rateUnit(opt), "RX " + rateUnit(opt)
	}
	return "TX RATE", "RX RATE"
}
