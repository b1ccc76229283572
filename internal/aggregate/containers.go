package aggregate

import (
	"bytes"
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"slices"
	"time"

	"github.com/netmeter/netmeter/internal/attribution/container"
	"github.com/netmeter/netmeter/internal/attribution/procfs"
	"github.com/netmeter/netmeter/internal/nsutil"
	"github.com/netmeter/netmeter/internal/rate"
	"github.com/netmeter/netmeter/internal/snapshot"
	"github.com/netmeter/netmeter/internal/source/engine"
	"github.com/netmeter/netmeter/internal/source/iface"
)

// ContainerResolver names containers through their runtime
// (container.Registry). Lookup must not block for long: it is called from
// the collection loop.
type ContainerResolver interface {
	Lookup(ref container.Ref) (container.Info, bool)
}

// NetnsResolver finds the container living in a network namespace, for
// processes gone before /proc could be read (short `docker exec`s).
type NetnsResolver interface {
	LookupNetns(inode uint64) (container.Ref, bool)
}

// DefaultMaxContainers bounds the containers tracked.
const DefaultMaxContainers = 4096

type ctrEntry struct {
	snap     snapshot.Container
	ref      container.Ref
	named    bool
	tx, rx   *rate.Meter
	acc, opn *rate.Meter // connections accepted, opened
	req      *rate.Meter // HTTP requests
	last     [3]uint64   // accepted, opened, requests at the last interval
	delta    snapshot.Traffic
	procs    map[procKey]bool
	sockets  int
	ports    map[uint16]*snapshot.Port
	remotes  map[netip.Addr]*snapshot.Traffic
	lastSeen time.Time
	pid      int // a process of the container, to read its namespace's /proc/<pid>/net/dev
}

// Bounds of the per-container remote table: the busiest maxRemotes are
// reported; at most keepRemotes are tracked (the quietest go first), so a
// scan of many addresses cannot grow memory.
const (
	maxRemotes  = 16
	keepRemotes = 256
)

// containerOf returns the container of a process from its cgroup paths.
func containerOf(info procfs.Info) container.Ref {
	for _, p := range info.Cgroups {
		if r := container.FromPath(p); !r.IsZero() {
			return r
		}
	}
	return container.FromPath(info.CgroupPath)
}

// peerClass sorts a socket's traffic by where its remote end lives.
type peerClass uint8

const (
	peerUnknown peerClass = iota
	peerExternal
	peerContainer
	peerHost
	peerInternal
)

// classify tells where the remote end of s lives, from the local addresses
// of every socket seen on this host (addrNetns) and the host's namespace.
func (f *Flows) classify(s *engine.Socket) peerClass {
	r := s.Remote.Addr()
	switch {
	case !r.IsValid() || r.IsUnspecified():
		return peerUnknown // a listener's handshakes, unconnected UDP: no one peer
	case r.IsLoopback():
		if uint64(s.Netns) == f.opt.HostNetns {
			return peerHost
		}
		return peerInternal
	}
	ns, ok := f.addrNetns[r]
	switch {
	case !ok:
		return peerExternal
	case ns == uint64(s.Netns):
		return peerInternal
	case ns == f.opt.HostNetns:
		return peerHost
	}
	return peerContainer
}

// learnAddrs records which namespace each local address lives in.
func (f *Flows) learnAddrs(live []engine.Socket) {
	for i := range live {
		a := live[i].Local.Addr()
		if a.IsValid() && !a.IsUnspecified() && !a.IsLoopback() {
			if len(f.addrNetns) >= 4*f.opt.MaxConnections {
				clear(f.addrNetns) // bounded; relearned from the next reading
			}
			f.addrNetns[a] = uint64(live[i].Netns)
		}
	}
}

// chargeContainer adds one socket's delta to its container, if any.
func (f *Flows) chargeContainer(now time.Time, s *engine.Socket, e *sockEntry, p *procEntry, delta snapshot.Traffic, isNew bool, http [len(engine.HTTPMethods)]uint32) {
	k := e.owner
	ref := p.ctr
	if ns := uint64(s.Netns); ref.IsZero() && ns != f.opt.HostNetns && ns != 0 {
		// The process is gone (or unreadable): ask which container lives,
		// or lately lived, in the socket's namespace. Not cached here: the
		// kernel reuses namespace inodes, the resolver tracks that.
		if nr, ok := f.opt.Containers.(NetnsResolver); ok {
			if r, ok := nr.LookupNetns(ns); ok {
				ref = r
			}
		}
	}
	if ref.IsZero() {
		ref = e.ctr // the process is gone; the socket remembers
	}
	if ref.IsZero() {
		return
	}
	e.ctr = ref
	c := f.ctrs[ref.ID]
	if c == nil {
		if len(f.ctrs) >= f.opt.MaxContainers {
			return
		}
		c = &ctrEntry{ref: ref, tx: rate.New(now), rx: rate.New(now), acc: rate.New(now), opn: rate.New(now), req: rate.New(now), procs: map[procKey]bool{}, ports: map[uint16]*snapshot.Port{}, remotes: map[netip.Addr]*snapshot.Traffic{}}
		c.snap = snapshot.Container{ID: ref.ID, Runtime: ref.Runtime, Name: container.ShortID(ref.ID), Account: container.ShortID(ref.ID), FirstSeen: now}
		f.ctrs[ref.ID] = c
	}
	if !c.named {
		c.lookup(f.opt.Containers)
	}
	c.snap.NetnsInode = uint64(s.Netns)
	c.lastSeen = now
	if !s.Dead {
		c.sockets++
	}
	if delta != (snapshot.Traffic{}) {
		c.procs[k] = true
	}
	if c.pid == 0 && p.info && !p.snap.Exited {
		c.pid = p.snap.PID
	}
	c.delta = c.delta.Add(delta)
	c.snap.Total = c.snap.Total.Add(delta)
	if ra := s.Remote.Addr(); ra.IsValid() && !ra.IsUnspecified() && delta != (snapshot.Traffic{}) {
		c.addRemote(ra, delta)
	}
	switch f.classify(s) {
	case peerExternal:
		c.snap.External = c.snap.External.Add(delta)
	case peerContainer:
		c.snap.Local = c.snap.Local.Add(delta)
	case peerHost:
		c.snap.Host = c.snap.Host.Add(delta)
	case peerInternal:
		c.snap.Internal = c.snap.Internal.Add(delta)
	default:
		c.snap.Unclassified = c.snap.Unclassified.Add(delta)
	}
	if s.Protocol != 6 {
		return
	}
	if isNew && s.Role == engine.RoleClient {
		c.snap.Opened++
	}
	if s.Role == engine.RoleServer {
		port := c.ports[s.Local.Port()]
		if port == nil {
			if len(c.ports) >= 1024 {
				return
			}
			port = &snapshot.Port{Proto: "tcp", Port: s.Local.Port()}
			c.ports[s.Local.Port()] = port
		}
		if isNew {
			port.Accepted++
			c.snap.Accepted++
		}
		port.Total = port.Total.Add(delta)
		for i, n := range http {
			if n == 0 {
				continue
			}
			if port.HTTPRequests == nil {
				port.HTTPRequests = map[string]uint64{}
			}
			port.HTTPRequests[engine.HTTPMethods[i]] += uint64(n)
			c.snap.Requests += uint64(n)
		}
	}
}

func (c *ctrEntry) addRemote(a netip.Addr, d snapshot.Traffic) {
	r := c.remotes[a]
	if r == nil {
		if len(c.remotes) >= keepRemotes {
			var quiet netip.Addr
			var least uint64
			first := true
			for k, v := range c.remotes {
				if b := v.TxBytes + v.RxBytes; first || b < least {
					quiet, least, first = k, b, false
				}
			}
			delete(c.remotes, quiet)
		}
		r = &snapshot.Traffic{}
		c.remotes[a] = r
	}
	*r = r.Add(d)
}

func (c *ctrEntry) topRemotes() []snapshot.Remote {
	out := make([]snapshot.Remote, 0, len(c.remotes))
	for a, t := range c.remotes {
		out = append(out, snapshot.Remote{Addr: a.String(), Total: *t})
	}
	slices.SortFunc(out, func(a, b snapshot.Remote) int {
		return cmp.Or(cmp.Compare(b.Total.TxBytes+b.Total.RxBytes, a.Total.TxBytes+a.Total.RxBytes), cmp.Compare(a.Addr, b.Addr))
	})
	return out[:min(len(out), maxRemotes)]
}

// lookup names the container from its runtime; it stays unnamed (and is
// looked up again later) while no runtime has answered.
func (c *ctrEntry) lookup(r ContainerResolver) {
	if r == nil {
		return
	}
	info, ok := r.Lookup(c.ref)
	if !ok {
		return
	}
	c.named = true
	c.snap.Runtime, c.snap.Name, c.snap.Image, c.snap.Account = cmp.Or(info.Runtime, c.ref.Runtime), info.Name, info.Image, info.Account
	c.snap.Labels, c.snap.PodName, c.snap.PodNamespace, c.snap.HostNetwork = info.Labels, info.PodName, info.PodNamespace, info.HostNetwork
	if info.PID > 0 {
		c.pid = info.PID // the init process lives as long as the container
	}
	if info.ComposeService != "" {
		c.snap.ComposeService = info.ComposeProject + "/" + info.ComposeService
	}
}

// Containers returns the containers as of the last Observe.
func (f *Flows) Containers() []snapshot.Container { return f.containers }

func (f *Flows) containerList(now time.Time) []snapshot.Container {
	out := make([]snapshot.Container, 0, len(f.ctrs))
	retried := false
	for id, c := range f.ctrs {
		// A container whose runtime lookup failed (a slow runtime) and that
		// has gone quiet is named later: one retry per reading, so a runtime
		// that does not answer cannot stall the loop.
		if !c.named && !retried {
			retried = true
			c.lookup(f.opt.Containers)
		}
		c.tx.Add(now, c.delta.TxBytes)
		c.rx.Add(now, c.delta.RxBytes)
		cur := [3]uint64{c.snap.Accepted, c.snap.Opened, c.snap.Requests}
		c.acc.Add(now, cur[0]-c.last[0])
		c.opn.Add(now, cur[1]-c.last[1])
		c.req.Add(now, cur[2]-c.last[2])
		c.last = cur
		s := c.snap
		s.Delta, s.Sockets, s.Processes = c.delta, c.sockets, len(c.procs)
		s.TxRate, s.RxRate = c.tx.Stats(now), c.rx.Stats(now)
		s.AcceptedRate, s.OpenedRate, s.RequestRate = c.acc.Stats(now), c.opn.Stats(now), c.req.Stats(now)
		if !s.HostNetwork && c.pid > 0 && f.opt.HostNetns != s.NetnsInode {
			if s.Netns = netnsCounters(f.opt.ProcRoot, c.pid, s.NetnsInode); s.Netns == nil {
				c.pid = 0 // gone: take the next live process
			}
		}
		for _, p := range c.ports {
			pc := *p
			pc.HTTPRequests = maps.Clone(p.HTTPRequests) // the snapshot is immutable
			s.Ports = append(s.Ports, pc)
		}
		slices.SortFunc(s.Ports, func(a, b snapshot.Port) int { return cmp.Compare(a.Port, b.Port) })
		if !s.HostNetwork && s.NetnsInode != 0 && s.NetnsInode != f.opt.HostNetns {
			for a, ns := range f.addrNetns {
				if ns == s.NetnsInode {
					s.Addresses = append(s.Addresses, a.String())
				}
			}
			slices.Sort(s.Addresses)
		}
		s.Remotes = c.topRemotes()
		out = append(out, s)
		c.delta, c.sockets = snapshot.Traffic{}, 0
		clear(c.procs)
		if now.Sub(c.lastSeen) > f.opt.ExitedTTL {
			delete(f.ctrs, id)
		}
	}
	slices.SortFunc(out, func(a, b snapshot.Container) int {
		if c := cmp.Compare(b.Total.TxBytes+b.Total.RxBytes, a.Total.TxBytes+a.Total.RxBytes); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return out
}

// netnsCounters sums the non-loopback interfaces of the namespace pid lives
// in, if it is still the container's namespace.
func netnsCounters(procRoot string, pid int, netns uint64) *snapshot.NetnsCounters {
	if procRoot == "" {
		return nil
	}
	dir := fmt.Sprintf("%s/%d", procRoot, pid)
	if ino, err := nsutil.Inode(dir + "/ns/net"); err != nil || ino != netns {
		return nil // gone, or not in that namespace any more
	}
	b, err := os.ReadFile(dir + "/net/dev")
	if err != nil {
		return nil
	}
	links, err := iface.ParseProcNetDev(bytes.NewReader(b))
	if err != nil {
		return nil
	}
	var n snapshot.NetnsCounters
	for _, l := range links {
		if l.Name == "lo" {
			continue
		}
		k := l.Counters
		n.RxBytes += k.RxBytes
		n.TxBytes += k.TxBytes
		n.RxPackets += k.RxPackets
		n.TxPackets += k.TxPackets
		n.RxDropped += k.RxDropped
		n.TxDropped += k.TxDropped
	}
	return &n
}
