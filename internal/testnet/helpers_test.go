package testnet

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"
)

// devStats is the part of a /proc/net/dev line these tests compare.
type devStats struct{ RxBytes, RxPackets, TxBytes, TxPackets uint64 }

// netDev reads link's counters from /proc/net/dev inside ns.
func netDev(t testing.TB, ns *Netns, link string) devStats {
	t.Helper()
	b, err := ns.ProcNetDev()
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(name) != link {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 16 {
			t.Fatalf("short /proc/net/dev line %q", line)
		}
		u := func(i int) uint64 {
			v, err := strconv.ParseUint(f[i], 10, 64)
			if err != nil {
				t.Fatalf("parse %q: %v", line, err)
			}
			return v
		}
		return devStats{RxBytes: u(0), RxPackets: u(1), TxBytes: u(8), TxPackets: u(9)}
	}
	t.Fatalf("no %s in /proc/net/dev of %s:\n%s", link, ns, b)
	return devStats{}
}

func (a devStats) sub(b devStats) devStats {
	return devStats{a.RxBytes - b.RxBytes, a.RxPackets - b.RxPackets, a.TxBytes - b.TxBytes, a.TxPackets - b.TxPackets}
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
