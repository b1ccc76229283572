package metrics

import (
	"cmp"
	"slices"
	"strings"
)

// admitFactor is the hysteresis of the cap: an entity outside the exposed
// set replaces the quietest exposed series only when its recent rate is
// more than admitFactor times that series' rate, so two entities near the
// boundary do not swap (and create a new series) every interval.
const admitFactor = 2

// family is one metric family's accumulated series under a cardinality cap:
// at most max label sets of its own plus the overflow series. Every value
// is a counter that only grows:
//
//   - an exposed label set accumulates its entity's growth, and keeps its
//     value while the entity is absent (a process that exited);
//   - growth of entities outside the exposed set goes to the overflow
//     series (labels otherLabels), which is created on first use and never
//     removed;
//   - when the set is full, a newcomer whose recent rate is more than
//     admitFactor times the quietest series' rate takes its place; the
//     evicted series disappears from the exposition (a scrape sees it go
//     stale) and its value is remembered (the last max evicted label sets),
//     so if it comes back it continues from where it stopped. What it
//     counted while out is in the overflow series, not in both: rate() and
//     increase() over the family sum to the traffic, without a double count.
//
// A sample whose labels equal otherLabels (a program named "other") is
// counted in the overflow series.
type family struct {
	name        string // family label of the eviction counter
	max         int
	width       int  // values per series
	idle        bool // admit entities that have not grown (interfaces)
	otherLabels []string
	otherKey    string

	series   map[string]*series
	other    *series // nil until something overflows
	retired  map[string]retiredSeries
	retiredQ []retiredRef // eviction order, oldest first; may hold stale refs
	stamp    uint64
	evicted  uint64 // series evicted since the exporter started
}

type series struct {
	labels []string
	v      []uint64
	score  float64 // recent rate at the latest update; 0 when absent from it
	seen   uint64  // the latest update the entity had a sample in
}

type retiredSeries struct {
	v     []uint64
	stamp uint64
}

type retiredRef struct {
	key   string
	stamp uint64
}

func newFamily(name string, max, width int, otherLabels ...string) *family {
	return &family{
		name: name, max: max, width: width,
		otherLabels: otherLabels, otherKey: labelKey(otherLabels),
		series: map[string]*series{}, retired: map[string]retiredSeries{},
	}
}

// admittingIdle makes f admit entities that have not grown yet: an
// interface without traffic still has a state worth showing.
func (f *family) admittingIdle() *family {
	f.idle = true
	return f
}

// labelKey joins label values into a map key; NUL cannot occur in a label
// value that is valid UTF-8 text from the kernel or a runtime.
func labelKey(labels []string) string { return strings.Join(labels, "\x00") }

// sample is one entity's (or one label set's summed) growth in one update.
type sample struct {
	labels []string
	add    []uint64
	score  float64
}

// samples gathers one update's samples of a family, by label set.
type samples struct {
	width int
	m     map[string]*sample
}

func newSamples(width int) *samples { return &samples{width: width, m: map[string]*sample{}} }

// add sums growth and a recent rate into the label set's sample. labels is
// kept: the caller must not modify it afterwards.
func (s *samples) add(labels []string, score float64, growth ...uint64) {
	s.into(labelKey(labels), func() []string { return labels }, score, growth)
}

// add1 is add for a family with one label; it allocates only for a label
// value it has not seen in this update.
func (s *samples) add1(label string, score float64, growth ...uint64) {
	s.into(label, func() []string { return []string{label} }, score, growth)
}

func (s *samples) into(key string, labels func() []string, score float64, growth []uint64) {
	x := s.m[key]
	if x == nil {
		x = &sample{labels: labels(), add: make([]uint64, s.width)}
		s.m[key] = x
	}
	x.score += score
	for i, g := range growth {
		x.add[i] += g
	}
}

func nonzero(v []uint64) bool {
	return slices.ContainsFunc(v, func(x uint64) bool { return x != 0 })
}

func addTo(dst, src []uint64) {
	for i, x := range src {
		dst[i] += x
	}
}

type candidate struct {
	key string
	s   *sample
}

// step applies one update's samples: it re-ranks the exposed set and adds
// every sample's growth to its series or to the overflow series. seq
// numbers the updates.
func (f *family) step(seq uint64, in *samples) {
	for k, s := range f.series {
		if x := in.m[k]; x != nil {
			s.score, s.seen = x.score, seq
		} else {
			s.score = 0
		}
	}
	var cands []candidate
	for k, x := range in.m {
		if _, ok := f.series[k]; !ok && k != f.otherKey && (f.idle || nonzero(x.add)) {
			cands = append(cands, candidate{k, x})
		}
	}
	slices.SortFunc(cands, func(a, b candidate) int {
		return cmp.Or(cmp.Compare(b.s.score, a.s.score), cmp.Compare(a.key, b.key))
	})
	i := 0
	for ; i < len(cands) && len(f.series) < f.max; i++ {
		f.admit(cands[i].key, cands[i].s, seq)
	}
	if i < len(cands) && len(f.series) > 0 {
		victims := make([]string, 0, len(f.series))
		for k := range f.series {
			victims = append(victims, k)
		}
		slices.SortFunc(victims, func(a, b string) int {
			x, y := f.series[a], f.series[b]
			return cmp.Or(cmp.Compare(x.score, y.score), cmp.Compare(x.seen, y.seen), cmp.Compare(a, b))
		})
		for j := 0; i < len(cands) && j < len(victims); i, j = i+1, j+1 {
			c, v := cands[i], f.series[victims[j]]
			if !(c.s.score > admitFactor*v.score) {
				break // candidates only get quieter, victims only busier
			}
			f.retire(victims[j])
			f.admit(c.key, c.s, seq)
		}
	}
	for k, x := range in.m {
		if s := f.series[k]; s != nil {
			addTo(s.v, x.add)
		} else if nonzero(x.add) {
			if f.other == nil {
				f.other = &series{labels: f.otherLabels, v: make([]uint64, f.width)}
			}
			addTo(f.other.v, x.add)
		}
	}
}

func (f *family) admit(key string, x *sample, seq uint64) {
	s := &series{labels: x.labels, score: x.score, seen: seq}
	if r, ok := f.retired[key]; ok {
		s.v = r.v
		delete(f.retired, key)
	} else {
		s.v = make([]uint64, f.width)
	}
	f.series[key] = s
}

// retire evicts an exposed series and remembers its values; the memory
// keeps the last max evicted label sets.
func (f *family) retire(key string) {
	s := f.series[key]
	delete(f.series, key)
	f.evicted++
	f.stamp++
	f.retired[key] = retiredSeries{v: s.v, stamp: f.stamp}
	f.retiredQ = append(f.retiredQ, retiredRef{key, f.stamp})
	for len(f.retired) > f.max {
		r := f.retiredQ[0]
		f.retiredQ = f.retiredQ[1:]
		if x, ok := f.retired[r.key]; ok && x.stamp == r.stamp {
			delete(f.retired, r.key)
		}
	}
	if len(f.retiredQ) > 2*f.max+16 { // drop refs of re-admitted series
		q := f.retiredQ[:0]
		for _, r := range f.retiredQ {
			if x, ok := f.retired[r.key]; ok && x.stamp == r.stamp {
				q = append(q, r)
			}
		}
		f.retiredQ = slices.Clip(q)
	}
}

// reset forgets every series, the overflow series and the evicted values
// (a ledger's new billing period); the eviction count stays.
func (f *family) reset() {
	f.series, f.other = map[string]*series{}, nil
	f.retired, f.retiredQ = map[string]retiredSeries{}, nil
}

// each calls fn for every exposed series and then the overflow series.
func (f *family) each(fn func(labels []string, v []uint64)) {
	for _, s := range f.series {
		fn(s.labels, s.v)
	}
	if f.other != nil {
		fn(f.other.labels, f.other.v)
	}
}
