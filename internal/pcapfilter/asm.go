package pcapfilter

import (
	"fmt"
	"slices"

	"golang.org/x/net/bpf"
)

// Code generation: each test becomes a load (skipped when the accumulator
// already holds that value on every path reaching it) and a conditional jump
// to a true and a false label; and/or/not only choose the labels. Jumps go
// forward only, so when a label is placed every jump to it is known, and
// what holds there is what holds on all of them: the register contents, and
// facts about packet bytes ("the EtherType is 0x86dd", "the protocol is not
// 6"). A test that the facts decide is not emitted: the path jumps straight
// on. That is exact, truncated packets included: a fact comes from a load
// that succeeded earlier on the same path. Code no path reaches is not
// emitted either, and if none reaches "accept" the expression matches
// nothing.

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

// factKey names a value: a load, masked if mask is not 0.
type factKey struct {
	ld   load
	mask uint32
}

// fact is what is known of a value: that it equals val, or that it is none
// of not.
type fact struct {
	known bool
	val   uint32
	not   []uint32
}

// facts are never modified once shared: with copies the map.
type facts map[factKey]fact

func (fs facts) with(k factKey, f fact) facts {
	out := make(facts, len(fs)+1)
	for k, v := range fs {
		out[k] = v
	}
	out[k] = f
	return out
}

func (fs facts) meet(o facts) facts {
	out := facts{}
	for k, a := range fs {
		b, ok := o[k]
		if !ok {
			continue
		}
		if m, ok := a.meet(b); ok {
			out[k] = m
		}
	}
	return out
}

func (a fact) excludes(v uint32) bool {
	if a.known {
		return a.val != v
	}
	return slices.Contains(a.not, v)
}

func (a fact) meet(b fact) (fact, bool) {
	if a.known && b.known && a.val == b.val {
		return a, true
	}
	var not []uint32
	for _, v := range append(append([]uint32{}, a.not...), b.not...) {
		if a.excludes(v) && b.excludes(v) && !slices.Contains(not, v) {
			not = append(not, v)
		}
	}
	return fact{not: not}, len(not) > 0
}

// decide returns the test's outcome if the facts determine it.
func (fs facts) decide(c cTest) (result, ok bool) {
	f, found := fs[factKey{c.ld, c.mask}]
	if !found {
		return false, false
	}
	if f.known {
		v := f.val
		switch c.op {
		case bpfJEQ:
			return v == c.val, true
		case bpfJGT:
			return v > c.val, true
		case bpfJGE:
			return v >= c.val, true
		case bpfJSET:
			return v&c.val != 0, true
		}
	}
	if c.op == bpfJEQ && slices.Contains(f.not, c.val) {
		return false, true
	}
	return false, false
}

// state is what holds at a point of the program.
type state struct {
	regs  regs
	facts facts
}

func (s state) meet(o state) state {
	return state{regs: s.regs.meet(o.regs), facts: s.facts.meet(o.facts)}
}

type codegen struct {
	ops      []irOp
	labels   int
	state    state
	live     bool // the current position is reached (by falling through)
	incoming map[label][]state
}

func (g *codegen) newLabel() label {
	g.labels++
	return label(g.labels)
}

func (g *codegen) insn(op uint16, k uint32) {
	g.ops = append(g.ops, irOp{kind: opInsn, raw: bpf.RawInstruction{Op: op, K: k}})
}

func (g *codegen) ja(l label) {
	if !g.live {
		return
	}
	g.incoming[l] = append(g.incoming[l], g.state)
	g.ops = append(g.ops, irOp{kind: opJA, target: l})
	g.live = false
}

// place marks the position of l and reports whether any path reaches it.
func (g *codegen) place(l label) bool {
	if n := len(g.ops); n > 0 && g.ops[n-1].kind == opJA && g.ops[n-1].target == l {
		g.ops = g.ops[:n-1] // a jump to the next instruction
		in := g.incoming[l]
		g.incoming[l] = in[:len(in)-1]
		g.live = true
	}
	in := g.incoming[l]
	delete(g.incoming, l)
	if g.live {
		in = append(in, g.state)
	}
	if len(in) == 0 {
		g.live = false
		return false
	}
	g.state = in[0]
	for _, s := range in[1:] {
		g.state = g.state.meet(s)
	}
	g.live = true
	g.ops = append(g.ops, irOp{kind: opLabel, target: l})
	return true
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
	if !g.live {
		return
	}
	if result, ok := g.state.facts.decide(c); ok {
		if result {
			g.ja(t)
		} else {
			g.ja(f)
		}
		return
	}
	r := &g.state.regs
	if !r.aValid || r.a != c.ld || r.aMask != c.mask {
		mode := uint16(bpfABS)
		if c.ld.ind {
			if !r.xValid || r.x != c.ld.xoff {
				g.insn(bpfLDX|bpfB|bpfMSH, c.ld.xoff)
				r.xValid, r.x = true, c.ld.xoff
			}
			mode = bpfIND
		}
		g.insn(bpfLD|c.ld.size|mode, c.ld.off)
		if c.mask != 0 {
			g.insn(bpfALU|bpfAND|bpfK, c.mask)
		}
		r.aValid, r.a, r.aMask = true, c.ld, c.mask
	}
	onTrue, onFalse := g.state, g.state
	if c.op == bpfJEQ {
		k := factKey{c.ld, c.mask}
		onTrue.facts = g.state.facts.with(k, fact{known: true, val: c.val})
		old := g.state.facts[k]
		onFalse.facts = g.state.facts.with(k, fact{not: append(slices.Clip(old.not), c.val)})
	}
	g.incoming[t] = append(g.incoming[t], onTrue)
	g.incoming[f] = append(g.incoming[f], onFalse)
	g.ops = append(g.ops, irOp{kind: opCond, jop: c.op, k: c.val, jt: t, jf: f})
	g.live = false
}

// assemble generates the program for c: return snaplen if it holds, else 0.
// It reports whether any packet can be accepted.
func assemble(c cond, snaplen uint32) ([]bpf.RawInstruction, bool, error) {
	g := &codegen{live: true, state: state{facts: facts{}}, incoming: map[label][]state{}}
	accept, reject := g.newLabel(), g.newLabel()
	g.cond(c, accept, reject)
	accepts := g.place(accept)
	if accepts {
		g.insn(bpfRET|bpfK, snaplen)
	}
	g.live = false
	if g.place(reject) || !accepts {
		g.insn(bpfRET|bpfK, 0)
	}
	prog, err := g.link()
	return prog, accepts, err
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
