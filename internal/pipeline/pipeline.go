// Package pipeline wires sources to aggregation: it opens the interface
// reader of a namespace and, when allowed, the eBPF engine (or, where it
// cannot load, the classic capture engine) with /proc attribution, and returns the polling loop that turns them into Snapshots.
// The CLI and the SDK both build their collection this way.
package pipeline

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/netmeter/netmeter/internal/aggregate"
	"github.com/netmeter/netmeter/internal/attribution/container"
	"github.com/netmeter/netmeter/internal/attribution/procfs"
	"github.com/netmeter/netmeter/internal/nsutil"
	"github.com/netmeter/netmeter/internal/snapshot"
	"github.com/netmeter/netmeter/internal/source/classic"
	"github.com/netmeter/netmeter/internal/source/engine"
	"github.com/netmeter/netmeter/internal/source/iface"
	"github.com/netmeter/netmeter/internal/source/nftcount"
	"github.com/netmeter/netmeter/internal/source/tcphealth"
)

// Config selects the sources.
type Config struct {
	Interval time.Duration
	// NetnsPath is the namespace whose interfaces are read ("" = own).
	NetnsPath string
	// NetnsName labels the interfaces of that namespace.
	NetnsName string
	// Source is "auto", "netlink" or "procfs".
	Source string
	// Engine selects what measures processes and connections: "ebpf" (or
	// its older name "on": the eBPF engine, fail without it), "classic"
	// (packet capture joined to /proc, approximate; only the namespace at
	// NetnsPath), "auto" (eBPF if it loads, else classic, logging why) or
	// "off" (interfaces only).
	Engine         string
	MaxLinkRate    float64
	MaxConnections int
	MaxProcesses   int
	// PinPath pins the engine on a BPF filesystem so it keeps counting
	// between agent runs ("" = no pinning: the engine goes with the agent).
	PinPath string
	// StateFile, when set, keeps the billing ledger and the per-socket
	// state there, saved every SaveEvery (default 10 s) and at exit.
	StateFile  string
	SaveEvery  time.Duration
	BillingDay int
	// DockerSockets and CRIEndpoints override where container runtimes are
	// looked for (default: their standard sockets).
	DockerSockets []string
	CRIEndpoints  []string
	// NftCounters keeps nftables named counters of every container's
	// addresses in table NftTable (default "netmeter") of the namespace at
	// NetnsPath — only when a user asks for firewall-level counters. The
	// table is removed at Close; one left by a crashed run is replaced.
	NftCounters bool
	NftTable    string
	// NoTCPHealth leaves the health hooks (RTT, retransmissions, timeouts,
	// drop reasons) unloaded; NoRTTSamples loads them without the RTT
	// callback (smoothed RTT is still read from the kernel).
	NoTCPHealth  bool
	NoRTTSamples bool
	Log          *slog.Logger
}

// Pipeline is an opened set of sources and the loop over them.
type Pipeline struct {
	Loop *aggregate.Loop
	// EngineErr says why the eBPF engine is not running under Engine
	// "auto" (the classic engine then runs, unless it failed too: see
	// EngineKind).
	EngineErr error
	// EngineKind is the engine that runs: "ebpf", "classic" or "" (none).
	EngineKind string
	// HealthErr says why the TCP health hooks are not running.
	HealthErr error
	// Ledger is the billing ledger when Config.StateFile is set.
	Ledger  *aggregate.Ledger
	closers []func() error
}

// Close releases every source.
func (p *Pipeline) Close() error {
	var first error
	for i := len(p.closers) - 1; i >= 0; i-- {
		if err := p.closers[i](); err != nil && first == nil {
			first = err
		}
	}
	p.closers = nil
	return first
}

// registryResolver bounds each runtime lookup, so a slow runtime socket
// cannot stall the collection loop, and maps network namespaces to
// containers.
type registryResolver struct {
	r       *container.Registry
	mu      *sync.Mutex
	netns   map[uint64]netnsSeen
	missed  map[uint64]bool // namespaces looked up in vain since the last scan
	scanned *time.Time
}

// netnsSeen is a namespace's container and when it was last seen alive.
// A container's last bytes often reach userspace after it is gone, so the
// mapping outlives it for ghostTTL — unless a new container takes the
// namespace inode (the kernel reuses them), which always wins.
type netnsSeen struct {
	ref  container.Ref
	seen time.Time
}

const ghostTTL = 30 * time.Second

func newRegistryResolver(r *container.Registry) registryResolver {
	return registryResolver{r: r, mu: &sync.Mutex{}, netns: map[uint64]netnsSeen{}, missed: map[uint64]bool{}, scanned: new(time.Time)}
}

// Lookup reports false while no runtime has answered for ref (a lookup that
// timed out under load), so the container is looked up again later instead
// of keeping its short id as its name.
func (rr registryResolver) Lookup(ref container.Ref) (container.Info, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	in, ok := rr.r.Lookup(ctx, ref)
	return in, ok && !in.Unanswered
}

// Refresh rescans which container lives in which namespace, at most every
// 250 ms; Flows calls it once per reading, so containers that live less
// than an interval are still seen alive. A lookup of an unknown namespace
// also rescans, once per namespace until the next scan.
func (rr registryResolver) Refresh() {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	if now := time.Now(); now.Sub(*rr.scanned) >= 250*time.Millisecond {
		rr.scan(now)
	}
}

func (rr registryResolver) scan(now time.Time) {
	*rr.scanned = now
	clear(rr.missed)
	for _, info := range rr.r.Containers() {
		if !info.Running || info.PID <= 0 || info.HostNetwork {
			continue
		}
		if ino, err := nsutil.Inode(fmt.Sprintf("/proc/%d/ns/net", info.PID)); err == nil {
			rr.netns[ino] = netnsSeen{container.Ref{Runtime: info.Runtime, ID: info.ID}, now}
		}
	}
	// Hand-made containers, runtimes without a socket: any process in a
	// namespace whose cgroup path names a container.
	host, _ := nsutil.Inode("")
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid := e.Name()
		if pid[0] < '0' || pid[0] > '9' {
			continue
		}
		ino, err := nsutil.Inode("/proc/" + pid + "/ns/net")
		if err != nil || ino == host {
			continue
		}
		if s, ok := rr.netns[ino]; ok && s.seen.Equal(now) {
			continue
		}
		if b, err := os.ReadFile("/proc/" + pid + "/cgroup"); err == nil {
			if r := container.FromCgroupFile(b); !r.IsZero() {
				rr.netns[ino] = netnsSeen{r, now}
			}
		}
	}
	for ino, s := range rr.netns {
		if now.Sub(s.seen) > ghostTTL {
			delete(rr.netns, ino)
		}
	}
}

// LookupNetns maps a network namespace to the container that lives (or
// lately lived) in it.
func (rr registryResolver) LookupNetns(inode uint64) (container.Ref, bool) {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	s, ok := rr.netns[inode]
	if ok && s.seen.Equal(*rr.scanned) {
		return s.ref, true // alive at the last scan
	}
	if rr.missed[inode] {
		return s.ref, ok // already rescanned for it: a ghost, or nothing
	}
	// Unknown, or a ghost whose inode a new container may have taken since
	// the last scan: look again.
	rr.scan(time.Now())
	s, ok = rr.netns[inode]
	if !ok || !s.seen.Equal(*rr.scanned) {
		rr.missed[inode] = true
	}
	return s.ref, ok
}

// Open opens the sources cfg names.
func Open(cfg Config) (*Pipeline, error) {
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	inode, err := nsutil.Inode(cfg.NetnsPath)
	if err != nil {
		return nil, fmt.Errorf("netns %s: %w (list namespaces with 'ip netns list')", cfg.NetnsPath, err)
	}
	var src iface.Source
	switch cfg.Source {
	case "procfs":
		src = iface.NewProcFS(cfg.NetnsPath)
	case "netlink":
		nl, err := iface.OpenNetlink(cfg.NetnsPath)
		if err != nil {
			return nil, err
		}
		src = nl
	default:
		var degraded error
		src, degraded, err = iface.Open(cfg.NetnsPath)
		if err != nil {
			return nil, err
		}
		if degraded != nil {
			log.Warn("interface attributes unavailable", "component", "iface", "reason", degraded)
		}
	}
	p := &Pipeline{closers: []func() error{src.Close}}
	p.Loop = &aggregate.Loop{
		Source:   src,
		Interval: cfg.Interval,
		Tracker: aggregate.NewInterfaces(aggregate.Options{
			Netns: cfg.NetnsName, NetnsInode: inode, MaxBytesPerSecond: cfg.MaxLinkRate,
		}),
		Log: log.With("component", "iface"),
	}
	if cfg.Engine == "on" {
		cfg.Engine = "ebpf" // the older name
	}
	if cfg.Engine == "off" {
		return p, nil
	}
	fs := procfs.NewFS(procfs.DefaultRoot)
	res, err := procfs.NewResolver(fs)
	if err != nil {
		p.Close()
		return nil, err
	}
	var eng *engine.Engine
	if cfg.Engine != "classic" {
		// Read /proc the moment a process stamps a socket: short-lived
		// processes (a `docker exec`, a cron job) are gone by the next reading.
		onOwner := func(o engine.Owner) { res.Lookup(int(o.TGID), procfs.StartTicksFromBoottime(o.StartBoottime)) }
		eng, err = engine.Open(engine.Options{PinPath: cfg.PinPath, OnOwner: onOwner})
		if err != nil {
			if cfg.Engine == "ebpf" {
				p.Close()
				return nil, err
			}
			p.EngineErr = err
			log.Warn("eBPF engine unavailable: falling back to the classic engine (packet capture and /proc, approximate)",
				"component", "engine", "reason", err)
			eng = nil
		}
	}
	if eng != nil {
		p.closers = append(p.closers, eng.Close)
		p.Loop.Engine = eng
		p.EngineKind = "ebpf"
	} else {
		ce, err := classic.Open(classic.Options{NetnsPath: cfg.NetnsPath, Lookup: func(pid int) (procfs.Info, bool) {
			return res.Lookup(pid, 0)
		}})
		if err != nil {
			if cfg.Engine == "classic" {
				p.Close()
				return nil, err
			}
			p.EngineErr = errors.Join(p.EngineErr, err)
			log.Warn("classic engine unavailable too: interfaces only", "component", "engine", "reason", err)
			return p, nil
		}
		p.closers = append(p.closers, ce.Close)
		p.Loop.Engine = ce
		p.EngineKind = classic.Kind
	}
	if !cfg.NoTCPHealth && eng != nil {
		hs, err := tcphealth.Open(tcphealth.Options{NoRTTSamples: cfg.NoRTTSamples})
		if err != nil {
			// Traffic numbers do not depend on it: go on without.
			p.HealthErr = err
			log.Warn("tcp health hooks unavailable: no RTT, retransmissions or drop reasons", "component", "health", "reason", err)
		} else {
			p.closers = append(p.closers, hs.Close)
			p.Loop.Health = hs
		}
	}
	hostNetns, _ := nsutil.Inode("")
	ropts := []container.Option{container.WithErrorHandler(func(err error) {
		log.Debug("container runtime", "component", "containers", "err", err)
	})}
	if cfg.DockerSockets != nil {
		ropts = append(ropts, container.WithDockerSockets(cfg.DockerSockets...))
	}
	if cfg.CRIEndpoints != nil {
		ropts = append(ropts, container.WithCRIEndpoints(cfg.CRIEndpoints...))
	}
	reg, err := container.NewRegistry(ropts...)
	if err != nil {
		p.Close()
		return nil, err
	}
	p.closers = append(p.closers, reg.Close)
	p.Loop.Flows = aggregate.NewFlows(aggregate.FlowOptions{
		Resolver: res, SocketInodes: fs.SocketInodes, HostNetns: hostNetns, Containers: newRegistryResolver(reg), ProcRoot: procfs.DefaultRoot,
		MaxConnections: cfg.MaxConnections, MaxProcesses: cfg.MaxProcesses, UnownedBucket: unownedBucket(p.EngineKind),
	})
	if cfg.NftCounters {
		if err := p.openFirewall(cfg, log); err != nil {
			p.Close()
			return nil, err
		}
	}
	if cfg.StateFile != "" {
		day := cfg.BillingDay
		if day == 0 {
			day = 1
		}
		l, err := aggregate.NewLedger(day, time.Local)
		if err != nil {
			p.Close()
			return nil, err
		}
		// Per-socket state only continues a pinned engine that went on
		// counting; otherwise the counters restarted and only totals carry.
		var flows *aggregate.Flows
		if eng != nil && eng.Reopened() {
			flows = p.Loop.Flows
		}
		if _, err := aggregate.LoadCheckpoint(cfg.StateFile, time.Now(), l, flows); err != nil {
			log.Warn("state file unreadable; starting a new ledger (the old file is kept)", "component", "ledger", "err", err)
			if !errors.Is(err, aggregate.ErrCorrupt) {
				p.Close()
				return nil, err
			}
		}
		p.Loop.Ledger, p.Loop.Checkpoint = l, cfg.StateFile
		p.Loop.SaveEvery = cmp.Or(cfg.SaveEvery, 10*time.Second)
		p.Ledger = l
	}
	return p, nil
}

// unownedBucket names the bytes no process owns: the eBPF engine knows they
// are the kernel's; the classic engine only that it found no owner.
func unownedBucket(kind string) string {
	if kind == classic.Kind {
		return "unattributed"
	}
	return "kernel"
}

// openFirewall adds nftables counters of the containers' addresses to every
// snapshot.
func (p *Pipeline) openFirewall(cfg Config, log *slog.Logger) error {
	nc, err := nftcount.Open(cfg.NetnsPath, cfg.NftTable)
	if errors.Is(err, nftcount.ErrTableExists) {
		// Left by a netmeter that did not exit cleanly.
		if cerr := nftcount.Cleanup(cfg.NetnsPath, cfg.NftTable); cerr != nil {
			return fmt.Errorf("replace stale nftables table: %w", cerr)
		}
		nc, err = nftcount.Open(cfg.NetnsPath, cfg.NftTable)
	}
	if err != nil {
		return fmt.Errorf("nftables counters: %w", err)
	}
	p.closers = append(p.closers, nc.Close)
	var lastSet string
	p.Loop.Enrich = func(s *snapshot.Snapshot) {
		var rules []nftcount.Rule
		owner := map[string]int{} // counter name → container index
		for i, c := range s.Containers {
			for j, a := range c.Addresses {
				addr, err := netip.ParseAddr(a)
				if err != nil || len(c.ID) < 12 {
					continue
				}
				name := fmt.Sprintf("c%s_%d", c.ID[:12], j)
				rules = append(rules, nftcount.Rule{Name: name, Addr: addr})
				owner[name] = i
			}
		}
		if key := fmt.Sprint(rules); key != lastSet {
			if err := nc.Set(rules); err != nil {
				log.Warn("nftables counters not updated", "component", "firewall", "err", err)
				return
			}
			lastSet = key
		}
		counts, err := nc.Read()
		if err != nil {
			log.Warn("nftables counters unreadable", "component", "firewall", "err", err)
			return
		}
		for name, n := range counts {
			i, ok := owner[name]
			if !ok {
				continue
			}
			c := &s.Containers[i]
			f := c.Firewall
			if f == nil {
				f = &snapshot.FirewallCounters{}
				c.Firewall = f
			}
			f.InBytes += n.InBytes
			f.InPackets += n.InPackets
			f.OutBytes += n.OutBytes
			f.OutPackets += n.OutPackets
		}
	}
	return nil
}
