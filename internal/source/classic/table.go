package classic

import (
	"hash/maphash"
	"net/netip"
	"sync"
	"time"

	"github.com/netmeter/netmeter/internal/attribution/procfs"
	"github.com/netmeter/netmeter/internal/snapshot"
	"github.com/netmeter/netmeter/internal/source/engine"
)

// sockInfo is what one /proc scan says about a socket.
type sockInfo struct {
	procfs.NetSocket
	Owner    engine.Owner
	HasOwner bool
}

// sock is one socket's identity and counters.
type sock struct {
	key       key
	cookie    uint64
	info      sockInfo
	traffic   snapshot.Traffic
	seq       seqs
	born      time.Time // first seen by a scan
	gone      time.Time // when /proc stopped listing it; zero while listed
	synthetic bool      // made for an unknown flow charged to a listener
}

// flow is traffic of one local end no socket matched yet.
type flow struct {
	t     snapshot.Traffic
	seq   seqs
	first time.Time
}

// seqs follow the TCP sequence numbers each way, so payload counts each
// byte once: a retransmission is IP bytes, not new payload (the eBPF engine
// counts payload where the application sends or receives it). Packets can
// reach the capture out of order (lo delivers on the CPU that sent them), so
// the gaps a packet jumps over are remembered and filled later.
type seqs struct {
	dir [2]seqDir // rx, tx
}

type seqDir struct {
	next  uint32
	ok    bool
	holes [4][2]uint32 // [start, end) ranges not seen yet
	n     int
}

// payload returns how much of p's payload is new in its direction.
func (q *seqs) payload(p *packet, tx bool) uint64 {
	if p.proto != protoTCP || p.payload == 0 || p.payload > 1<<30 {
		return p.payload
	}
	d := &q.dir[0]
	if tx {
		d = &q.dir[1]
	}
	start, end := p.seq, p.seq+uint32(p.payload)
	if !d.ok {
		d.next, d.ok = end, true
		return p.payload
	}
	var n uint64
	switch {
	case int32(start-d.next) > 0: // a jump: the bytes between come later
		d.addHole(d.next, start)
		n, d.next = p.payload, end
	case int32(end-d.next) > 0:
		n = uint64(end - d.next)
		n += d.fill(start, d.next)
		d.next = end
	default:
		n = d.fill(start, end)
	}
	return n
}

func (d *seqDir) addHole(start, end uint32) {
	if d.n == len(d.holes) {
		copy(d.holes[:], d.holes[1:]) // forget the oldest
		d.n--
	}
	d.holes[d.n] = [2]uint32{start, end}
	d.n++
}

// fill returns how many bytes of [start, end) were holes, and removes them.
func (d *seqDir) fill(start, end uint32) uint64 {
	var n uint64
	for i := 0; i < d.n; i++ {
		h := &d.holes[i]
		lo, hi := h[0], h[1]
		if int32(start-lo) > 0 {
			lo = start
		}
		if int32(hi-end) > 0 {
			hi = end
		}
		if int32(hi-lo) <= 0 {
			continue
		}
		n += uint64(hi - lo)
		switch {
		case lo == h[0] && hi == h[1]:
			d.holes[i] = d.holes[d.n-1]
			d.n--
			i--
		case lo == h[0]:
			h[0] = hi
		case hi == h[1]:
			h[1] = lo
		default: // the middle: keep the larger side
			if hi-h[0] < h[1]-lo {
				h[0] = hi
			} else {
				h[1] = lo
			}
		}
	}
	return n
}

const (
	stateListen     = 10
	stateUnconnUDP  = 7
	defaultGrace    = 2 * time.Second
	defaultLinger   = 3 * time.Second
	defaultSockets  = 65536
	defaultUnknowns = 16384
)

// table matches packets to sockets. The capture goroutine calls account for
// every packet; the scanner calls apply; Read calls expire and reading. mu
// guards everything.
type table struct {
	mu    sync.Mutex
	netns uint32
	// local holds the namespace's own addresses (loopback is always local):
	// only the ends of a packet at a local address are charged.
	local map[[16]byte]struct{}

	conn    map[key]*sock // connected sockets by (local, remote)
	bound   map[key]*sock // unconnected UDP sockets by local end (remote zero)
	listen  map[key]*sock // TCP listeners by local end (remote zero)
	byInode map[uint64]*sock
	unknown map[key]*flow

	unattributed snapshot.Traffic // unknown flows nobody claimed, cumulative
	overflow     snapshot.Traffic // what a full table could not hold
	sockFull     uint64           // sockets not tracked because the table was full
	unknownFull  uint64           // packets of new flows refused by a full unknown table
	wantScan     bool             // an unknown flow appeared since the last scan
	dead         []*sock

	maxSockets, maxUnknown int
	grace, linger          time.Duration
	seed                   maphash.Seed
}

func newTable(netns uint32, maxSockets, maxUnknown int) *table {
	if maxSockets <= 0 {
		maxSockets = defaultSockets
	}
	if maxUnknown <= 0 {
		maxUnknown = defaultUnknowns
	}
	return &table{
		netns: netns, local: map[[16]byte]struct{}{},
		conn: map[key]*sock{}, bound: map[key]*sock{}, listen: map[key]*sock{}, byInode: map[uint64]*sock{},
		unknown: map[key]*flow{}, maxSockets: maxSockets, maxUnknown: maxUnknown,
		grace: defaultGrace, linger: defaultLinger, seed: maphash.MakeSeed(),
	}
}

func isLoopback(a *[16]byte) bool {
	if a[10] == 0xff && a[11] == 0xff && a[0]|a[1]|a[2]|a[3]|a[4]|a[5]|a[6]|a[7]|a[8]|a[9] == 0 {
		return a[12] == 127
	}
	return *a == [16]byte{15: 1}
}

func (t *table) isLocal(a *[16]byte) bool {
	if isLoopback(a) {
		return true
	}
	_, ok := t.local[*a]
	return ok
}

// setLocal replaces the set of the namespace's addresses.
func (t *table) setLocal(addrs []netip.Addr) {
	m := make(map[[16]byte]struct{}, len(addrs))
	for _, a := range addrs {
		m[a.As16()] = struct{}{}
	}
	t.mu.Lock()
	t.local = m
	t.mu.Unlock()
}

// account charges one packet to the socket at each of its local ends: the
// source's socket transmitted it, the destination's received it (on lo
// both are local, as with the eBPF engine). It reports whether an unknown
// flow appeared, so the caller can ask for a scan.
func (t *table) account(p *packet) bool {
	t.mu.Lock()
	if t.isLocal(&p.src.addr) {
		t.charge(key{p.proto, p.src, p.dst}, p, true)
	}
	if t.isLocal(&p.dst.addr) {
		t.charge(key{p.proto, p.dst, p.src}, p, false)
	}
	want := t.wantScan
	t.mu.Unlock()
	return want
}

func add(t *snapshot.Traffic, q *seqs, p *packet, tx bool) {
	payload := p.payload
	if q != nil {
		payload = q.payload(p, tx)
	}
	if tx {
		t.TxBytes += p.ipBytes
		t.TxPayload += payload
		t.TxPackets++
	} else {
		t.RxBytes += p.ipBytes
		t.RxPayload += payload
		t.RxPackets++
	}
}

var (
	unspec4 = [16]byte{10: 0xff, 11: 0xff}
	unspec6 = [16]byte{}
)

// lookup finds the socket whose local end is k.local and whose remote is
// k.remote; an unconnected UDP socket bound to the local port (on that
// address or any) matches any remote.
func (t *table) lookup(k key) *sock {
	if s := t.conn[k]; s != nil {
		return s
	}
	if k.proto != protoUDP {
		return nil
	}
	b := key{proto: protoUDP, local: k.local}
	if s := t.bound[b]; s != nil {
		return s
	}
	if b.local.addr[10] == 0xff && b.local.addr[0] == 0 {
		b.local.addr = unspec4
		if s := t.bound[b]; s != nil {
			return s
		}
	}
	b.local.addr = unspec6 // a dual-stack socket takes IPv4 too
	return t.bound[b]
}

func (t *table) charge(k key, p *packet, tx bool) {
	if s := t.lookup(k); s != nil {
		add(&s.traffic, &s.seq, p, tx)
		return
	}
	f := t.unknown[k]
	if f == nil {
		if len(t.unknown) >= t.maxUnknown {
			t.unknownFull++
			add(&t.overflow, nil, p, tx)
			return
		}
		f = &flow{first: time.Now()}
		t.unknown[k] = f
		t.wantScan = true
	}
	add(&f.t, &f.seq, p, tx)
}

func endpointOf(a netip.AddrPort) endpoint {
	return endpoint{addr: a.Addr().As16(), port: a.Port()}
}

func keyOf(s *procfs.NetSocket) key {
	k := key{proto: s.Protocol, local: endpointOf(s.Local)}
	if !(s.Protocol == protoTCP && s.State == stateListen) && !(s.Protocol == protoUDP && s.Remote.Port() == 0) {
		k.remote = endpointOf(s.Remote)
	}
	return k
}

// index returns the map that holds sockets like s.
func (t *table) index(s *procfs.NetSocket) map[key]*sock {
	switch {
	case s.Protocol == protoTCP && s.State == stateListen:
		return t.listen
	case s.Protocol == protoUDP && s.Remote.Port() == 0:
		return t.bound
	}
	return t.conn
}

// apply merges one scan: new sockets are added and take the unknown flows
// that are theirs, known ones are refreshed (an owner found late is
// recorded), and those /proc no longer lists start to linger. Sockets
// without an inode (TIME_WAIT, orphans) have no identity and are skipped.
func (t *table) apply(now time.Time, found []sockInfo) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.wantScan = false
	listed := make(map[uint64]struct{}, len(found))
	for i := range found {
		in := &found[i]
		if in.Inode == 0 {
			continue
		}
		listed[in.Inode] = struct{}{}
		if s := t.byInode[in.Inode]; s != nil {
			k := keyOf(&in.NetSocket)
			if k != s.key { // connect() or bind() after the last scan
				t.unindex(s)
				s.key = k
				t.index(&in.NetSocket)[k] = s
			}
			owner, has := s.info.Owner, s.info.HasOwner
			s.info = *in
			if !in.HasOwner && has {
				s.info.Owner, s.info.HasOwner = owner, true // the holder exited; keep who it was
			}
			s.gone = time.Time{}
			t.claim(s)
			continue
		}
		if len(t.byInode) >= t.maxSockets {
			t.sockFull++
			continue
		}
		s := &sock{key: keyOf(&in.NetSocket), cookie: uint64(t.netns)<<32 | in.Inode&0xffffffff, info: *in, born: now}
		idx := t.index(&in.NetSocket)
		if old := idx[s.key]; old != nil && old.gone.IsZero() {
			old.gone = now // a new socket took its tuple
		}
		idx[s.key] = s
		t.byInode[in.Inode] = s
		t.claim(s)
	}
	for ino, s := range t.byInode {
		if _, ok := listed[ino]; !ok && s.gone.IsZero() {
			s.gone = now
		}
	}
}

// unindex removes s from the tuple index it is in, if it is still there.
func (t *table) unindex(s *sock) {
	for _, m := range []map[key]*sock{t.conn, t.bound, t.listen} {
		if m[s.key] == s {
			delete(m, s.key)
		}
	}
}

// claim moves to s the unknown flows that are its own.
func (t *table) claim(s *sock) {
	if len(t.unknown) == 0 {
		return
	}
	if s.key.remote != (endpoint{}) || s.key.proto == protoTCP {
		if f := t.unknown[s.key]; f != nil && s.key.remote != (endpoint{}) {
			s.traffic = s.traffic.Add(f.t)
			if !s.seq.dir[0].ok && !s.seq.dir[1].ok {
				s.seq = f.seq
			}
			delete(t.unknown, s.key)
		}
		return
	}
	for k, f := range t.unknown { // an unconnected UDP socket: every remote
		if k.proto == protoUDP && t.conn[k] == nil && t.lookup(k) == s {
			s.traffic = s.traffic.Add(f.t)
			delete(t.unknown, k)
		}
	}
}

// expire ends what waited long enough: unknown flows older than the grace
// period go to the listener of their port when there is one (the server end
// of a connection that came and went between two scans), else to the
// unattributed bucket; sockets gone for longer than the linger period become
// final records.
func (t *table) expire(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, f := range t.unknown {
		if now.Sub(f.first) < t.grace {
			continue
		}
		delete(t.unknown, k)
		if l := t.listener(k); l != nil && len(t.byInode) < t.maxSockets && t.conn[k] == nil {
			s := &sock{key: k, info: l.info, traffic: f.t, seq: f.seq, born: now, gone: now, synthetic: true}
			s.cookie = maphash.Comparable(t.seed, k) | 1<<63 // no inode: never equal to an inode's cookie
			s.info.Inode = 0
			s.info.State = 7 // unknown by now; close is the best guess
			s.info.Remote = netip.AddrPortFrom(addrOf(k.remote.addr), k.remote.port)
			t.conn[k] = s
			t.byInode[s.cookie] = s // synthetic keys live above any inode
			continue
		}
		t.unattributed = t.unattributed.Add(f.t)
	}
	for ino, s := range t.byInode {
		if !s.info.HasOwner && s.key.remote != (endpoint{}) && now.Sub(s.born) >= t.grace {
			// Seen in /proc, but closed before its fd was found: a server
			// end belongs to the listener of its port.
			if l := t.listener(s.key); l != nil && l.info.HasOwner {
				s.info.Owner, s.info.HasOwner = l.info.Owner, true
			}
		}
		if s.gone.IsZero() || now.Sub(s.gone) < t.linger {
			continue
		}
		delete(t.byInode, ino)
		t.unindex(s)
		t.dead = append(t.dead, s)
	}
}

func addrOf(a [16]byte) netip.Addr {
	return netip.AddrFrom16(a).Unmap()
}

// listener returns the TCP listener of k's local end.
func (t *table) listener(k key) *sock {
	if k.proto != protoTCP {
		return nil
	}
	l := key{proto: protoTCP, local: k.local}
	if s := t.listen[l]; s != nil {
		return s
	}
	if l.local.addr[10] == 0xff && l.local.addr[0] == 0 {
		l.local.addr = unspec4
		if s := t.listen[l]; s != nil {
			return s
		}
	}
	l.local.addr = unspec6
	return t.listen[l]
}

// reading returns the sockets as the eBPF engine would: every socket whose
// owner is known or whose grace period is over (a socket /proc has not yet
// tied to a process waits, so all its bytes reach the process once found),
// and the final records since the last call.
func (t *table) reading(now time.Time) (live, dead []engine.Socket, unattributed, overflow snapshot.Traffic, sockets int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	live = make([]engine.Socket, 0, len(t.byInode))
	for _, s := range t.byInode {
		if !s.info.HasOwner && !s.synthetic && now.Sub(s.born) < t.grace {
			continue
		}
		live = append(live, t.socket(s, false))
	}
	for _, s := range t.dead {
		dead = append(dead, t.socket(s, true))
	}
	t.dead = nil
	return live, dead, t.unattributed, t.overflow, len(t.byInode)
}

func (t *table) socket(s *sock, dead bool) engine.Socket {
	in := &s.info
	out := engine.Socket{
		Cookie: s.cookie, Inode: in.Inode, Dead: dead, Protocol: in.Protocol, State: in.State,
		Local: in.Local, Remote: in.Remote, Netns: t.netns, HasOwner: in.HasOwner, Owner: in.Owner,
		Traffic: s.traffic, Family: 6,
	}
	if in.Local.Addr().Is4() {
		out.Family = 4
	}
	if out.HasOwner {
		out.Owner.Netns = t.netns
	}
	return out
}

// owned reports whether the table already knows the owner of the socket
// with this inode (the scanner then does not look for it).
func (t *table) owned(inode uint64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.byInode[inode]
	return s != nil && s.info.HasOwner
}
