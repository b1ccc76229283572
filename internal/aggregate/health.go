package aggregate

import (
	"cmp"
	"slices"

	"github.com/netmeter/netmeter/internal/snapshot"
	"github.com/netmeter/netmeter/internal/source/tcphealth"
)

// HealthReader reads the TCP health hooks (tcphealth.Source).
type HealthReader interface {
	Read() (tcphealth.Reading, error)
	ReasonName(code uint32) string
}

// MaxDropRows bounds the drop rows in a Snapshot (the busiest first).
const MaxDropRows = 256

// Health joins the health hooks' per-socket records to the snapshot's
// connections (by socket cookie), turns their lifetime counters into
// per-interval deltas, and names and attributes kernel drops.
type Health struct {
	prev  map[uint64]snapshot.TCPCounters // last totals by cookie
	drops map[tcphealth.DropKey]tcphealth.DropCount
}

// NewHealth returns an empty tracker.
func NewHealth() *Health {
	return &Health{prev: map[uint64]snapshot.TCPCounters{}, drops: map[tcphealth.DropKey]tcphealth.DropCount{}}
}

// Apply adds r to s: Connection.TCP for every TCP connection with a health
// record, and s.Drops. owner, when set, names a socket's owner by cookie.
// A connection netmeter did not see open (adopted at start) reports a zero
// first delta: its lifetime counters are not this interval's events.
func (h *Health) Apply(r tcphealth.Reading, s *snapshot.Snapshot, names func(uint32) string,
	owner func(cookie uint64) (pid int, comm, ctr string, ok bool)) {
	byCookie := make(map[uint64]int, len(s.Connections))
	for i := range s.Connections {
		byCookie[s.Connections[i].Cookie] = i
	}
	seen := make(map[uint64]bool, len(r.Conns))
	for _, c := range r.Conns {
		st := c.Stats
		prev, had := h.prev[c.Cookie]
		switch {
		case had:
			st.Delta = st.Total.Sub(prev)
		case !c.Adopted:
			st.Delta = st.Total // opened during this interval
		}
		if c.Dead {
			delete(h.prev, c.Cookie)
		} else {
			h.prev[c.Cookie] = st.Total
			seen[c.Cookie] = true
		}
		if i, ok := byCookie[c.Cookie]; ok {
			if old := s.Connections[i].TCP; old != nil && c.Dead {
				// A live record and the final one in one reading: the
				// final one has the whole interval.
				st.Delta = st.Total.Sub(old.Total).Add(old.Delta)
			}
			s.Connections[i].TCP = &st
		}
	}
	// Sockets that vanished without a final record (ring full).
	for ck := range h.prev {
		if !seen[ck] {
			delete(h.prev, ck)
		}
	}
	h.applyDrops(r, s, names, owner)
	for _, d := range s.Drops {
		if i, ok := byCookie[d.Cookie]; ok && d.Cookie != 0 {
			s.Connections[i].Drops += d.Packets
			s.Connections[i].DeltaDrops += d.DeltaPackets
		}
	}
}

func (h *Health) applyDrops(r tcphealth.Reading, s *snapshot.Snapshot, names func(uint32) string,
	owner func(uint64) (int, string, string, bool)) {
	ifname := map[[2]uint64]string{}
	for _, i := range s.Interfaces {
		ifname[[2]uint64{i.NetnsInode, uint64(i.Index)}] = i.Name
	}
	out := make([]snapshot.Drop, 0, len(r.Drops))
	for k, v := range r.Drops {
		p := h.drops[k]
		d := snapshot.Drop{
			Reason: names(k.Reason), Ifindex: int(k.Ifindex), NetnsInode: uint64(k.Netns),
			Family: k.Family, Proto: snapshot.ProtoName(k.Proto), Cookie: k.Cookie,
			Packets: v.Packets, Bytes: v.Bytes,
			DeltaPackets: v.Packets - min(p.Packets, v.Packets), DeltaBytes: v.Bytes - min(p.Bytes, v.Bytes),
		}
		d.Interface = ifname[[2]uint64{d.NetnsInode, uint64(k.Ifindex)}]
		if k.Cookie != 0 && owner != nil {
			d.PID, d.Comm, d.Container, _ = owner(k.Cookie)
		}
		out = append(out, d)
	}
	h.drops = r.Drops
	slices.SortFunc(out, func(a, b snapshot.Drop) int {
		return cmp.Or(cmp.Compare(b.DeltaPackets, a.DeltaPackets), cmp.Compare(b.Packets, a.Packets),
			cmp.Compare(a.Reason, b.Reason), cmp.Compare(a.Ifindex, b.Ifindex), cmp.Compare(a.Cookie, b.Cookie))
	})
	if len(out) > MaxDropRows {
		out = out[:MaxDropRows]
	}
	s.Drops = out
}
