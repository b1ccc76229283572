package pcapfilter

import (
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"golang.org/x/net/bpf"
)

// checkCompile compiles expr and checks what any input must give: an error
// that points inside the expression, or a program the kernel would take
// that runs over packet without trouble.
func checkCompile(t *testing.T, expr string, lt LinkType, packet []byte) {
	t.Helper()
	prog, err := Compile(expr, lt, 0)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			lines := strings.Split(expr, "\n")
			if e.Line < 1 || e.Line > len(lines) || e.Col < 1 || e.Col > utf8.RuneCountInString(lines[e.Line-1])+1 {
				t.Fatalf("%q: error position %d:%d outside the expression: %v", expr, e.Line, e.Col, err)
			}
			if e.Token != "" && utf8.ValidString(expr) && !strings.Contains(expr, e.Token) {
				t.Fatalf("%q: error token %q is not in the expression: %v", expr, e.Token, err)
			}
			return
		}
		if msg := err.Error(); !strings.Contains(msg, "rejects all packets") && !strings.HasPrefix(msg, "filter too large") {
			t.Fatalf("%q: unexpected error %v", expr, err)
		}
		return
	}
	if err := validate(prog); err != nil {
		t.Fatalf("%q on %s: invalid program: %v\n%s", expr, lt, err, disasm(prog))
	}
	insns, ok := bpf.Disassemble(prog)
	if !ok {
		t.Fatalf("%q on %s: program has unknown instructions", expr, lt)
	}
	if _, err := bpf.NewVM(insns); err != nil {
		t.Fatalf("%q on %s: the VM refuses the program: %v", expr, lt, err)
	}
	Match(prog, packet)
}

// FuzzCompile: any string compiles or fails cleanly, never panics, and what
// compiles is a valid program that runs over any packet.
func FuzzCompile(f *testing.F) {
	packets := corpus(LinkTypeEthernet)
	for i, e := range equivalenceExprs {
		f.Add(e, uint8(i), packets[i*7%len(packets)].data)
	}
	for _, e := range []string{"gateway foo", "tcp[13] & 2 != 0", "host (1.2.3.4 or not (1.2.3.5 and 1.2.3.6))",
		"net 10.0.0.0 mask 255.0.0.0 or 10.1", "portrange 65535-0", "\\tcp", "((((ip))))", "not not not arp",
		"src or dst port 1 and src and dst host ::", "host 1.2.3.4 or", "ip proto \\icmp or \\igmp", "\x84", "tcp\nand \xff"} {
		f.Add(e, uint8(0), []byte{})
	}
	f.Fuzz(func(t *testing.T, expr string, lt uint8, packet []byte) {
		checkCompile(t, expr, linkTypes[int(lt)%len(linkTypes)], packet)
	})
}

// Grammar-shaped noise: random sequences of the tokens the grammar uses, so
// almost every one is wrong in an interesting place.
func TestRandomTokenSequences(t *testing.T) {
	vocab := []string{"host", "net", "port", "portrange", "proto", "src", "dst", "ip", "ip6", "arp", "rarp", "tcp",
		"udp", "sctp", "icmp", "icmp6", "and", "or", "not", "&&", "||", "!", "(", ")", "mask", "/", "10.0.0.1", "10",
		"10.1", "::1", "fe80::", "80", "1000-2000", "0x50", "255.255.0.0", "24", "\\tcp", "gateway", "[", "]", "&",
		"foo", "65536", "300", "\n", "ü"}
	r := rand.New(rand.NewPCG(7, 7))
	n := 20000
	if testing.Short() {
		n = 2000
	}
	compiled := 0
	for range n {
		var b strings.Builder
		for range 1 + r.IntN(12) {
			b.WriteString(pick(r, vocab))
			b.WriteString(pick(r, []string{" ", " ", "", "  "}))
		}
		expr := b.String()
		lt := pick(r, linkTypes)
		checkCompile(t, expr, lt, make([]byte, r.IntN(100)))
		if _, err := Compile(expr, lt, 0); err == nil {
			compiled++
		}
	}
	t.Logf("%d of %d random token sequences compiled; none panicked", compiled, n)
}

// FuzzPacketsAgainstLibpcap: random packets against the table's programs,
// ours and libpcap's, on every link type, judged as in comparison. A packet
// of 128 bytes or more has every byte any of these filters loads: ours
// decides it as libpcap's optimised program does (or, where that one and
// the unoptimised one differ, as the unoptimised one); a shorter one as
// libpcap's unoptimised program does.
func FuzzPacketsAgainstLibpcap(f *testing.F) {
	tcpdump := requireTcpdump(f)
	for i, p := range corpus(LinkTypeEthernet) {
		if i%9 == 0 {
			f.Add(uint8(i), uint8(0), p.data)
		}
	}
	f.Fuzz(func(t *testing.T, ei, li uint8, packet []byte) {
		expr := equivalenceExprs[int(ei)%len(equivalenceExprs)]
		lt := linkTypes[int(li)%len(linkTypes)]
		progs, err := programsFor(tcpdump, expr, lt)
		if err != nil {
			t.Fatal(err)
		}
		if progs.ours == nil {
			return // rejected by both (arp on raw IP)
		}
		got, opt, unopt := progs.ours(packet), progs.libpcap(packet), progs.libpcapUnoptimised(packet)
		if len(packet) >= 128 {
			if got != opt && (got != unopt || opt == unopt) {
				t.Fatalf("%q on %s: libpcap %v, libpcap -O %v, ours %v for %x", expr, lt, opt, unopt, got, packet)
			}
		} else if got != unopt {
			t.Fatalf("%q on %s (truncated): libpcap %v, libpcap -O %v, ours %v for %x", expr, lt, opt, unopt, got, packet)
		}
	})
}

type programSet struct {
	ours, libpcap, libpcapUnoptimised func([]byte) bool
}

var (
	programCacheMu sync.Mutex
	programCache   = map[string]programSet{}
)

// programsFor returns the matchers for expr on lt, running tcpdump once per
// pair.
func programsFor(tcpdump, expr string, lt LinkType) (programSet, error) {
	programCacheMu.Lock()
	defer programCacheMu.Unlock()
	key := lt.String() + " " + expr
	if ps, ok := programCache[key]; ok {
		return ps, nil
	}
	var ps programSet
	ours, ourErr := Compile(expr, lt, 0)
	theirs, theirErr, err := libpcapProgram(tcpdump, lt, expr, true)
	if err != nil {
		return ps, err
	}
	unopt, unoptErr, err := libpcapProgram(tcpdump, lt, expr, false)
	if err != nil {
		return ps, err
	}
	switch {
	case ourErr != nil && theirErr != "":
		programCache[key] = ps
		return ps, nil
	case ourErr != nil || theirErr != "" || unoptErr != "":
		return ps, errors.New(expr + " on " + lt.String() + ": one compiler refuses it: ours: " + errString(ourErr) + "; libpcap: " + theirErr + unoptErr)
	}
	for _, m := range []struct {
		prog []bpf.RawInstruction
		dst  *func([]byte) bool
	}{{ours, &ps.ours}, {theirs, &ps.libpcap}, {unopt, &ps.libpcapUnoptimised}} {
		if *m.dst, err = NewMatcher(m.prog); err != nil {
			return ps, err
		}
	}
	programCache[key] = ps
	return ps, nil
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}
