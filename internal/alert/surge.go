package alert

import (
	"fmt"
	"math"
	"strconv"

	"github.com/netmeter/netmeter/internal/output"
)

// surge compares each entity's rate over the latest window with its rate
// over the window before. Both windows are sums of slots of window/10, so
// the comparison slides by a tenth of the window; rates divide by the time
// netmeter actually watched, and a window watched less than half the time
// gives no verdict. An entity must have been known since the start of the
// earlier window: a program that just appeared has no "before" to compare
// with (the audit kinds report new things).
//
// Like Prometheus' `rate[w] > k * rate[w] offset w`, a surge that becomes
// the new level resolves once the earlier window catches up with it.
type surge struct {
	c        *compiled
	clk      *clock
	ents     map[entKey]*surgeEnt
	refused  uint64
	dirLabel string
}

type entKey struct{ kind, netns, name string }

type surgeEnt struct {
	rx, tx   series
	first    int64 // slot first seen
	lastSeen int64 // slot last present in a snapshot
	present  bool  // in the current snapshot
}

func newSurge(c *compiled) *surge {
	return &surge{c: c, clk: newClock(c.Window, 2), ents: map[entKey]*surgeEnt{}, dirLabel: c.Direction}
}

func (s *surge) stats() (int, uint64) { return len(s.ents), s.refused }

func (s *surge) check(in *input) []instance {
	if in.snap != nil && in.interval > 0 {
		s.feed(in)
	}
	if s.clk.cur < 0 {
		return nil
	}
	curCover, prevCover := s.clk.covered(0), s.clk.covered(1)
	if curCover < s.c.Window/2 || prevCover < s.c.Window/2 {
		return nil
	}
	var out []instance
	for k, e := range s.ents {
		if e.first > s.clk.cur-int64(2*slotsPerWindow-1) {
			continue
		}
		cur, prev := s.bytes(e, 0), s.bytes(e, 1)
		curRate, prevRate := float64(cur)/curCover.Seconds(), float64(prev)/prevCover.Seconds()
		if curRate < s.c.minRate || curRate <= prevRate*(1+s.c.GrowthPercent/100) {
			continue
		}
		growth := "from nothing"
		if prevRate > 0 {
			growth = "up " + strconv.FormatFloat(math.Round((curRate/prevRate-1)*100), 'f', 0, 64) + " %"
		}
		what := s.c.Direction + " traffic"
		if s.c.Direction == "total" {
			what = "traffic (rx + tx)"
		}
		out = append(out, instance{
			labels: entityLabels(k, map[string]string{"direction": s.dirLabel}),
			summary: fmt.Sprintf("%s %s %s surged to %s, %s", k.kind, k.name, what,
				output.FormatRate(curRate, false), growth),
			description: fmt.Sprintf("%s %s%s: %s %s over the last %s, %s from %s over the %s before "+
				"(rule: more than +%v %% and at least %s).",
				k.kind, k.name, netnsNote(k.netns), what, output.FormatRate(curRate, false), s.c.Window, growth,
				output.FormatRate(prevRate, false), s.c.Window, s.c.GrowthPercent, output.FormatRate(s.c.minRate, false)),
		})
	}
	return out
}

func (s *surge) bytes(e *surgeEnt, w int) uint64 {
	switch s.c.Direction {
	case "rx":
		return e.rx.sum(s.clk, w)
	case "tx":
		return e.tx.sum(s.clk, w)
	}
	return e.rx.sum(s.clk, w) + e.tx.sum(s.clk, w)
}

// feed adds the snapshot's per-interval bytes to the current slot.
func (s *surge) feed(in *input) {
	if steps := s.clk.advance(in.now); steps > 0 {
		for k, e := range s.ents {
			e.rx.advance(s.clk, steps)
			e.tx.advance(s.clk, steps)
			// Forget entities gone for two windows with nothing left to
			// compare: their state would only grow the table.
			if !e.present && s.clk.cur-e.lastSeen >= int64(2*slotsPerWindow) && e.rx.zero() && e.tx.zero() {
				delete(s.ents, k)
			}
		}
	}
	s.clk.observe(in.interval)
	for _, e := range s.ents {
		e.present = false
	}
	snap := in.snap
	if s.c.set["interface"] {
		for i := range snap.Interfaces {
			ifc := &snap.Interfaces[i]
			if !ifc.Present {
				continue
			}
			s.add(entKey{"interface", ifc.Netns, ifc.Name}, ifc.Delta.RxBytes, ifc.Delta.TxBytes)
		}
	}
	if s.c.set["program"] {
		for i := range snap.Processes {
			p := &snap.Processes[i]
			if p.Comm != "" {
				s.add(entKey{"program", "", p.Comm}, p.Delta.RxBytes, p.Delta.TxBytes)
			}
		}
	}
	if s.c.set["container"] {
		for i := range snap.Containers {
			c := &snap.Containers[i]
			name := c.Name
			if name == "" {
				name = c.ID
			}
			s.add(entKey{"container", "", name}, c.Delta.RxBytes, c.Delta.TxBytes)
		}
	}
}

func (s *surge) add(k entKey, rx, tx uint64) {
	if !s.c.matches(k.name) {
		return
	}
	e := s.ents[k]
	if e == nil {
		if len(s.ents) >= s.c.MaxEntities {
			s.refused++
			return
		}
		e = &surgeEnt{rx: make(series, s.clk.n), tx: make(series, s.clk.n), first: s.clk.cur}
		s.ents[k] = e
	}
	e.present, e.lastSeen = true, s.clk.cur
	e.rx.add(s.clk, rx)
	e.tx.add(s.clk, tx)
}

// entityLabels names an entity in labels: interface (and netns when not
// netmeter's own), program or container.
func entityLabels(k entKey, extra map[string]string) map[string]string {
	l := map[string]string{k.kind: k.name}
	if k.netns != "" {
		l["netns"] = k.netns
	}
	for n, v := range extra {
		l[n] = v
	}
	return l
}

func netnsNote(ns string) string {
	if ns == "" {
		return ""
	}
	return " (netns " + ns + ")"
}
