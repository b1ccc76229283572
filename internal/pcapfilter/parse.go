package pcapfilter

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// The syntax tree: what the expression means, independent of the link type.
type node interface{ isNode() }

type (
	andNode   struct{ l, r node }
	orNode    struct{ l, r node }
	notNode   struct{ x node }
	constNode bool
	// protoNode is a protocol on its own: ip, ip6, arp, rarp, tcp, udp,
	// sctp, icmp, icmp6.
	protoNode struct{ p pname }
	// protoNumNode is "[ip|ip6] proto N"; fam is pNone, pIP or pIP6.
	protoNumNode struct {
		fam pname
		n   uint32
	}
	// addrNode is host or net: addr&mask compared to the masked source or
	// destination address. For IPv4 only the first 4 bytes are used. fam is
	// pNone, pIP, pIP6, pARP or pRARP.
	addrNode struct {
		fam        pname
		dir        dir
		v6         bool
		addr, mask [16]byte
	}
	// portNode is port or portrange; proto is pNone, pTCP, pUDP or pSCTP.
	portNode struct {
		proto  pname
		dir    dir
		lo, hi uint16
	}
)

func (andNode) isNode()      {}
func (orNode) isNode()       {}
func (notNode) isNode()      {}
func (constNode) isNode()    {}
func (protoNode) isNode()    {}
func (protoNumNode) isNode() {}
func (addrNode) isNode()     {}
func (portNode) isNode()     {}

// pname is a protocol qualifier.
type pname int

const (
	pNone pname = iota
	pIP
	pIP6
	pARP
	pRARP
	pTCP
	pUDP
	pSCTP
	pICMP
	pICMP6
)

var pnames = map[string]pname{
	"ip": pIP, "ip6": pIP6, "arp": pARP, "rarp": pRARP,
	"tcp": pTCP, "udp": pUDP, "sctp": pSCTP, "icmp": pICMP, "icmp6": pICMP6,
}

// dir is a direction qualifier.
type dir int

const (
	dDefault dir = iota // source or destination
	dSrc
	dDst
	dSrcOrDst
	dSrcAndDst
)

// akind is what a value is: the host, net, port, portrange or proto
// qualifier, or none given.
type akind int

const (
	kNone akind = iota
	kHost
	kNet
	kPort
	kPortRange
	kProto
)

var kinds = map[string]akind{"host": kHost, "net": kNet, "port": kPort, "portrange": kPortRange}

// qual is the qualifiers in force for a value: those of its primitive, or
// inherited from the last primitive before an "and"/"or", as in libpcap.
type qual struct {
	ok       bool // there are qualifiers; a bare value with none is an error
	proto    pname
	protoTok token
	dir      dir
	kind     akind
	kindTok  token
}

// keywords are the words that cannot be a value: ours, and the rest of
// libpcap's, which are reported as unsupported.
var keywords = map[string]bool{
	"and": true, "or": true, "not": true, "src": true, "dst": true, "mask": true, "proto": true,
}

// unsupportedKeywords are libpcap's primitives and qualifiers this package
// does not compile, each with a hint (or "").
var unsupportedKeywords = map[string]string{
	"ether": "link-layer addresses are not supported", "link": "link-layer primitives are not supported",
	"ppp": "link-layer primitives are not supported", "slip": "link-layer primitives are not supported",
	"fddi": "link-layer primitives are not supported", "tr": "link-layer primitives are not supported",
	"wlan": "802.11 primitives are not supported", "type": "802.11 primitives are not supported",
	"subtype": "802.11 primitives are not supported", "dir": "802.11 primitives are not supported",
	"addr1": "", "addr2": "", "addr3": "", "addr4": "", "address1": "", "address2": "", "address3": "", "address4": "",
	"ra": "", "ta": "", "radio": "",
	"gateway": "", "broadcast": "", "multicast": "",
	"less": "packet length tests are not supported", "greater": "packet length tests are not supported",
	"len":  "byte-offset and arithmetic expressions are not supported",
	"vlan": "encapsulations are not supported", "mpls": "encapsulations are not supported",
	"pppoed": "encapsulations are not supported", "pppoes": "encapsulations are not supported",
	"geneve": "encapsulations are not supported", "llc": "", "protochain": "'ip6 proto N' looks through one fragment header",
	"igmp": "write 'ip proto 2'", "igrp": "write 'ip proto 9'", "pim": "write 'proto 103'",
	"vrrp": "write 'ip proto 112'", "carp": "write 'ip proto 112'", "ah": "write 'proto 51'", "esp": "write 'proto 50'",
	"atalk": "", "aarp": "", "decnet": "", "lat": "", "sca": "", "moprc": "", "mopdl": "", "iso": "", "esis": "",
	"es-is": "", "isis": "", "is-is": "", "l1": "", "l2": "", "iih": "", "lsp": "", "snp": "", "csnp": "", "psnp": "",
	"clnp": "", "stp": "", "ipx": "", "netbeui": "", "inbound": "", "outbound": "", "ifindex": "", "ifname": "",
	"on": "", "rnr": "", "rulenum": "", "reason": "", "rset": "", "ruleset": "", "srnr": "", "subrulenum": "",
	"action": "", "lane": "", "metac": "", "bcc": "", "sc": "", "ilmic": "", "oamf4ec": "", "oamf4sc": "",
	"oam": "", "oamf4": "", "connectmsg": "", "metaconnect": "", "vpi": "", "vci": "", "fisu": "", "lssu": "",
	"msu": "", "hfisu": "", "hlssu": "", "hmsu": "", "sio": "", "opc": "", "dpc": "", "sls": "", "hsio": "",
	"hopc": "", "hdpc": "", "hsls": "", "byte": "",
}

func isKeyword(s string) bool {
	if keywords[s] {
		return true
	}
	if _, ok := pnames[s]; ok {
		return true
	}
	if _, ok := kinds[s]; ok {
		return true
	}
	_, ok := unsupportedKeywords[s]
	return ok
}

type parser struct {
	toks []token
	i    int
}

func (p *parser) peek() token { return p.toks[p.i] }

func (p *parser) peekAt(k int) token {
	if p.i+k < len(p.toks) {
		return p.toks[p.i+k]
	}
	return p.toks[len(p.toks)-1]
}

func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func isKw(t token, kw string) bool { return t.kind == tWord && !t.escaped && t.text == kw }
func isAnd(t token) bool           { return t.kind == tAnd || isKw(t, "and") }
func isOr(t token) bool            { return t.kind == tOr || isKw(t, "or") }
func isNot(t token) bool           { return t.kind == tNot || isKw(t, "not") }
func isDir(t token) bool           { return isKw(t, "src") || isKw(t, "dst") }

// isValue reports whether t is a value: a word that is not a keyword.
func isValue(t token) bool {
	return t.kind == tWord && (t.escaped || !isKeyword(t.text))
}

func errAt(t token, kind, format string, args ...any) *Error {
	return &Error{Line: t.line, Col: t.col, Token: t.shown(), kind: kind, Msg: fmt.Sprintf(format, args...)}
}

// unexpected is the error for t where something else was expected: an
// "unsupported" one if t is libpcap syntax this package does not compile.
func unexpected(t token, expected string) *Error {
	switch {
	case t.kind == tOther || (t.kind == tWord && t.text == "len"):
		return errAt(t, kindUnsupported, "byte-offset, length and arithmetic expressions (tcp[13] & 2 != 0, len > 100) are not supported; %s", supported)
	case t.kind == tWord && !t.escaped:
		if hint, ok := unsupportedKeywords[t.text]; ok {
			if hint != "" {
				return errAt(t, kindUnsupported, "%s; %s", hint, supported)
			}
			return errAt(t, kindUnsupported, "%s", supported)
		}
	}
	return errAt(t, kindSyntax, "%s", expected)
}

func (p *parser) parse() (node, error) {
	n, _, err := p.expr(qual{})
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		if t.kind == tRParen {
			return nil, errAt(t, kindSyntax, "no '(' to close")
		}
		return nil, unexpected(t, "expected 'and', 'or' or the end of the expression")
	}
	return n, nil
}

// expr parses terms joined by and/or, left to right with equal precedence.
func (p *parser) expr(q qual) (node, qual, error) {
	n, q, err := p.term(q)
	if err != nil {
		return nil, q, err
	}
	for {
		t := p.peek()
		and := isAnd(t)
		if !and && !isOr(t) {
			return n, q, nil
		}
		p.next()
		var r node
		r, q, err = p.term(q)
		if err != nil {
			return nil, q, err
		}
		if and {
			n = andNode{n, r}
		} else {
			n = orNode{n, r}
		}
	}
}

// term parses a negation, a parenthesised expression, a primitive, or a value
// that inherits q.
func (p *parser) term(q qual) (node, qual, error) {
	t := p.peek()
	switch {
	case isNot(t):
		p.next()
		x, q2, err := p.term(q)
		if err != nil {
			return nil, q2, err
		}
		return notNode{x}, q2, nil
	case t.kind == tLParen:
		if p.parenHoldsValue() {
			n, err := p.id(q)
			return n, q, err
		}
		p.next()
		n, _, err := p.expr(q)
		if err != nil {
			return nil, q, err
		}
		if c := p.peek(); c.kind != tRParen {
			return nil, q, unexpected(c, fmt.Sprintf("expected ')' to close the '(' at %d:%d", t.line, t.col))
		}
		p.next()
		// libpcap: after "( expr )" the qualifiers are those before it.
		return n, q, nil
	case isValue(t):
		n, err := p.id(q)
		return n, q, err
	}
	return p.primitive()
}

// parenHoldsValue reports whether the '(' at the cursor opens a list of
// values ("host (10.0.0.1 or 10.0.0.2)") rather than an expression.
func (p *parser) parenHoldsValue() bool {
	k := 0
	for t := p.peekAt(k); t.kind == tLParen || isNot(t); t = p.peekAt(k) {
		k++
	}
	return isValue(p.peekAt(k))
}

// primitive parses a protocol on its own, or qualifiers and a value.
func (p *parser) primitive() (node, qual, error) {
	t := p.peek()
	if t.kind != tWord || t.escaped {
		return nil, qual{}, unexpected(t, "expected a primitive (host, net, port, portrange, proto, src, dst, ip, ip6, arp, rarp, tcp, udp, sctp, icmp, icmp6), 'not' or '('")
	}
	q := qual{ok: true}
	if pn, ok := pnames[t.text]; ok {
		p.next()
		q.proto, q.protoTok = pn, t
		nt := p.peek()
		if !isDir(nt) && !isKindKw(nt) && !isKw(nt, "proto") {
			return protoNode{pn}, qual{}, nil
		}
	}
	if t := p.peek(); isDir(t) {
		p.next()
		q.dir = dSrc
		if t.text == "dst" {
			q.dir = dDst
		}
		op, other := p.peek(), p.peekAt(1)
		if (isAnd(op) || isOr(op)) && isDir(other) && other.text != t.text {
			p.next()
			p.next()
			q.dir = dSrcOrDst
			if isAnd(op) {
				q.dir = dSrcAndDst
			}
		}
	}
	switch t := p.peek(); {
	case isKindKw(t):
		p.next()
		q.kind, q.kindTok = kinds[t.text], t
	case isKw(t, "proto"):
		if q.dir != dDefault {
			return nil, q, errAt(t, kindSyntax, "'proto' takes no direction; write 'ip proto N', 'ip6 proto N' or 'proto N'")
		}
		p.next()
		q.kind, q.kindTok = kProto, t
	case q.dir == dDefault && q.proto == pNone:
		return nil, q, unexpected(t, "expected a primitive (host, net, port, portrange, proto, src, dst, ip, ip6, arp, rarp, tcp, udp, sctp, icmp, icmp6), 'not' or '('")
	}
	n, err := p.id(q)
	return n, q, err
}

func isKindKw(t token) bool {
	if t.kind != tWord || t.escaped {
		return false
	}
	_, ok := kinds[t.text]
	return ok
}

// id parses a value, a negated value, or a parenthesised list of values
// joined by and/or, all with the qualifiers q.
func (p *parser) id(q qual) (node, error) {
	t := p.peek()
	switch {
	case isNot(t):
		p.next()
		x, err := p.id(q)
		if err != nil {
			return nil, err
		}
		return notNode{x}, nil
	case t.kind == tLParen:
		p.next()
		n, err := p.id(q)
		if err != nil {
			return nil, err
		}
		for isAnd(p.peek()) || isOr(p.peek()) {
			and := isAnd(p.next())
			r, err := p.id(q)
			if err != nil {
				return nil, err
			}
			if and {
				n = andNode{n, r}
			} else {
				n = orNode{n, r}
			}
		}
		if c := p.peek(); c.kind != tRParen {
			return nil, unexpected(c, fmt.Sprintf("expected 'and', 'or' or ')' to close the '(' at %d:%d (only values can follow a qualifier's '(')", t.line, t.col))
		}
		p.next()
		return n, nil
	case isValue(t):
		return p.value(q)
	}
	return nil, unexpected(t, expectedValue(q, t))
}

// expectedValue says what value q wants, for a syntax error at t.
func expectedValue(q qual, t token) string {
	switch q.kind {
	case kPort:
		return "expected a port number after 'port'"
	case kPortRange:
		return "expected a port range such as 1000-2000 after 'portrange'"
	case kProto:
		if _, ok := pnames[t.text]; ok && t.kind == tWord {
			return fmt.Sprintf("a protocol name after 'proto' is escaped: write '\\%s', or '%s' on its own", t.text, t.text)
		}
		return "expected a protocol number after 'proto'"
	case kNet:
		return "expected a network (10.0.0.0/8, 10.0.0.0 mask 255.0.0.0, 10, 2001:db8::/32) after 'net'"
	}
	return "expected an IPv4 or IPv6 address"
}

// value parses one value and an optional "/bits" or "mask M", and checks it
// against q.
func (p *parser) value(q qual) (node, error) {
	t := p.next()
	if lower := strings.ToLower(t.text); !q.ok && lower != t.text && isKeyword(lower) && !t.escaped {
		return nil, errAt(t, kindSyntax, "keywords are lower case: write '%s'", lower)
	}
	if !q.ok {
		return nil, errAt(t, kindSyntax, "a value needs a qualifier that says what it is: write 'host %s', 'net …' or 'port …'", t.text)
	}
	var bits, mask *token
	if s := p.peek(); s.kind == tSlash {
		p.next()
		b := p.next()
		if b.kind != tWord {
			return nil, unexpected(b, "expected a prefix length after '/'")
		}
		bits = &b
	} else if isKw(s, "mask") {
		p.next()
		m := p.next()
		if m.kind != tWord {
			return nil, unexpected(m, "expected an IPv4 netmask after 'mask'")
		}
		mask = &m
	}
	switch q.kind {
	case kPort, kPortRange, kProto:
		if bits != nil || mask != nil {
			return nil, errAt(t, kindSyntax, "only a network takes a prefix length or mask")
		}
		if q.kind == kProto {
			return protoValue(q, t)
		}
		return portValue(q, t)
	}
	return addrValue(q, t, bits, mask)
}

// parseNum reads a number as libpcap does: decimal, 0x hexadecimal, or
// octal with a leading 0.
func parseNum(s string) (uint64, bool) {
	base := 10
	digits := s
	switch {
	case len(s) > 2 && (s[:2] == "0x" || s[:2] == "0X"):
		base, digits = 16, s[2:]
	case len(s) > 1 && s[0] == '0':
		base, digits = 8, s[1:]
	}
	if digits == "" || strings.ContainsAny(digits, "+-_") {
		return 0, false
	}
	v, err := strconv.ParseUint(digits, base, 32)
	return v, err == nil
}

// numberError is the error for a word of digits parseNum rejected, or nil.
func numberError(t token) *Error {
	switch {
	case t.escaped || !isDigits(t.text):
		return nil
	case len(t.text) > 1 && t.text[0] == '0':
		return errAt(t, kindInvalid, "a number with a leading 0 is octal and has only the digits 0-7")
	}
	return errAt(t, kindInvalid, "number too large")
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func portValue(q qual, t token) (node, error) {
	switch q.proto {
	case pNone, pTCP, pUDP, pSCTP:
	default:
		return nil, errAt(q.protoTok, kindInvalid, "'%s' cannot qualify %s: it applies to tcp, udp and sctp; write '%s and %s …'", q.protoTok.text, q.kindTok.text, q.protoTok.text, q.kindTok.text)
	}
	n := portNode{proto: q.proto, dir: q.dir}
	if v, ok := parseNum(t.text); ok && !t.escaped {
		if v > 65535 {
			return nil, errAt(t, kindInvalid, "port numbers are 0 to 65535")
		}
		n.lo, n.hi = uint16(v), uint16(v)
		return n, nil
	}
	lo, hi, isRange := strings.Cut(t.text, "-")
	if isRange && isDigits(lo) && isDigits(hi) && !t.escaped {
		if q.kind == kPort {
			return nil, errAt(t, kindSyntax, "a range needs 'portrange %s'", t.text)
		}
		a, errA := strconv.ParseUint(lo, 10, 32)
		b, errB := strconv.ParseUint(hi, 10, 32)
		if errA != nil || errB != nil || a > 65535 || b > 65535 {
			return nil, errAt(t, kindInvalid, "port numbers are 0 to 65535")
		}
		if a > b {
			a, b = b, a // as libpcap does
		}
		n.lo, n.hi = uint16(a), uint16(b)
		return n, nil
	}
	if err := numberError(t); err != nil {
		return nil, err
	}
	return nil, errAt(t, kindUnsupported, "port names are not resolved, write the number; %s", supported)
}

// protoNames are the names "proto" takes with a backslash, as libpcap
// resolves them through /etc/protocols.
var protoNames = map[string]uint32{"icmp": 1, "igmp": 2, "tcp": 6, "udp": 17, "sctp": 132}

func protoValue(q qual, t token) (node, error) {
	switch q.proto {
	case pNone, pIP, pIP6:
	default:
		return nil, errAt(q.protoTok, kindInvalid, "'%s' cannot qualify proto; write 'ip proto N', 'ip6 proto N' or 'proto N'", q.protoTok.text)
	}
	n := protoNumNode{fam: q.proto}
	if v, ok := parseNum(t.text); ok && !t.escaped {
		if v > 255 {
			return nil, errAt(t, kindInvalid, "protocol numbers are 0 to 255")
		}
		n.n = uint32(v)
		return n, nil
	}
	if err := numberError(t); err != nil {
		return nil, err
	}
	if v, ok := protoNames[t.text]; ok {
		n.n = v
		return n, nil
	}
	return nil, errAt(t, kindUnsupported, "protocol names other than \\tcp, \\udp, \\icmp, \\igmp, \\sctp are not resolved, write the number; %s", supported)
}

// addrValue checks a host or net value (an address, a network, or a short
// IPv4 network number) against its qualifiers.
func addrValue(q qual, t token, bits, mask *token) (node, error) {
	switch q.proto {
	case pNone, pIP, pIP6, pARP, pRARP:
	default:
		what := "a host"
		if q.kind == kNet {
			what = "a network"
		}
		return nil, errAt(q.protoTok, kindInvalid, "'%s' cannot qualify %s; write '%s and host …'", q.protoTok.text, what, q.protoTok.text)
	}
	n := addrNode{fam: q.proto, dir: q.dir}
	shown := t.text
	if bits != nil {
		shown += "/" + bits.text
	}
	if strings.Contains(t.text, ":") && !t.escaped {
		a, err := netip.ParseAddr(t.text)
		if err != nil {
			return nil, errAt(t, kindInvalid, "not an IPv6 address")
		}
		if a.Zone() != "" {
			return nil, errAt(t, kindUnsupported, "IPv6 zones (%%%s) are not supported, write the address alone; %s", a.Zone(), supported)
		}
		switch q.proto {
		case pIP, pARP, pRARP:
			return nil, errAt(q.protoTok, kindInvalid, "'%s' cannot qualify the IPv6 address %s; write ip6 or no protocol", q.protoTok.text, t.text)
		}
		if mask != nil {
			return nil, errAt(*mask, kindInvalid, "'mask' takes IPv4 networks; write %s/BITS", t.text)
		}
		n.v6, n.addr = true, a.As16()
		prefix := 128
		if bits != nil {
			if q.kind == kHost {
				return nil, errAt(t, kindInvalid, "host takes one address; write 'net %s'", shown)
			}
			v, err := strconv.Atoi(bits.text)
			if err != nil || v < 0 || v > 128 || !isDigits(bits.text) {
				return nil, errAt(*bits, kindInvalid, "an IPv6 prefix length is 0 to 128")
			}
			prefix = v
		}
		for i := range 16 {
			switch {
			case prefix >= 8*(i+1):
				n.mask[i] = 0xff
			case prefix > 8*i:
				n.mask[i] = byte(0xff << (8 - (prefix - 8*i)))
			}
			if n.addr[i]&^n.mask[i] != 0 {
				return nil, errAt(t, kindInvalid, "non-network bits set in '%s'", shown)
			}
		}
		return n, nil
	}

	// IPv4: a dotted address, possibly short (10.1), or a number (net 10).
	if q.proto == pIP6 {
		return nil, errAt(q.protoTok, kindInvalid, "'ip6' cannot qualify the IPv4 address %s", t.text)
	}
	var v, m uint32
	octets, isNum := 0, false
	if num, ok := parseNum(t.text); ok && !strings.Contains(t.text, ".") && !t.escaped {
		if q.kind != kNet {
			return nil, errAt(t, kindInvalid, "a bare number is not an address; write a full IPv4 address, or 'net %s' for the network %s.0.0.0/8", t.text, t.text)
		}
		if bits != nil || mask != nil {
			return nil, errAt(t, kindInvalid, "write the network as a dotted address, as in 10.0.0.0/8")
		}
		// libpcap promotes a short net number: 10 is 10.0.0.0/8.
		v, m, isNum = uint32(num), 0xffffffff, true
		for v != 0 && v&0xff000000 == 0 {
			v <<= 8
			m <<= 8
		}
	} else {
		if err := numberError(t); err != nil {
			return nil, err
		}
		parts := strings.Split(t.text, ".")
		if t.escaped || len(parts) > 4 {
			return nil, hostNameError(t)
		}
		for _, s := range parts {
			if !isDigits(s) {
				return nil, hostNameError(t)
			}
			o, err := strconv.Atoi(s)
			if err != nil || o > 255 {
				return nil, errAt(t, kindInvalid, "IPv4 address bytes are 0 to 255")
			}
			v = v<<8 | uint32(o)
		}
		octets = len(parts)
		v <<= 32 - 8*octets
		m = ^uint32(0) << (32 - 8*octets)
	}
	if !isNum && octets < 4 && bits == nil && mask == nil && q.kind != kNet {
		return nil, errAt(t, kindInvalid, "not a full address; write 'net %s' for the network it names", t.text)
	}
	if (bits != nil || mask != nil) && q.kind == kHost {
		return nil, errAt(t, kindInvalid, "host takes one address; write 'net …' for a network")
	}
	if bits != nil {
		b, err := strconv.Atoi(bits.text)
		if err != nil || b < 0 || b > 32 || !isDigits(bits.text) {
			return nil, errAt(*bits, kindInvalid, "an IPv4 prefix length is 0 to 32")
		}
		m = 0
		if b > 0 {
			m = ^uint32(0) << (32 - b)
		}
	}
	if mask != nil {
		ma, err := netip.ParseAddr(mask.text)
		if err != nil || !ma.Is4() {
			return nil, errAt(*mask, kindInvalid, "a netmask is a full dotted IPv4 address, as in 255.255.0.0")
		}
		b := ma.As4()
		m = uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
		shown += " mask " + mask.text
	}
	if v&^m != 0 {
		return nil, errAt(t, kindInvalid, "non-network bits set in '%s'", shown)
	}
	n.addr = [16]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
	n.mask = [16]byte{byte(m >> 24), byte(m >> 16), byte(m >> 8), byte(m)}
	return n, nil
}

func hostNameError(t token) *Error {
	return errAt(t, kindUnsupported, "host names are not resolved, write an IPv4 or IPv6 address; %s", supported)
}
