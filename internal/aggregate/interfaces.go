// Package aggregate turns raw source readings into per-interval Snapshots:
// safe deltas (internal/counter), totals that survive resets and interface
// re-creation, and rates (internal/rate).
package aggregate

import (
	"sort"
	"time"

	"github.com/netmeter/netmeter/internal/counter"
	"github.com/netmeter/netmeter/internal/rate"
	"github.com/netmeter/netmeter/internal/snapshot"
	"github.com/netmeter/netmeter/internal/source/iface"
)

// Defaults for Options.
const (
	// DefaultMaxBytesPerSecond bounds a believable interface rate: 200 GB/s
	// (1.6 Tbit/s), above any NIC or loopback measured here (~2.4 GB/s).
	DefaultMaxBytesPerSecond = 200e9
	// DefaultWrapBytesPerSecond is the rate up to which a 32-bit wrap is
	// believed when the link speed is unknown: 10 Gbit/s.
	DefaultWrapBytesPerSecond = 1.25e9
	// DefaultMaxInterfaces bounds the interfaces tracked; the longest-gone
	// ones are forgotten first.
	DefaultMaxInterfaces = 4096
	// DefaultForgetAfter is how long a vanished interface's totals are kept.
	DefaultForgetAfter = time.Hour
)

// minPacketBytes converts byte bounds into packet bounds.
const minPacketBytes = 20

// Options configure an Interfaces tracker. Zero fields take the defaults.
type Options struct {
	Netns              string
	NetnsInode         uint64
	MaxBytesPerSecond  float64
	WrapBytesPerSecond float64
	MaxInterfaces      int
	ForgetAfter        time.Duration
}

// Anomaly reports a counter that did not simply increase.
type Anomaly struct {
	Interface string
	Counter   string
	Verdict   counter.Verdict
	Prev, Cur uint64
	Counted   uint64
}

type ifEntry struct {
	link      iface.Link
	kernel    snapshot.LinkCounters
	total     snapshot.LinkCounters
	delta     snapshot.LinkCounters
	final     *snapshot.LinkCounters // counters carried by a deletion event
	meters    [4]*rate.Meter         // rx bytes, tx bytes, rx packets, tx packets
	resets    uint64
	present   bool
	seen      bool // in the current reading
	firstSeen time.Time
	goneSince time.Time
}

// Interfaces tracks every interface of one namespace across readings. It is
// not safe for concurrent use; one collector loop owns it.
type Interfaces struct {
	opt     Options
	entries map[string]*ifEntry
	last    time.Time
	started bool
}

// NewInterfaces returns an empty tracker.
func NewInterfaces(opt Options) *Interfaces {
	if opt.MaxBytesPerSecond <= 0 {
		opt.MaxBytesPerSecond = DefaultMaxBytesPerSecond
	}
	if opt.WrapBytesPerSecond <= 0 {
		opt.WrapBytesPerSecond = DefaultWrapBytesPerSecond
	}
	if opt.MaxInterfaces <= 0 {
		opt.MaxInterfaces = DefaultMaxInterfaces
	}
	if opt.ForgetAfter <= 0 {
		opt.ForgetAfter = DefaultForgetAfter
	}
	return &Interfaces{opt: opt, entries: map[string]*ifEntry{}}
}

// Deleted records the final counters that a link deletion event carried; the
// next Observe counts them before the interface is marked gone.
func (t *Interfaces) Deleted(l iface.Link) {
	e := t.entries[l.Name]
	if e == nil || (l.Index != 0 && e.link.Index != l.Index) {
		return
	}
	// An interface already seen gone by a reading that raced the event
	// still gets its last bytes: e.kernel holds its last reading.
	c := l.Counters
	e.final = &c
}

// Observe accounts one reading of all links taken at now and returns the
// interfaces as of now, with any counter anomalies found. The first call only
// sets the baseline: totals count from then on. Interfaces that appear later
// are counted from zero, since everything they counted happened after start.
func (t *Interfaces) Observe(now time.Time, links []iface.Link) ([]snapshot.Interface, []Anomaly) {
	elapsed := now.Sub(t.last)
	var anomalies []Anomaly
	for _, e := range t.entries {
		e.delta = snapshot.LinkCounters{}
		e.seen = false
		if e.final != nil {
			// The interface was deleted since the last reading: count up to
			// its final counters, even if it has been re-created since.
			anomalies = t.account(e, *e.final, elapsed, anomalies)
			e.final = nil
			if e.present {
				e.present = false
				e.goneSince = now
			}
		}
	}
	for _, l := range links {
		e := t.entries[l.Name]
		switch {
		case e == nil:
			e = t.newEntry(now)
			t.entries[l.Name] = e
			if !t.started {
				e.kernel = l.Counters // baseline: count from now on
			}
		case !e.present || (l.Index != 0 && l.Index != e.link.Index):
			// Re-created (possibly between two readings): the new
			// interface's counters started from zero.
			e.kernel = snapshot.LinkCounters{}
		}
		e.link = l
		if t.started {
			anomalies = t.account(e, l.Counters, elapsed, anomalies)
		}
		e.present = true
		e.seen = true
		e.goneSince = time.Time{}
	}
	for _, e := range t.entries {
		if e.present && !e.seen {
			e.present = false
			e.goneSince = now
		}
		e.addRates(now)
	}
	t.forget(now)
	t.started = true
	t.last = now
	return t.interfaces(now), anomalies
}

func (t *Interfaces) newEntry(now time.Time) *ifEntry {
	e := &ifEntry{firstSeen: now}
	for i := range e.meters {
		e.meters[i] = rate.New(now)
	}
	return e
}

func (e *ifEntry) addRates(now time.Time) {
	e.meters[0].Add(now, e.delta.RxBytes)
	e.meters[1].Add(now, e.delta.TxBytes)
	e.meters[2].Add(now, e.delta.RxPackets)
	e.meters[3].Add(now, e.delta.TxPackets)
}

// account adds what was counted between e.kernel and cur to e.total and
// e.delta, and makes cur the new base.
func (t *Interfaces) account(e *ifEntry, cur snapshot.LinkCounters, elapsed time.Duration, anomalies []Anomaly) []Anomaly {
	byteLim := counter.Limits{MaxPerSecond: t.opt.MaxBytesPerSecond, WrapPerSecond: t.opt.WrapBytesPerSecond}
	if s := e.link.SpeedMbps; s > 0 {
		// Believe a wrap up to 5 % above the link speed.
		byteLim.WrapPerSecond = float64(s) * 125_000 * 1.05
	}
	pktLim := counter.Limits{MaxPerSecond: byteLim.MaxPerSecond / minPacketBytes, WrapPerSecond: byteLim.WrapPerSecond / minPacketBytes}

	prevF, curF, totF, deltaF := fields(&e.kernel), fields(&cur), fields(&e.total), fields(&e.delta)
	reset := false
	for i := range prevF {
		lim := pktLim
		if i < 2 {
			lim = byteLim
		}
		d, v := counter.Delta(*prevF[i], *curF[i], elapsed, lim)
		*deltaF[i] += d
		*totF[i] += d
		if v != counter.Normal {
			reset = reset || v == counter.Reset
			anomalies = append(anomalies, Anomaly{Interface: e.link.Name, Counter: fieldNames[i], Verdict: v, Prev: *prevF[i], Cur: *curF[i], Counted: d})
		}
	}
	if reset {
		e.resets++
	}
	e.kernel = cur
	return anomalies
}

// forget drops interfaces gone longer than ForgetAfter, and the longest-gone
// ones beyond MaxInterfaces, so churn (containers, veths) cannot grow memory.
func (t *Interfaces) forget(now time.Time) {
	var gone []string
	for name, e := range t.entries {
		if e.present {
			continue
		}
		if now.Sub(e.goneSince) > t.opt.ForgetAfter {
			delete(t.entries, name)
			continue
		}
		gone = append(gone, name)
	}
	if excess := len(t.entries) - t.opt.MaxInterfaces; excess > 0 {
		sort.Slice(gone, func(i, j int) bool { return t.entries[gone[i]].goneSince.Before(t.entries[gone[j]].goneSince) })
		for _, name := range gone[:min(excess, len(gone))] {
			delete(t.entries, name)
		}
	}
}

func (t *Interfaces) interfaces(now time.Time) []snapshot.Interface {
	out := make([]snapshot.Interface, 0, len(t.entries))
	for _, e := range t.entries {
		l := e.link
		out = append(out, snapshot.Interface{
			Index: l.Index, Name: l.Name, Netns: t.opt.Netns, NetnsInode: t.opt.NetnsInode,
			Kind: l.Kind, OperState: l.OperState, AdminUp: l.AdminUp, Carrier: l.Carrier, MTU: l.MTU,
			SpeedMbps: l.SpeedMbps, MAC: l.MAC, Qdisc: l.Qdisc, Master: l.Master, Present: e.present,
			Kernel: e.kernel, Total: e.total, Delta: e.delta,
			RxBytesRate: e.meters[0].Stats(now), TxBytesRate: e.meters[1].Stats(now),
			RxPacketsRate: e.meters[2].Stats(now), TxPacketsRate: e.meters[3].Stats(now),
			Resets: e.resets, FirstSeen: e.firstSeen,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// fieldNames are the JSON names of LinkCounters in the order of fields.
var fieldNames = [...]string{
	"rx_bytes", "tx_bytes", "rx_packets", "tx_packets", "rx_errors", "tx_errors", "rx_dropped", "tx_dropped",
	"multicast", "collisions", "rx_length_errors", "rx_over_errors", "rx_crc_errors", "rx_frame_errors",
	"rx_fifo_errors", "rx_missed_errors", "tx_aborted_errors", "tx_carrier_errors", "tx_fifo_errors",
	"tx_heartbeat_errors", "tx_window_errors", "rx_compressed", "tx_compressed", "rx_nohandler", "rx_otherhost_dropped",
}

// fields lists pointers to every counter; bytes first, then packets.
func fields(c *snapshot.LinkCounters) [len(fieldNames)]*uint64 {
	return [...]*uint64{
		&c.RxBytes, &c.TxBytes, &c.RxPackets, &c.TxPackets, &c.RxErrors, &c.TxErrors, &c.RxDropped, &c.TxDropped,
		&c.Multicast, &c.Collisions, &c.RxLengthErrors, &c.RxOverErrors, &c.RxCRCErrors, &c.RxFrameErrors,
		&c.RxFIFOErrors, &c.RxMissedErrors, &c.TxAbortedErrors, &c.TxCarrierErrors, &c.TxFIFOErrors,
		&c.TxHeartbeatErrors, &c.TxWindowErrors, &c.RxCompressed, &c.TxCompressed, &c.RxNoHandler, &c.RxOtherhostDropped,
	}
}
