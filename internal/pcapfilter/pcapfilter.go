package pcapfilter

import (
	"errors"
	"fmt"

	"golang.org/x/net/bpf"
)

// LinkType is a link-layer header type, numbered as in the pcap and pcapng
// LINKTYPE_ registry (what a pcapng interface description block records).
type LinkType uint32

// The link types [Compile] supports.
const (
	// LinkTypeEthernet is LINKTYPE_ETHERNET (DLT_EN10MB): a 14-byte
	// Ethernet II header, EtherType at offset 12.
	LinkTypeEthernet LinkType = 1
	// LinkTypeRaw is LINKTYPE_RAW (DLT_RAW): the packet starts with the IPv4
	// or IPv6 header; the version nibble tells which.
	LinkTypeRaw LinkType = 101
	// LinkTypeLinuxSLL is LINKTYPE_LINUX_SLL: Linux cooked capture v1, a
	// 16-byte header with the protocol at offset 14.
	LinkTypeLinuxSLL LinkType = 113
	// LinkTypeLinuxSLL2 is LINKTYPE_LINUX_SLL2: Linux cooked capture v2, a
	// 20-byte header with the protocol at offset 0.
	LinkTypeLinuxSLL2 LinkType = 276
)

// String returns the name tcpdump's -y option takes for the link type.
func (l LinkType) String() string {
	switch l {
	case LinkTypeEthernet:
		return "EN10MB"
	case LinkTypeRaw:
		return "RAW"
	case LinkTypeLinuxSLL:
		return "LINUX_SLL"
	case LinkTypeLinuxSLL2:
		return "LINUX_SLL2"
	}
	return fmt.Sprintf("LinkType(%d)", uint32(l))
}

// DefaultSnaplen is what an accepting program returns when Compile is given
// a snaplen of 0: libpcap's maximum, 262144 bytes.
const DefaultSnaplen = 262144

// MaxInstructions is the kernel's limit on the length of a classic BPF
// program (BPF_MAXINSNS).
const MaxInstructions = 4096

// ErrUnsupported is what an [*Error] for valid pcap-filter syntax that this
// package does not compile unwraps to; check it with errors.Is.
var ErrUnsupported = errors.New("unsupported pcap-filter syntax")

// supported is the list every "unsupported" error ends with.
const supported = "supported: host, net, port, portrange, proto, src, dst, ip, ip6, arp, rarp, tcp, udp, sctp, icmp, icmp6, and (&&), or (||), not (!), parentheses"

// Error is a filter expression that does not compile. It points at the
// offending token.
type Error struct {
	// Line and Col locate the token, both counted from 1; Col counts
	// characters, not bytes.
	Line, Col int
	// Token is the offending token as written; empty at the end of the
	// expression.
	Token string
	// Msg says what is wrong and, where it can, what to write instead.
	Msg string

	kind string // "syntax error", "invalid" or "unsupported"
}

// Error returns e.g. "unsupported: 'gateway' at 1:1; supported: host, …".
func (e *Error) Error() string {
	what := "end of expression"
	if e.Token != "" {
		what = "'" + e.Token + "'"
	}
	return fmt.Sprintf("%s: %s at %d:%d; %s", e.kind, what, e.Line, e.Col, e.Msg)
}

// Unwrap returns ErrUnsupported for supported-by-libpcap, unsupported-here
// syntax, so the caller can suggest capturing unfiltered instead.
func (e *Error) Unwrap() error {
	if e.kind == kindUnsupported {
		return ErrUnsupported
	}
	return nil
}

const (
	kindSyntax      = "syntax error"
	kindInvalid     = "invalid"
	kindUnsupported = "unsupported"
)

// Compile compiles a pcap-filter expression into a classic BPF program for
// packets of the link type. An accepted packet makes the program return
// snaplen (DefaultSnaplen if 0), a rejected one 0. The empty expression
// accepts every packet. The program is at most MaxInstructions long and
// passes the kernel's checks for SO_ATTACH_FILTER.
//
// Errors are [*Error] values pointing at the offending token; unsupported
// syntax unwraps to ErrUnsupported.
func Compile(expr string, linkType LinkType, snaplen uint32) ([]bpf.RawInstruction, error) {
	l, err := linkFor(linkType)
	if err != nil {
		return nil, err
	}
	if snaplen == 0 {
		snaplen = DefaultSnaplen
	}
	toks, err := lex(expr)
	if err != nil {
		return nil, err
	}
	var n node = constNode(true)
	if len(toks) > 1 { // more than tEOF
		p := &parser{toks: toks}
		if n, err = p.parse(); err != nil {
			return nil, err
		}
	}
	c, err := lower(n, l)
	if err != nil {
		return nil, err
	}
	prog, accepts, err := assemble(factor(c), snaplen)
	if err != nil {
		return nil, err
	}
	if !accepts {
		return nil, fmt.Errorf("expression rejects all packets on link type %s", linkType)
	}
	if err := validate(prog); err != nil {
		return nil, fmt.Errorf("internal error: compiled program is invalid: %w", err)
	}
	return prog, nil
}

// Match runs prog over packet in golang.org/x/net/bpf's VM and reports
// whether it accepts it (returns non-zero). A program the VM cannot run does
// not match anything. For tests; the kernel runs the program in production.
func Match(prog []bpf.RawInstruction, packet []byte) bool {
	m, err := NewMatcher(prog)
	if err != nil {
		return false
	}
	return m(packet)
}

// NewMatcher prepares prog for golang.org/x/net/bpf's VM once, for running
// it over many packets in userspace: true when prog accepts the packet.
func NewMatcher(prog []bpf.RawInstruction) (func([]byte) bool, error) {
	insns, ok := bpf.Disassemble(prog)
	if !ok {
		return nil, errors.New("program has instructions the VM does not know")
	}
	vm, err := bpf.NewVM(insns)
	if err != nil {
		return nil, err
	}
	return func(packet []byte) bool {
		n, err := vm.Run(packet)
		return err == nil && n > 0
	}, nil
}

// validate checks prog against the kernel's rules for classic BPF
// (bpf_check_classic): 1 to MaxInstructions instructions, known opcodes,
// every jump inside the program, no division by a constant 0, scratch
// memory indices in range, and a return as the last instruction.
func validate(prog []bpf.RawInstruction) error {
	n := len(prog)
	if n == 0 || n > MaxInstructions {
		return fmt.Errorf("%d instructions; the kernel takes 1 to %d", n, MaxInstructions)
	}
	for pc, ins := range prog {
		class := ins.Op & 0x07
		switch class {
		case bpfJMP:
			switch ins.Op {
			case bpfJMP | bpfJA:
				if uint64(pc)+1+uint64(ins.K) >= uint64(n) {
					return fmt.Errorf("instruction %d: ja %d jumps past the end", pc, ins.K)
				}
			case bpfJMP | bpfJEQ | bpfK, bpfJMP | bpfJGT | bpfK, bpfJMP | bpfJGE | bpfK, bpfJMP | bpfJSET | bpfK,
				bpfJMP | bpfJEQ | bpfX, bpfJMP | bpfJGT | bpfX, bpfJMP | bpfJGE | bpfX, bpfJMP | bpfJSET | bpfX:
				if pc+1+int(ins.Jt) >= n || pc+1+int(ins.Jf) >= n {
					return fmt.Errorf("instruction %d: jt %d / jf %d jump past the end", pc, ins.Jt, ins.Jf)
				}
			default:
				return fmt.Errorf("instruction %d: unknown jump opcode %#x", pc, ins.Op)
			}
		case bpfRET:
			if ins.Op != bpfRET|bpfK && ins.Op != bpfRET|bpfA {
				return fmt.Errorf("instruction %d: unknown return opcode %#x", pc, ins.Op)
			}
		case bpfALU:
			op := ins.Op & 0xf0
			if (op == bpfDIV || op == bpfMOD) && ins.Op&0x08 == bpfK && ins.K == 0 {
				return fmt.Errorf("instruction %d: division by constant 0", pc)
			}
		case bpfLD, bpfLDX:
			if ins.Op&0xe0 == bpfMEM && ins.K >= 16 {
				return fmt.Errorf("instruction %d: scratch index %d out of range", pc, ins.K)
			}
		case bpfST, bpfSTX:
			if ins.K >= 16 {
				return fmt.Errorf("instruction %d: scratch index %d out of range", pc, ins.K)
			}
		case bpfMISC:
		}
	}
	if prog[n-1].Op&0x07 != bpfRET {
		return errors.New("last instruction is not a return")
	}
	return nil
}

// Classic BPF opcode fields (linux/filter.h, linux/bpf_common.h).
const (
	bpfLD   = 0x00
	bpfLDX  = 0x01
	bpfST   = 0x02
	bpfSTX  = 0x03
	bpfALU  = 0x04
	bpfJMP  = 0x05
	bpfRET  = 0x06
	bpfMISC = 0x07

	bpfW   = 0x00
	bpfH   = 0x08
	bpfB   = 0x10
	bpfABS = 0x20
	bpfIND = 0x40
	bpfMEM = 0x60
	bpfMSH = 0xa0

	bpfAND = 0x50
	bpfDIV = 0x30
	bpfMOD = 0x90

	bpfJA   = 0x00
	bpfJEQ  = 0x10
	bpfJGT  = 0x20
	bpfJGE  = 0x30
	bpfJSET = 0x40

	bpfK = 0x00
	bpfX = 0x08
	bpfA = 0x10
)
