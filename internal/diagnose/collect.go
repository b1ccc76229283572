package diagnose

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	promfs "github.com/prometheus/procfs"

	"github.com/netmeter/netmeter/internal/attribution/procfs"
	"github.com/netmeter/netmeter/internal/nsutil"
	"github.com/netmeter/netmeter/internal/snapshot"
	"github.com/netmeter/netmeter/internal/source/tcphealth"
)

// DefaultWindow is the sampling window when Options.Window is 0.
const DefaultWindow = 2 * time.Second

// Options configure a Collector.
type Options struct {
	// NetnsPath is the namespace to diagnose (/run/netns/NAME or
	// /proc/PID/ns/net; "" = the caller's); NetnsName is shown in reports.
	NetnsPath, NetnsName string
	// Interface limits the link, qdisc and drop checks to one interface
	// ("" = all).
	Interface string
	// Window is how long the collector waits between its two readings.
	Window time.Duration
	// NoDropTracing skips the kernel drop tracing (skb:kfree_skb).
	NoDropTracing bool
	// ProcRoot is where procfs is mounted, to find socket owners ("" =
	// /proc).
	ProcRoot string
}

// Collector takes readings of every layer. It keeps the drop tracer loaded
// between Collect calls.
type Collector struct {
	opt      Options
	nsIno    uint64
	tracer   *tcphealth.Source
	traceErr error
}

// NewCollector checks that the namespace can be read and loads the drop
// tracer; if the tracer cannot load, the collector still works and its
// evidence says why drops are not traced.
func NewCollector(opt Options) (*Collector, error) {
	if opt.Window <= 0 {
		opt.Window = DefaultWindow
	}
	ino, err := nsutil.Inode(opt.NetnsPath)
	if err != nil {
		return nil, fmt.Errorf("diagnose: %w", err)
	}
	c := &Collector{opt: opt, nsIno: ino}
	if opt.NoDropTracing {
		c.traceErr = errors.New("turned off (--no-drop-tracing)")
	} else if tr, err := tcphealth.Open(tcphealth.Options{DropEntries: 4096, NoRTTSamples: true}); err != nil {
		c.traceErr = err
	} else {
		c.tracer = tr
	}
	return c, nil
}

// Close unloads the drop tracer.
func (c *Collector) Close() error {
	if c.tracer != nil {
		return c.tracer.Close()
	}
	return nil
}

// Collect reads every layer, waits one window (or until ctx ends, which
// returns ctx's error) and reads again.
func (c *Collector) Collect(ctx context.Context) (Evidence, error) {
	var drops0 map[tcphealth.DropKey]tcphealth.DropCount
	if c.tracer != nil {
		r, err := c.tracer.Read()
		if err != nil {
			return Evidence{}, fmt.Errorf("diagnose: read drops: %w", err)
		}
		drops0 = r.Drops
	}
	start := time.Now()
	r0, err := c.read()
	if err != nil {
		return Evidence{}, err
	}
	select {
	case <-ctx.Done():
		return Evidence{}, ctx.Err()
	case <-time.After(c.opt.Window):
	}
	r1, err := c.read()
	if err != nil {
		return Evidence{}, err
	}
	window := time.Since(start)
	var drops1 map[tcphealth.DropKey]tcphealth.DropCount
	if c.tracer != nil {
		r, err := c.tracer.Read()
		if err != nil {
			return Evidence{}, fmt.Errorf("diagnose: read drops: %w", err)
		}
		drops1 = r.Drops
	}
	ev := merge(r0, r1)
	ev.Start, ev.Window = start, window
	ev.Netns, ev.Interface = c.opt.NetnsName, c.opt.Interface
	if ev.Softnet != nil {
		ev.Softnet.HostWide = c.opt.NetnsPath == ""
		if !ev.Softnet.HostWide {
			ev.Notes = append(ev.Notes, Note{LayerKernel, "softnet", NotApplicable,
				"softnet_stat counts the whole host, not this namespace: shown as context only"})
		}
	}
	c.owners(&ev)
	if c.tracer == nil {
		ev.Notes = append(ev.Notes, Note{LayerKernel, "drop reasons", Unavailable, "kernel drop tracing: " + c.traceErr.Error()})
	} else {
		ev.DropTraced = true
		ev.Drops = c.dropsIn(drops0, drops1, &ev, r1)
	}
	return ev, nil
}

// owners resolves the processes holding the sockets of interest.
func (c *Collector) owners(ev *Evidence) {
	want := false
	for _, s := range ev.Sockets {
		if s.Drops.Delta() > 0 || s.State == "listen" || s.RecvQ.End > 0 || s.SendQ.End > 0 {
			want = true
		}
	}
	if !want {
		return
	}
	if os.Geteuid() != 0 {
		ev.Notes = append(ev.Notes, Note{LayerApplication, "socket owners", Unavailable,
			"other users' processes are not named without root (CAP_SYS_PTRACE)"})
	}
	fs := procfs.NewFS(c.opt.ProcRoot)
	inodes, err := fs.SocketInodes()
	if err != nil && inodes == nil {
		ev.Notes = append(ev.Notes, Note{LayerApplication, "socket owners", Unavailable, err.Error()})
		return
	}
	comms := map[int]string{}
	for i := range ev.Sockets {
		s := &ev.Sockets[i]
		for _, pid := range inodes[s.Inode] {
			comm, ok := comms[pid]
			if !ok {
				if info, err := fs.Process(pid); err == nil {
					comm = info.Comm
				}
				comms[pid] = comm
			}
			s.Owners = append(s.Owners, Process{PID: pid, Comm: comm})
		}
	}
}

// dropsIn returns the drops of the diagnosed namespace during the window,
// by reason, interface and socket.
func (c *Collector) dropsIn(d0, d1 map[tcphealth.DropKey]tcphealth.DropCount, ev *Evidence, r1 *reading) []Drop {
	byCookie := map[uint64]*Socket{}
	for i := range ev.Sockets {
		if ck := ev.Sockets[i].Cookie; ck != 0 {
			byCookie[ck] = &ev.Sockets[i]
		}
	}
	type key struct {
		reason, link, proto string
		cookie              uint64
	}
	sum := map[key]uint64{}
	for k, v := range d1 {
		if uint64(k.Netns) != c.nsIno&0xffffffff {
			continue
		}
		n := v.Packets - min(d0[k].Packets, v.Packets)
		if n == 0 {
			continue
		}
		link := r1.linkNames[int(k.Ifindex)]
		if c.opt.Interface != "" && link != c.opt.Interface {
			continue
		}
		ck := k.Cookie
		if byCookie[ck] == nil {
			ck = 0 // a socket gone or of no interest: one line per reason
		}
		sum[key{c.tracer.ReasonName(k.Reason), link, snapshot.ProtoName(k.Proto), ck}] += n
	}
	out := make([]Drop, 0, len(sum))
	for k, n := range sum {
		d := Drop{Reason: k.reason, Link: k.link, Proto: k.proto, Packets: n, Cookie: k.cookie}
		if s := byCookie[k.cookie]; s != nil && k.cookie != 0 {
			d.Socket = s.Proto + " " + s.Local
			d.Owner = s.Owner()
		}
		out = append(out, d)
	}
	sortDrops(out)
	return out
}

// reading is one reading of every layer, as Evidence whose counters have
// Start == End.
type reading struct {
	ev        Evidence
	linkNames map[int]string
}

func (c *Collector) read() (*reading, error) {
	r := &reading{linkNames: map[int]string{}}
	ev := &r.ev
	note := func(l Layer, check string, err error) {
		if err != nil {
			ev.Notes = append(ev.Notes, Note{l, check, Unavailable, err.Error()})
		}
	}
	err := nsutil.Do(c.opt.NetnsPath, func() error {
		note(LayerPhysical, "links", readLinks(r, c.opt.Interface))
		note(LayerKernel, "qdiscs", readQdiscs(r, c.opt.Interface))
		note(LayerKernel, "netfilter", readNftables(ev))
		readConntrack(ev)
		note(LayerProtocol, "snmp", readSNMP(ev))
		note(LayerApplication, "tcp sockets", readTCPSockets(ev))
		note(LayerApplication, "udp sockets", readUDPSockets(ev))
		ev.Somaxconn, _ = readUint("/proc/sys/net/core/somaxconn")
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("diagnose: %w", err)
	}
	if fs, err := promfs.NewFS("/proc"); err == nil {
		if st, err := fs.NetSoftnetStat(); err == nil {
			var s Softnet
			for _, cpu := range st {
				s.Dropped.End += uint64(cpu.Dropped)
				s.TimeSqueezed.End += uint64(cpu.TimeSqueezed)
			}
			ev.Softnet = &s
		} else {
			note(LayerKernel, "softnet", err)
		}
	}
	return r, nil
}

func hostPort(ip net.IP, port uint64) string {
	if ip == nil {
		ip = net.IPv4zero
	}
	return net.JoinHostPort(ip.String(), strconv.FormatUint(port, 10))
}
