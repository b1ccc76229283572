package counter

import (
	"math"
	"testing"
	"time"
)

// gbit is 1 Gbit/s in bytes per second.
const gbit = 125_000_000

var lim = Limits{MaxPerSecond: 200e9, WrapPerSecond: 10 * gbit}

func TestDelta(t *testing.T) {
	const two32 = uint64(1) << 32
	tests := []struct {
		name        string
		prev, cur   uint64
		elapsed     time.Duration
		limits      Limits
		want        uint64
		wantVerdict Verdict
	}{
		{"steady", 1000, 1500, time.Second, lim, 500, Normal},
		{"unchanged", 1000, 1000, time.Second, lim, 0, Normal},
		{"from zero", 0, 42, time.Second, lim, 42, Normal},
		// vnStat's "+16 EiB": a decrease of a 64-bit counter read as a 64-bit
		// wrap gives 2^64-4900. It must be a reset that counts the new value.
		{"vnstat 16EiB: decrease is reset", 5000, 100, time.Second, lim, 100, Reset},
		{"decrease to zero", 5000, 0, time.Second, lim, 0, Reset},
		{"64-bit near max never wraps", math.MaxUint64 - 10, 5, time.Second, lim, 5, Reset},
		{"large 64-bit value drops", 1 << 40, 7, time.Second, lim, 7, Reset},
		{"32-bit wrap near 2^32", two32 - 100, 50, time.Second, lim, 150, Wrap32},
		{"32-bit wrap exactly at max", two32 - 1, 0, time.Second, lim, 1, Wrap32},
		{"32-bit wrap needs plausible rate", two32 - 100, 2 * gbit * 10, time.Second, lim, 2 * gbit * 10, Reset},
		{"32-bit wrap longer interval", two32 - 400_000_000, 2_000_000_000, 10 * time.Second, lim, 2_400_000_000, Wrap32},
		{"low 32-bit value is a reset, not a wrap", 1_000_000, 10, time.Second, lim, 10, Reset},
		{"middle of 32-bit range is a reset", 3_000_000_000, 10, time.Second, lim, 10, Reset},
		{"wrap detection disabled", two32 - 100, 50, time.Second, Limits{MaxPerSecond: 200e9}, 50, Reset},
		// A driver reporting garbage (vnStat issue class: counters jumping
		// to near 2^64) must not add exabytes.
		{"implausible jump dropped", 100, math.MaxUint64, time.Second, lim, 0, Implausible},
		{"implausible after reset dropped", 1 << 50, 1 << 45, time.Second, lim, 0, Reset},
		{"zero elapsed uses MinElapsed", 0, 100e9, 0, lim, 100e9, Normal},
		{"no bound", 100, math.MaxUint64, time.Second, Limits{}, math.MaxUint64 - 100, Normal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, v := Delta(tt.prev, tt.cur, tt.elapsed, tt.limits)
			if got != tt.want || v != tt.wantVerdict {
				t.Fatalf("Delta(%d, %d, %v) = %d, %v; want %d, %v", tt.prev, tt.cur, tt.elapsed, got, v, tt.want, tt.wantVerdict)
			}
		})
	}
}

func TestVerdictString(t *testing.T) {
	for v, want := range map[Verdict]string{Normal: "normal", Reset: "reset", Wrap32: "wrap32", Implausible: "implausible", 9: "verdict(9)"} {
		if v.String() != want {
			t.Errorf("%d.String() = %q, want %q", v, v.String(), want)
		}
	}
}

// FuzzDelta checks the invariants that make absurd deltas impossible.
func FuzzDelta(f *testing.F) {
	f.Add(uint64(5000), uint64(100), int64(time.Second))
	f.Add(uint64(1<<32-100), uint64(50), int64(time.Second))
	f.Add(uint64(math.MaxUint64-1), uint64(3), int64(0))
	f.Add(uint64(0), uint64(math.MaxUint64), int64(-5))
	f.Fuzz(func(t *testing.T, prev, cur uint64, ns int64) {
		elapsed := time.Duration(ns)
		d, v := Delta(prev, cur, elapsed, lim)
		budget := lim.budget(lim.MaxPerSecond, elapsed)
		if float64(d) > budget {
			t.Fatalf("delta %d exceeds budget %.0f (prev %d cur %d elapsed %v)", d, budget, prev, cur, elapsed)
		}
		switch {
		case cur >= prev:
			if v != Normal && v != Implausible {
				t.Fatalf("increase gave verdict %v", v)
			}
			if d != 0 && d != cur-prev {
				t.Fatalf("increase %d→%d gave %d", prev, cur, d)
			}
		case v == Wrap32:
			if d > 1<<32 || prev > math.MaxUint32 {
				t.Fatalf("wrap32 %d→%d gave %d", prev, cur, d)
			}
		default:
			if v != Reset || d > cur {
				t.Fatalf("decrease %d→%d gave %d, %v", prev, cur, d, v)
			}
		}
	})
}

func BenchmarkDelta(b *testing.B) {
	b.ReportAllocs()
	var sum uint64
	for i := 0; b.Loop(); i++ {
		d, _ := Delta(uint64(i), uint64(i+1500), time.Second, lim)
		sum += d
	}
	_ = sum
}
