package tui

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"
)

// Resolver looks up the names of an address, like
// net.DefaultResolver.LookupAddr (the default). It is called from a
// command, never from Update, and must honour ctx.
type Resolver func(ctx context.Context, addr string) ([]string, error)

// Defaults and bounds of the asynchronous name resolution.
const (
	DefaultDNSWorkers   = 4
	MaxDNSWorkers       = 32
	DefaultDNSCacheSize = 1024
	MaxDNSCacheSize     = 1 << 16
	DefaultDNSTTL       = 5 * time.Minute
	// dnsTimeout bounds one lookup; a failed or timed-out lookup is cached
	// for at most failTTL, then retried.
	dnsTimeout = 5 * time.Second
	failTTL    = time.Minute
	// inflightPerWorker bounds the lookups waiting for a worker.
	inflightPerWorker = 16
)

// dnsMsg is one finished lookup.
type dnsMsg struct {
	addr string
	name string // "" when the lookup failed or found nothing
}

// dnsEntry is a cached answer. The model's clock is the latest snapshot's
// time, so Update never reads the wall clock.
type dnsEntry struct {
	name    string
	expires time.Time
}

// dnsState is the model's part of name resolution. Its maps are replaced,
// never written in place, so earlier Models stay unchanged; sem is the
// shared worker pool (an I/O resource, not state).
type dnsState struct {
	on       bool
	resolve  Resolver
	sem      chan struct{}
	cache    map[string]dnsEntry
	inflight map[string]struct{}
	cacheCap int
	ttl      time.Duration
}

func newDNS(o Options) dnsState {
	r := o.Resolver
	if r == nil {
		r = net.DefaultResolver.LookupAddr
	}
	return dnsState{
		on:       o.DNS,
		resolve:  r,
		sem:      make(chan struct{}, o.DNSWorkers),
		cacheCap: o.DNSCacheSize,
		ttl:      o.DNSTTL,
	}
}

// hostName returns the cached name of addr, if DNS is on and it resolved.
func (m Model) hostName(addr string) (string, bool) {
	if !m.dns.on || addr == "" {
		return "", false
	}
	e, ok := m.dns.cache[addr]
	if !ok || e.name == "" {
		return "", false
	}
	return e.name, true
}

// resolvable reports whether a remote address is worth a reverse lookup.
func resolvable(addr string) bool {
	a, err := netip.ParseAddr(addr)
	return err == nil && !a.IsUnspecified()
}

// lookups starts commands for the remote addresses of the connection rows
// (top rows first) that are neither cached (and fresh) nor being looked
// up, as many as the in-flight bound allows. It returns nil when DNS is
// off or nothing is missing.
func (m Model) lookups() (Model, tea.Cmd) {
	if !m.dns.on {
		return m, nil
	}
	room := cap(m.dns.sem)*inflightPerWorker - len(m.dns.inflight)
	now := m.snap.Time
	var addrs []string
	seen := map[string]bool{}
	for i := range m.connRows {
		if len(addrs) >= room {
			break
		}
		a := m.connRows[i].conn.Remote.Addr
		if seen[a] || !resolvable(a) {
			continue
		}
		seen[a] = true
		if _, busy := m.dns.inflight[a]; busy {
			continue
		}
		if e, ok := m.dns.cache[a]; ok && now.Before(e.expires) {
			continue
		}
		addrs = append(addrs, a)
	}
	if len(addrs) == 0 {
		return m, nil
	}
	inflight := make(map[string]struct{}, len(m.dns.inflight)+len(addrs))
	for a := range m.dns.inflight {
		inflight[a] = struct{}{}
	}
	cmds := make([]tea.Cmd, 0, len(addrs))
	for _, a := range addrs {
		inflight[a] = struct{}{}
		cmds = append(cmds, lookupCmd(m.dns.resolve, m.dns.sem, a))
	}
	m.dns.inflight = inflight
	return m, tea.Batch(cmds...)
}

// lookupCmd resolves one address once one of the pool's workers is free.
func lookupCmd(resolve Resolver, sem chan struct{}, addr string) tea.Cmd {
	return func() tea.Msg {
		sem <- struct{}{}
		defer func() { <-sem }()
		ctx, cancel := context.WithTimeout(context.Background(), dnsTimeout)
		defer cancel()
		names, err := resolve(ctx, addr)
		if err != nil || len(names) == 0 {
			return dnsMsg{addr: addr}
		}
		return dnsMsg{addr: addr, name: strings.TrimSuffix(names[0], ".")}
	}
}

// answer stores a finished lookup: a new cache map, evicting expired
// entries and then the ones expiring first when it is full.
func (d dnsState) answer(msg dnsMsg, now time.Time) dnsState {
	inflight := make(map[string]struct{}, len(d.inflight))
	for a := range d.inflight {
		if a != msg.addr {
			inflight[a] = struct{}{}
		}
	}
	d.inflight = inflight

	ttl := d.ttl
	if msg.name == "" {
		ttl = min(ttl, failTTL)
	}
	cache := make(map[string]dnsEntry, min(len(d.cache)+1, d.cacheCap))
	for a, e := range d.cache {
		if now.Before(e.expires) {
			cache[a] = e
		}
	}
	for len(cache) >= d.cacheCap {
		var oldest string
		var first time.Time
		for a, e := range cache {
			if oldest == "" || e.expires.Before(first) || (e.expires.Equal(first) && a < oldest) {
				oldest, first = a, e.expires
			}
		}
		delete(cache, oldest)
	}
	cache[msg.addr] = dnsEntry{name: msg.name, expires: now.Add(ttl)}
	d.cache = cache
	return d
}
