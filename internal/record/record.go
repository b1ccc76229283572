// Package record is the sink that turns snapshots into history: every
// interval it adds the interval's deltas of each interface, program,
// container and billing account to the history store, in one transaction
// with the raw kernel counters they came from.
//
// Continuity (what vnStat users lose today): the store keeps, per interface,
// the kernel's raw counters, the ifindex and the boot id at the last write.
// When an agent starts again it compares the kernel's counters with them:
//   - same boot, same ifindex: the difference is traffic counted by the
//     kernel while no agent ran; it is added at startup (nothing lost, nothing
//     counted twice — the stored counters were committed with the deltas);
//   - a new boot, or the interface was re-created: the kernel's counters
//     started at zero then, so they are exactly the traffic since; what
//     passed between the last write and that restart is unknown and is
//     recorded as a gap, never invented;
//   - counters lower than stored on the same boot and ifindex (a driver
//     reset): counted from zero, like the live tracker does.
//
// Process, container and account traffic lives only in the running engine:
// a downtime is a gap for them (also recorded).
package record

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/netmeter/netmeter/internal/aggregate"
	"github.com/netmeter/netmeter/internal/history"
	"github.com/netmeter/netmeter/internal/snapshot"
)

// Options configure a Recorder.
type Options struct {
	// BootID is the current boot's id (default: read from /proc).
	BootID string
	// Now is the clock (default time.Now).
	Now func() time.Time
	// GapAfter: a downtime longer than this is recorded as a gap (default
	// 2 × the snapshot interval, at least 5 s).
	GapAfter time.Duration
}

// Recorder writes snapshots to a history store. One loop owns it.
type Recorder struct {
	st      *history.Store
	opt     Options
	started bool
	seen    map[string]bool // interfaces already continued in this run
	pending map[history.Entity]history.Counters
	ifState map[string]ifaceState
}

// ifaceState is what the store keeps per interface for continuity.
type ifaceState struct {
	BootID  string    `json:"boot_id"`
	Index   int       `json:"ifindex"`
	Netns   uint64    `json:"netns_inode"`
	RxBytes uint64    `json:"rx_bytes"`
	TxBytes uint64    `json:"tx_bytes"`
	RxPkts  uint64    `json:"rx_packets"`
	TxPkts  uint64    `json:"tx_packets"`
	Time    time.Time `json:"time"`
}

const (
	stateIfacePrefix = "iface/"
	stateLastWrite   = "last_write"
)

// New returns a Recorder writing to st.
func New(st *history.Store, opt Options) (*Recorder, error) {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.BootID == "" {
		b, err := aggregate.BootID()
		if err != nil {
			return nil, fmt.Errorf("record: %w", err)
		}
		opt.BootID = b
	}
	return &Recorder{st: st, opt: opt, seen: map[string]bool{},
		pending: map[history.Entity]history.Counters{}, ifState: map[string]ifaceState{}}, nil
}

// ifaceKey names an interface across runs: by name and namespace.
func ifaceKey(i *snapshot.Interface) string {
	if i.Netns == "" {
		return i.Name
	}
	return i.Netns + "/" + i.Name
}

func add(m map[history.Entity]history.Counters, e history.Entity, rx, tx, rxp, txp uint64) {
	if rx == 0 && tx == 0 && rxp == 0 && txp == 0 {
		return
	}
	c := m[e]
	c.RxBytes += rx
	c.TxBytes += tx
	c.RxPackets += rxp
	c.TxPackets += txp
	m[e] = c
}

// Add writes one snapshot's deltas. A failed write (a full disk) keeps
// them in memory and retries with the next snapshot: nothing the kernel
// counted is lost while the agent runs.
func (r *Recorder) Add(s *snapshot.Snapshot) error { return r.AddWith(s, nil) }

// AddWith is Add with deltas of entities the snapshot does not carry (remote
// groups and monitors, from the health analyzer).
func (r *Recorder) AddWith(s *snapshot.Snapshot, extra map[history.Entity]history.Counters) error {
	for e, c := range extra {
		add(r.pending, e, c.RxBytes, c.TxBytes, c.RxPackets, c.TxPackets)
	}
	if !r.started {
		if err := r.start(s.Time); err != nil {
			return err
		}
	}
	for i := range s.Interfaces {
		ifc := &s.Interfaces[i]
		key := ifaceKey(ifc)
		e := history.Entity{Kind: history.KindInterface, Name: key}
		d := ifc.Delta
		if !r.seen[key] && ifc.Present {
			r.seen[key] = true
			rx, tx, rxp, txp := r.catchUp(ifc)
			add(r.pending, e, rx, tx, rxp, txp)
		}
		add(r.pending, e, d.RxBytes, d.TxBytes, d.RxPackets, d.TxPackets)
		if ifc.Present {
			k := ifc.Kernel
			r.ifState[key] = ifaceState{BootID: r.opt.BootID, Index: ifc.Index, Netns: ifc.NetnsInode,
				RxBytes: k.RxBytes, TxBytes: k.TxBytes, RxPkts: k.RxPackets, TxPkts: k.TxPackets, Time: s.Time}
		}
	}
	for i := range s.Processes {
		p := &s.Processes[i]
		d := p.Delta
		add(r.pending, history.Entity{Kind: history.KindProcess, Name: p.Comm}, d.RxBytes, d.TxBytes, d.RxPackets, d.TxPackets)
	}
	for i := range s.Containers {
		c := &s.Containers[i]
		d := c.Delta
		name := c.Name
		if name == "" {
			name = c.ID
		}
		add(r.pending, history.Entity{Kind: history.KindContainer, Name: name}, d.RxBytes, d.TxBytes, d.RxPackets, d.TxPackets)
		if c.Account != "" {
			add(r.pending, history.Entity{Kind: history.KindAccount, Name: c.Account}, d.RxBytes, d.TxBytes, d.RxPackets, d.TxPackets)
		}
	}
	return r.flush(s.Time)
}

// flush commits the pending deltas with the interface counters they bring
// the store to.
func (r *Recorder) flush(t time.Time) error {
	state := make(map[string][]byte, len(r.ifState)+1)
	for k, v := range r.ifState {
		b, _ := json.Marshal(v)
		state[stateIfacePrefix+k] = b
	}
	state[stateLastWrite] = []byte(t.UTC().Format(time.RFC3339Nano))
	if err := r.st.RecordWithState(t, r.pending, state); err != nil {
		return fmt.Errorf("record history (kept in memory, retried next interval): %w", err)
	}
	clear(r.pending)
	return nil
}

// start records the downtime since the last write as a gap.
func (r *Recorder) start(now time.Time) error {
	r.started = true
	b, err := r.st.State(stateLastWrite)
	if err != nil || len(b) == 0 {
		return nil // a new store
	}
	last, err := time.Parse(time.RFC3339Nano, string(b))
	if err != nil {
		return nil
	}
	gapAfter := r.opt.GapAfter
	if gapAfter <= 0 {
		gapAfter = 5 * time.Second
	}
	if now.Sub(last) > gapAfter {
		reason := "agent not running: interface traffic recovered from the kernel's counters where it still had them; processes and containers not recorded"
		if err := r.st.AddGap(history.Gap{Start: last, End: now, Reason: reason}); err != nil {
			return fmt.Errorf("record downtime gap: %w", err)
		}
	}
	return nil
}

// catchUp returns what the kernel counted on ifc since the store's last
// write, as the package doc describes.
func (r *Recorder) catchUp(ifc *snapshot.Interface) (rx, tx, rxp, txp uint64) {
	b, err := r.st.State(stateIfacePrefix + ifaceKey(ifc))
	if err != nil || len(b) == 0 {
		return 0, 0, 0, 0 // never seen: history starts now
	}
	var prev ifaceState
	if json.Unmarshal(b, &prev) != nil {
		return 0, 0, 0, 0
	}
	k := ifc.Kernel
	sameLife := prev.BootID == r.opt.BootID && prev.Index == ifc.Index && prev.Netns == ifc.NetnsInode
	if sameLife && k.RxBytes >= prev.RxBytes && k.TxBytes >= prev.TxBytes &&
		k.RxPackets >= prev.RxPkts && k.TxPackets >= prev.TxPkts {
		return k.RxBytes - prev.RxBytes, k.TxBytes - prev.TxBytes, k.RxPackets - prev.RxPkts, k.TxPackets - prev.TxPkts
	}
	// New boot, re-created interface or a counter reset: the counters
	// started from zero after the last write; the time in between is a gap.
	return k.RxBytes, k.TxBytes, k.RxPackets, k.TxPackets
}
