package pcapfilter

import (
	"fmt"
	"strings"
	"testing"

	"golang.org/x/net/bpf"
)

// Semantics on hand-made packets, without tcpdump: what each primitive
// matches, following libpcap.
func TestPrimitives(t *testing.T) {
	tcp4 := func(src, dst string, sp, dp uint16) l3packet {
		return l3packet{ethertype: etherIPv4, data: ipv4(v4(src), v4(dst), v4opts{protoRaw: protoTCP}, transport(protoTCP, sp, dp))}
	}
	udp6 := func(src, dst string, sp, dp uint16, exts ...uint8) l3packet {
		return l3packet{ethertype: etherIPv6, data: ipv6(v6(src), v6(dst), exts, protoUDP, 0, transport(protoUDP, sp, dp))}
	}
	frag4 := func(off uint16, mf bool) l3packet {
		return l3packet{ethertype: etherIPv4, data: ipv4(v4("10.0.0.1"), v4("10.0.0.2"), v4opts{protoRaw: protoUDP, fragOff: off, mf: mf}, transport(protoUDP, 53, 53))}
	}
	arp := l3packet{ethertype: etherARP, data: arpPacket(1, v4("10.0.0.1"), v4("10.0.0.2"))}
	opts4 := l3packet{ethertype: etherIPv4, data: ipv4(v4("1.2.3.4"), v4("1.2.3.5"), v4opts{protoRaw: protoTCP, ihl: 8}, transport(protoTCP, 1234, 443))}
	vlan := tcp4("10.0.0.1", "10.0.0.2", 80, 80)
	vlan.vlan = true

	for _, tc := range []struct {
		expr string
		p    l3packet
		want bool
	}{
		{"", arp, true},
		{"host 10.0.0.1", tcp4("10.0.0.1", "8.8.8.8", 1, 2), true},
		{"host 10.0.0.1", tcp4("8.8.8.8", "10.0.0.1", 1, 2), true},
		{"host 10.0.0.1", tcp4("8.8.8.8", "10.0.0.2", 1, 2), false},
		{"host 10.0.0.1", arp, true},      // ARP's sender protocol address
		{"ip host 10.0.0.1", arp, false},  // ip narrows it
		{"src host 10.0.0.2", arp, false}, // 10.0.0.2 is ARP's target
		{"dst host 10.0.0.2", arp, true},  //
		{"host 10.0.0.1", vlan, false},    // no look inside 802.1Q
		{"src and dst host 10.0.0.1", tcp4("10.0.0.1", "10.0.0.1", 1, 2), true},
		{"src and dst host 10.0.0.1", tcp4("10.0.0.1", "10.0.0.2", 1, 2), false},
		{"net 10", tcp4("10.200.0.1", "8.8.8.8", 1, 2), true},
		{"net 192.168.0.0 mask 255.255.0.0", tcp4("8.8.8.8", "192.168.7.7", 1, 2), true},
		{"net 192.168.0.0/24", tcp4("8.8.8.8", "192.168.7.7", 1, 2), false},
		{"host ::1", udp6("::1", "::2", 1, 2), true},
		{"net 2001:db8::/32", udp6("::1", "2001:db8:ffff::2", 1, 2), true},
		{"net 2001:db8::/33", udp6("::1", "2001:db8:ffff::2", 1, 2), false},
		{"port 443", opts4, true}, // ports found after IPv4 options
		{"tcp dst port 443", opts4, true},
		{"udp port 443", opts4, false},
		{"src port 443", opts4, false},
		{"portrange 400-500", opts4, true},
		{"portrange 500-400", opts4, true}, // reversed, as libpcap
		{"portrange 444-500", opts4, false},
		{"port 53", frag4(0, true), true},     // first fragment
		{"port 53", frag4(185, false), false}, // later fragment: no ports
		{"udp", frag4(185, false), true},
		{"port 53", udp6("::1", "::2", 53, 1), true},
		{"port 53", udp6("::1", "::2", 53, 1, 0), false},              // hop-by-hop header hides ports
		{"udp", udp6("::1", "::2", 53, 1, protoFrag6), true},          // one fragment header is looked through
		{"udp", udp6("::1", "::2", 53, 1, 0), false},                  // other extension headers are not
		{"ip6 proto 17", udp6("::1", "::2", 53, 1, protoFrag6), true}, //
		{"icmp", tcp4("1.2.3.4", "1.2.3.5", 1, 2), false},
		{"not arp", arp, false},
		{"not arp", vlan, true},
		{"tcp or udp and port 80", udp6("::1", "::2", 53, 53), false}, // (tcp or udp) and port 80
		{"port 80 or 443", opts4, true},                               // "443" is "port 443"
		{"host 1.2.3.4 and not 1.2.3.5", opts4, false},                // "not host 1.2.3.5"
		{"host (1.2.3.9 or 1.2.3.5)", opts4, true},
	} {
		prog, err := Compile(tc.expr, LinkTypeEthernet, 0)
		if err != nil {
			t.Errorf("%q: %v", tc.expr, err)
			continue
		}
		if got := Match(prog, frame(LinkTypeEthernet, tc.p)); got != tc.want {
			t.Errorf("%q on %x: %v, want %v\n%s", tc.expr, frame(LinkTypeEthernet, tc.p), got, tc.want, disasm(prog))
		}
	}
}

// The link types put the network header at different offsets: the same
// packet matches the same expressions behind each.
func TestLinkTypes(t *testing.T) {
	p := l3packet{ethertype: etherIPv4, data: ipv4(v4("10.0.0.1"), v4("10.0.0.2"), v4opts{protoRaw: protoTCP}, transport(protoTCP, 1000, 80))}
	q := l3packet{ethertype: etherIPv6, data: ipv6(v6("::1"), v6("::2"), nil, protoUDP, 0, transport(protoUDP, 53, 53))}
	for _, lt := range linkTypes {
		for _, tc := range []struct {
			expr   string
			p4, p6 bool
		}{
			{"host 10.0.0.1 and tcp dst port 80", true, false},
			{"ip", true, false},
			{"ip6 and udp port 53", false, true},
			{"not ip", false, true},
			{"not arp", true, true},
		} {
			prog, err := Compile(tc.expr, lt, 1500)
			if err != nil {
				t.Fatalf("%s %q: %v", lt, tc.expr, err)
			}
			if got := Match(prog, frame(lt, p)); got != tc.p4 {
				t.Errorf("%s %q on IPv4: %v, want %v", lt, tc.expr, got, tc.p4)
			}
			if got := Match(prog, frame(lt, q)); got != tc.p6 {
				t.Errorf("%s %q on IPv6: %v, want %v", lt, tc.expr, got, tc.p6)
			}
		}
	}
}

func TestSnaplenIsTheAcceptValue(t *testing.T) {
	for _, tc := range []struct{ snaplen, want uint32 }{{0, DefaultSnaplen}, {96, 96}} {
		prog, err := Compile("ip", LinkTypeRaw, tc.snaplen)
		if err != nil {
			t.Fatal(err)
		}
		insns, _ := bpf.Disassemble(prog)
		vm, err := bpf.NewVM(insns)
		if err != nil {
			t.Fatal(err)
		}
		pkt := ipv4(v4("1.2.3.4"), v4("1.2.3.5"), v4opts{protoRaw: protoTCP}, transport(protoTCP, 1, 2))
		if n, err := vm.Run(pkt); err != nil || uint32(n) != tc.want {
			t.Errorf("snaplen %d: accept returns %d, %v; want %d", tc.snaplen, n, err, tc.want)
		}
	}
}

// A long expression needs jumps beyond a conditional jump's 255: they go
// through unconditional jumps, and the program still decides right.
func TestLongJumps(t *testing.T) {
	expr := longPortExpr(150)
	prog, err := Compile(expr, LinkTypeEthernet, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(prog) < 600 {
		t.Fatalf("%d instructions; want a program long enough to need far jumps", len(prog))
	}
	far := 0
	for _, ins := range prog {
		if ins.Op == bpfJMP|bpfJA && ins.K > 255 {
			far++
		}
	}
	if far == 0 {
		t.Errorf("no far unconditional jump in %d instructions", len(prog))
	}
	for _, port := range []uint16{1, 75, 150, 151, 2000} {
		want := port >= 1 && port <= 150
		for _, sp := range []uint16{port, 9999} {
			pkt := frame(LinkTypeEthernet, l3packet{ethertype: etherIPv4, data: ipv4(v4("1.2.3.4"), v4("1.2.3.5"), v4opts{protoRaw: protoTCP}, transport(protoTCP, sp, 9999))})
			pkt6 := frame(LinkTypeEthernet, l3packet{ethertype: etherIPv6, data: ipv6(v6("::1"), v6("::2"), nil, protoTCP, 0, transport(protoTCP, 9999, sp))})
			w := want && sp == port
			if got := Match(prog, pkt); got != w {
				t.Errorf("IPv4 source port %d: %v, want %v", sp, got, w)
			}
			if got := Match(prog, pkt6); got != w {
				t.Errorf("IPv6 destination port %d: %v, want %v", sp, got, w)
			}
		}
	}
}

// longPortExpr is "port 1 or 2 or … or n".
func longPortExpr(n int) string {
	var b strings.Builder
	b.WriteString("port 1")
	for i := 2; i <= n; i++ {
		fmt.Fprintf(&b, " or %d", i)
	}
	return b.String()
}

func TestCompileIsDeterministic(t *testing.T) {
	for _, e := range equivalenceExprs {
		a, errA := Compile(e, LinkTypeEthernet, 0)
		b, errB := Compile(e, LinkTypeEthernet, 0)
		if fmt.Sprint(a, errA) != fmt.Sprint(b, errB) {
			t.Errorf("%q compiles to different programs", e)
		}
	}
}

func TestMatchRejectsBadPrograms(t *testing.T) {
	for _, prog := range [][]bpf.RawInstruction{
		nil,
		{{Op: bpfJMP | bpfJA, K: 5}, {Op: bpfRET | bpfK, K: 1}},
		{{Op: bpfLD | bpfW | bpfABS, K: 0}},
	} {
		if Match(prog, make([]byte, 64)) {
			t.Errorf("%v matched", prog)
		}
	}
}

func disasm(prog []bpf.RawInstruction) string {
	insns, _ := bpf.Disassemble(prog)
	var b strings.Builder
	for i, in := range insns {
		fmt.Fprintf(&b, "(%03d) %v\n", i, in)
	}
	return b.String()
}

func BenchmarkCompile(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compile("tcp and (port 80 or port 443) and not net 10.0.0.0/8 or host 2001:db8::1", LinkTypeEthernet, 0); err != nil {
			b.Fatal(err)
		}
	}
}
