package diagnose

import (
	"cmp"
	"slices"
	"strconv"
)

// merge turns two readings into evidence: each counter's Start is its value
// in r0. Objects that appeared during the window start at 0 (the kernel
// counts from their creation); objects gone by r1 are left out.
func merge(r0, r1 *reading) Evidence {
	ev := r1.ev
	ev.Notes = append(r0.ev.Notes[:len(r0.ev.Notes):len(r0.ev.Notes)], r1.ev.Notes...)
	ev.Notes = dedupNotes(ev.Notes)

	old := index(r0.ev.Links, func(l Link) string { return l.Name })
	for i := range ev.Links {
		l := &ev.Links[i]
		o := old[l.Name]
		l.CarrierChanges.Start, l.RxPackets.Start = o.CarrierChanges.End, o.RxPackets.End
		l.RxDropped.Start, l.TxDropped.Start = o.RxDropped.End, o.TxDropped.End
		l.RxErrors.Start, l.TxErrors.Start = o.RxErrors.End, o.TxErrors.End
		l.RxMissed.Start, l.RxFifo.Start, l.RxOver.Start, l.TxFifo.Start = o.RxMissed.End, o.RxFifo.End, o.RxOver.End, o.TxFifo.End
		l.RxNoHandler.Start = o.RxNoHandler.End
		for k, c := range l.NIC {
			c.Start = o.NIC[k].End
			l.NIC[k] = c
		}
	}
	oq := index(r0.ev.Qdiscs, func(q Qdisc) string { return q.Link + " " + q.Handle + " " + q.Kind })
	for i := range ev.Qdiscs {
		q := &ev.Qdiscs[i]
		o := oq[q.Link+" "+q.Handle+" "+q.Kind]
		q.Drops.Start, q.Overlimits.Start, q.Requeues.Start, q.Packets.Start = o.Drops.End, o.Overlimits.End, o.Requeues.End, o.Packets.End
	}
	on := index(r0.ev.Netfilter, NftRule.name)
	for i := range ev.Netfilter {
		r := &ev.Netfilter[i]
		r.Packets.Start = on[r.name()].Packets.End
	}
	if c, o := ev.Conntrack, r0.ev.Conntrack; c != nil {
		if o == nil {
			o = &Conntrack{}
		}
		c.InsertFailed.Start, c.Drop.Start, c.EarlyDrop.Start = o.InsertFailed.End, o.Drop.End, o.EarlyDrop.End
	}
	if s, o := ev.Softnet, r0.ev.Softnet; s != nil {
		if o == nil {
			o = &Softnet{}
		}
		s.Dropped.Start, s.TimeSqueezed.Start = o.Dropped.End, o.TimeSqueezed.End
	}
	if ev.SNMP != nil {
		snmp := make(map[string]Counter, len(ev.SNMP))
		for k, c := range ev.SNMP {
			if o, ok := r0.ev.SNMP[k]; ok {
				c.Start = o.End
			} else {
				c.Start = c.End // a counter, not an object: no growth known
			}
			snmp[k] = c
		}
		ev.SNMP = snmp
	}
	os := index(r0.ev.Sockets, sockKey)
	for i := range ev.Sockets {
		s := &ev.Sockets[i]
		o := os[sockKey(*s)]
		s.RecvQ.Start, s.SendQ.Start, s.Drops.Start = o.RecvQ.End, o.SendQ.End, o.Drops.End
	}
	slices.SortFunc(ev.Sockets, func(a, b Socket) int {
		return cmp.Or(cmp.Compare(a.Proto, b.Proto), cmp.Compare(a.Inode, b.Inode))
	})
	return ev
}

func sockKey(s Socket) string { return s.Proto + " " + strconv.FormatUint(s.Inode, 10) }

func index[T any](xs []T, key func(T) string) map[string]T {
	m := make(map[string]T, len(xs))
	for _, x := range xs {
		m[key(x)] = x
	}
	return m
}

func dedupNotes(ns []Note) []Note {
	seen := map[Note]bool{}
	out := ns[:0:0]
	for _, n := range ns {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}

func sortDrops(ds []Drop) {
	slices.SortFunc(ds, func(a, b Drop) int {
		if c := cmp.Compare(b.Packets, a.Packets); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Reason, b.Reason); c != 0 {
			return c
		}
		return cmp.Compare(a.Link, b.Link)
	})
}
