package pcapfilter

import (
	"fmt"

	"golang.org/x/net/bpf"
)

// Code generation: each test becomes a load (skipped when the accumulator
// already holds that value on every path reaching it) and a conditional jump
// to a true and a false label; and/or/not only choose the labels. Jumps go
// forward only, so when a label is placed every jump to it is known, and the
// register contents there are what all of them agree on.

type label int

type opKind int

const (
	opInsn  opKind = iota // a load, ALU or return instruction
	opCond                // conditional jump to jt/jf
	opJA                  // unconditional jump to target
	opLabel               // marks the position of target
)

type irOp struct {
	kind   opKind
	raw    bpf.RawInstruction // opInsn
	jop    uint16             // opCond: bpfJEQ, bpfJGT, bpfJGE, bpfJSET
	k      uint32             // opCond
	jt, jf label              // opCond
	target label              // opJA, opLabel
}

// regs is what the code generator knows the registers hold.
type regs struct {
	aValid bool
	a      load
	aMask  uint32
	xValid bool
	x      uint32 // X = 4*(packet[x]&0xf)
}

func (r regs) meet(o regs) regs {
	if !r.aValid || !o.aValid || r.a != o.a || r.aMask != o.aMask {
		r.aValid, r.a, r.aMask = false, load{}, 0
	}
	if !r.xValid || !o.xValid || r.x != o.x {
		r.xValid, r.x = false, 0
	}
	return r
}

type codegen struct {
	ops      []irOp
	labels   int
	regs     regs
	live     bool // the current position is reached by falling through
	incoming map[label][]regs
}

func (g *codegen) newLabel() label {
	g.labels++
	return label(g.labels)
}

func (g *codegen) insn(op uint16, k uint32) {
	g.ops = append(g.ops, irOp{kind: opInsn, raw: bpf.RawInstruction{Op: op, K: k}})
}

func (g *codegen) jumpTo(l label) {
	g.incoming[l] = append(g.incoming[l], g.regs)
}

func (g *codegen) ja(l label) {
	g.jumpTo(l)
	g.ops = append(g.ops, irOp{kind: opJA, target: l})
	g.live = false
}

func (g *codegen) place(l label) {
	if n := len(g.ops); n > 0 && g.ops[n-1].kind == opJA && g.ops[n-1].target == l {
		g.ops = g.ops[:n-1] // a jump to the next instruction
		g.live = true
	}
	in := g.incoming[l]
	delete(g.incoming, l)
	if g.live {
		in = append(in, g.regs)
	}
	if len(in) == 0 {
		g.regs = regs{}
	} else {
		g.regs = in[0]
		for _, r := range in[1:] {
			g.regs = g.regs.meet(r)
		}
	}
	g.live = true
	g.ops = append(g.ops, irOp{kind: opLabel, target: l})
}

func (g *codegen) cond(c cond, t, f label) {
	switch c := c.(type) {
	case cConst:
		if c {
			g.ja(t)
		} else {
			g.ja(f)
		}
	case cNot:
		g.cond(c.x, f, t)
	case cAnd:
		m := g.newLabel()
		g.cond(c.l, m, f)
		g.place(m)
		g.cond(c.r, t, f)
	case cOr:
		m := g.newLabel()
		g.cond(c.l, t, m)
		g.place(m)
		g.cond(c.r, t, f)
	case cTest:
		g.test(c, t, f)
	}
}

func (g *codegen) test(c cTest, t, f label) {
	if !g.regs.aValid || g.regs.a != c.ld || g.regs.aMask != c.mask {
		mode := uint16(bpfABS)
		if c.ld.ind {
			if !g.regs.xValid || g.regs.x != c.ld.xoff {
				g.insn(bpfLDX|bpfB|bpfMSH, c.ld.xoff)
				g.regs.xValid, g.regs.x = true, c.ld.xoff
			}
			mode = bpfIND
		}
		g.insn(bpfLD|c.ld.size|mode, c.ld.off)
		if c.mask != 0 {
			g.insn(bpfALU|bpfAND|bpfK, c.mask)
		}
		g.regs.aValid, g.regs.a, g.regs.aMask = true, c.ld, c.mask
	}
	g.jumpTo(t)
	g.jumpTo(f)
	g.ops = append(g.ops, irOp{kind: opCond, jop: c.op, k: c.val, jt: t, jf: f})
	g.live = false
}

// assemble generates the program for c: return snaplen if it holds, else 0.
func assemble(c cond, snaplen uint32) ([]bpf.RawInstruction, error) {
	g := &codegen{live: true, incoming: map[label][]regs{}}
	accept, reject := g.newLabel(), g.newLabel()
	g.cond(c, accept, reject)
	g.place(accept)
	g.insn(bpfRET|bpfK, snaplen)
	g.live = false
	g.place(reject)
	g.insn(bpfRET|bpfK, 0)
	return g.link()
}

// link resolves labels into offsets. A conditional jump reaches at most 255
// instructions ahead; a farther target is reached through an unconditional
// jump placed right after it (which may push other jumps too far: repeat).
func (g *codegen) link() ([]bpf.RawInstruction, error) {
	ops := g.ops
	for {
		pos := map[label]int{}
		n := 0
		for _, op := range ops {
			if op.kind == opLabel {
				pos[op.target] = n
			} else {
				n++
			}
		}
		if n > MaxInstructions {
			return nil, fmt.Errorf("filter too large: %d instructions, the kernel takes at most %d; simplify the expression", n, MaxInstructions)
		}
		var out []irOp
		far := false
		i := 0
		for _, op := range ops {
			if op.kind == opLabel {
				out = append(out, op)
				continue
			}
			if op.kind == opCond {
				var tramps []irOp
				for _, tgt := range []*label{&op.jt, &op.jf} {
					if pos[*tgt]-i-1 > 255 {
						far = true
						l := g.newLabel()
						tramps = append(tramps, irOp{kind: opLabel, target: l}, irOp{kind: opJA, target: *tgt})
						*tgt = l
					}
				}
				out = append(out, op)
				out = append(out, tramps...)
			} else {
				out = append(out, op)
			}
			i++
		}
		ops = out
		if far {
			continue
		}
		prog := make([]bpf.RawInstruction, 0, n)
		for _, op := range ops {
			i := len(prog)
			switch op.kind {
			case opInsn:
				prog = append(prog, op.raw)
			case opJA:
				prog = append(prog, bpf.RawInstruction{Op: bpfJMP | bpfJA, K: uint32(pos[op.target] - i - 1)})
			case opCond:
				jt, jf := pos[op.jt]-i-1, pos[op.jf]-i-1
				if jt < 0 || jf < 0 {
					return nil, fmt.Errorf("internal error: backward jump at %d", i)
				}
				prog = append(prog, bpf.RawInstruction{Op: bpfJMP | op.jop | bpfK, Jt: uint8(jt), Jf: uint8(jf), K: op.k})
			}
		}
		return prog, nil
	}
}
