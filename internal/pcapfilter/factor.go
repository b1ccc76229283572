package pcapfilter

// factor shrinks the program without changing any decision, truncated
// packets included: in a chain of alternatives, those that start with the
// same test share it. "port 80 or port 443" is (IPv6 and …80) or (IPv4 and
// …80) or (IPv6 and …443) or (IPv4 and …443); it becomes (IPv6 and (…80 or
// …443)) or (IPv4 and (…80 or …443)), and so on inside.
//
// Why this is exact, loads beyond the end of the packet included:
//   - "(G and X) or (G and Y)" is "G and (X or Y)": G reads the same bytes
//     both times, so it aborts, fails or holds both times alike.
//   - Two alternatives that start by comparing the same bytes with
//     different constants ("is IPv6", "is IPv4") can swap places: both read
//     those bytes first, so either both abort or at most one goes on.
//
// libpcap's optimiser goes further (it also reorders loads), which changes
// decisions on truncated packets; this does not.
func factor(c cond) cond {
	switch x := c.(type) {
	case cAnd:
		return and(factor(x.l), factor(x.r))
	case cNot:
		return not(factor(x.x))
	case cOr:
		ds := disjuncts(c, nil)
		for i := 0; i < len(ds); i++ {
			hi, ri := split(ds[i])
			merged := false
			for j := i + 1; j < len(ds); j++ {
				hj, rj := split(ds[j])
				if hj != hi || !movable(ds[i+1:j], hj) {
					continue
				}
				ri = or(ri, rj)
				merged = true
				ds = append(ds[:j], ds[j+1:]...)
				j--
			}
			if merged {
				ds[i] = and(hi, factor(ri))
			} else {
				ds[i] = factorParts(ds[i])
			}
		}
		var out cond = cConst(false)
		for _, d := range ds {
			out = or(out, d)
		}
		return out
	}
	return c
}

// factorParts factors inside the conjuncts of an alternative.
func factorParts(c cond) cond {
	if x, ok := c.(cAnd); ok {
		return and(factor(x.l), factor(x.r))
	}
	if x, ok := c.(cNot); ok {
		return not(factor(x.x))
	}
	return c
}

// disjuncts flattens an or-chain, in order.
func disjuncts(c cond, out []cond) []cond {
	if x, ok := c.(cOr); ok {
		return disjuncts(x.r, disjuncts(x.l, out))
	}
	return append(out, c)
}

// split returns the first conjunct of c and the rest (true if none).
func split(c cond) (head, rest cond) {
	x, ok := c.(cAnd)
	if !ok {
		return c, cConst(true)
	}
	h, r := split(x.l)
	return h, and(r, x.r)
}

// movable reports whether an alternative starting with head can move in
// front of all of between: each of them starts by comparing the same bytes
// with other constants.
func movable(between []cond, head cond) bool {
	ld, mask, vals, ok := eqSet(head)
	if !ok {
		return false
	}
	for _, d := range between {
		h, _ := split(d)
		ld2, mask2, vals2, ok := eqSet(h)
		if !ok || ld2 != ld || mask2 != mask {
			return false
		}
		for _, v := range vals2 {
			for _, w := range vals {
				if v == w {
					return false
				}
			}
		}
	}
	return true
}

// eqSet reports whether c is "the load (masked) equals one of vals": an
// equality test, or an or-chain of equality tests of the same load.
func eqSet(c cond) (ld load, mask uint32, vals []uint32, ok bool) {
	for _, d := range disjuncts(c, nil) {
		t, isTest := d.(cTest)
		if !isTest || t.op != bpfJEQ || (len(vals) > 0 && (t.ld != ld || t.mask != mask)) {
			return load{}, 0, nil, false
		}
		ld, mask = t.ld, t.mask
		vals = append(vals, t.val)
	}
	return ld, mask, vals, len(vals) > 0
}
