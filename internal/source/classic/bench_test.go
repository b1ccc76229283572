package classic

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// tcp4 returns an IPv4/TCP header (timestamps option) as the capture
// delivers it, with the given ports.
func tcp4(sport, dport uint16) []byte {
	b := make([]byte, 20+32)
	b[0], b[9] = 0x45, protoTCP
	binary.BigEndian.PutUint16(b[2:], 20+32+1448)
	copy(b[12:], []byte{127, 0, 0, 1})
	copy(b[16:], []byte{127, 0, 0, 1})
	binary.BigEndian.PutUint16(b[20:], sport)
	binary.BigEndian.PutUint16(b[22:], dport)
	binary.BigEndian.PutUint32(b[24:], 12345)
	b[32] = 8 << 4
	return b
}

func TestParsePacket(t *testing.T) {
	p, ok := parsePacket(tcp4(40000, 8080), 1500)
	if !ok || p.proto != protoTCP || p.src != ep("127.0.0.1:40000") || p.dst != ep("127.0.0.1:8080") ||
		p.ipBytes != 1500 || p.payload != 1448 || p.seq != 12345 {
		t.Errorf("got %+v %v", p, ok)
	}
	if _, ok := parsePacket(tcp4(1, 2)[:30], 1500); ok {
		t.Error("a truncated TCP header parsed")
	}
}

func FuzzParsePacket(f *testing.F) {
	f.Add(tcp4(1, 2), 1500)
	f.Add([]byte{0x60, 0, 0, 0, 0, 8, 17, 64}, 48)
	f.Fuzz(func(t *testing.T, data []byte, n int) {
		p, ok := parsePacket(data, n)
		if ok && (p.payload > p.ipBytes || (p.proto != protoTCP && p.proto != protoUDP)) {
			t.Errorf("parsePacket(%x, %d) = %+v", data, n, p)
		}
	})
}

// benchTable is a table with 1,000 loopback connections (both ends).
func benchTable() (*table, [][]byte) {
	tb := newTable(1, 0, 0)
	var found []sockInfo
	var pkts [][]byte
	for i := range 1000 {
		cport := uint16(40000 + i)
		c := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), cport).String()
		found = append(found, info(6, c, "127.0.0.1:8080", 1, uint64(2*i+1), 10),
			info(6, "127.0.0.1:8080", c, 1, uint64(2*i+2), 20))
		pkts = append(pkts, tcp4(cport, 8080))
	}
	tb.apply(time.Now(), found)
	return tb, pkts
}

// BenchmarkPacketPath measures what the capture goroutine does per packet
// (parse the headers, find both ends' sockets, add), next to a baseline run
// in the same process on the same packets: gopacket's DecodingLayerParser
// decoding the IPv4/TCP headers without matching anything. The ratio of the
// two is reported as x-gopacket-decode (below 1: cheaper than decoding
// alone).
func BenchmarkPacketPath(b *testing.B) {
	tb, pkts := benchTable()
	// The baseline, timed by hand: a nested testing.Benchmark would wait
	// for this benchmark to end.
	var ip layers.IPv4
	var tcp layers.TCP
	var payload gopacket.Payload
	parser := gopacket.NewDecodingLayerParser(layers.LayerTypeIPv4, &ip, &tcp, &payload)
	parser.IgnoreUnsupported = true
	decoded := make([]gopacket.LayerType, 0, 4)
	const baseN = 1000000
	for i := range baseN / 10 { // warm up
		_ = parser.DecodeLayers(pkts[i%len(pkts)], &decoded)
	}
	start := time.Now()
	for i := range baseN {
		_ = parser.DecodeLayers(pkts[i%len(pkts)], &decoded)
	}
	base := float64(time.Since(start).Nanoseconds()) / baseN
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for i := 0; b.Loop(); i++ {
		p, _ := parsePacket(pkts[i%len(pkts)], 1500)
		tb.account(&p)
		n++
	}
	b.ReportMetric(base, "baseline-ns/op")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n)/base, "x-gopacket-decode")
}
