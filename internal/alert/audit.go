package alert

import (
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"github.com/netmeter/netmeter/internal/snapshot"
)

// audit is the logic of new_listener and new_remote: it learns, per program
// (comm), the items it has seen (listening ports, remote subnets) and fires
// once for an item it had not seen before, after a warm-up during which it
// only learns. An audit alert reports an event, so it resolves by itself
// after `hold`; the item stays learned and never fires again while netmeter
// runs (the learned sets are not persisted: a restart learns anew).
//
// Memory is bounded: at most max_programs programs and max_per_program
// items each. Past a bound nothing more is learned or reported one by one:
// one overflow alert per program (overflow="max_per_program"), or one for
// the rule (overflow="max_programs"), stands for everything refused until
// nothing more was refused for `hold`. A port scan or a bind flood
// therefore costs at most the bounds, and fires at most bound+1 alerts.
type audit struct {
	c       *compiled
	kind    auditKind
	start   time.Time
	progs   map[string]*auditProg
	fired   map[progItem]firedItem
	learned int
	refused uint64
	over    overflow // programs refused
}

// itemKey is a learned item: a protocol and port (listener) or a subnet
// (remote). A comparable struct, so that looking one up allocates nothing
// even when a scan brings 100k of them per interval.
type itemKey struct {
	proto  string
	port   uint16
	subnet netip.Prefix
}

type progItem struct {
	prog string
	item itemKey
}

type auditProg struct {
	seen map[itemKey]struct{}
	over overflow
}

type firedItem struct {
	at   time.Time
	inst instance
}

// overflow is an episode of refusals: since the first, until hold after
// the last.
type overflow struct{ since, last time.Time }

func (o *overflow) refuse(now time.Time) {
	if o.since.IsZero() {
		o.since = now
	}
	o.last = now
}

func (o *overflow) expire(now time.Time, hold time.Duration) {
	if !o.since.IsZero() && now.Sub(o.last) >= hold {
		*o = overflow{}
	}
}

// auditKind is what differs between the two audit rules.
type auditKind struct {
	noun string // "listening ports", "remote subnets"
	// items calls yield for each (program, item) of the snapshot.
	items func(c *compiled, s *snapshot.Snapshot, yield func(prog string, k itemKey, conn *snapshot.Connection))
	// render describes a new item.
	render func(c *compiled, prog string, k itemKey, conn *snapshot.Connection, start time.Time) instance
}

func newAudit(c *compiled, k auditKind) *audit {
	return &audit{c: c, kind: k, progs: map[string]*auditProg{}, fired: map[progItem]firedItem{}}
}

func (a *audit) stats() (int, uint64) { return a.learned, a.refused }

func (a *audit) check(in *input) []instance {
	now := in.now
	if in.snap != nil {
		if a.start.IsZero() {
			a.start = now
		}
		warm := now.Sub(a.start) >= a.c.Warmup
		a.kind.items(a.c, in.snap, func(prog string, k itemKey, conn *snapshot.Connection) {
			if !a.c.matches(prog) {
				return
			}
			p := a.progs[prog]
			if p == nil {
				if len(a.progs) >= a.c.MaxPrograms {
					a.refused++
					if warm {
						a.over.refuse(now)
					}
					return
				}
				p = &auditProg{seen: map[itemKey]struct{}{}}
				a.progs[prog] = p
			}
			if _, ok := p.seen[k]; ok {
				return
			}
			if len(p.seen) >= a.c.MaxPerProgram {
				a.refused++
				if warm {
					p.over.refuse(now)
				}
				return
			}
			p.seen[k] = struct{}{}
			a.learned++
			if warm {
				a.fired[progItem{prog, k}] = firedItem{at: now, inst: a.kind.render(a.c, prog, k, conn, a.start)}
			}
		})
	}
	var out []instance
	for k, f := range a.fired {
		if now.Sub(f.at) >= a.c.Hold {
			delete(a.fired, k)
			continue
		}
		out = append(out, f.inst)
	}
	for prog, p := range a.progs {
		p.over.expire(now, a.c.Hold)
		if p.over.since.IsZero() {
			continue
		}
		out = append(out, instance{
			labels:   map[string]string{"program": prog, "overflow": "max_per_program"},
			startsAt: p.over.since,
			summary:  fmt.Sprintf("program %s: more than %d distinct %s", prog, a.c.MaxPerProgram, a.kind.noun),
			description: fmt.Sprintf("program %s used more than max_per_program (%d) distinct %s; the ones past the bound are "+
				"neither learned nor reported one by one (a scan or a bind flood?). %d items refused by this rule so far.",
				prog, a.c.MaxPerProgram, a.kind.noun, a.refused),
		})
	}
	a.over.expire(now, a.c.Hold)
	if !a.over.since.IsZero() {
		out = append(out, instance{
			labels:   map[string]string{"overflow": "max_programs"},
			startsAt: a.over.since,
			summary:  fmt.Sprintf("more than %d programs with %s", a.c.MaxPrograms, a.kind.noun),
			description: fmt.Sprintf("more than max_programs (%d) programs used %s; new programs are neither learned nor "+
				"reported. %d items refused by this rule so far.", a.c.MaxPrograms, a.kind.noun, a.refused),
		})
	}
	return out
}

// listenerItems: TCP sockets in state listen, by port. (UDP has no listen
// state: a bound, unconnected UDP socket of a server looks like a client's
// socket that sends with sendto, so UDP is not audited.)
var listenerItems = auditKind{
	noun: "listening ports",
	items: func(_ *compiled, s *snapshot.Snapshot, yield func(string, itemKey, *snapshot.Connection)) {
		for i := range s.Connections {
			c := &s.Connections[i]
			if c.Proto == "tcp" && c.State == "listen" && c.Owner.Comm != "" && c.Local.Port != 0 {
				yield(c.Owner.Comm, itemKey{proto: "tcp", port: c.Local.Port}, c)
			}
		}
	},
	render: func(c *compiled, prog string, k itemKey, conn *snapshot.Connection, start time.Time) instance {
		addr := conn.Local.Addr
		if addr == "" {
			addr = "*"
		}
		port := strconv.Itoa(int(k.port))
		return instance{
			labels:  map[string]string{"program": prog, "proto": k.proto, "port": port},
			summary: fmt.Sprintf("program %s listens on new port %s/%s", prog, k.proto, port),
			description: fmt.Sprintf("%s (pid %d) listens on %s %s, a port it had not listened on since netmeter started watching "+
				"at %s (learning for the first %s).", prog, conn.Owner.PID, k.proto, joinHostPort(addr, port),
				start.UTC().Format(time.RFC3339), c.Warmup),
		}
	},
}

// remoteItems: connections of programs to remote addresses, by /24 or /64
// (prefix4, prefix6). Loopback, link-local, multicast and unspecified
// addresses, connections between two local sockets, listeners and the
// ignore list are left out. Countries are not audited: that needs a GeoIP
// database, which netmeter does not ship.
var remoteItems = auditKind{
	noun: "remote subnets",
	items: func(cfg *compiled, s *snapshot.Snapshot, yield func(string, itemKey, *snapshot.Connection)) {
		for i := range s.Connections {
			c := &s.Connections[i]
			if c.Owner.Comm == "" || c.Remote.Addr == "" || c.State == "listen" || c.Peer != nil {
				continue
			}
			a, err := netip.ParseAddr(c.Remote.Addr)
			if err != nil {
				continue
			}
			a = a.Unmap().WithZone("")
			if a.IsLoopback() || a.IsUnspecified() || a.IsLinkLocalUnicast() || a.IsMulticast() || a.IsLinkLocalMulticast() {
				continue
			}
			bits := cfg.Prefix6
			if a.Is4() {
				bits = cfg.Prefix4
			}
			ignored := false
			for _, p := range cfg.ignore {
				if p.Contains(a) {
					ignored = true
					break
				}
			}
			if ignored {
				continue
			}
			p, _ := a.Prefix(bits)
			yield(c.Owner.Comm, itemKey{subnet: p}, c)
		}
	},
	render: func(c *compiled, prog string, k itemKey, conn *snapshot.Connection, start time.Time) instance {
		sub := k.subnet.String()
		return instance{
			labels:  map[string]string{"program": prog, "subnet": sub},
			summary: fmt.Sprintf("program %s talks to new subnet %s", prog, sub),
			description: fmt.Sprintf("%s (pid %d) has a %s connection to %s, in subnet %s, which it had not talked to since "+
				"netmeter started watching at %s (learning for the first %s). Countries are not checked: that needs a GeoIP "+
				"database, which netmeter does not have.", prog, conn.Owner.PID, conn.Proto,
				joinHostPort(conn.Remote.Addr, strconv.Itoa(int(conn.Remote.Port))), sub, start.UTC().Format(time.RFC3339), c.Warmup),
		}
	},
}

func joinHostPort(host, port string) string {
	if a, err := netip.ParseAddr(host); err == nil && a.Is6() && !a.Is4In6() {
		return "[" + host + "]:" + port
	}
	return host + ":" + port
}
