package iface

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/mdlayher/ethtool"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/netmeter/netmeter/internal/nsutil"
	"github.com/netmeter/netmeter/internal/snapshot"
)

// speedTTL is how long a link speed is cached; a carrier change refreshes it
// at once.
const speedTTL = 10 * time.Second

// Netlink reads links with RTM_GETLINK dumps. Its sockets are opened in the
// namespace at nsPath, so it can read any namespace from any goroutine.
type Netlink struct {
	nsPath string
	conn   *rtnetlink.Conn
	eth    *ethtool.Client // nil when ethtool netlink is unavailable

	mu         sync.Mutex
	speeds     map[int]uint32
	carriers   map[int]bool
	speedsRead time.Time
}

// OpenNetlink dials rtnetlink (and ethtool netlink, best effort) in the
// namespace at nsPath ("" = the caller's).
func OpenNetlink(nsPath string) (*Netlink, error) {
	n := &Netlink{nsPath: nsPath}
	err := nsutil.Do(nsPath, func() error {
		c, err := rtnetlink.Dial(nil)
		if err != nil {
			return fmt.Errorf("dial rtnetlink: %w", err)
		}
		n.conn = c
		if e, err := ethtool.New(); err == nil {
			n.eth = e
		}
		return nil
	})
	if err != nil {
		if n.conn != nil {
			n.conn.Close()
		}
		return nil, err
	}
	return n, nil
}

// Name implements Source.
func (n *Netlink) Name() string { return "netlink" }

// Close implements Source.
func (n *Netlink) Close() error {
	if n.eth != nil {
		n.eth.Close()
	}
	return n.conn.Close()
}

// Links implements Source.
func (n *Netlink) Links() ([]Link, error) {
	msgs, err := n.conn.Link.List()
	if err != nil {
		return nil, fmt.Errorf("rtnetlink link dump: %w", err)
	}
	links := make([]Link, 0, len(msgs))
	names := make(map[int]string, len(msgs))
	for i := range msgs {
		l := fromMessage(&msgs[i])
		names[l.Index] = l.Name
		links = append(links, l)
	}
	n.fillSpeeds(links)
	for i := range links {
		if m := links[i].MasterIndex; m != 0 {
			links[i].Master = names[m]
		}
	}
	return links, nil
}

// fillSpeeds adds link speeds from ethtool netlink, refreshed every speedTTL
// or when a carrier changes.
func (n *Netlink) fillSpeeds(links []Link) {
	if n.eth == nil {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	stale := n.speeds == nil || time.Since(n.speedsRead) > speedTTL
	for _, l := range links {
		if c, ok := n.carriers[l.Index]; !ok || c != l.Carrier {
			stale = true
		}
	}
	if stale {
		n.speeds = map[int]uint32{}
		n.carriers = map[int]bool{}
		for _, l := range links {
			n.carriers[l.Index] = l.Carrier
		}
		n.speedsRead = time.Now()
		if modes, err := n.eth.LinkModes(); err == nil {
			for _, m := range modes {
				// The kernel reports SPEED_UNKNOWN as -1 (or 0xffffffff).
				if m.SpeedMegabits > 0 && m.SpeedMegabits < 1<<31-1 {
					n.speeds[m.Interface.Index] = uint32(m.SpeedMegabits)
				}
			}
		}
	}
	for i := range links {
		links[i].SpeedMbps = n.speeds[links[i].Index]
	}
}

// OperStates name the kernel's operational states (IF_OPER_*) as ip-link
// does, in lower case.
var OperStates = map[rtnetlink.OperationalState]string{
	rtnetlink.OperStateUnknown:        "unknown",
	rtnetlink.OperStateNotPresent:     "notpresent",
	rtnetlink.OperStateDown:           "down",
	rtnetlink.OperStateLowerLayerDown: "lowerlayerdown",
	rtnetlink.OperStateTesting:        "testing",
	rtnetlink.OperStateDormant:        "dormant",
	rtnetlink.OperStateUp:             "up",
}

func fromMessage(m *rtnetlink.LinkMessage) Link {
	l := Link{Index: int(m.Index), AdminUp: m.Flags&unix.IFF_UP != 0}
	a := m.Attributes
	if a == nil {
		return l
	}
	l.Name = a.Name
	l.MTU = int(a.MTU)
	l.Qdisc = a.QueueDisc
	l.OperState = OperStates[a.OperationalState]
	if l.OperState == "" {
		l.OperState = fmt.Sprintf("state%d", a.OperationalState)
	}
	l.Carrier = a.Carrier != nil && *a.Carrier != 0
	if len(a.Address) > 0 {
		l.MAC = net.HardwareAddr(a.Address).String()
	}
	if a.Master != nil {
		l.MasterIndex = int(*a.Master)
	}
	switch {
	case a.Info != nil && a.Info.Kind != "":
		l.Kind = a.Info.Kind
	case m.Flags&unix.IFF_LOOPBACK != 0:
		l.Kind = "loopback"
	default:
		l.Kind = "device"
	}
	if s := a.Stats64; s != nil {
		l.Counters = snapshot.LinkCounters{
			RxBytes: s.RXBytes, TxBytes: s.TXBytes, RxPackets: s.RXPackets, TxPackets: s.TXPackets,
			RxErrors: s.RXErrors, TxErrors: s.TXErrors, RxDropped: s.RXDropped, TxDropped: s.TXDropped,
			Multicast: s.Multicast, Collisions: s.Collisions,
			RxLengthErrors: s.RXLengthErrors, RxOverErrors: s.RXOverErrors, RxCRCErrors: s.RXCRCErrors,
			RxFrameErrors: s.RXFrameErrors, RxFIFOErrors: s.RXFIFOErrors, RxMissedErrors: s.RXMissedErrors,
			TxAbortedErrors: s.TXAbortedErrors, TxCarrierErrors: s.TXCarrierErrors, TxFIFOErrors: s.TXFIFOErrors,
			TxHeartbeatErrors: s.TXHeartbeatErrors, TxWindowErrors: s.TXWindowErrors,
			RxCompressed: s.RXCompressed, TxCompressed: s.TXCompressed,
			RxNoHandler: s.RXNoHandler, RxOtherhostDropped: s.RXOtherhostDropped,
		}
	} else if s := a.Stats; s != nil {
		// Kernels without IFLA_STATS64 report 32-bit counters; the
		// aggregation's 32-bit wrap detection handles them.
		l.Counters = snapshot.LinkCounters{
			RxBytes: uint64(s.RXBytes), TxBytes: uint64(s.TXBytes),
			RxPackets: uint64(s.RXPackets), TxPackets: uint64(s.TXPackets),
			RxErrors: uint64(s.RXErrors), TxErrors: uint64(s.TXErrors),
			RxDropped: uint64(s.RXDropped), TxDropped: uint64(s.TXDropped),
			Multicast: uint64(s.Multicast), Collisions: uint64(s.Collisions),
		}
	}
	return l
}

// Watch delivers link events of the namespace until ctx ends. Deletions carry
// the final counters. It returns nil when ctx is cancelled.
func (n *Netlink) Watch(ctx context.Context, fn func(Event)) error {
	var c *rtnetlink.Conn
	err := nsutil.Do(n.nsPath, func() error {
		var err error
		c, err = rtnetlink.Dial(&netlink.Config{Groups: unix.RTMGRP_LINK})
		return err
	})
	if err != nil {
		return fmt.Errorf("subscribe to link events: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	for {
		msgs, raw, err := c.Receive()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var opErr *netlink.OpError
			if errors.As(err, &opErr) && errors.Is(opErr.Err, unix.ENOBUFS) {
				// Events were lost; the next poll re-reads every link.
				continue
			}
			c.Close()
			return fmt.Errorf("receive link events: %w", err)
		}
		for i, m := range msgs {
			lm, ok := m.(*rtnetlink.LinkMessage)
			if !ok {
				continue
			}
			fn(Event{Deleted: raw[i].Header.Type == unix.RTM_DELLINK, Link: fromMessage(lm)})
		}
	}
}

// Open returns the netlink source of the namespace at nsPath. When rtnetlink
// cannot be used it returns the /proc/net/dev fallback and, as degraded, the
// reason; err is set only when neither works.
func Open(nsPath string) (src Source, degraded, err error) {
	nl, nlErr := OpenNetlink(nsPath)
	if nlErr == nil {
		if _, nlErr = nl.Links(); nlErr == nil {
			return nl, nil, nil
		}
		nl.Close()
	}
	p := NewProcFS(nsPath)
	if _, err := p.Links(); err != nil {
		return nil, nil, fmt.Errorf("no interface source works: netlink: %v; procfs: %w", nlErr, err)
	}
	return p, fmt.Errorf("rtnetlink unavailable, using /proc/net/dev without link attributes: %w", nlErr), nil
}
