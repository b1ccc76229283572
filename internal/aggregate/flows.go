package aggregate

import (
	"cmp"
	"net/netip"
	"slices"
	"time"

	"github.com/netmeter/netmeter/internal/attribution/container"
	"github.com/netmeter/netmeter/internal/attribution/procfs"
	"github.com/netmeter/netmeter/internal/rate"
	"github.com/netmeter/netmeter/internal/snapshot"
	"github.com/netmeter/netmeter/internal/source/engine"
)

// Defaults for FlowOptions.
const (
	DefaultMaxConnections = 65536
	DefaultMaxProcesses   = 16384
	// DefaultClosedTTL is how long a closed connection stays visible.
	DefaultClosedTTL = 10 * time.Second
	// DefaultExitedTTL is how long an exited process stays visible.
	DefaultExitedTTL = time.Minute
	// ghostTTL is how long the owner of a dead socket is remembered, so its
	// timewait socket's bytes (TIME_WAIT lasts 60 s) still reach it.
	ghostTTL = 2 * time.Minute
	// inodeScanEvery throttles the /proc/*/fd scan for sockets without an
	// owner (created before netmeter and silent since).
	inodeScanEvery = 5 * time.Second
)

// ProcessResolver turns a pid into process details (procfs.Resolver).
type ProcessResolver interface {
	Lookup(pid int, startTicks uint64) (procfs.Info, bool)
}

// FlowOptions configure a Flows tracker. Zero fields take the defaults.
type FlowOptions struct {
	MaxConnections int
	MaxProcesses   int
	ClosedTTL      time.Duration
	ExitedTTL      time.Duration
	// Resolver adds exe, cmdline, user, start time and cgroup to processes;
	// nil keeps what the kernel told (pid, comm, uid).
	Resolver ProcessResolver
	// SocketInodes maps socket inodes to the pids holding them
	// (procfs.FS.SocketInodes); nil disables the scan.
	SocketInodes func() (map[uint64][]int, error)
	// Containers names containers; nil keeps runtime and id only.
	Containers ContainerResolver
	// HostNetns is the inode of the host's network namespace, to tell
	// container↔host traffic apart.
	HostNetns     uint64
	MaxContainers int
	// ProcRoot ("/proc") lets containers report their namespace's interface
	// counters; "" leaves them out.
	ProcRoot string
	// UnownedBucket names the bucket of bytes no process owns (default
	// "kernel": the eBPF engine knows that no process held the socket; the
	// classic engine, which cannot tell that from a socket it did not find
	// in time, says "unattributed").
	UnownedBucket string
}

// procKey names a process across PID reuse.
type procKey struct {
	tgid  uint32
	start uint64 // group leader's start in clock ticks since boot (0 when unknown)
}

type sockEntry struct {
	ctr   container.Ref // the socket's container, kept for when its process is gone
	last  snapshot.Traffic
	http  [len(engine.HTTPMethods)]uint32
	owner procKey
	comm  string
	conn  *connEntry
	seen  time.Time
	dead  bool
}

type connEntry struct {
	snap   snapshot.Connection
	role   engine.Role
	tx, rx *rate.Meter
	delta  snapshot.Traffic
	closed time.Time
}

type procEntry struct {
	snap    snapshot.Process
	ctr     container.Ref
	tx, rx  *rate.Meter
	delta   snapshot.Traffic
	sockets int
	lastAct time.Time
	exited  time.Time
	info    bool // details resolved
}

type bucketEntry struct {
	name   string
	cgroup uint64
	total  snapshot.Traffic
	delta  snapshot.Traffic
}

// Flows attributes the engine's per-socket counters to connections and
// processes, and keeps totals and rates across readings. One collector loop
// owns it.
type Flows struct {
	opt     FlowOptions
	socks   map[uint64]*sockEntry
	procs   map[procKey]*procEntry
	conns   map[uint64]*connEntry
	tw      map[uint64]snapshot.Traffic // last timewait counters per cookie
	kernel  map[uint64]snapshot.Traffic // last kernel counters per cgroup
	ovfl    snapshot.Traffic
	buckets map[bucketKey]*bucketEntry

	ctrs       map[string]*ctrEntry
	addrNetns  map[netip.Addr]uint64 // local address → its namespace
	containers []snapshot.Container

	procCtrs   map[int]string // ProcessContainers of the latest reading, built on first use
	inodeOwner map[uint64]int // socket inode → pid, from the last scan
	lastScan   time.Time
	dropped    uint64 // connections not tracked because MaxConnections was reached
}

type bucketKey struct {
	name   string
	cgroup uint64
}

// NewFlows returns an empty tracker.
func NewFlows(opt FlowOptions) *Flows {
	if opt.MaxConnections <= 0 {
		opt.MaxConnections = DefaultMaxConnections
	}
	if opt.MaxProcesses <= 0 {
		opt.MaxProcesses = DefaultMaxProcesses
	}
	if opt.ClosedTTL <= 0 {
		opt.ClosedTTL = DefaultClosedTTL
	}
	if opt.ExitedTTL <= 0 {
		opt.ExitedTTL = DefaultExitedTTL
	}
	if opt.MaxContainers <= 0 {
		opt.MaxContainers = DefaultMaxContainers
	}
	if opt.UnownedBucket == "" {
		opt.UnownedBucket = "kernel"
	}
	return &Flows{
		opt: opt, socks: map[uint64]*sockEntry{}, procs: map[procKey]*procEntry{}, conns: map[uint64]*connEntry{},
		tw: map[uint64]snapshot.Traffic{}, kernel: map[uint64]snapshot.Traffic{}, buckets: map[bucketKey]*bucketEntry{},
		ctrs: map[string]*ctrEntry{}, addrNetns: map[netip.Addr]uint64{},
	}
}

// sub returns cur-prev per field; a field that went down (a reused cookie,
// which the kernel never does) counts its new value.
func sub(cur, prev snapshot.Traffic) snapshot.Traffic {
	d := func(c, p uint64) uint64 {
		if c >= p {
			return c - p
		}
		return c
	}
	return snapshot.Traffic{
		TxPayload: d(cur.TxPayload, prev.TxPayload), RxPayload: d(cur.RxPayload, prev.RxPayload),
		TxBytes: d(cur.TxBytes, prev.TxBytes), RxBytes: d(cur.RxBytes, prev.RxBytes),
		TxPackets: d(cur.TxPackets, prev.TxPackets), RxPackets: d(cur.RxPackets, prev.RxPackets),
	}
}

var protoNames = map[uint8]string{6: "tcp", 17: "udp", 1: "icmp", 58: "icmp", 136: "udp", 132: "sctp"}

var tcpStates = [...]string{"", "established", "syn_sent", "syn_recv", "fin_wait1", "fin_wait2", "time_wait",
	"close", "close_wait", "last_ack", "listen", "closing", "new_syn_recv", "bound_inactive"}

// Observe accounts one engine reading taken at now and returns the
// processes, connections and unattributed buckets as of now.
func (f *Flows) Observe(now time.Time, r engine.Reading) ([]snapshot.Process, []snapshot.Connection, []snapshot.Bucket) {
	f.procCtrs = nil
	for _, p := range f.procs {
		p.delta, p.sockets = snapshot.Traffic{}, 0
	}
	for _, c := range f.conns {
		c.delta = snapshot.Traffic{}
	}
	for _, b := range f.buckets {
		b.delta = snapshot.Traffic{}
	}
	if rf, ok := f.opt.Containers.(interface{ Refresh() }); ok {
		rf.Refresh()
	}
	f.scanInodes(now, r.Live)
	f.learnAddrs(r.Live)
	f.learnAddrs(r.Dead)
	for i := range r.Live {
		f.socket(now, &r.Live[i])
	}
	for i := range r.Dead {
		f.socket(now, &r.Dead[i])
	}
	f.timewait(now, r.Timewait)
	for cg, cur := range r.Kernel {
		f.bucket(f.opt.UnownedBucket, cg, sub(cur, f.kernel[cg]))
		f.kernel[cg] = cur
	}
	f.bucket("overflow", 0, sub(r.Overflow, f.ovfl))
	f.ovfl = r.Overflow
	f.expire(now)
	f.containers = f.containerList(now)
	return f.processes(now), f.connections(now), f.bucketList()
}

// scanInodes maps the inodes of ownerless live sockets to pids, at most every
// inodeScanEvery.
func (f *Flows) scanInodes(now time.Time, live []engine.Socket) {
	if f.opt.SocketInodes == nil || now.Sub(f.lastScan) < inodeScanEvery {
		return
	}
	need := false
	for i := range live {
		if s := &live[i]; !s.HasOwner && s.Inode != 0 && f.inodeOwner[s.Inode] == 0 {
			if e := f.socks[s.Cookie]; e == nil || e.owner.tgid == 0 {
				need = true
				break
			}
		}
	}
	if !need {
		return
	}
	f.lastScan = now
	m, err := f.opt.SocketInodes()
	if err != nil {
		return // the next scan retries; the bytes wait in the socket's counters
	}
	f.inodeOwner = make(map[uint64]int, len(m))
	for ino, pids := range m {
		if len(pids) > 0 {
			f.inodeOwner[ino] = pids[0] // the lowest pid: the parent of a forked server
		}
	}
}

// ownerOf returns who the socket's bytes of this interval belong to.
func (f *Flows) ownerOf(s *engine.Socket) (procKey, string) {
	if s.HasOwner && s.Owner.TGID != 0 {
		return procKey{tgid: s.Owner.TGID, start: procfs.StartTicksFromBoottime(s.Owner.StartBoottime)}, s.Owner.Comm
	}
	if pid := f.inodeOwner[s.Inode]; pid != 0 && s.Inode != 0 {
		k := procKey{tgid: uint32(pid)}
		if f.opt.Resolver != nil {
			if info, ok := f.opt.Resolver.Lookup(pid, 0); ok {
				k.start = info.StartTicks // the same key as the kernel's owner stamp
				return k, info.Comm
			}
		}
		return k, ""
	}
	return procKey{}, ""
}

func (f *Flows) socket(now time.Time, s *engine.Socket) {
	e := f.socks[s.Cookie]
	isNew := e == nil
	if isNew {
		e = &sockEntry{}
		f.socks[s.Cookie] = e
	}
	delta := sub(s.Traffic, e.last)
	var httpDelta [len(engine.HTTPMethods)]uint32
	for i := range s.HTTP {
		httpDelta[i] = s.HTTP[i] - min(s.HTTP[i], e.http[i])
	}
	e.last, e.http, e.seen = s.Traffic, s.HTTP, now
	if owner, comm := f.ownerOf(s); owner.tgid != 0 {
		e.owner, e.comm = owner, comm
	}
	if e.conn == nil && s.Family != 0 && len(f.conns) < f.opt.MaxConnections {
		e.conn = f.newConn(now, s)
	} else if e.conn == nil && s.Family != 0 {
		f.dropped++
	}
	if c := e.conn; c != nil {
		c.delta = c.delta.Add(delta)
		c.snap.Total = c.snap.Total.Add(delta)
		if s.Local.Port() != 0 {
			c.snap.Local = endpoint(s.Local)
			c.snap.Remote = endpoint(s.Remote)
		}
		c.snap.State = stateName(s)
		if s.Role != engine.RoleUnknown {
			c.role = s.Role
		}
		if s.BytesAcked > c.snap.TCPBytesAcked || s.BytesReceived > c.snap.TCPBytesReceived {
			c.snap.TCPBytesAcked, c.snap.TCPBytesReceived = s.BytesAcked, s.BytesReceived
		}
		c.snap.Owner = snapshot.Owner{PID: int(e.owner.tgid), Comm: e.comm}
		if s.Dead {
			c.closed = now
			c.snap.Closed = true
		}
	}
	if e.owner.tgid == 0 {
		f.bucket(f.opt.UnownedBucket, s.Owner.CgroupID, delta)
	} else {
		p := f.proc(now, e.owner, e.comm, s)
		p.delta = p.delta.Add(delta)
		p.snap.Total = p.snap.Total.Add(delta)
		if !s.Dead {
			p.sockets++
		}
		if delta != (snapshot.Traffic{}) {
			p.lastAct = now
		}
		f.chargeContainer(now, s, e, p, delta, isNew, httpDelta)
	}
	if s.Dead {
		e.dead = true
	}
}

func stateName(s *engine.Socket) string {
	if s.Protocol != 6 || int(s.State) >= len(tcpStates) {
		return ""
	}
	return tcpStates[s.State]
}

func endpoint(a netip.AddrPort) snapshot.Endpoint {
	ep := snapshot.Endpoint{Port: a.Port()}
	if ad := a.Addr(); ad.IsValid() && !ad.IsUnspecified() {
		ep.Addr = ad.String()
	}
	return ep
}

func (f *Flows) newConn(now time.Time, s *engine.Socket) *connEntry {
	proto := protoNames[s.Protocol]
	if proto == "" {
		proto = "raw"
	}
	c := &connEntry{tx: rate.New(now), rx: rate.New(now)}
	c.snap = snapshot.Connection{Cookie: s.Cookie, Proto: proto, Family: s.Family, NetnsInode: uint64(s.Netns), FirstSeen: now}
	f.conns[s.Cookie] = c
	return c
}

func (f *Flows) proc(now time.Time, k procKey, comm string, s *engine.Socket) *procEntry {
	p := f.procs[k]
	if p == nil {
		if len(f.procs) >= f.opt.MaxProcesses {
			f.evictProcess()
		}
		p = &procEntry{tx: rate.New(now), rx: rate.New(now)}
		p.snap = snapshot.Process{PID: int(k.tgid), Comm: comm, UID: s.Owner.UID, CgroupID: s.Owner.CgroupID, NetnsInode: uint64(s.Owner.Netns)}
		f.procs[k] = p
	}
	if !p.info && f.opt.Resolver != nil {
		if info, ok := f.opt.Resolver.Lookup(int(k.tgid), k.start); ok {
			p.info = true
			p.snap.Exe, p.snap.Cmdline, p.snap.User, p.snap.StartTime = info.Exe, info.Cmdline, info.User, info.StartTime
			p.snap.UID, p.snap.Cgroup = info.UID, info.CgroupPath
			if p.snap.Comm == "" {
				p.snap.Comm = info.Comm
			}
			if p.snap.NetnsInode == 0 {
				p.snap.NetnsInode = info.NetnsInode
			}
			p.ctr = containerOf(info)
		} else if !p.snap.Exited && p.exited.IsZero() {
			p.exited = now // gone before we could read it
		}
	}
	if p.snap.Comm == "" {
		p.snap.Comm = comm
	}
	return p
}

// evictProcess forgets the process that has been quiet longest.
func (f *Flows) evictProcess() {
	var oldest procKey
	var at time.Time
	first := true
	for k, p := range f.procs {
		if first || p.lastAct.Before(at) {
			oldest, at, first = k, p.lastAct, false
		}
	}
	delete(f.procs, oldest)
}

// timewait adds the bytes of timewait sockets to the process that owned the
// socket before it went to TIME_WAIT.
func (f *Flows) timewait(now time.Time, tw map[uint64]snapshot.Traffic) {
	for cookie, cur := range tw {
		delta := sub(cur, f.tw[cookie])
		f.tw[cookie] = cur
		if delta == (snapshot.Traffic{}) {
			continue
		}
		e := f.socks[cookie]
		if e == nil || e.owner.tgid == 0 {
			f.bucket(f.opt.UnownedBucket, 0, delta)
			continue
		}
		e.seen = now
		if p := f.procs[e.owner]; p != nil {
			p.delta = p.delta.Add(delta)
			p.snap.Total = p.snap.Total.Add(delta)
		} else {
			f.bucket(f.opt.UnownedBucket, 0, delta)
		}
		if e.conn != nil {
			e.conn.delta = e.conn.delta.Add(delta)
			e.conn.snap.Total = e.conn.snap.Total.Add(delta)
		}
	}
	for cookie := range f.tw {
		if _, ok := tw[cookie]; !ok {
			delete(f.tw, cookie) // the engine dropped the idle counter
		}
	}
}

func (f *Flows) bucket(name string, cgroup uint64, delta snapshot.Traffic) {
	if delta == (snapshot.Traffic{}) {
		return
	}
	k := bucketKey{name, cgroup}
	b := f.buckets[k]
	if b == nil {
		b = &bucketEntry{name: name, cgroup: cgroup}
		f.buckets[k] = b
	}
	b.delta = b.delta.Add(delta)
	b.total = b.total.Add(delta)
}

// expire advances rates and forgets dead sockets, closed connections and
// exited processes after their TTL.
func (f *Flows) expire(now time.Time) {
	for cookie, e := range f.socks {
		if !e.dead && !e.seen.Equal(now) {
			// Neither in this dump nor in a final record: it died while the
			// ring buffer was full. Its bytes up to the last reading count.
			e.dead = true
			if e.conn != nil && !e.conn.snap.Closed {
				e.conn.snap.Closed, e.conn.closed = true, now
			}
		}
		if e.dead && now.Sub(e.seen) > ghostTTL {
			delete(f.socks, cookie)
		}
	}
	for cookie, c := range f.conns {
		c.tx.Add(now, c.delta.TxBytes)
		c.rx.Add(now, c.delta.RxBytes)
		if c.snap.Closed && now.Sub(c.closed) > f.opt.ClosedTTL {
			delete(f.conns, cookie)
		}
	}
	for k, p := range f.procs {
		p.tx.Add(now, p.delta.TxBytes)
		p.rx.Add(now, p.delta.RxBytes)
		if p.sockets == 0 && p.exited.IsZero() && now.Sub(p.lastAct) > time.Second && !alive(f.opt.Resolver, k) {
			p.exited = now
		}
		if !p.exited.IsZero() {
			p.snap.Exited = true
			if now.Sub(p.exited) > f.opt.ExitedTTL {
				delete(f.procs, k)
			}
		}
	}
}

// alive reports whether the process still exists, when a resolver can tell.
func alive(r ProcessResolver, k procKey) bool {
	if r == nil {
		return true
	}
	_, ok := r.Lookup(int(k.tgid), k.start)
	return ok
}

func (f *Flows) processes(now time.Time) []snapshot.Process {
	out := make([]snapshot.Process, 0, len(f.procs))
	for _, p := range f.procs {
		s := p.snap
		s.Delta, s.Sockets = p.delta, p.sockets
		s.TxRate, s.RxRate = p.tx.Stats(now), p.rx.Stats(now)
		s.TxRecent, s.RxRecent = p.tx.Recent(), p.rx.Recent()
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b snapshot.Process) int {
		at, bt := a.Total.TxBytes+a.Total.RxBytes, b.Total.TxBytes+b.Total.RxBytes
		if c := cmp.Compare(bt, at); c != 0 {
			return c
		}
		return cmp.Compare(a.PID, b.PID)
	})
	return out
}

// connections returns every tracked connection, merging the two ends of a
// local connection into one.
func (f *Flows) connections(now time.Time) []snapshot.Connection {
	type key struct {
		netns         uint64
		proto         string
		local, remote snapshot.Endpoint
	}
	byTuple := make(map[key]*connEntry, len(f.conns))
	listening := map[listenKey]bool{}
	for _, c := range f.conns {
		if c.snap.Local.Port != 0 && c.snap.Remote.Port != 0 {
			byTuple[key{c.snap.NetnsInode, c.snap.Proto, c.snap.Local, c.snap.Remote}] = c
		}
		if c.snap.State == "listen" {
			listening[listenKey{c.snap.NetnsInode, c.snap.Local.Port}] = true
		}
	}
	ctrByNetns := make(map[uint64]string, len(f.ctrs))
	for _, c := range f.ctrs {
		if c.snap.NetnsInode != 0 && !c.snap.HostNetwork {
			ctrByNetns[c.snap.NetnsInode] = c.snap.Name
		}
	}
	out := make([]snapshot.Connection, 0, len(f.conns))
	for _, c := range f.conns {
		s := c.snap
		if a, err := netip.ParseAddr(s.Remote.Addr); err == nil {
			if ns, ok := f.addrNetns[a]; ok && ns != s.NetnsInode {
				s.PeerContainer = ctrByNetns[ns]
			}
		}
		s.Delta = c.delta
		s.TxRate, s.RxRate = c.tx.Stats(now), c.rx.Stats(now)
		if s.Local.Port != 0 && s.Remote.Port != 0 {
			peer := byTuple[key{s.NetnsInode, s.Proto, s.Remote, s.Local}]
			if peer != nil && peer != c {
				// One connection, two ends: keep the client's view and name
				// the server.
				if !isClient(c, peer, listening) {
					continue
				}
				owner := peer.snap.Owner
				s.Peer, s.PeerCookie = &owner, peer.snap.Cookie
			}
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b snapshot.Connection) int {
		at, bt := a.Total.TxBytes+a.Total.RxBytes, b.Total.TxBytes+b.Total.RxBytes
		if c := cmp.Compare(bt, at); c != 0 {
			return c
		}
		return cmp.Compare(a.Cookie, b.Cookie)
	})
	return out
}

func (f *Flows) bucketList() []snapshot.Bucket {
	out := make([]snapshot.Bucket, 0, len(f.buckets))
	for _, b := range f.buckets {
		out = append(out, snapshot.Bucket{Name: b.name, CgroupID: b.cgroup, Total: b.total, Delta: b.delta})
	}
	slices.SortFunc(out, func(a, b snapshot.Bucket) int {
		if c := cmp.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return cmp.Compare(a.CgroupID, b.CgroupID)
	})
	return out
}

// Dropped is the number of sockets not tracked as connections because
// MaxConnections was reached (their bytes still reach their process).
func (f *Flows) Dropped() uint64 { return f.dropped }

// listenKey is a listening port of a namespace.
type listenKey struct {
	netns uint64
	port  uint16
}

// isClient tells which of two ends of one local connection opened it: the
// handshake says so; for connections older than the engine the end whose
// local port is a listening port is the server, and failing that the end
// with the higher (ephemeral) local port is taken as the client.
func isClient(c, peer *connEntry, listening map[listenKey]bool) bool {
	switch {
	case c.role == engine.RoleClient || peer.role == engine.RoleServer:
		return true
	case c.role == engine.RoleServer || peer.role == engine.RoleClient:
		return false
	}
	cl := listening[listenKey{c.snap.NetnsInode, c.snap.Local.Port}]
	pl := listening[listenKey{peer.snap.NetnsInode, peer.snap.Local.Port}]
	switch {
	case cl != pl:
		return pl
	case c.snap.Local.Port != c.snap.Remote.Port:
		return c.snap.Local.Port > c.snap.Remote.Port
	}
	return c.snap.Cookie < peer.snap.Cookie
}

// SocketOwner says who owns the socket with this cookie, as far as Flows
// knows: the process, and the container's name (or id) when it is in one.
func (f *Flows) SocketOwner(cookie uint64) (pid int, comm, ctr string, ok bool) {
	e := f.socks[cookie]
	if e == nil {
		return 0, "", "", false
	}
	return int(e.owner.tgid), e.comm, f.ctrName(e.ctr.ID), true
}

// ctrName is container id's name, or the id while it has none ("" for "").
func (f *Flows) ctrName(id string) string {
	if c := f.ctrs[id]; c != nil && c.snap.Name != "" {
		return c.snap.Name
	}
	return id
}

// ProcessContainers maps the pid of every tracked process that lives in a
// container to the container's name (or id). It is built once per reading
// and shared: callers must not modify it.
func (f *Flows) ProcessContainers() map[int]string {
	if f.procCtrs != nil {
		return f.procCtrs
	}
	out := map[int]string{}
	for k, p := range f.procs {
		if p.ctr.ID != "" {
			out[int(k.tgid)] = f.ctrName(p.ctr.ID)
		}
	}
	f.procCtrs = out
	return out
}
