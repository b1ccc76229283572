// Package counter turns successive readings of a kernel counter into safe,
// non-negative deltas.
//
// Kernel counters are monotonic until they are not: a driver resets them, an
// interface is deleted and re-created, or a 32-bit counter (old drivers,
// /proc/net/dev on 32-bit kernels) wraps at 2^32. Getting this wrong is the
// vnStat "+16 EiB" bug class: a decrease read as a 64-bit wrap yields a delta
// of almost 2^64. The rules here make that impossible:
//
//   - cur >= prev: the delta is cur-prev, unless it implies a rate above
//     Limits.MaxPerSecond, in which case it is discarded (Implausible) and the
//     reading becomes the new base.
//   - cur < prev: a 64-bit wrap is never assumed. It is a 32-bit wrap only when
//     prev lies in the top eighth of the 32-bit range and the wrapped delta
//     (2^32-prev+cur) fits Limits.WrapPerSecond; otherwise it is a reset and
//     the new value itself is counted (the counter restarted from zero).
package counter

import (
	"fmt"
	"math"
	"time"
)

// Verdict says how a delta was derived.
type Verdict uint8

const (
	// Normal: the counter increased (or stayed).
	Normal Verdict = iota
	// Reset: the counter went backwards; the new value was counted.
	Reset
	// Wrap32: the counter wrapped at 2^32.
	Wrap32
	// Implausible: the increase implied an impossible rate and was dropped.
	Implausible
)

func (v Verdict) String() string {
	switch v {
	case Normal:
		return "normal"
	case Reset:
		return "reset"
	case Wrap32:
		return "wrap32"
	case Implausible:
		return "implausible"
	}
	return fmt.Sprintf("verdict(%d)", uint8(v))
}

// wrapZone is the lowest previous value that can precede a 32-bit wrap: the
// top eighth of the 32-bit range.
const wrapZone = math.MaxUint32 - math.MaxUint32/8

// Limits bound what a plausible delta is.
type Limits struct {
	// MaxPerSecond is the highest believable rate. Larger increases are
	// dropped. Zero means no bound.
	MaxPerSecond float64
	// WrapPerSecond is the highest rate at which a 32-bit wrap is believed.
	// It should be the link's speed when known. Zero disables wrap detection.
	WrapPerSecond float64
	// MinElapsed is the smallest interval the bounds are scaled to, so a
	// burst read twice in quick succession is not dropped. Default 1s.
	MinElapsed time.Duration
}

func (l Limits) budget(perSecond float64, elapsed time.Duration) float64 {
	minE := l.MinElapsed
	if minE <= 0 {
		minE = time.Second
	}
	if elapsed < minE {
		elapsed = minE
	}
	return perSecond * elapsed.Seconds()
}

// Delta returns what was counted between two readings taken elapsed apart.
// It never returns a value larger than the limits allow.
func Delta(prev, cur uint64, elapsed time.Duration, l Limits) (uint64, Verdict) {
	if cur >= prev {
		d := cur - prev
		if l.MaxPerSecond > 0 && float64(d) > l.budget(l.MaxPerSecond, elapsed) {
			return 0, Implausible
		}
		return d, Normal
	}
	if l.WrapPerSecond > 0 && prev <= math.MaxUint32 && prev >= wrapZone && cur <= math.MaxUint32 {
		d := (math.MaxUint32 - prev) + cur + 1
		if float64(d) <= l.budget(l.WrapPerSecond, elapsed) {
			return d, Wrap32
		}
	}
	// A reset: the counter restarted from zero, so cur was counted since.
	if l.MaxPerSecond > 0 && float64(cur) > l.budget(l.MaxPerSecond, elapsed) {
		// The new value is itself too large to have accrued in the interval
		// (the counter was not reset to zero but replaced): count nothing.
		return 0, Reset
	}
	return cur, Reset
}
