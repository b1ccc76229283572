package testnet

import (
	"context"
	"testing"
	"time"
)

// devStats is the part of a /proc/net/dev line these tests compare.
type devStats struct{ RxBytes, RxPackets, TxBytes, TxPackets uint64 }

// netDev reads link's counters from /proc/net/dev inside ns.
func netDev(t testing.TB, ns *Netns, link string) devStats {
	t.Helper()
	c, err := ns.LinkCounters(link)
	if err != nil {
		t.Fatal(err)
	}
	return devStats{RxBytes: c.RxBytes, RxPackets: c.RxPackets, TxBytes: c.TxBytes, TxPackets: c.TxPackets}
}

func (a devStats) sub(b devStats) devStats {
	return devStats{a.RxBytes - b.RxBytes, a.RxPackets - b.RxPackets, a.TxBytes - b.TxBytes, a.TxPackets - b.TxPackets}
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
