package engine

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"

	"github.com/netmeter/netmeter/internal/bpfload"
	"github.com/netmeter/netmeter/internal/nsutil"
	"github.com/netmeter/netmeter/internal/snapshot"
)

// Requirements are what the engine needs from the kernel and the process.
var Requirements = bpfload.Requirements{
	Name:         "engine",
	Capabilities: []bpfload.Capability{bpfload.CapBPF, bpfload.CapNetAdmin, bpfload.CapPerfmon},
	BTF:          true,
	// Tracing is not probed: its probe loads an fentry program, which kernels
	// without ftrace refuse although tp_btf works; attach errors name it.
	ProgramTypes: []ebpf.ProgramType{ebpf.CGroupSKB, ebpf.CGroupSock},
	MapTypes:     []ebpf.MapType{ebpf.SkStorage, ebpf.RingBuf, ebpf.Hash, ebpf.PerCPUArray},
}

// Defaults for Options.
const (
	DefaultRingBytes       = 4 << 20 // ~22,000 socket deaths between two reads
	DefaultTimewaitEntries = 65536
	DefaultBucketEntries   = 4096
	// DefaultMaxPendingDead bounds death records queued between two Reads.
	DefaultMaxPendingDead = 1 << 20
	// timewaitIdle is how long a timewait counter may stay unchanged before
	// it is dropped (TIME_WAIT lasts 60 s on Linux).
	timewaitIdle = 2 * time.Minute
)

// Options configure Open. Zero fields take the defaults.
type Options struct {
	// Cgroup is the cgroup2 directory to attach to; "" is the cgroup2 root,
	// which sees every socket of every namespace on the host.
	Cgroup          string
	RingBytes       uint32
	TimewaitEntries uint32
	BucketEntries   uint32
	MaxPendingDead  int
	// PinPath, when set (a directory on the BPF filesystem, e.g.
	// /sys/fs/bpf/netmeter), pins the maps and links there: the kernel goes
	// on counting while no agent runs, and a later Open with the same path
	// and the same engine continues from the pinned counters (Reopened
	// reports it). Unpin removes them.
	PinPath string
	// OnOwner, when set, is called (from a goroutine of the engine) for every
	// new owner stamp: a socket created, or taken over by another process.
	// It runs while that process is alive, so /proc can still be read.
	OnOwner func(Owner)
}

// Owner is the process that created a socket or last sent or received on it.
type Owner struct {
	TGID, TID, UID uint32
	Comm           string
	CgroupID       uint64
	// StartBoottime is the thread group leader's start, in ns since boot
	// (/proc/<pid>/stat starttime × 10 ms); with TGID it names a process.
	StartBoottime uint64
	Netns         uint32
}

// Socket is one socket's counters and identity.
type Socket struct {
	Cookie   uint64
	Inode    uint64
	Dead     bool // final record: the socket is gone
	Family   int  // 4 or 6
	Protocol uint8
	State    uint8 // TCP state (1 established … 12), 7 (close) for unconnected UDP
	Local    netip.AddrPort
	Remote   netip.AddrPort
	Netns    uint32
	HasOwner bool
	Owner    Owner
	Traffic  snapshot.Traffic
	// BytesAcked and BytesReceived are TCP's own counters (payload + SYN/FIN).
	BytesAcked, BytesReceived uint64
	// Role is which end of a TCP connection this is, from its handshake.
	Role Role
	// HTTP counts HTTP/1.x request lines received (server sockets), by
	// method in the order of HTTPMethods.
	HTTP [len(HTTPMethods)]uint32
}

// HTTPMethods are the methods the kernel recognises, in its order.
var HTTPMethods = [engineHttpMethodHTTP_METHODS]string{"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}

// Role is a TCP socket's end of its connection.
type Role uint8

// Roles.
const (
	RoleUnknown Role = Role(engineTcpRoleROLE_UNKNOWN) // not TCP, or opened before the engine
	RoleClient  Role = Role(engineTcpRoleROLE_CLIENT)  // active open
	RoleServer  Role = Role(engineTcpRoleROLE_SERVER)  // accepted from a listener
)

// Stats are the engine's own counters since Open.
type Stats struct {
	CountStoreFail uint64 // sockets whose counters could not be created (bytes → kernel bucket)
	RingFull       uint64 // death records the ring buffer had no room for
	TimewaitFull   uint64
	BucketFull     uint64
	PendingDropped uint64 // death records dropped because Read was not called
}

// Reading is one read of everything the kernel counted.
type Reading struct {
	Live []Socket
	// Dead are final records of sockets that died since the last Read.
	Dead []Socket
	// Timewait maps the cookie of a socket that went to TIME_WAIT to the
	// bytes its timewait socket sent and received (cumulative).
	Timewait map[uint64]snapshot.Traffic
	// Kernel is traffic of sockets no process owns, per cgroup id.
	Kernel map[uint64]snapshot.Traffic
	// Overflow is what Kernel could not hold.
	Overflow snapshot.Traffic
	Stats    Stats
}

// Engine is bpf/engine.c loaded and attached.
type Engine struct {
	objs       engineObjects
	links      []link.Link
	iter       *link.Iter
	adopters   []*link.Iter
	ring       *ringbuf.Reader
	ownerRing  *ringbuf.Reader
	ownersDone chan struct{}
	opt        Options

	mu      sync.Mutex
	dead    []Socket
	dropped uint64
	ringErr error
	done    chan struct{}

	twSeen   map[engineTwKey]twState
	reopened bool
}

// Reopened reports whether Open continued a pinned engine.
func (e *Engine) Reopened() bool { return e.reopened }

type twState struct {
	last    engineTrafficBucket
	changed time.Time
}

// Open loads the engine and attaches it. Errors name the missing capability
// or kernel feature (see internal/bpfload).
func Open(opt Options) (*Engine, error) {
	if opt.RingBytes == 0 {
		opt.RingBytes = DefaultRingBytes
	}
	if opt.TimewaitEntries == 0 {
		opt.TimewaitEntries = DefaultTimewaitEntries
	}
	if opt.BucketEntries == 0 {
		opt.BucketEntries = DefaultBucketEntries
	}
	if opt.MaxPendingDead == 0 {
		opt.MaxPendingDead = DefaultMaxPendingDead
	}
	if opt.PinPath != "" {
		if err := onBPFFS(filepath.Dir(opt.PinPath)); err != nil {
			return nil, err
		}
		e, err := reopen(opt)
		if err == nil {
			return e, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			// Pinned by another engine version, or half pinned: start over.
			if uerr := Unpin(opt.PinPath); uerr != nil {
				return nil, fmt.Errorf("open engine: %w (and removing the stale pins: %v)", err, uerr)
			}
		}
	}
	cg, err := bpfload.ResolveCgroup(opt.Cgroup)
	if err != nil {
		return nil, fmt.Errorf("open engine: %w", err)
	}
	if err := bpfload.Prepare(Requirements); err != nil {
		return nil, err
	}
	spec, err := loadEngine()
	if err != nil {
		return nil, fmt.Errorf("open engine: %w", err)
	}
	if err := bpfload.SetMaxEntries(spec, map[string]uint32{
		engineMapDeaths:       opt.RingBytes,
		engineMapTwCounts:     opt.TimewaitEntries,
		engineMapKernelCounts: opt.BucketEntries,
	}); err != nil {
		return nil, fmt.Errorf("open engine: %w", err)
	}
	e := &Engine{opt: opt, done: make(chan struct{}), twSeen: map[engineTwKey]twState{}}
	if err := spec.LoadAndAssign(&e.objs, nil); err != nil {
		return nil, bpfload.Wrap("load engine", err, Requirements.Capabilities...)
	}
	if err := e.attach(cg); err != nil {
		e.Close()
		return nil, err
	}
	if err := e.start(); err != nil {
		e.Close()
		return nil, err
	}
	if err := e.Adopt(""); err != nil {
		e.Close()
		return nil, err
	}
	if opt.PinPath != "" {
		if err := e.pin(); err != nil {
			e.Close()
			Unpin(opt.PinPath)
			return nil, err
		}
	}
	return e, nil
}

// start begins reading the ring buffers of final records and owners.
func (e *Engine) start() error {
	r, err := ringbuf.NewReader(e.objs.Deaths)
	if err != nil {
		return fmt.Errorf("open engine ring buffer: %w", err)
	}
	e.ring = r
	go e.readDeaths()
	if e.opt.OnOwner != nil && e.objs.Owners != nil {
		or, err := ringbuf.NewReader(e.objs.Owners)
		if err != nil {
			return fmt.Errorf("open engine owner ring buffer: %w", err)
		}
		e.ownerRing, e.ownersDone = or, make(chan struct{})
		go e.readOwners()
	}
	return nil
}

// readOwners passes every new owner stamp to Options.OnOwner until Close.
func (e *Engine) readOwners() {
	defer close(e.ownersDone)
	var rec ringbuf.Record
	var o engineOwner
	for {
		if err := e.ownerRing.ReadInto(&rec); err != nil {
			return
		}
		if _, err := binary.Decode(rec.RawSample, binary.LittleEndian, &o); err != nil {
			continue
		}
		e.opt.OnOwner(Owner{TGID: o.Tgid, TID: o.Pid, UID: o.Uid, CgroupID: o.CgroupId,
			StartBoottime: o.StartBoottime, Netns: o.Netns, Comm: comm(o.Comm)})
	}
}

func (e *Engine) stopOwners() {
	if e.ownerRing != nil {
		e.ownerRing.Close()
		<-e.ownersDone
		e.ownerRing = nil
	}
}

func (e *Engine) attach(cg string) error {
	for _, a := range []struct {
		prog   *ebpf.Program
		attach ebpf.AttachType
	}{
		{e.objs.SockCreate, ebpf.AttachCGroupInetSockCreate},
		{e.objs.SockRelease, ebpf.AttachCgroupInetSockRelease},
		{e.objs.SkbEgress, ebpf.AttachCGroupInetEgress},
		{e.objs.SkbIngress, ebpf.AttachCGroupInetIngress},
	} {
		l, err := link.AttachCgroup(link.CgroupOptions{Path: cg, Attach: a.attach, Program: a.prog})
		if err != nil {
			return bpfload.Wrap(fmt.Sprintf("attach engine %s to %s", a.attach, cg), err, Requirements.Capabilities...)
		}
		e.links = append(e.links, l)
	}
	for _, p := range []*ebpf.Program{e.objs.SendLength, e.objs.RecvLength, e.objs.TcpDestroy, e.objs.SetState, e.objs.RcvSpace} {
		l, err := link.AttachTracing(link.TracingOptions{Program: p})
		if err != nil {
			return bpfload.Wrap(fmt.Sprintf("attach engine %s", p), err, Requirements.Capabilities...)
		}
		e.links = append(e.links, l)
	}
	it, err := link.AttachIter(link.IterOptions{Program: e.objs.DumpSockets, Map: e.objs.CountStore})
	if err != nil {
		return bpfload.Wrap("attach engine socket iterator", err, Requirements.Capabilities...)
	}
	e.iter = it
	e.links = append(e.links, it)
	for _, p := range []*ebpf.Program{e.objs.AdoptTcp, e.objs.AdoptUdp} {
		it, err := link.AttachIter(link.IterOptions{Program: p})
		if err != nil {
			return bpfload.Wrap("attach engine adoption iterator", err, Requirements.Capabilities...)
		}
		e.adopters = append(e.adopters, it)
		e.links = append(e.links, it)
	}
	return nil
}

// Adopt gives every existing TCP and UDP socket of the namespace at nsPath
// ("" = the caller's) its counters, so sockets older than the engine are
// listed, with their inode and TCP lifetime counters, even while silent.
// Open adopts the caller's namespace; call Adopt for others.
func (e *Engine) Adopt(nsPath string) error {
	return nsutil.Do(nsPath, func() error {
		for _, it := range e.adopters {
			// The iterator walks the namespace of the task that opens it.
			rc, err := it.Open()
			if err != nil {
				return fmt.Errorf("adopt sockets: %w", err)
			}
			_, err = io.Copy(io.Discard, rc)
			rc.Close()
			if err != nil {
				return fmt.Errorf("adopt sockets: %w", err)
			}
		}
		return nil
	})
}

// readDeaths moves final records from the ring buffer to e.dead until Close.
func (e *Engine) readDeaths() {
	defer close(e.done)
	var rec ringbuf.Record
	for {
		if err := e.ring.ReadInto(&rec); err != nil {
			if !errors.Is(err, os.ErrClosed) {
				e.mu.Lock()
				e.ringErr = err
				e.mu.Unlock()
			}
			return
		}
		s, err := decodeOne(rec.RawSample)
		e.mu.Lock()
		switch {
		case err != nil:
			e.ringErr = err
		case len(e.dead) >= e.opt.MaxPendingDead:
			e.dropped++
		default:
			e.dead = append(e.dead, s)
		}
		e.mu.Unlock()
	}
}

var recordSize = binary.Size(engineSockRecord{})

func decodeOne(b []byte) (Socket, error) {
	var r engineSockRecord
	if len(b) < recordSize {
		return Socket{}, fmt.Errorf("socket record of %d bytes, want %d", len(b), recordSize)
	}
	if _, err := binary.Decode(b, binary.LittleEndian, &r); err != nil {
		return Socket{}, fmt.Errorf("decode socket record: %w", err)
	}
	return convert(&r), nil
}

// decodeAll decodes a dump of records.
func decodeAll(b []byte) ([]Socket, error) {
	if len(b)%recordSize != 0 {
		return nil, fmt.Errorf("socket dump of %d bytes is not a multiple of %d", len(b), recordSize)
	}
	out := make([]Socket, 0, len(b)/recordSize)
	for off := 0; off < len(b); off += recordSize {
		s, err := decodeOne(b[off : off+recordSize])
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func addr(family uint16, a [4]uint32) netip.Addr {
	var b [16]byte
	for i, w := range a {
		binary.LittleEndian.PutUint32(b[4*i:], w) // network order bytes, stored as read
	}
	if family == afInet {
		return netip.AddrFrom4([4]byte(b[:4]))
	}
	return netip.AddrFrom16(b)
}

const (
	afInet  = 2
	afInet6 = 10
)

func convert(r *engineSockRecord) Socket {
	s := Socket{
		Cookie: r.Cookie, Inode: r.Ino, Dead: r.Kind == uint8(engineRecordKindRECORD_DEAD),
		Protocol: uint8(r.Protocol), State: r.State, Netns: r.Netns, HasOwner: r.HasOwner != 0,
		BytesAcked: r.BytesAcked, BytesReceived: r.BytesReceived, Role: Role(r.Counts.Role), HTTP: r.Counts.Http,
		Traffic: snapshot.Traffic{
			TxPayload: r.Counts.PayloadTx, RxPayload: r.Counts.PayloadRx,
			TxBytes: r.Counts.IpTx, RxBytes: r.Counts.IpRx,
			TxPackets: r.Counts.PktTx, RxPackets: r.Counts.PktRx,
		},
	}
	t := &r.Tuple
	switch t.Family {
	case afInet:
		s.Family = 4
	case afInet6:
		s.Family = 6
	}
	if s.Family != 0 {
		local, remote := addr(t.Family, t.Saddr), addr(t.Family, t.Daddr)
		if local.Is4In6() || (remote.Is4In6() && local.IsUnspecified()) {
			s.Family = 4 // an IPv4 peer of a dual-stack socket
		}
		s.Local = netip.AddrPortFrom(local.Unmap(), t.Sport)
		s.Remote = netip.AddrPortFrom(remote.Unmap(), t.Dport)
	}
	if s.HasOwner {
		o := r.Owner
		s.Owner = Owner{TGID: o.Tgid, TID: o.Pid, UID: o.Uid, CgroupID: o.CgroupId,
			StartBoottime: o.StartBoottime, Netns: o.Netns, Comm: comm(o.Comm)}
	}
	return s
}

func comm(c [16]int8) string {
	b := make([]byte, 0, len(c))
	for _, ch := range c {
		if ch == 0 {
			break
		}
		b = append(b, byte(ch))
	}
	return string(b)
}

// Quiesce stops taking final records off the ring buffer: what it has taken
// is returned by the next Read, the rest stays in the (pinned) ring for the
// next agent. Call it before the last Read of an agent that exits.
func (e *Engine) Quiesce() {
	e.stopOwners()
	if e.ring != nil {
		e.ring.Close()
		<-e.done
		e.ring = nil
	}
}

// Read returns every live socket, the sockets that died since the last
// Read, and the traffic no socket owns.
func (e *Engine) Read() (Reading, error) {
	var r Reading
	rc, err := e.iter.Open()
	if err != nil {
		return r, fmt.Errorf("run socket iterator: %w", err)
	}
	buf, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return r, fmt.Errorf("read socket iterator: %w", err)
	}
	if r.Live, err = decodeAll(buf); err != nil {
		return r, err
	}
	e.mu.Lock()
	r.Dead, e.dead = e.dead, nil
	r.Stats.PendingDropped = e.dropped
	ringErr := e.ringErr
	e.mu.Unlock()
	if ringErr != nil {
		return r, fmt.Errorf("read socket deaths: %w", ringErr)
	}
	if r.Timewait, err = e.readTimewait(time.Now()); err != nil {
		return r, err
	}
	if r.Kernel, err = e.readKernel(); err != nil {
		return r, err
	}
	if r.Overflow, err = e.readOverflow(); err != nil {
		return r, err
	}
	if err := e.readStats(&r.Stats); err != nil {
		return r, err
	}
	return r, nil
}

func addDir(t *snapshot.Traffic, dir uint32, b engineTrafficBucket) {
	if dir == 0 { // DIR_EGRESS
		t.TxBytes += b.Bytes
		t.TxPackets += b.Packets
	} else {
		t.RxBytes += b.Bytes
		t.RxPackets += b.Packets
	}
}

// readTimewait returns the timewait counters and forgets those unchanged
// for timewaitIdle (their socket is long gone).
func (e *Engine) readTimewait(now time.Time) (map[uint64]snapshot.Traffic, error) {
	out := map[uint64]snapshot.Traffic{}
	var k engineTwKey
	var v engineTrafficBucket
	var stale []engineTwKey
	it := e.objs.TwCounts.Iterate()
	for it.Next(&k, &v) {
		t := out[k.Cookie]
		addDir(&t, k.Dir, v)
		out[k.Cookie] = t
		st, ok := e.twSeen[k]
		if !ok || st.last != v {
			e.twSeen[k] = twState{last: v, changed: now}
		} else if now.Sub(st.changed) > timewaitIdle {
			stale = append(stale, k)
		}
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read timewait counters: %w", err)
	}
	for _, k := range stale {
		// Its bytes stay in the caller's totals; the kernel entry is freed.
		if err := e.objs.TwCounts.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return nil, fmt.Errorf("drop idle timewait counter: %w", err)
		}
		delete(e.twSeen, k)
	}
	return out, nil
}

func (e *Engine) readKernel() (map[uint64]snapshot.Traffic, error) {
	out := map[uint64]snapshot.Traffic{}
	var k engineBucketKey
	var v engineTrafficBucket
	it := e.objs.KernelCounts.Iterate()
	for it.Next(&k, &v) {
		t := out[k.CgroupId]
		addDir(&t, k.Dir, v)
		out[k.CgroupId] = t
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read kernel counters: %w", err)
	}
	return out, nil
}

func (e *Engine) readOverflow() (snapshot.Traffic, error) {
	var t snapshot.Traffic
	for dir := uint32(0); dir < 2; dir++ {
		var perCPU []engineTrafficBucket
		if err := e.objs.OverflowCounts.Lookup(dir, &perCPU); err != nil {
			return t, fmt.Errorf("read overflow counters: %w", err)
		}
		for _, b := range perCPU {
			addDir(&t, dir, b)
		}
	}
	return t, nil
}

func (e *Engine) readStats(s *Stats) error {
	for _, st := range []struct {
		key engineEngineStat
		dst *uint64
	}{
		{engineEngineStatSTAT_COUNT_STORE_FAIL, &s.CountStoreFail},
		{engineEngineStatSTAT_RING_FULL, &s.RingFull},
		{engineEngineStatSTAT_TW_FULL, &s.TimewaitFull},
		{engineEngineStatSTAT_BUCKET_FULL, &s.BucketFull},
	} {
		var perCPU []uint64
		if err := e.objs.Stats.Lookup(uint32(st.key), &perCPU); err != nil {
			return fmt.Errorf("read engine stats: %w", err)
		}
		for _, v := range perCPU {
			*st.dst += v
		}
	}
	return nil
}

// Close detaches every program and frees the maps. Safe on a partly opened
// Engine and more than once.
func (e *Engine) Close() error {
	var errs []error
	for _, l := range e.links {
		if err := l.Close(); err != nil {
			errs = append(errs, fmt.Errorf("detach engine: %w", err))
		}
	}
	e.links = nil
	e.stopOwners()
	if e.ring != nil {
		if err := e.ring.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close engine ring buffer: %w", err))
		}
		<-e.done
		e.ring = nil
	}
	if err := e.objs.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close engine: %w", err))
	}
	e.objs = engineObjects{}
	return errors.Join(errs...)
}

// pinnedMaps are the maps a reopened engine needs, by pin name.
func (e *Engine) pinnedMaps() map[string]**ebpf.Map {
	return map[string]**ebpf.Map{
		engineMapCountStore: &e.objs.CountStore, engineMapOwnerStore: &e.objs.OwnerStore, engineMapDeaths: &e.objs.Deaths,
		engineMapTwCounts: &e.objs.TwCounts, engineMapKernelCounts: &e.objs.KernelCounts,
		engineMapOverflowCounts: &e.objs.OverflowCounts, engineMapStats: &e.objs.Stats, engineMapOwners: &e.objs.Owners,
	}
}

// objectVersion names the compiled object, so a pin of another build is
// never reused.
func objectVersion() string {
	sum := sha256.Sum256(_EngineBytes)
	return hex.EncodeToString(sum[:])
}

// versionDir is where this build pins: <PinPath>/v-<object hash>. A BPF
// filesystem holds no regular files, so the version is in the name.
func versionDir(pinPath string) string {
	return filepath.Join(pinPath, "v-"+objectVersion()[:16])
}

// pin pins maps and links under versionDir. Links are named link-00…: the
// order of e.links (cgroup, tracing, iterators) is fixed by attach.
func (e *Engine) pin() error {
	dir := versionDir(e.opt.PinPath)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("pin engine: %w", err)
	}
	for name, m := range e.pinnedMaps() {
		if err := (*m).Pin(filepath.Join(dir, "map-"+name)); err != nil {
			return fmt.Errorf("pin engine map %s: %w", name, err)
		}
	}
	for i, l := range e.links {
		if err := l.Pin(filepath.Join(dir, fmt.Sprintf("link-%02d", i))); err != nil {
			return fmt.Errorf("pin engine link %d: %w", i, err)
		}
	}
	// Made last: its presence says the pins are complete.
	if err := os.Mkdir(filepath.Join(dir, "complete"), 0o700); err != nil {
		return fmt.Errorf("pin engine: %w", err)
	}
	return nil
}

// reopen continues a pinned engine. It returns an error wrapping
// os.ErrNotExist when nothing is pinned at opt.PinPath.
func reopen(opt Options) (*Engine, error) {
	dir := versionDir(opt.PinPath)
	if _, err := os.Stat(filepath.Join(dir, "complete")); err != nil {
		if _, serr := os.Stat(opt.PinPath); serr == nil && errors.Is(err, os.ErrNotExist) {
			// Something else is pinned there: another build, or a pin
			// interrupted half way.
			return nil, fmt.Errorf("reopen pinned engine: no complete pins of this build in %s", opt.PinPath)
		}
		return nil, fmt.Errorf("reopen pinned engine: %w", err)
	}
	if err := bpfload.Prepare(Requirements); err != nil {
		return nil, err
	}
	e := &Engine{opt: opt, done: make(chan struct{}), twSeen: map[engineTwKey]twState{}, reopened: true}
	for name, m := range e.pinnedMaps() {
		pm, err := ebpf.LoadPinnedMap(filepath.Join(dir, "map-"+name), nil)
		if err != nil {
			e.Close()
			return nil, fmt.Errorf("reopen pinned engine map %s: %w", name, bpfload.Wrap("load pinned map", err, Requirements.Capabilities...))
		}
		*m = pm
	}
	const links = 12 // 4 cgroup, 5 tracing, 3 iterators: see attach
	for i := range links {
		l, err := link.LoadPinnedLink(filepath.Join(dir, fmt.Sprintf("link-%02d", i)), nil)
		if err != nil {
			e.Close()
			return nil, fmt.Errorf("reopen pinned engine link %d: %w", i, err)
		}
		e.links = append(e.links, l)
	}
	var ok bool
	if e.iter, ok = e.links[9].(*link.Iter); !ok {
		e.Close()
		return nil, fmt.Errorf("reopen pinned engine: link 9 is not the socket iterator")
	}
	for _, l := range e.links[10:] {
		it, ok := l.(*link.Iter)
		if !ok {
			e.Close()
			return nil, fmt.Errorf("reopen pinned engine: adoption link is not an iterator")
		}
		e.adopters = append(e.adopters, it)
	}
	if err := e.start(); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

// Unpin removes what Open pinned at dir: the programs detach once no agent
// holds them.
func Unpin(dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("unpin engine: %w", err)
	}
	return nil
}

// onBPFFS checks that dir is on a BPF filesystem, where pins live.
func onBPFFS(dir string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return fmt.Errorf("pin path %s: %w", dir, err)
	}
	if st.Type != unix.BPF_FS_MAGIC {
		return fmt.Errorf("pin path %s is not on a BPF filesystem: mount one with 'mount -t bpf bpf %s'", dir, dir)
	}
	return nil
}
