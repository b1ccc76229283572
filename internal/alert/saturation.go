package alert

import (
	"fmt"
	"time"

	"github.com/netmeter/netmeter/internal/output"
	"github.com/netmeter/netmeter/internal/snapshot"
)

// saturation fires when an interface with a known link speed carries more
// than share_percent of it, in one direction, for at least `for` without a
// break. The throughput is the interface's 10-second moving average
// (Rate.Window10s), so one short dip of a TCP sawtooth does not restart the
// count; a link speed of 0 (loopback, veth, bridges) means unknown and is
// skipped.
type saturation struct {
	c       *compiled
	pending map[satKey]time.Time // since when above the share
	last    map[satKey]satLast
}

// satLast is the latest reading, for the description.
type satLast struct{ share, rate, speed float64 }

type satKey struct {
	entKey
	dir string
}

func newSaturation(c *compiled) *saturation {
	return &saturation{c: c, pending: map[satKey]time.Time{}, last: map[satKey]satLast{}}
}

func (s *saturation) stats() (int, uint64) { return len(s.pending), 0 }

func (s *saturation) check(in *input) []instance {
	if in.snap == nil {
		// No new data: the pending periods stand.
		return s.instances(in.now)
	}
	above := map[satKey]bool{}
	for i := range in.snap.Interfaces {
		ifc := &in.snap.Interfaces[i]
		if !ifc.Present || ifc.SpeedMbps == 0 || !s.c.matches(ifc.Name) {
			continue
		}
		speed := float64(ifc.SpeedMbps) * 1e6 / 8 // bytes per second
		for _, d := range []struct {
			dir  string
			rate snapshot.Rate
		}{{"rx", ifc.RxBytesRate}, {"tx", ifc.TxBytesRate}} {
			if s.c.Direction != "any" && s.c.Direction != d.dir {
				continue
			}
			k := satKey{entKey{"interface", ifc.Netns, ifc.Name}, d.dir}
			share := d.rate.Window10s / speed * 100
			if share < s.c.SharePercent {
				continue
			}
			above[k] = true
			s.last[k] = satLast{share, d.rate.Window10s, speed}
			if _, ok := s.pending[k]; !ok {
				s.pending[k] = in.now.Add(-in.interval)
			}
		}
	}
	for k := range s.pending {
		if !above[k] {
			delete(s.pending, k)
			delete(s.last, k)
		}
	}
	return s.instances(in.now)
}

func (s *saturation) instances(now time.Time) []instance {
	var out []instance
	for k, since := range s.pending {
		if now.Sub(since) < s.c.For {
			continue
		}
		l := s.last[k]
		out = append(out, instance{
			labels:   entityLabels(k.entKey, map[string]string{"direction": k.dir}),
			startsAt: since,
			summary: fmt.Sprintf("interface %s %s at %.0f %% of its link speed for %s", k.name, k.dir, l.share,
				now.Sub(since).Round(time.Second)),
			description: fmt.Sprintf("interface %s%s: %s throughput (10 s average) has stayed at or above %v %% of the link speed since %s; "+
				"now %s of %s (%.1f %%) (rule: %v %% for %s).",
				k.name, netnsNote(k.netns), k.dir, s.c.SharePercent, since.UTC().Format(time.RFC3339),
				output.FormatRate(l.rate, true), output.FormatRate(l.speed, true), l.share, s.c.SharePercent, s.c.For),
		})
	}
	return out
}
