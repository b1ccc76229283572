package tui

import (
	"cmp"

	"github.com/netmeter/netmeter/internal/snapshot"
)

// ifKey identifies an interface across snapshots (its index may change when
// it is re-created; its name and namespace do not).
type ifKey struct {
	netns string
	inode uint64
	name  string
}

func keyOf(ifc *snapshot.Interface) ifKey {
	return ifKey{netns: ifc.Netns, inode: ifc.NetnsInode, name: ifc.Name}
}

func (a ifKey) compare(b ifKey) int {
	return cmp.Or(cmp.Compare(a.name, b.name), cmp.Compare(a.netns, b.netns), cmp.Compare(a.inode, b.inode))
}

// faults is one interval's growth of the error and drop counters.
type faults struct {
	rxErr, txErr, rxDrop, txDrop uint64
}

func faultsOf(d *snapshot.LinkCounters) faults {
	return faults{rxErr: d.RxErrors, txErr: d.TxErrors, rxDrop: d.RxDropped, txDrop: d.TxDropped}
}

func (f faults) add(g faults) faults {
	return faults{f.rxErr + g.rxErr, f.txErr + g.txErr, f.rxDrop + g.rxDrop, f.txDrop + g.txDrop}
}

// ifState is what the model remembers about one interface. Its slices are
// histories, oldest first, one sample per snapshot, at most Options.History
// long; they are replaced, never written in place, so earlier Models that
// share them stay unchanged.
type ifState struct {
	cur     snapshot.Interface // as in the latest snapshot that listed it
	rx, tx  []float64          // current rates, bytes/s
	faults  []faults           // per-interval deltas of errors and drops
	missing int                // consecutive snapshots absent or not present
}

// idle records an interval in which the interface did not exist.
func (st ifState) idle(limit int) ifState {
	st.rx = push(st.rx, 0, limit)
	st.tx = push(st.tx, 0, limit)
	st.faults = push(st.faults, faults{}, limit)
	return st
}

// grew reports the counters that grew in the latest interval.
func (st ifState) grew() faults {
	if st.missing > 0 || len(st.faults) == 0 {
		return faults{}
	}
	return st.faults[len(st.faults)-1]
}

// faultSum is the growth over the whole history.
func (st ifState) faultSum() faults {
	var sum faults
	for _, f := range st.faults {
		sum = sum.add(f)
	}
	return sum
}

// push returns a new slice with v appended, keeping the last limit values.
func push[T any](hist []T, v T, limit int) []T {
	keep := min(len(hist), limit-1)
	out := make([]T, keep+1)
	copy(out, hist[len(hist)-keep:])
	out[keep] = v
	return out
}
