package health

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/netmeter/netmeter/internal/snapshot"
)

// Analyzer aggregates snapshots into flows, monitor series, health statuses
// and topologies. Add is called once per interval by the pipeline; every
// other method may run concurrently with it.
type Analyzer struct {
	cfg           Config // with defaults
	grp           *grouper
	socketReasons map[string]bool

	mu        sync.RWMutex
	seq       uint64      // intervals added
	last      time.Time   // time of the latest snapshot
	ring      []*interval // oldest first, at most cfg.Capacity
	flows     map[flowKey]*flowEntry
	flowCount int // flows other than the overflow flow
	groups    map[string]*groupEntry
	userCount int                   // groups that count against MaxGroups
	prevConn  map[uint64]*flowEntry // cookie → its flow in the latest interval
	hostDrops []uint64              // socket drops on no evaluated group's connection, last WindowIntervals
	monitors  []*monitor
	overflow  uint64 // connection-intervals folded into "other"
}

// interval is one snapshot's aggregates.
type interval struct {
	seq   uint64
	time  time.Time
	dur   time.Duration
	flows []flowTally
}

type flowTally struct {
	f *flowEntry
	t tally
}

type flowKey struct{ entity, group string }

// entity is a local end: a process (by comm) or a container.
type entity struct {
	id, kind, name, account string
}

var (
	otherEntity = entity{id: "other", kind: "other", name: "other"}
	overflowKey = flowKey{otherEntity.id, GroupOther}
)

const maxPIDs = 16 // PIDs remembered per flow

type flowEntry struct {
	key     flowKey
	ent     entity
	group   string
	pids    map[int]uint64 // pid → seq last seen
	lastSeq uint64
}

type groupEntry struct {
	kind    groupKind
	lastSeq uint64
	ind     *indicator // nil for groups without a health status
}

// New returns an Analyzer for a configuration, or the configuration's
// problems.
func New(cfg Config) (*Analyzer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	for i, m := range cfg.Monitors {
		if len(m.Local.Interfaces) > 0 && cfg.InterfaceAddrs == nil {
			return nil, fmt.Errorf("health config: monitors[%d] (%q): local.interfaces needs the interfaces' addresses, which this program cannot resolve; list them under local.cidrs instead", i, m.Name)
		}
	}
	cfg = cfg.withDefaults()
	a := &Analyzer{
		cfg: cfg, grp: newGrouper(cfg), socketReasons: map[string]bool{},
		flows: map[flowKey]*flowEntry{}, groups: map[string]*groupEntry{}, prevConn: map[uint64]*flowEntry{},
	}
	for _, r := range cfg.Health.SocketDropReasons {
		a.socketReasons[strings.TrimPrefix(strings.ToUpper(r), "SKB_DROP_REASON_")] = true
	}
	for _, m := range cfg.Monitors {
		a.monitors = append(a.monitors, newMonitor(m, cfg.Health))
	}
	return a, nil
}

// Add accounts one interval's snapshot: its connections (with their TCP
// health, when the health hooks run) and its kernel drops. Snapshots must
// come in time order; a nil snapshot is ignored. Add keeps no reference to
// the snapshot.
func (a *Analyzer) Add(s *snapshot.Snapshot) {
	if s == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()

	a.seq++
	dur := s.Interval
	if dur <= 0 {
		dur = s.Time.Sub(a.last)
		if a.last.IsZero() || dur <= 0 {
			dur = time.Second
		}
	}
	a.last = s.Time
	rec := &interval{seq: a.seq, time: s.Time, dur: dur}

	ents := newEntityResolver(s, a.cfg.ContainerOf)
	for _, m := range a.monitors {
		m.refresh(a.cfg.InterfaceAddrs)
	}

	// Each present connection to its flow and monitors.
	type connRef struct {
		flow int // index in rec.flows
		ent  entity
		mons []int // indices of the monitors it is in
	}
	var (
		conns    = make([]connRef, 0, len(s.Connections))
		byCookie = make(map[uint64]int, len(s.Connections))
		byPID    = map[int][]int{}
		flowIdx  = map[*flowEntry]int{}
		prev     = make(map[uint64]*flowEntry, len(s.Connections))
	)
	tallyOf := func(f *flowEntry) int {
		i, ok := flowIdx[f]
		if !ok {
			i = len(rec.flows)
			rec.flows = append(rec.flows, flowTally{f: f})
			flowIdx[f] = i
			f.lastSeq = a.seq
		}
		return i
	}
	for i := range s.Connections {
		c := &s.Connections[i]
		tcp := c.TCP
		if c.Closed && c.Delta == (snapshot.Traffic{}) && (tcp == nil || tcp.Delta == (snapshot.TCPCounters{})) {
			continue // closed before this interval: it lingers in snapshots for a while
		}
		if _, dup := byCookie[c.Cookie]; dup && c.Cookie != 0 {
			continue
		}
		gname, gkind := a.grp.group(c.Remote.Addr)
		ent := ents.of(c)
		f, folded := a.flowFor(ent, gname, gkind)
		if folded {
			a.overflow++
		}
		fi := tallyOf(f)
		t := &rec.flows[fi].t
		t.addConn(c, tcp, gkind != kindUnconnected)
		if a.prevConn[c.Cookie] != f {
			t.newConns++
		}
		prev[c.Cookie] = f
		if c.Owner.PID != 0 && (len(f.pids) < maxPIDs || f.pids[c.Owner.PID] != 0) {
			f.pids[c.Owner.PID] = a.seq
		}

		ref := connRef{flow: fi, ent: ent}
		if len(a.monitors) > 0 {
			v := connView{conn: c, ent: ent, group: gname}
			v.local, _ = netip.ParseAddr(c.Local.Addr)
			v.local = v.local.WithZone("").Unmap()
			v.remote, _ = netip.ParseAddr(c.Remote.Addr)
			v.remote = v.remote.WithZone("").Unmap()
			for mi, m := range a.monitors {
				if m.matches(&v) {
					m.cur.addConn(c, tcp, gkind != kindUnconnected)
					ref.mons = append(ref.mons, mi)
				}
			}
		}
		byCookie[c.Cookie] = len(conns)
		if c.Owner.PID != 0 {
			byPID[c.Owner.PID] = append(byPID[c.Owner.PID], len(conns))
		}
		conns = append(conns, ref)
	}
	a.prevConn = prev

	// Drops to the one flow (and the monitors) every socket they may be
	// for belongs to; the rest are host-wide.
	var hostSocket uint64
	for _, d := range s.Drops {
		n := d.DeltaPackets
		if n == 0 {
			continue
		}
		socket := a.socketReasons[d.Reason]
		var refs []int
		if i, ok := byCookie[d.Cookie]; ok && d.Cookie != 0 {
			refs = []int{i}
		} else if d.PID != 0 {
			refs = byPID[d.PID]
		}
		if len(refs) == 0 {
			if socket {
				hostSocket += n
			}
			continue
		}
		fi := conns[refs[0]].flow
		for _, r := range refs[1:] {
			if conns[r].flow != fi {
				// Known by process only, and the process talks to several
				// groups: charge its unconnected flow.
				f, _ := a.flowFor(conns[refs[0]].ent, GroupUnconnected, kindUnconnected)
				fi = tallyOf(f)
				break
			}
		}
		t := &rec.flows[fi].t
		t.drops += n
		if socket {
			t.socketDrops += n
		}
		for _, mi := range conns[refs[0]].mons {
			if inAll(mi, refs, func(r int) []int { return conns[r].mons }) {
				m := a.monitors[mi]
				m.cur.drops += n
				if socket {
					m.cur.socketDrops += n
				}
			}
		}
	}

	// Group tallies; socket drops on groups without a status are host-wide.
	gt := map[*groupEntry]*tally{}
	for i := range rec.flows {
		ft := &rec.flows[i]
		g := a.groups[ft.f.group]
		g.lastSeq = a.seq
		if !g.kind.evaluated() {
			hostSocket += ft.t.socketDrops
		}
		if gt[g] == nil {
			gt[g] = &tally{}
		}
		gt[g].add(&ft.t)
	}
	a.hostDrops = pushCapped(a.hostDrops, hostSocket, a.cfg.Health.WindowIntervals)

	a.ring = pushCapped(a.ring, rec, a.cfg.Capacity)
	a.evaluate(s.Time, dur, gt)
	a.evict()
}

// pushCapped appends v to s, dropping the oldest element beyond n.
func pushCapped[T any](s []T, v T, n int) []T {
	if len(s) < n {
		return append(s, v)
	}
	copy(s, s[1:])
	s[len(s)-1] = v
	return s
}

// inAll reports whether x is in every set(r) for r in refs.
func inAll(x int, refs []int, set func(int) []int) bool {
	for _, r := range refs {
		if !slices.Contains(set(r), x) {
			return false
		}
	}
	return true
}

// flowFor returns the flow of (ent, group), creating it within the limits.
// What does not fit goes to the entity's flow to group "other" (MaxGroups
// reached) or to the one overflow flow (MaxFlows reached); folded says so.
func (a *Analyzer) flowFor(ent entity, gname string, gkind groupKind) (f *flowEntry, folded bool) {
	key := flowKey{ent.id, gname}
	if f := a.flows[key]; f != nil {
		return f, false
	}
	if gkind.counted() && a.groups[gname] == nil && a.userCount >= a.cfg.MaxGroups {
		key, gkind, folded = flowKey{ent.id, GroupOther}, kindOther, true
	}
	if f = a.flows[key]; f == nil && a.flowCount >= a.cfg.MaxFlows {
		key, ent, gkind, folded = overflowKey, otherEntity, kindOther, true
		f = a.flows[key]
	}
	if f != nil {
		return f, folded
	}
	if a.groups[key.group] == nil {
		g := &groupEntry{kind: gkind}
		if gkind.evaluated() {
			g.ind = newIndicator(a.cfg.Health)
		}
		a.groups[key.group] = g
		if gkind.counted() {
			a.userCount++
		}
	}
	f = &flowEntry{key: key, ent: ent, group: key.group, pids: map[int]uint64{}}
	a.flows[key] = f
	if key != overflowKey {
		a.flowCount++
	}
	return f, folded
}

// evict forgets flows and groups that have no interval left in the ring.
func (a *Analyzer) evict() {
	oldest := a.ring[0].seq
	for k, f := range a.flows {
		if f.lastSeq < oldest {
			delete(a.flows, k)
			if k != overflowKey {
				a.flowCount--
			}
		}
		for pid, seq := range f.pids {
			if seq < oldest {
				delete(f.pids, pid)
			}
		}
	}
	for name, g := range a.groups {
		if g.lastSeq < oldest {
			delete(a.groups, name)
			if g.kind.counted() {
				a.userCount--
			}
		}
	}
}

// entityResolver finds the local entity of a snapshot's connections.
type entityResolver struct {
	containers  []snapshot.Container
	byRef       map[string]int // container ID and name → index
	byAddr      map[netip.Addr]int
	containerOf func(pid int, netns uint64) string
	cache       map[[2]uint64]entity // (pid, netns) → container entity
	procs       map[string]entity    // comm → process entity
}

func newEntityResolver(s *snapshot.Snapshot, containerOf func(int, uint64) string) *entityResolver {
	r := &entityResolver{containers: s.Containers, byRef: map[string]int{}, byAddr: map[netip.Addr]int{},
		containerOf: containerOf, cache: map[[2]uint64]entity{}, procs: map[string]entity{}}
	for i, c := range s.Containers {
		r.byRef[c.ID] = i
		if c.Name != "" {
			r.byRef[c.Name] = i
		}
		if c.HostNetwork {
			continue // its addresses are the host's
		}
		for _, s := range c.Addresses {
			if a, err := netip.ParseAddr(s); err == nil && !a.IsLoopback() && !a.IsUnspecified() {
				r.byAddr[a.WithZone("").Unmap()] = i
			}
		}
	}
	return r
}

// of returns c's local entity: its process's container when the resolver
// names one, else the container owning its local address (in the same
// namespace), else its process by comm.
func (r *entityResolver) of(c *snapshot.Connection) entity {
	if r.containerOf != nil && c.Owner.PID != 0 {
		k := [2]uint64{uint64(c.Owner.PID), c.NetnsInode}
		e, ok := r.cache[k]
		if !ok {
			if ref := r.containerOf(c.Owner.PID, c.NetnsInode); ref != "" {
				e = r.container(ref)
			}
			r.cache[k] = e
		}
		if e.id != "" {
			return e
		}
	}
	if a, err := netip.ParseAddr(c.Local.Addr); err == nil {
		if i, ok := r.byAddr[a.WithZone("").Unmap()]; ok {
			ct := &r.containers[i]
			if c.NetnsInode == 0 || ct.NetnsInode == 0 || c.NetnsInode == ct.NetnsInode {
				return containerEntity(ct.Name, ct.ID, ct.Account)
			}
		}
	}
	name := c.Owner.Comm
	if name == "" {
		name = "[no process]"
		if c.Owner.PID != 0 {
			name = fmt.Sprintf("[pid %d]", c.Owner.PID)
		}
	}
	e, ok := r.procs[name]
	if !ok {
		e = entity{id: "process:" + name, kind: "process", name: name}
		r.procs[name] = e
	}
	return e
}

// container returns the entity of a container the resolver named by ID,
// short ID or name.
func (r *entityResolver) container(ref string) entity {
	if i, ok := r.byRef[ref]; ok {
		ct := &r.containers[i]
		return containerEntity(ct.Name, ct.ID, ct.Account)
	}
	if len(ref) >= 12 {
		for i := range r.containers {
			if ct := &r.containers[i]; strings.HasPrefix(ct.ID, ref) {
				return containerEntity(ct.Name, ct.ID, ct.Account)
			}
		}
	}
	return containerEntity(ref, ref, "")
}

func containerEntity(name, id, account string) entity {
	if name == "" {
		name = id
		if len(name) > 12 {
			name = name[:12]
		}
	}
	return entity{id: "container:" + name, kind: "container", name: name, account: account}
}
