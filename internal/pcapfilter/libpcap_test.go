package pcapfilter

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/bpf"

	"github.com/netmeter/netmeter/internal/testnet"
)

// The equivalence tests: for each expression, libpcap's program (from
// `tcpdump -ddd -y LINKTYPE EXPR`, optimised, as tcpdump would attach it) and
// ours run in the same VM over the corpus, and must accept and reject the
// same packets.

// equivalenceExprs are the test table: the 12 expressions first.
var equivalenceExprs = []string{
	"host 10.0.0.1",
	"src net 192.168.0.0/16",
	"tcp port 80",
	"udp and not port 53",
	"portrange 1000-2000",
	"ip6 and tcp",
	"host ::1",
	"icmp",
	"not arp",
	"tcp and (port 80 or port 443)",
	"dst host 10.1.2.3 and src port 22",
	"ip proto 47",

	"",
	"src host 10.0.0.1",
	"dst host 10.0.0.2",
	"src 10.0.0.1",
	"dst 2001:db8::2",
	"src and dst host 10.0.0.1",
	"src or dst host 1.2.3.4",
	"host ::ffff:10.0.0.1",
	"host 2001:db8::1",
	"ip6 host fe80::1",
	"ip host 10.0.0.1",
	"arp host 10.0.0.1",
	"rarp src host 10.0.0.1",
	"arp dst host 192.168.0.1",
	"net 10.0.0.0/8",
	"net 10",
	"net 172.16",
	"net 192.168.0",
	"dst net 10.0.0.0 mask 255.0.0.0",
	"net 10.0.0.0 mask 255.0.255.0",
	"net 192.168.0.0 mask 255.255.0.0 and not host 192.168.0.1",
	"net 0.0.0.0/0",
	"net fe80::/10",
	"src net 2001:db8::/32",
	"dst net 2001:db8:0:1::/64",
	"net 2001:db8::/31",
	"net ::/0",
	"port 80",
	"src port 53",
	"dst port 443",
	"udp src port 53",
	"sctp port 80",
	"port 0x50",
	"port 010",
	"tcp dst portrange 1-1000",
	"sctp portrange 2000-1000",
	"portrange 80",
	"udp portrange 0-65535",
	"src or dst port 22",
	"src and dst port 80",
	"port 80 or 443",
	"tcp port 80 or 443 or 8080",
	"host 10.0.0.1 or 10.0.0.2",
	"host 10.0.0.1 and not 10.0.0.2",
	"host (10.0.0.1 or 192.168.0.1)",
	"not host 1.2.3.4 or 1.2.3.5",
	"ip", "ip6", "arp", "rarp", "tcp", "udp", "sctp", "icmp6",
	"ip6 proto 58",
	"ip6 proto 6",
	"ip6 proto 44",
	"proto 17",
	"ip proto \\tcp",
	"ip proto 0",
	"ip and udp",
	"! tcp && ! udp",
	"tcp || udp && port 53",
	"not (tcp or udp)",
	"not ip6 or icmp6",
	"icmp or icmp6",
	"ip and not (port 22 or port 80) and not net 10.0.0.0/8",
	"(tcp or udp) and (src portrange 1000-2000 or dst port 53) and ip",
	"udp port 53 and host 8.8.8.8",
	"not not tcp",
	"tcp and not tcp port 80",
	"host 10.0.0.1 and (port 22 or (udp and portrange 1000-2000))",
	"dst and src host 10.0.0.1",
	"dst or src port 53",
	"host (10.0.0.1 and not 10.0.0.2)",
	"port (80 or (443 or 22))",
	"not host 1.2.3.4 and not 1.2.3.5",
	"! port 80 || ! 443",
	"host 10.0.0.1 and src 10.0.0.2",
	"port 80 and not (443)",
	"host 1.2.3.4 or 1.2.3.5 and port 80 or 22",
	"udp and (src 10.0.0.1 or dst 10.0.0.2)",
	"net 10.0.0.0 / 8",
	"ip6 proto \\udp",
	"proto \\tcp",

	// netmeter capture's live table (internal/source/capture), compared
	// there with tcpdump on real traffic.
	"host 10.0.0.2",
	"dst host 10.0.0.2 and udp",
	"port 5000",
	"tcp port 8080",
	"udp and not port 5000",
	"portrange 5000-6000",
	"tcp and (port 8080 or port 9999)",
	"src net 10.0.0.0/8 and dst port 7777",
	"ip6 and udp",
	"host 2001:db8::1",
	"dst host 10.0.0.1 or dst host 2001:db8::1",
	"udp dst portrange 5000-5999 or icmp",
	"src port 6000 or dst port 9999",
}

var linkTypes = []LinkType{LinkTypeEthernet, LinkTypeLinuxSLL, LinkTypeLinuxSLL2, LinkTypeRaw}

// requireTcpdump returns the path of tcpdump, or skips the test saying why;
// with NETMETER_REQUIRE_PRIVILEGED=1 (CI) it fails instead.
func requireTcpdump(t testing.TB) string {
	t.Helper()
	path, err := exec.LookPath("tcpdump")
	if err == nil {
		return path
	}
	if _, statErr := os.Stat("/usr/sbin/tcpdump"); statErr == nil {
		return "/usr/sbin/tcpdump" // older Debian, without sbin in PATH
	}
	const why = "needs tcpdump (Debian package tcpdump) to compare with libpcap's programs"
	if os.Getenv(testnet.EnvRequirePrivileged) == "1" {
		t.Fatalf("%s: %v; %s=1", why, err, testnet.EnvRequirePrivileged)
	}
	t.Skipf("%s: %v (set %s=1 to fail instead)", why, err, testnet.EnvRequirePrivileged)
	return ""
}

// libpcapProgram returns libpcap's program for expr, or the message tcpdump
// rejected it with.
func libpcapProgram(tcpdump string, lt LinkType, expr string, optimize bool) ([]bpf.RawInstruction, string, error) {
	args := []string{"-ddd", "-y", lt.String(), expr}
	if !optimize {
		args = append([]string{"-O"}, args...)
	}
	cmd := exec.Command(tcpdump, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if _, ok := err.(*exec.ExitError); ok {
			return nil, strings.TrimSpace(stderr.String()), nil
		}
		return nil, "", err
	}
	prog, err := parseDDD(stdout.String())
	return prog, "", err
}

// parseDDD parses `tcpdump -ddd` output: the instruction count, then one
// "code jt jf k" line per instruction, in decimal.
func parseDDD(s string) ([]bpf.RawInstruction, error) {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	n, err := strconv.Atoi(strings.TrimSpace(lines[0]))
	if err != nil || n != len(lines)-1 {
		return nil, fmt.Errorf("tcpdump -ddd: bad count line %q for %d lines", lines[0], len(lines)-1)
	}
	prog := make([]bpf.RawInstruction, n)
	for i, l := range lines[1:] {
		var code, jt, jf, k uint64
		if _, err := fmt.Sscanf(l, "%d %d %d %d", &code, &jt, &jf, &k); err != nil {
			return nil, fmt.Errorf("tcpdump -ddd line %q: %v", l, err)
		}
		prog[i] = bpf.RawInstruction{Op: uint16(code), Jt: uint8(jt), Jf: uint8(jf), K: uint32(k)}
	}
	return prog, nil
}

// comparison is one expression on one link type, compared over a corpus.
//
// On a complete packet ours must decide as libpcap's optimised program, what
// tcpdump attaches, does, unless that program decides otherwise than
// libpcap's unoptimised one (tcpdump -O) and ours decides as the latter: the
// optimiser has changed the meaning (a libpcap bug; see
// TestLibpcapOptimiserBug), and those packets are logged, not failed.
//
// On a truncated packet ours must decide as libpcap's unoptimised program
// does. The optimiser drops and reorders loads, which changes the decision
// for a packet too short for some of them, in ways that depend on the whole
// expression; before optimisation libpcap evaluates the expression as
// written, primitive by primitive, and so do we. The truncated packets the
// optimised program decides otherwise are counted, not failed.
type comparison struct {
	expr              string
	lt                LinkType
	complete          int      // complete packets compared
	truncated         int      // truncated packets compared
	accepted          int      // by both
	optimiserDiffers  int      // truncated packets decided as libpcap -O does, not as libpcap
	optimiserBugs     []string // complete packets libpcap decides otherwise with its optimiser than without
	disagree          []string // packets decided differently
	skipped           string   // both rejected the expression (with these messages)
	errorDiff         string   // one compiled it, the other did not
	libpcapRejectsAll bool     // libpcap: "expression rejects all packets"
	oursRejectsAll    bool     // ours says so
}

func compare(tcpdump string, lt LinkType, expr string, packets []corpusPacket) (comparison, error) {
	c := comparison{expr: expr, lt: lt}
	theirs, theirErr, err := libpcapProgram(tcpdump, lt, expr, true)
	if err != nil {
		return c, err
	}
	ours, ourErr := Compile(expr, lt, 0)
	c.libpcapRejectsAll = strings.HasSuffix(theirErr, "expression rejects all packets")
	c.oursRejectsAll = ourErr != nil && strings.HasPrefix(ourErr.Error(), "expression rejects all packets")
	switch {
	case theirErr != "" && ourErr != nil:
		c.skipped = fmt.Sprintf("libpcap: %s; ours: %v", theirErr, ourErr)
		return c, nil
	case (theirErr != "" && !c.libpcapRejectsAll) || (ourErr != nil && !c.oursRejectsAll):
		c.errorDiff = fmt.Sprintf("libpcap: %q; ours: %v", theirErr, ourErr)
		return c, nil
	}
	if c.oursRejectsAll {
		// Found to match nothing here, not by libpcap's optimiser: libpcap's
		// program must accept none of the corpus.
		ours = []bpf.RawInstruction{{Op: bpfRET | bpfK, K: 0}}
	}
	unoptimised, unoptErr, err := libpcapProgram(tcpdump, lt, expr, false)
	if err != nil {
		return c, err
	}
	if unoptErr != "" {
		return c, fmt.Errorf("%q on %s: tcpdump -O: %s", expr, lt, unoptErr)
	}
	if err := validate(ours); err != nil {
		return c, fmt.Errorf("%q on %s: our program is invalid: %v", expr, lt, err)
	}
	var them func([]byte) bool
	if c.libpcapRejectsAll {
		them = func([]byte) bool { return false }
	} else if them, err = NewMatcher(theirs); err != nil {
		return c, fmt.Errorf("%q on %s: libpcap's program does not load in the VM: %v", expr, lt, err)
	}
	themUnopt, err := NewMatcher(unoptimised)
	if err != nil {
		return c, fmt.Errorf("%q on %s: libpcap's unoptimised program does not load in the VM: %v", expr, lt, err)
	}
	us, err := NewMatcher(ours)
	if err != nil {
		return c, fmt.Errorf("%q on %s: our program does not load in the VM: %v", expr, lt, err)
	}
	for _, p := range packets {
		a, b := them(p.data), us(p.data)
		if p.complete {
			c.complete++
			if a != b {
				if themUnopt(p.data) == b {
					// libpcap's optimiser changed the decision on a complete
					// packet: its bug; ours agrees with its unoptimised program.
					c.optimiserBugs = append(c.optimiserBugs, fmt.Sprintf("%s (%d bytes): libpcap %v, libpcap -O and ours %v", p.name, len(p.data), a, b))
				} else {
					c.disagree = append(c.disagree, fmt.Sprintf("%s (%d bytes): libpcap %v, ours %v", p.name, len(p.data), a, b))
				}
			}
		} else {
			c.truncated++
			if a0 := themUnopt(p.data); a0 != b {
				c.disagree = append(c.disagree, fmt.Sprintf("%s (%d bytes, truncated): libpcap %v, libpcap -O %v, ours %v", p.name, len(p.data), a, a0, b))
			} else if a != b {
				c.optimiserDiffers++
			}
		}
		if a && b {
			c.accepted++
		}
	}
	return c, nil
}

// runComparisons compares every expression on every link type, in parallel,
// and reports disagreements and differences in what compiles.
func runComparisons(t *testing.T, tcpdump string, exprs []string) []comparison {
	t.Helper()
	corpora := map[LinkType][]corpusPacket{}
	for _, lt := range linkTypes {
		corpora[lt] = corpus(lt)
	}
	type job struct {
		lt   LinkType
		expr string
	}
	jobs := make(chan job)
	results := make(chan comparison)
	var wg sync.WaitGroup
	var errMu sync.Mutex
	var errs []error
	for range 8 {
		wg.Go(func() {
			for j := range jobs {
				c, err := compare(tcpdump, j.lt, j.expr, corpora[j.lt])
				if err != nil {
					errMu.Lock()
					errs = append(errs, err)
					errMu.Unlock()
					continue
				}
				results <- c
			}
		})
	}
	go func() {
		for _, lt := range linkTypes {
			for _, e := range exprs {
				jobs <- job{lt, e}
			}
		}
		close(jobs)
		wg.Wait()
		close(results)
	}()
	var all []comparison
	for c := range results {
		all = append(all, c)
	}
	for _, err := range errs {
		t.Error(err)
	}
	for _, c := range all {
		if c.errorDiff != "" {
			t.Errorf("%q on %s: %s", c.expr, c.lt, c.errorDiff)
		}
		if len(c.disagree) > 0 {
			shown := c.disagree
			if len(shown) > 5 {
				shown = shown[:5]
			}
			t.Errorf("%q on %s: %d of %d packets decided differently, e.g.\n\t%s", c.expr, c.lt, len(c.disagree), c.complete+c.truncated, strings.Join(shown, "\n\t"))
		}
	}
	return all
}

func summarize(t *testing.T, all []comparison) {
	t.Helper()
	compiled, complete, truncated, accepted, skipped, optDiff, rejectsAll := 0, 0, 0, 0, 0, 0, 0
	for _, c := range all {
		if c.skipped != "" {
			skipped++
			continue
		}
		compiled++
		complete += c.complete
		truncated += c.truncated
		accepted += c.accepted
		optDiff += c.optimiserDiffers
		if c.libpcapRejectsAll {
			rejectsAll++
		}
	}
	var bugs []string
	for _, c := range all {
		if len(c.optimiserBugs) > 0 {
			bugs = append(bugs, fmt.Sprintf("%q on %s: %d packets, e.g. %s", c.expr, c.lt, len(c.optimiserBugs), c.optimiserBugs[0]))
		}
	}
	if len(bugs) > 0 {
		t.Logf("libpcap's optimiser changes the decision on complete packets (ours decides as libpcap -O) for %d expression/link-type pairs:\n\t%s",
			len(bugs), strings.Join(bugs, "\n\t"))
	}
	t.Logf("%d expression/link-type pairs compiled by both, %d rejected by both; %d complete-packet decisions compared with libpcap, "+
		"%d truncated-packet decisions with libpcap -O (%d of them decided otherwise by libpcap's optimised program); %d accepted by both; "+
		"%d pairs libpcap refuses as \"expression rejects all packets\" and ours rejects every packet of",
		compiled, skipped, complete, truncated, optDiff, accepted, rejectsAll)
}

// TestEquivalentToLibpcap is the test table: every expression compiles here
// and in libpcap, and the two programs decide every corpus packet alike on
// every link type.
func TestEquivalentToLibpcap(t *testing.T) {
	tcpdump := requireTcpdump(t)
	// Long ones: jumps beyond 255 instructions.
	hosts := make([]string, 70)
	for i := range hosts {
		hosts[i] = fmt.Sprintf("10.0.%d.%d", i%2, i)
	}
	exprs := append(equivalenceExprs[:len(equivalenceExprs):len(equivalenceExprs)],
		longPortExpr(150), "not (host "+strings.Join(hosts, " or ")+" or 2001:db8::1) and udp")
	all := runComparisons(t, tcpdump, exprs)
	for _, c := range all {
		if c.skipped != "" && !strings.Contains(c.skipped, "rejects all packets") {
			t.Errorf("%q on %s: %s", c.expr, c.lt, c.skipped)
		}
	}
	// Every expression must discriminate on Ethernet: accept some corpus
	// packets and reject others, or the corpus does not test it.
	for _, c := range all {
		if n := c.complete + c.truncated; c.lt == LinkTypeEthernet && c.expr != "" && (c.accepted == 0 || c.accepted == n) {
			t.Errorf("%q: the corpus does not exercise it (%d of %d packets accepted)", c.expr, c.accepted, n)
		}
	}
	summarize(t, all)
}

// TestRandomExpressionsEquivalentToLibpcap compares random expressions from
// the supported grammar: both compilers accept or reject each, and agree on
// every packet where both compile it.
func TestRandomExpressionsEquivalentToLibpcap(t *testing.T) {
	tcpdump := requireTcpdump(t)
	n := 300
	if testing.Short() {
		n = 40
	}
	r := rand.New(rand.NewPCG(2026, 9))
	exprs := make([]string, n)
	for i := range exprs {
		exprs[i] = randomExpr(r, 3)
	}
	all := runComparisons(t, tcpdump, exprs)
	summarize(t, all)
}

// randomExpr returns a random expression of the supported grammar, nested
// up to depth.
func randomExpr(r *rand.Rand, depth int) string {
	if depth <= 0 || r.IntN(3) == 0 {
		return randomPrimitive(r)
	}
	switch r.IntN(6) {
	case 0:
		return pick(r, []string{"not ", "!", "not "}) + randomExpr(r, depth-1)
	case 1:
		return "(" + randomExpr(r, depth-1) + ")"
	default:
		op := pick(r, []string{" and ", " or ", " && ", " || "})
		return randomExpr(r, depth-1) + op + randomExpr(r, depth-1)
	}
}

func randomPrimitive(r *rand.Rand) string {
	dir := pick(r, []string{"", "", "src ", "dst ", "src or dst ", "src and dst ", "dst or src ", "dst and src "})
	var prim string
	var value func() string
	switch r.IntN(7) {
	case 0:
		return pick(r, []string{"ip", "ip6", "arp", "rarp", "tcp", "udp", "sctp", "icmp", "icmp6"})
	case 1: // host
		if r.IntN(2) == 0 {
			prim = pick(r, []string{"", "ip ", "arp ", "rarp "}) + dir + "host "
			value = func() string { return pick(r, corpusV4) }
		} else {
			prim = pick(r, []string{"", "ip6 "}) + dir + "host "
			value = func() string { return pick(r, corpusV6) }
		}
	case 2: // net
		if r.IntN(2) == 0 {
			prim = pick(r, []string{"", "ip ", "arp "}) + dir + "net "
			value = func() string {
				return pick(r, []string{"10", "192.168", "10.0.0.0/8", "10.0.0.0/31", "192.168.0.0/16", "172.16.0.0/12",
					"0.0.0.0/0", "10.0.0.0 mask 255.255.0.0", "1.2.3.4/32", "192.168.0.0/17"})
			}
		} else {
			prim = pick(r, []string{"", "ip6 "}) + dir + "net "
			value = func() string {
				return pick(r, []string{"fe80::/10", "2001:db8::/32", "2001:db8::/33", "::/0", "::1/128", "fe80::/64", "::ffff:0:0/96"})
			}
		}
	case 3: // port
		prim = pick(r, []string{"", "tcp ", "udp ", "sctp "}) + dir + "port "
		value = func() string { return strconv.Itoa(int(pick(r, corpusPorts))) }
	case 4: // portrange
		prim = pick(r, []string{"", "tcp ", "udp ", "sctp "}) + dir + "portrange "
		value = func() string {
			return fmt.Sprintf("%d-%d", pick(r, corpusPorts), pick(r, corpusPorts))
		}
	case 5: // proto
		prim = pick(r, []string{"", "ip ", "ip6 "}) + "proto "
		value = func() string {
			return pick(r, []string{"6", "17", "1", "58", "47", "132", "0", "44", "\\tcp", "\\udp"})
		}
	default: // a direction and an address
		if dir == "" {
			dir = "src "
		}
		prim = dir
		value = func() string { return pick(r, append(append([]string{}, corpusV4...), corpusV6...)) }
	}
	s := prim + value()
	if r.IntN(8) == 0 { // a list of values: "host (10.0.0.1 or not 10.0.0.2)"
		s = prim + "(" + value() + pick(r, []string{" or ", " and ", " and not ", " || "}) + value() + ")"
	}
	// Values that inherit the qualifiers: "port 80 or 443".
	for r.IntN(3) == 0 {
		s += pick(r, []string{" or ", " and ", " and not ", " or !"}) + value()
	}
	return s
}

// TestLibpcapOptimiserBug records why complete packets may be decided
// otherwise than by libpcap's optimised program: for "net N and N" libpcap
// 1.10's optimiser drops the source-address half of the first "net N" (a
// jset whose both branches go to the same place), so a packet from N to
// elsewhere is rejected, although "net N and N" means "net N" and libpcap's
// own programs for "net N", and for "net N and N" unoptimised, accept it.
// Ours decides as those.
func TestLibpcapOptimiserBug(t *testing.T) {
	tcpdump := requireTcpdump(t)
	const dup, simple = "net 2001:db8::/33 and 2001:db8::/33", "net 2001:db8::/33"
	optDup, _, err := libpcapProgram(tcpdump, LinkTypeEthernet, dup, true)
	if err != nil {
		t.Fatal(err)
	}
	unoptDup, _, err := libpcapProgram(tcpdump, LinkTypeEthernet, dup, false)
	if err != nil {
		t.Fatal(err)
	}
	optSimple, _, err := libpcapProgram(tcpdump, LinkTypeEthernet, simple, true)
	if err != nil {
		t.Fatal(err)
	}
	ours, err := Compile(dup, LinkTypeEthernet, 0)
	if err != nil {
		t.Fatal(err)
	}
	buggy := 0
	for _, p := range corpus(LinkTypeEthernet) {
		if !p.complete {
			continue
		}
		want := Match(optSimple, p.data)
		if got := Match(ours, p.data); got != want {
			t.Errorf("%s: ours %v for %q, libpcap %v for %q", p.name, got, dup, want, simple)
		}
		if got := Match(unoptDup, p.data); got != want {
			t.Errorf("%s: libpcap -O %v for %q, libpcap %v for %q", p.name, got, dup, want, simple)
		}
		if Match(optDup, p.data) != want {
			buggy++
		}
	}
	if buggy == 0 {
		t.Logf("this libpcap's optimiser compiles %q right: the exception in comparison may no longer be needed", dup)
	} else {
		t.Logf("libpcap's optimised program for %q decides %d corpus packets otherwise than for %q", dup, buggy, simple)
	}
}
