package ipfix

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/netmeter/netmeter/internal/snapshot"
)

// udpCollector is a UDP socket on loopback that keeps every datagram. A
// goroutine drains it, so bursts larger than the socket buffer arrive whole.
type udpCollector struct {
	t    testing.TB
	conn *net.UDPConn
	got  chan []byte
}

func newUDPCollector(t testing.TB) *udpCollector {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	u := &udpCollector{t: t, conn: c, got: make(chan []byte, 1<<16)}
	u.drain(c)
	t.Cleanup(func() { u.conn.Close() })
	return u
}

func (u *udpCollector) drain(c *net.UDPConn) {
	go func() {
		buf := make([]byte, 1<<16)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			u.got <- slices.Clone(buf[:n])
		}
	}()
}

func (u *udpCollector) addr() string { return u.conn.LocalAddr().String() }

// read returns the datagrams received until none came for 100 ms.
func (u *udpCollector) read() [][]byte {
	var out [][]byte
	for {
		select {
		case b := <-u.got:
			out = append(out, b)
		case <-time.After(100 * time.Millisecond):
			return out
		}
	}
}

// clock is a settable time source for the exporter.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newTestExporter(t testing.TB, opt Options) (*Exporter, *clock) {
	t.Helper()
	x, err := New(opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	c := &clock{t0}
	x.now = c.now
	return x, c
}

func ms(t time.Time) uint64 { return uint64(t.UnixMilli()) }

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

// The records of one snapshot, field by field: both directions, IPv4 and
// IPv6, 64-bit counters, flowStart clamped to FirstSeen, unspecified
// addresses for an unconnected end, ICMP without ports, and what is skipped.
func TestExportRecords(t *testing.T) {
	col := newUDPCollector(t)
	x, _ := newTestExporter(t, Options{Collector: col.addr(), ObservationDomain: 7})
	end := t0.Add(-time.Second)
	start := end.Add(-2 * time.Second)
	mid := start.Add(750 * time.Millisecond)
	s := &snapshot.Snapshot{Time: end, Interval: 2 * time.Second, Connections: []snapshot.Connection{
		{Proto: "tcp", Family: 4, Local: snapshot.Endpoint{Addr: "10.0.0.1", Port: 40000}, Remote: snapshot.Endpoint{Addr: "10.0.0.2", Port: 443},
			FirstSeen: start.Add(-time.Hour), Delta: snapshot.Traffic{TxBytes: 5<<32 + 3, TxPackets: 1<<32 + 1, RxBytes: 600, RxPackets: 10, TxPayload: 1}},
		{Proto: "udp", Family: 6, Local: snapshot.Endpoint{Addr: "2001:db8::1", Port: 5353}, Remote: snapshot.Endpoint{Addr: "2001:db8::2", Port: 53},
			FirstSeen: mid, Delta: snapshot.Traffic{TxBytes: 100, TxPackets: 1}},
		{Proto: "tcp", Family: 4, Local: snapshot.Endpoint{Addr: "10.0.0.1", Port: 40001}, Remote: snapshot.Endpoint{Addr: "10.0.0.3", Port: 80},
			FirstSeen: start, Total: snapshot.Traffic{TxBytes: 1}}, // quiet this interval
		{Proto: "raw", Family: 4, Local: snapshot.Endpoint{Addr: "10.0.0.1"}, Delta: snapshot.Traffic{TxBytes: 84, TxPackets: 1}},
		{Proto: "udp", Family: 4, Local: snapshot.Endpoint{Port: 53}, FirstSeen: start, Delta: snapshot.Traffic{RxBytes: 90, RxPackets: 2}},
		{Proto: "icmp", Family: 6, Local: snapshot.Endpoint{Addr: "fe80::1%eth0", Port: 77}, Remote: snapshot.Endpoint{Addr: "fe80::2"},
			FirstSeen: end.Add(time.Minute), Delta: snapshot.Traffic{TxBytes: 104, TxPackets: 1, RxBytes: 104, RxPackets: 1}},
		{Proto: "tcp", Family: 4, Local: snapshot.Endpoint{Addr: "2001:db8::1", Port: 1}, Remote: snapshot.Endpoint{Addr: "10.0.0.2", Port: 2},
			Delta: snapshot.Traffic{TxBytes: 1, TxPackets: 1}}, // family mismatch
	}}
	if err := x.Export(s); err != nil {
		t.Fatal(err)
	}
	msgs, err := checkStream(col.read(), 7, DefaultMTU-28)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 {
		t.Fatalf("%d messages, want 1", len(msgs))
	}
	m := msgs[0]
	if m.exportTime != uint32(t0.Unix()) {
		t.Errorf("export time %d, want %d", m.exportTime, t0.Unix())
	}
	if !slices.Equal(m.templates, []uint16{templateIDv4, templateIDv6}) {
		t.Errorf("templates %v", m.templates)
	}
	want := []record{
		{templateIDv4, ip("10.0.0.1"), ip("10.0.0.2"), 40000, 443, 6, 5<<32 + 3, 1<<32 + 1, ms(start), ms(end)},
		{templateIDv4, ip("10.0.0.2"), ip("10.0.0.1"), 443, 40000, 6, 600, 10, ms(start), ms(end)},
		{templateIDv6, ip("2001:db8::1"), ip("2001:db8::2"), 5353, 53, 17, 100, 1, ms(mid), ms(end)},
		{templateIDv4, ip("0.0.0.0"), ip("0.0.0.0"), 0, 53, 17, 90, 2, ms(start), ms(end)},
		{templateIDv6, ip("fe80::1"), ip("fe80::2"), 0, 0, 58, 104, 1, ms(end), ms(end)},
		{templateIDv6, ip("fe80::2"), ip("fe80::1"), 0, 0, 58, 104, 1, ms(end), ms(end)},
	}
	if !slices.Equal(m.records, want) {
		t.Errorf("records:\n%s\nwant:\n%s", fmtRecords(m.records), fmtRecords(want))
	}
	if st := x.Stats(); st != (Stats{Messages: 1, Records: 6, Skipped: 2}) {
		t.Errorf("stats %+v", st)
	}
}

func fmtRecords(rs []record) string {
	var b strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&b, "  %+v\n", r)
	}
	return b.String()
}

// manyConns returns n connections with distinct ports, every third IPv6,
// each with traffic in both directions.
func manyConns(n int) []snapshot.Connection {
	cs := make([]snapshot.Connection, n)
	for i := range cs {
		c := snapshot.Connection{Proto: "tcp", Family: 4,
			Local:  snapshot.Endpoint{Addr: "192.0.2.1", Port: uint16(10000 + i)},
			Remote: snapshot.Endpoint{Addr: "198.51.100.7", Port: 443},
			Delta:  snapshot.Traffic{TxBytes: uint64(1000 + i), TxPackets: 2, RxBytes: uint64(i) << 33, RxPackets: 3}}
		if i%3 == 0 {
			c.Family, c.Proto = 6, "udp"
			c.Local.Addr, c.Remote.Addr = "2001:db8::1", "2001:db8:ffff::7"
		}
		cs[i] = c
	}
	return cs
}

// A large snapshot is split into messages that each fit the MTU; sequence
// numbers count data records across messages and exports; every record
// arrives once; only the first message carries templates.
func TestMTUAndSequence(t *testing.T) {
	for _, mtu := range []int{minMessage + 28, 576, 1500, 9000} {
		t.Run(fmt.Sprint(mtu), func(t *testing.T) {
			col := newUDPCollector(t)
			x, c := newTestExporter(t, Options{Collector: col.addr(), MTU: mtu, ObservationDomain: 1})
			// Keep a copy of each message as it is written: loopback
			// drops bursts of a thousand datagrams under the race detector.
			var all [][]byte
			x.enc.send = func(b []byte) error {
				all = append(all, slices.Clone(b))
				return x.write(b)
			}
			conns := manyConns(500)
			s := &snapshot.Snapshot{Time: t0, Interval: time.Second, Connections: conns}
			for range 3 {
				if err := x.Export(s); err != nil {
					t.Fatal(err)
				}
				c.t = c.t.Add(time.Second)
			}
			msgs, err := checkStream(all, 1, mtu-28)
			if err != nil {
				t.Fatal(err)
			}
			var n int
			for i, m := range msgs {
				if i > 0 && len(m.templates) != 0 {
					t.Errorf("message %d repeats the templates", i)
				}
				for _, r := range m.records {
					k := n / 2 % len(conns)
					cn := conns[k]
					o, p := cn.Delta.TxBytes, cn.Delta.TxPackets
					if n%2 == 1 {
						o, p = cn.Delta.RxBytes, cn.Delta.RxPackets
					}
					if r.octets != o || r.packets != p {
						t.Fatalf("record %d: %d bytes %d packets, want connection %d's %d, %d", n, r.octets, r.packets, k, o, p)
					}
					n++
				}
			}
			if n != 3*2*len(conns) {
				t.Errorf("%d records, want %d", n, 3*2*len(conns))
			}
			st := x.Stats()
			t.Logf("MTU %d: %d messages for %d records", mtu, st.Messages, st.Records)
			if st.Records != uint64(n) || st.Messages != uint64(len(msgs)) {
				t.Errorf("stats %+v; got %d messages, %d records", st, len(msgs), n)
			}
		})
	}
}

// Templates are sent at start, again after TemplateRefresh (also in an
// export with no data), and not in between.
func TestTemplateRefresh(t *testing.T) {
	col := newUDPCollector(t)
	x, c := newTestExporter(t, Options{Collector: col.addr(), TemplateRefresh: 30 * time.Second})
	s := &snapshot.Snapshot{Time: t0, Interval: time.Second, Connections: manyConns(2)}
	empty := &snapshot.Snapshot{Time: t0, Interval: time.Second}
	d := newDecoder()
	for _, step := range []struct {
		at        time.Duration
		snap      *snapshot.Snapshot
		messages  int
		templates bool
	}{
		{0, empty, 1, true}, // templates alone at start
		{time.Second, s, 1, false},
		{29 * time.Second, s, 1, false},
		{29 * time.Second, empty, 0, false},
		{30 * time.Second, empty, 1, true},
		{31 * time.Second, s, 1, false},
		{61 * time.Second, s, 1, true},
	} {
		c.t = t0.Add(step.at)
		if err := x.Export(step.snap); err != nil {
			t.Fatal(err)
		}
		got := col.read()
		if len(got) != step.messages {
			t.Fatalf("at %v: %d messages, want %d", step.at, len(got), step.messages)
		}
		for _, b := range got {
			m, err := d.decode(b)
			if err != nil {
				t.Fatalf("at %v: %v", step.at, err)
			}
			if (len(m.templates) > 0) != step.templates {
				t.Errorf("at %v: templates %v, want them: %v", step.at, m.templates, step.templates)
			}
		}
	}
}

// A collector that was down (ICMP port unreachable) gets the templates
// again in the next export, and the sequence numbers show the gap.
func TestUDPCollectorDown(t *testing.T) {
	col := newUDPCollector(t)
	addr := col.addr()
	x, c := newTestExporter(t, Options{Collector: addr})
	s := &snapshot.Snapshot{Time: t0, Interval: time.Second, Connections: manyConns(1)}
	if err := x.Export(s); err != nil {
		t.Fatal(err)
	}
	col.read()
	col.conn.Close()
	// The first write to the closed port succeeds and draws the ICMP error;
	// a later one reports it.
	var failed error
	for i := 0; i < 5 && failed == nil; i++ {
		c.t = c.t.Add(time.Second)
		failed = x.Export(s)
	}
	if failed == nil || !errors.Is(failed, syscall.ECONNREFUSED) {
		t.Fatalf("export to a closed port: %v, want connection refused", failed)
	}
	t.Log(failed)
	col2, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
	if err != nil {
		t.Fatal(err)
	}
	col.conn = col2
	col.drain(col2)
	c.t = c.t.Add(time.Second)
	if err := x.Export(s); err != nil {
		t.Fatal(err)
	}
	got := col.read()
	if len(got) != 1 {
		t.Fatalf("%d messages", len(got))
	}
	m, err := newDecoder().decode(got[0])
	if err != nil {
		t.Fatal(err)
	}
	st := x.Stats()
	if len(m.templates) != 2 || len(m.records) != 2 || uint64(m.seq) != st.Records-2 || st.Failed == 0 {
		t.Errorf("after the collector came back: templates %v, %d records, sequence %d; stats %+v", m.templates, len(m.records), m.seq, st)
	}
}

// Over TCP the templates go once per connection, a broken connection is
// re-dialled, and the new stream's sequence numbers start at 0.
func TestTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	conns := make(chan net.Conn, 2)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(conns)
				return
			}
			conns <- c
		}
	}()
	x, c := newTestExporter(t, Options{Collector: ln.Addr().String(), Network: "tcp", TemplateRefresh: time.Second})
	s := &snapshot.Snapshot{Time: t0, Interval: time.Second, Connections: manyConns(300)}
	first := <-conns
	for range 3 {
		if err := x.Export(s); err != nil {
			t.Fatal(err)
		}
		c.t = c.t.Add(time.Minute) // past TemplateRefresh: unused over TCP
	}
	msgs := readTCP(t, first, x.Stats().Messages)
	if _, err := checkStream(msgs, 0, DefaultMTU-28); err != nil {
		t.Fatal(err)
	}
	d := newDecoder()
	for i, b := range msgs {
		if m, _ := d.decode(b); i > 0 && len(m.templates) > 0 {
			t.Errorf("message %d repeats the templates over TCP", i)
		}
	}

	first.Close()
	var failed error
	for i := 0; i < 10 && failed == nil; i++ {
		failed = x.Export(s)
		time.Sleep(10 * time.Millisecond)
	}
	if failed == nil {
		t.Fatal("exports to a closed connection kept succeeding")
	}
	t.Log(failed)
	messages0 := x.Stats().Messages
	if err := x.Export(s); err != nil {
		t.Fatal(err)
	}
	second := <-conns
	defer second.Close()
	msgs = readTCP(t, second, x.Stats().Messages-messages0)
	if _, err := checkStream(msgs, 0, DefaultMTU-28); err != nil {
		t.Errorf("new connection: %v", err)
	}
}

func readTCP(t *testing.T, c net.Conn, n uint64) [][]byte {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var out [][]byte
	for range n {
		var h [headerLen]byte
		if _, err := io.ReadFull(c, h[:]); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, binary.BigEndian.Uint16(h[2:]))
		copy(b, h[:])
		if _, err := io.ReadFull(c, b[headerLen:]); err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func TestNewErrors(t *testing.T) {
	for _, tt := range []struct {
		opt  Options
		want string
	}{
		{Options{}, "set Collector"},
		{Options{Collector: "127.0.0.1:4739", Network: "sctp"}, `Network "sctp"`},
		{Options{Collector: "127.0.0.1:4739", TemplateRefresh: -time.Second}, "TemplateRefresh"},
		{Options{Collector: "127.0.0.1:4739", MTU: 100}, "MTU 100 is too small"},
		{Options{Collector: "[::1]:4739", MTU: minMessage + 28}, "is too small"}, // IPv6 headers are larger
		{Options{Collector: "no-port"}, "collector no-port"},
	} {
		x, err := New(tt.opt)
		if err == nil {
			x.Close()
			t.Errorf("New(%+v) succeeded", tt.opt)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%+v): %v, want it to say %q", tt.opt, err, tt.want)
		}
	}
	col := newUDPCollector(t)
	x, _ := newTestExporter(t, Options{Collector: col.addr()})
	if err := x.Export(&snapshot.Snapshot{}); err == nil {
		t.Error("a snapshot without time was exported")
	}
	x.Close()
	if err := x.Export(&snapshot.Snapshot{Time: t0}); !errors.Is(err, net.ErrClosed) {
		t.Errorf("export after Close: %v", err)
	}
}

// FuzzRoundTrip encodes fuzzed connections and decodes them with the
// independent decoder: every byte count, address, port and time survives,
// and every message fits its limit.
func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte{10, 0, 0, 1}, []byte{10, 0, 0, 2}, uint16(1), uint16(2), "tcp", uint64(1)<<40, uint64(3), uint64(0), uint64(0), int64(1000), 200)
	f.Add(make([]byte, 16), []byte{}, uint16(0), uint16(53), "udp", uint64(0), uint64(0), uint64(5), uint64(1), int64(0), 0)
	f.Add([]byte{0xfe, 0x80, 15: 1}, []byte{0xfe, 0x80, 15: 2}, uint16(9), uint16(9), "icmp", uint64(1), uint64(1), uint64(1), uint64(1), int64(-5), 1)
	f.Fuzz(func(t *testing.T, local, remote []byte, lport, rport uint16, proto string, txB, txP, rxB, rxP uint64, firstSeen int64, n int) {
		la, lok := netip.AddrFromSlice(local)
		ra, rok := netip.AddrFromSlice(remote)
		fam := 4
		if (lok && la.Is6()) || (rok && ra.Is6()) {
			fam = 6
		}
		c := snapshot.Connection{Proto: proto, Family: fam,
			Local: snapshot.Endpoint{Port: lport}, Remote: snapshot.Endpoint{Port: rport},
			FirstSeen: t0.Add(time.Duration(firstSeen) * time.Millisecond),
			Delta:     snapshot.Traffic{TxBytes: txB, TxPackets: txP, RxBytes: rxB, RxPackets: rxP}}
		if lok {
			c.Local.Addr = la.String()
		}
		if rok {
			c.Remote.Addr = ra.String()
		}
		n = 1 + (n&0xff)%64
		s := &snapshot.Snapshot{Time: t0, Interval: 1500 * time.Millisecond, Connections: slices.Repeat([]snapshot.Connection{c}, n)}

		var msgs [][]byte
		maxLen := minMessage + (n * 7 % 200)
		enc := newEncoder(maxLen, 3, func(b []byte) error { msgs = append(msgs, slices.Clone(b)); return nil })
		x := &Exporter{opt: Options{Network: "udp"}, enc: enc, now: func() time.Time { return t0 }, conn: nopConn{}}
		if err := x.Export(s); err != nil {
			t.Fatal(err)
		}
		got, err := checkStream(msgs, 3, maxLen)
		if err != nil {
			t.Fatal(err)
		}
		var recs []record
		for _, m := range got {
			recs = append(recs, m.records...)
		}
		var f flow
		if !fill(&f, &c, s.Time.Add(-s.Interval), s.Time) {
			if len(recs) != 0 || x.Stats().Skipped != uint64(n) && (txB|txP|rxB|rxP) != 0 {
				t.Fatalf("unexportable connection %+v: %d records, stats %+v", c, len(recs), x.Stats())
			}
			return
		}
		var want []record
		id := f.templateID()
		if txB != 0 || txP != 0 {
			want = append(want, record{id, f.src, f.dst, f.sport, f.dport, f.proto, txB, txP, f.start, f.end})
		}
		if rxB != 0 || rxP != 0 {
			want = append(want, record{id, f.dst, f.src, f.dport, f.sport, f.proto, rxB, rxP, f.start, f.end})
		}
		want = slices.Repeat(want, n)
		if !slices.Equal(recs, want) {
			t.Fatalf("records:\n%s\nwant:\n%s", fmtRecords(recs), fmtRecords(want))
		}
		if f.start > f.end || f.end != ms(t0) || f.start < ms(t0.Add(-s.Interval)) {
			t.Fatalf("times %d..%d outside the interval", f.start, f.end)
		}
	})
}

// nopConn stands for the collector's socket when the encoder's send is
// replaced.
type nopConn struct{ net.Conn }

func (nopConn) Close() error { return nil }

func BenchmarkExport(b *testing.B) {
	s := &snapshot.Snapshot{Time: t0, Interval: time.Second, Connections: manyConns(10000)}
	var bytes int
	enc := newEncoder(DefaultMTU-28, 1, func(m []byte) error { bytes += len(m); return nil })
	x := &Exporter{opt: Options{Network: "udp", TemplateRefresh: time.Minute}, enc: enc, now: func() time.Time { return t0 }, conn: nopConn{}}
	b.ReportAllocs()
	for b.Loop() {
		if err := x.Export(s); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(bytes)/float64(b.N)/float64(len(s.Connections)), "bytes/conn")
}
