// Package capture is `netmeter capture`: it writes the packets of one
// process, container, cgroup or interface to a pcapng file that tcpdump and
// Wireshark read.
//
// Two sources feed the same writer:
//
//   - [Kernel] (bpf/capture.c) selects packets in the kernel by socket
//     owner. cgroup_skb programs see every packet a local socket sends or
//     receives, in every network namespace, starting at the IP header; they
//     keep those whose socket cookie is selected and copy them, with the
//     owner's pid and comm, to a ring buffer. Selected are the target's open
//     sockets (from /proc/PID/fd and sock_diag), the sockets it creates
//     later (cgroup/sock_create by tgid or comm) and the connections it
//     accepts (sockops, by the 4-tuple of the SYN its listener received).
//     For a cgroup (--cgroup, --container) the programs attach to that
//     cgroup and keep everything. These packets are raw IP
//     (LINKTYPE_RAW); the pcap filter runs on them in userspace
//     (golang.org/x/net/bpf's VM on the program internal/pcapfilter
//     compiles for raw IP).
//   - [Iface] is an interface capture: an AF_PACKET socket on one interface
//     with the compiled filter attached in the kernel (SO_ATTACH_FILTER),
//     Ethernet frames as tcpdump sees them.
//
// Buffers are bounded (the ring buffer, the socket's receive buffer); what
// they lose is counted and reported like tcpdump's "dropped by kernel".
package capture

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/cilium/ebpf/ringbuf"

	"github.com/netmeter/netmeter/internal/bpfload"
	"github.com/netmeter/netmeter/internal/pcapfilter"
	"github.com/netmeter/netmeter/internal/pcapng"
)

// Direction is a packet's direction relative to the host (or the socket).
type Direction uint8

// Directions.
const (
	DirUnknown Direction = iota
	DirIn
	DirOut
)

// Packet is one captured packet.
type Packet struct {
	Time    time.Time
	Data    []byte // captured bytes; valid until the source's next Next
	OrigLen int    // length before the snap length cut it
	Ifindex int
	Dir     Direction
	// Cookie, Pid and Comm name the owning socket and process (kernel-side
	// capture only; Pid 0 when the socket was selected by cgroup).
	Cookie uint64
	Pid    int
	Comm   string
	mono   uint64
}

// errTimeout is what a source's Next returns when no packet arrived in
// time.
var errTimeout = os.ErrDeadlineExceeded

// source is what Run reads: a Kernel or an Iface.
type source interface {
	Next(deadline time.Time) (Packet, error)
}

// Options configure Run.
type Options struct {
	// Interface captures on this interface (AF_PACKET, Ethernet link
	// type) when no process, comm or cgroup is selected; with a selection
	// it keeps only the selection's packets through this interface.
	Interface string
	// Netns is the network namespace (a path) of Interface.
	Netns string
	// Pids, Comm and Cgroup select sockets by owner (see Selection).
	Pids   []int
	Comm   string
	Cgroup string
	// AllSockets captures every local socket's packets (kernel-side)
	// when nothing else is selected and Interface is empty.
	AllSockets bool
	// Describe names the selection in the pcapng's interface description
	// ("netmeter: " + Describe, e.g. "container web (docker 0123abcd)");
	// empty: derived from the selection ("pid 1234 (curl)").
	Describe string
	// Filter is a pcap-filter expression (internal/pcapfilter).
	Filter  string
	Snaplen int // 0: 262144 (interface) or MaxSnaplen (kernel-side)
	// RingSize is the buffer's size in bytes (0: the default): for a
	// selection the kernel-side ring buffer (rounded up to a power of two,
	// at least 4096; default 8 MiB), for an interface the packet socket's
	// receive buffer (default 32 MiB).
	RingSize int
	// Count stops after this many written packets (0: no limit),
	// Duration after this long (0: until ctx ends).
	Count    int
	Duration time.Duration
	// Ready is called once the capture is attached, with a description
	// of what is captured (e.g. "lo, link-type EN10MB").
	Ready func(what string)
}

// Result is what a capture saw.
type Result struct {
	Written int    // packets written to the file
	Seen    uint64 // packets the kernel delivered (before a userspace filter)
	// Dropped are packets the kernel lost because the buffer was full.
	Dropped uint64
}

// String reads like tcpdump's summary.
func (r Result) String() string {
	return fmt.Sprintf("%d packets captured\n%d packets received by filter\n%d packets dropped by kernel (buffer full)",
		r.Written, r.Seen, r.Dropped)
}

// Run captures until ctx ends, Count packets were written or Duration
// passed, writing pcapng to w. It always flushes what it wrote.
func Run(ctx context.Context, o Options, w io.Writer) (Result, error) {
	var res Result
	if o.Interface == "" && len(o.Pids) == 0 && o.Comm == "" && o.Cgroup == "" && !o.AllSockets {
		return res, errors.New("nothing to capture: give an interface (-i), a process (--pid, --process), a container or a cgroup")
	}
	if o.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Duration)
		defer cancel()
	}
	kernelSide := len(o.Pids) > 0 || o.Comm != "" || o.Cgroup != "" || (o.AllSockets && o.Interface == "")

	var (
		src      source
		linkType pcapfilter.LinkType
		match    func([]byte) bool
		stats    func() (seen, dropped uint64)
		what     string
		ifname   func(int) string
		snaplen  = o.Snaplen
	)
	selDesc := describeSelection(o) // reads /proc/PID/comm: once
	if kernelSide {
		// Compile first: a bad filter must fail before anything loads.
		linkType = pcapfilter.LinkTypeRaw
		if o.Filter != "" {
			prog, err := pcapfilter.Compile(o.Filter, linkType, 0)
			if err != nil {
				return res, fmt.Errorf("filter %q: %w", o.Filter, err)
			}
			if match, err = pcapfilter.NewMatcher(prog); err != nil {
				return res, err
			}
		}
		// Privileges first: they are what a user fixes first.
		if err := bpfload.Prepare(Requirements); err != nil {
			return res, err
		}
		sel := Selection{Pids: o.Pids, Comm: o.Comm, Cgroup: o.Cgroup, All: o.AllSockets, Snaplen: o.Snaplen, RingSize: ringSize(o.RingSize)}
		names, err := interfaceNames(o.Netns, o.Pids)
		if err != nil {
			return res, err
		}
		if o.Interface != "" {
			idx, ok := names.index(o.Interface)
			if !ok {
				return res, fmt.Errorf("no such interface %q in the target's network namespace", o.Interface)
			}
			sel.Ifindex = idx
		}
		k, err := OpenKernel(sel)
		if err != nil {
			return res, err
		}
		defer k.Close()
		src = k
		if snaplen <= 0 || snaplen > MaxSnaplen {
			snaplen = MaxSnaplen
		}
		stats = func() (uint64, uint64) {
			st, _ := k.Stats()
			return st.Captured, st.RingFull
		}
		ifname = names.name
		what = selDesc + ", link-type RAW (IP)"
	} else {
		c, err := OpenIface(o.Netns, o.Interface, o.Filter, o.Snaplen, o.RingSize)
		if err != nil {
			if fe := new(pcapfilter.Error); errors.As(err, &fe) {
				return res, fmt.Errorf("filter %q: %w", o.Filter, err)
			}
			return res, err
		}
		defer c.Close()
		src, linkType = c, c.LinkType
		if snaplen <= 0 {
			snaplen = pcapfilter.DefaultSnaplen
		}
		stats = func() (uint64, uint64) {
			r, d, _ := c.Drops()
			return r + d, d
		}
		ifname = func(int) string { return o.Interface }
		what = o.Interface + ", link-type " + linkType.String()
	}

	pw, err := pcapng.NewWriter(w, "netmeter capture")
	if err != nil {
		return res, err
	}
	desc := "netmeter: " + selDesc
	ifaces := map[int]int{} // ifindex → pcapng interface
	var comments commentCache
	if o.Ready != nil {
		o.Ready(what)
	}
	finish := func(err error) (Result, error) {
		res.Seen, res.Dropped = stats()
		if ferr := pw.Flush(); ferr != nil && err == nil {
			err = fmt.Errorf("write capture: %w", ferr)
		}
		return res, err
	}
	for o.Count == 0 || res.Written < o.Count {
		if ctx.Err() != nil {
			return finish(nil)
		}
		p, err := src.Next(time.Now().Add(200 * time.Millisecond))
		if errors.Is(err, errTimeout) {
			if ferr := pw.Flush(); ferr != nil {
				return finish(fmt.Errorf("write capture: %w", ferr))
			}
			continue
		}
		if errors.Is(err, ringbuf.ErrClosed) {
			return finish(nil)
		}
		if err != nil {
			return finish(err)
		}
		if match != nil && !match(p.Data) {
			continue
		}
		id, ok := ifaces[p.Ifindex]
		if !ok {
			id, err = pw.AddInterface(pcapng.Interface{LinkType: uint16(linkType), SnapLen: uint32(snaplen), Name: ifname(p.Ifindex), Description: desc})
			if err != nil {
				return finish(fmt.Errorf("write capture: %w", err))
			}
			ifaces[p.Ifindex] = id
		}
		if err := pw.WritePacket(toPcapng(id, &p, &comments)); err != nil {
			return finish(fmt.Errorf("write capture: %w", err))
		}
		res.Written++
	}
	return finish(nil)
}

// commentCache keeps the comment of recently seen sockets, so a packet
// costs no formatting; bounded (cleared when full).
type commentCache map[uint64]string

func (c *commentCache) get(p *Packet) string {
	if *c == nil {
		*c = commentCache{}
	}
	if s, ok := (*c)[p.Cookie]; ok {
		return s
	}
	var s string
	if p.Pid != 0 {
		s = fmt.Sprintf("pid %d (%s) socket %d", p.Pid, p.Comm, p.Cookie)
	} else if p.Cookie != 0 {
		s = fmt.Sprintf("socket %d", p.Cookie)
	}
	if len(*c) >= 4096 {
		clear(*c)
	}
	(*c)[p.Cookie] = s
	return s
}

// toPcapng makes the pcapng packet, with the owner in its comment.
func toPcapng(id int, p *Packet, comments *commentCache) pcapng.Packet {
	q := pcapng.Packet{Interface: id, Time: p.Time, Data: p.Data, OrigLen: p.OrigLen}
	switch p.Dir {
	case DirIn:
		q.Direction = pcapng.DirInbound
	case DirOut:
		q.Direction = pcapng.DirOutbound
	}
	q.Comment = comments.get(p)
	return q
}

func describeSelection(o Options) string {
	switch {
	case o.Describe != "":
		return o.Describe
	case len(o.Pids) > 0 && o.Comm != "":
		return fmt.Sprintf("process %s (pids %v)", o.Comm, o.Pids)
	case o.Comm != "":
		return "process " + o.Comm
	case len(o.Pids) == 1:
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", o.Pids[0]))
		return fmt.Sprintf("pid %d (%s)", o.Pids[0], strings.TrimRight(string(comm), "\n "))
	case len(o.Pids) > 1:
		return fmt.Sprintf("pids %v", o.Pids)
	case o.Cgroup != "":
		return "cgroup " + o.Cgroup
	case o.AllSockets && o.Interface == "":
		return "every local socket"
	}
	return "interface " + o.Interface
}

// ringSize rounds a ring buffer size up to a power of two of at least a
// page, as BPF ring buffers must be (0 stays 0: the default).
func ringSize(n int) int {
	if n <= 0 {
		return 0
	}
	r := 4096
	for r < n {
		r <<= 1
	}
	return r
}
