package health

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"time"
)

// Entity is a flow's local end.
type Entity struct {
	// ID is stable across intervals and restarts: "process:<comm>",
	// "container:<name>", or "other" (the overflow flow).
	ID      string `json:"id"`
	Kind    string `json:"kind"` // "process", "container", "other"
	Name    string `json:"name"`
	Account string `json:"account,omitempty"` // containers' billing account
	// PIDs are the processes seen in the window (up to 16).
	PIDs []int `json:"pids,omitempty"`
}

// Flow is the traffic between one local entity and one remote group over a
// window. Byte counts are IP bytes unless named payload.
type Flow struct {
	ID      string `json:"id"` // "<local id>-><group id>"
	Local   Entity `json:"local"`
	Group   string `json:"group"`
	GroupID string `json:"group_id"` // "group:<name>"
	// Health is the group's current state ("" for groups without one:
	// unconnected, other).
	Health State `json:"health,omitempty"`

	WindowMS  int64 `json:"window_ms"` // the span summed
	Intervals int   `json:"intervals"`

	TxBytes   uint64 `json:"tx_bytes"`
	RxBytes   uint64 `json:"rx_bytes"`
	TxPayload uint64 `json:"tx_payload_bytes"`
	RxPayload uint64 `json:"rx_payload_bytes"`
	// TxRate and RxRate are IP bytes per second over the window; LastRate
	// is tx+rx per second over the latest interval (0 if the flow was idle
	// then).
	TxRate   float64 `json:"tx_bytes_per_second"`
	RxRate   float64 `json:"rx_bytes_per_second"`
	LastRate float64 `json:"last_bytes_per_second"`
	// Connections counts the distinct connections (socket cookies) seen.
	Connections int `json:"connections"`

	SegsOut        uint64  `json:"segs_out"`
	RetransSegs    uint64  `json:"retrans_segs"`
	RetransPercent float64 `json:"retrans_percent"`
	RTOs           uint64  `json:"rto_events"`
	ResetsSent     uint64  `json:"resets_sent"`
	ResetsReceived uint64  `json:"resets_received"`

	// RTTMeanUS is sample-weighted over the window's RTT samples, or the
	// mean SRTT of connections that moved data when there were none
	// (RTTSource "samples" or "srtt"; "" and 0 when neither). RTTMinUS and
	// RTTMaxUS come from the kernel's per-interval RTT windows.
	RTTMeanUS  int64  `json:"rtt_mean_us"`
	RTTMinUS   int64  `json:"rtt_min_us"`
	RTTMaxUS   int64  `json:"rtt_max_us"`
	RTTSamples uint64 `json:"rtt_samples"`
	RTTSource  string `json:"rtt_source,omitempty"`

	// Drops are packets the kernel dropped for the flow's sockets (by
	// cookie, or by process when all its sockets are in this flow; drops
	// known only by a process talking to several groups are charged to its
	// "unconnected" flow); SocketDrops those for socket reasons.
	Drops       uint64 `json:"drops"`
	SocketDrops uint64 `json:"socket_drops"`
}

// Keys of TopFlows.
var flowOrders = map[string]func(a, b *Flow) int{
	"bytes": func(a, b *Flow) int { return cmp.Compare(b.TxBytes+b.RxBytes, a.TxBytes+a.RxBytes) },
	"retrans": func(a, b *Flow) int {
		return cmp.Or(cmp.Compare(b.RetransSegs, a.RetransSegs), cmp.Compare(b.RetransPercent, a.RetransPercent))
	},
	"rtt":   func(a, b *Flow) int { return cmp.Compare(b.RTTMeanUS, a.RTTMeanUS) },
	"drops": func(a, b *Flow) int { return cmp.Compare(b.Drops, a.Drops) },
	"rate":  func(a, b *Flow) int { return cmp.Compare(b.LastRate, a.LastRate) },
}

// CheckFlowOrder says whether by is a key of TopFlows, naming the keys if
// not.
func CheckFlowOrder(by string) error {
	if _, ok := flowOrders[by]; !ok {
		return fmt.Errorf("top flows by %q: unknown key; use one of %q", by, slices.Sorted(maps.Keys(flowOrders)))
	}
	return nil
}

// TopFlows returns up to limit flows seen in the last window (every flow
// when limit ≤ 0), largest first by one key: "bytes" (tx+rx over the
// window), "retrans" (retransmitted segments), "rtt" (mean RTT), "drops", or
// "rate" (tx+rx rate in the latest interval). Ties go to more bytes, then to
// the ID. The window is measured back from the latest snapshot and covers
// at least its interval and at most the ring.
func (a *Analyzer) TopFlows(window time.Duration, by string, limit int) ([]Flow, error) {
	if err := CheckFlowOrder(by); err != nil {
		return nil, err
	}
	order := flowOrders[by]
	a.mu.RLock()
	flows, _ := a.sumFlows(window)
	a.mu.RUnlock()
	slices.SortFunc(flows, func(x, y Flow) int {
		return cmp.Or(order(&x, &y), flowOrders["bytes"](&x, &y), cmp.Compare(x.ID, y.ID))
	})
	if limit > 0 && len(flows) > limit {
		flows = flows[:limit]
	}
	return flows, nil
}

// windowOf returns the intervals of the last window, oldest first.
func (a *Analyzer) windowOf(window time.Duration) []*interval {
	if len(a.ring) == 0 {
		return nil
	}
	start := a.last.Add(-window)
	i := len(a.ring) - 1
	for i > 0 && a.ring[i-1].time.After(start) {
		i--
	}
	return a.ring[i:]
}

// sumFlows sums every flow over the last window, and returns the span it
// covers. The caller holds a.mu.
func (a *Analyzer) sumFlows(window time.Duration) ([]Flow, time.Duration) {
	recs := a.windowOf(window)
	if len(recs) == 0 {
		return []Flow{}, 0
	}
	var span time.Duration
	for _, r := range recs {
		span += r.dur
	}
	type acc struct {
		t         tally
		conns     int
		intervals int
		last      float64
	}
	sums := map[*flowEntry]*acc{}
	for i, r := range recs {
		for j := range r.flows {
			ft := &r.flows[j]
			s := sums[ft.f]
			if s == nil {
				s = &acc{}
				sums[ft.f] = s
			}
			s.t.add(&ft.t)
			s.intervals++
			s.conns += ft.t.newConns
			if i == 0 {
				s.conns += ft.t.conns - ft.t.newConns // present before the window
			}
			if i == len(recs)-1 {
				s.last = float64(ft.t.traffic.TxBytes+ft.t.traffic.RxBytes) / r.dur.Seconds()
			}
		}
	}
	first := recs[0].seq
	out := make([]Flow, 0, len(sums))
	for f, s := range sums {
		t := &s.t
		fl := Flow{
			ID: f.ent.id + "->group:" + f.group, Group: f.group, GroupID: "group:" + f.group,
			Local:    Entity{ID: f.ent.id, Kind: f.ent.kind, Name: f.ent.name, Account: f.ent.account},
			Health:   a.groupState(f.group),
			WindowMS: span.Milliseconds(), Intervals: s.intervals,
			TxBytes: t.traffic.TxBytes, RxBytes: t.traffic.RxBytes,
			TxPayload: t.traffic.TxPayload, RxPayload: t.traffic.RxPayload,
			TxRate: float64(t.traffic.TxBytes) / span.Seconds(), RxRate: float64(t.traffic.RxBytes) / span.Seconds(),
			LastRate: s.last, Connections: s.conns,
			SegsOut: t.tcp.SegsOut, RetransSegs: t.tcp.RetransSegs, RetransPercent: 100 * t.retransRatio(),
			RTOs: t.tcp.RTOs, ResetsSent: t.tcp.ResetsSent, ResetsReceived: t.tcp.ResetsReceived,
			RTTMinUS: int64(t.rttMin), RTTMaxUS: int64(t.rttMax),
			Drops: t.drops, SocketDrops: t.socketDrops,
		}
		rtt, n, src := t.rtt()
		fl.RTTMeanUS, fl.RTTSamples, fl.RTTSource = int64(rtt+0.5), n, src
		for pid, seq := range f.pids {
			if seq >= first {
				fl.Local.PIDs = append(fl.Local.PIDs, pid)
			}
		}
		slices.Sort(fl.Local.PIDs)
		out = append(out, fl)
	}
	return out, span
}
