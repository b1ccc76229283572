package diagnose

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"unsafe"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/mdlayher/ethtool"
	promfs "github.com/prometheus/procfs"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/netmeter/netmeter/internal/source/iface"
)

// The readers below run inside nsutil.Do: every socket they open belongs to
// the diagnosed namespace, and /proc/thread-self/net is its view.

const threadNet = "/proc/thread-self/net/"

func readLinks(r *reading, only string) error {
	c, err := rtnetlink.Dial(nil)
	if err != nil {
		return fmt.Errorf("dial rtnetlink: %w", err)
	}
	defer c.Close()
	msgs, err := c.Link.List()
	if err != nil {
		return fmt.Errorf("rtnetlink link dump: %w", err)
	}
	eth, ethErr := ethtool.New()
	if ethErr == nil {
		defer eth.Close()
	}
	fd, sockErr := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if sockErr == nil {
		defer unix.Close(fd)
	}
	for _, m := range msgs {
		a := m.Attributes
		if a == nil {
			continue
		}
		r.linkNames[int(m.Index)] = a.Name
		if only != "" && a.Name != only {
			continue
		}
		l := Link{Name: a.Name, Index: int(m.Index), AdminUp: m.Flags&unix.IFF_UP != 0,
			Carrier: a.Carrier != nil && *a.Carrier != 0, Oper: iface.OperStates[a.OperationalState]}
		switch {
		case a.Info != nil && a.Info.Kind != "":
			l.Kind = a.Info.Kind
		case m.Flags&unix.IFF_LOOPBACK != 0:
			l.Kind = "loopback"
		}
		if a.CarrierChanges != nil {
			l.CarrierChanges.End = uint64(*a.CarrierChanges)
		}
		if s := a.Stats64; s != nil {
			l.RxPackets.End, l.RxDropped.End, l.TxDropped.End = s.RXPackets, s.RXDropped, s.TXDropped
			l.RxErrors.End, l.TxErrors.End = s.RXErrors, s.TXErrors
			l.RxMissed.End, l.RxFifo.End, l.RxOver.End, l.TxFifo.End = s.RXMissedErrors, s.RXFIFOErrors, s.RXOverErrors, s.TXFIFOErrors
			l.RxNoHandler.End = s.RXNoHandler
		}
		if ethErr == nil && l.Kind != "loopback" {
			if lm, err := eth.LinkMode(ethtool.Interface{Index: l.Index}); err == nil {
				if lm.SpeedMegabits > 0 && lm.SpeedMegabits < 1<<31-1 {
					l.SpeedMbs = lm.SpeedMegabits
				}
				switch lm.Duplex {
				case ethtool.Half:
					l.Duplex = "half"
				case ethtool.Full:
					l.Duplex = "full"
				}
			}
		}
		if sockErr == nil && l.Kind != "loopback" {
			readDriver(fd, &l)
		}
		r.ev.Links = append(r.ev.Links, l)
	}
	return nil
}

// readDriver adds what the driver says (ethtool -i, -g, -S) through the
// SIOCETHTOOL ioctl; drivers that do not implement a request (veth, lo)
// answer EOPNOTSUPP, and the fields stay empty.
func readDriver(fd int, l *Link) {
	di, err := unix.IoctlGetEthtoolDrvinfo(fd, l.Name)
	if err != nil {
		return
	}
	l.Driver, l.Firmware, l.BusInfo = cstr(di.Driver[:]), cstr(di.Fw_version[:]), cstr(di.Bus_info[:])
	if l.Firmware == "N/A" {
		l.Firmware = ""
	}
	if l.Virtual() {
		return
	}
	var rp ethtoolRingparam
	rp.Cmd = unix.ETHTOOL_GRINGPARAM
	if ethtoolIoctl(fd, l.Name, unsafe.Pointer(&rp)) == nil && rp.RxMaxPending > 0 {
		l.Rings = &Rings{RxPending: rp.RxPending, RxMax: rp.RxMaxPending, TxPending: rp.TxPending, TxMax: rp.TxMaxPending}
	}
	if di.N_stats > 0 && di.N_stats < 1<<14 {
		l.NIC = nicStats(fd, l.Name, di.N_stats)
	}
}

func cstr(b []byte) string {
	if i := strings.IndexByte(string(b), 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// ethtoolRingparam is struct ethtool_ringparam.
type ethtoolRingparam struct {
	Cmd                                                    uint32
	RxMaxPending, RxMiniMaxPending, RxJumboMaxPending      uint32
	TxMaxPending, RxPending, RxMiniPending, RxJumboPending uint32
	TxPending                                              uint32
}

// ifreqData is struct ifreq with ifr_data.
type ifreqData struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	_    [16]byte
}

func ethtoolIoctl(fd int, name string, data unsafe.Pointer) error {
	var ifr ifreqData
	copy(ifr.name[:unix.IFNAMSIZ-1], name)
	ifr.data = data
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr)))
	if errno != 0 {
		return errno
	}
	return nil
}

// nicKeep says which driver counters (ethtool -S) the physical check reads:
// those that count packets the NIC could not take in.
func nicKeep(name string) bool {
	n := strings.ToLower(name)
	if strings.Contains(n, "bytes") {
		return false
	}
	for _, s := range []string{"missed", "no_buf", "nobuf", "no_buffer", "fifo", "rx_dropped", "rx_drops", "discard", "out_of_buffer"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}

// nicStats reads the driver's counters (ETHTOOL_GSTRINGS + ETHTOOL_GSTATS).
func nicStats(fd int, name string, n uint32) map[string]Counter {
	const strLen, ssStats = 32, 1 // ETH_GSTRING_LEN, ETH_SS_STATS
	ne := binary.NativeEndian
	sbuf := make([]byte, 12+int(n)*strLen)
	ne.PutUint32(sbuf[0:], unix.ETHTOOL_GSTRINGS)
	ne.PutUint32(sbuf[4:], ssStats)
	ne.PutUint32(sbuf[8:], n)
	if ethtoolIoctl(fd, name, unsafe.Pointer(&sbuf[0])) != nil {
		return nil
	}
	vbuf := make([]byte, 8+8*int(n))
	ne.PutUint32(vbuf[0:], unix.ETHTOOL_GSTATS)
	ne.PutUint32(vbuf[4:], n)
	if ethtoolIoctl(fd, name, unsafe.Pointer(&vbuf[0])) != nil {
		return nil
	}
	got := min(n, ne.Uint32(vbuf[4:]), ne.Uint32(sbuf[8:]))
	out := map[string]Counter{}
	for i := range int(got) {
		s := cstr(sbuf[12+i*strLen : 12+(i+1)*strLen])
		if nicKeep(s) {
			out[s] = Counter{End: ne.Uint64(vbuf[8+8*i:])}
		}
	}
	return out
}

func handleString(h uint32) string {
	switch h {
	case netlink.HANDLE_ROOT:
		return "root"
	case netlink.HANDLE_INGRESS:
		return "ingress"
	case netlink.HANDLE_NONE:
		return "0:"
	}
	if h&0xffff == 0 {
		return fmt.Sprintf("%x:", h>>16)
	}
	return fmt.Sprintf("%x:%x", h>>16, h&0xffff)
}

// readQdiscs lists every qdisc in one dump, naming links from the link dump
// readLinks just made (r.linkNames).
func readQdiscs(r *reading, only string) error {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	defer h.Close()
	qs, err := h.QdiscList(nil)
	if err != nil {
		return fmt.Errorf("list qdiscs: %w", err)
	}
	for _, q := range qs {
		a := q.Attrs()
		name, ok := r.linkNames[a.LinkIndex]
		if !ok {
			l, err := h.LinkByIndex(a.LinkIndex)
			if err != nil {
				continue // gone since the link dump
			}
			name = l.Attrs().Name
		}
		if only != "" && name != only || a.Parent == netlink.HANDLE_INGRESS || q.Type() == "noqueue" {
			continue
		}
		e := Qdisc{Link: name, Kind: q.Type(), Handle: handleString(a.Handle), Parent: handleString(a.Parent)}
		if s := a.Statistics; s != nil {
			if s.Queue != nil {
				e.Drops.End, e.Overlimits.End, e.Requeues.End = uint64(s.Queue.Drops), uint64(s.Queue.Overlimits), uint64(s.Queue.Requeues)
				e.Backlog, e.Qlen = s.Queue.Backlog, s.Queue.Qlen
			}
			if s.Basic != nil {
				e.Packets.End = uint64(s.Basic.Packets)
			}
		}
		if t, ok := q.(*netlink.Tbf); ok {
			e.RateBps, e.LimitBytes = t.Rate, t.Limit
		}
		r.ev.Qdiscs = append(r.ev.Qdiscs, e)
	}
	return nil
}

var nftFamilies = map[nftables.TableFamily]string{
	nftables.TableFamilyINet: "inet", nftables.TableFamilyIPv4: "ip", nftables.TableFamilyIPv6: "ip6",
	nftables.TableFamilyARP: "arp", nftables.TableFamilyNetdev: "netdev", nftables.TableFamilyBridge: "bridge",
}

func readNftables(ev *Evidence) error {
	c, err := nftables.New(nftables.AsLasting())
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	defer c.CloseLasting()
	chains, err := c.ListChains()
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EPROTONOSUPPORT) {
			return nil
		}
		if errors.Is(err, unix.EPERM) {
			return errors.New("reading nftables rules needs CAP_NET_ADMIN: run as root")
		}
		return fmt.Errorf("list nftables chains: %w", err)
	}
	for _, ch := range chains {
		fam := nftFamilies[ch.Table.Family]
		if ch.Policy != nil && *ch.Policy == nftables.ChainPolicyDrop {
			ev.Netfilter = append(ev.Netfilter, NftRule{Family: fam, Table: ch.Table.Name, Chain: ch.Name, Verdict: "drop", Policy: true})
		}
		rules, err := c.GetRules(ch.Table, ch)
		if err != nil {
			return fmt.Errorf("list rules of %s %s %s: %w", fam, ch.Table.Name, ch.Name, err)
		}
		for _, r := range rules {
			nr := NftRule{Family: fam, Table: ch.Table.Name, Chain: ch.Name, Handle: r.Handle}
			for _, e := range r.Exprs {
				switch e := e.(type) {
				case *expr.Counter:
					nr.Counted, nr.Packets.End = true, e.Packets
				case *expr.Verdict:
					if e.Kind == expr.VerdictDrop {
						nr.Verdict = "drop"
					}
				case *expr.Reject:
					nr.Verdict = "reject"
				}
			}
			if nr.Verdict == "" {
				continue
			}
			if s, ok := userdata.GetString(r.UserData, userdata.TypeComment); ok {
				nr.Comment = s
			}
			ev.Netfilter = append(ev.Netfilter, nr)
		}
	}
	return nil
}

func readConntrack(ev *Evidence) {
	count, err1 := readUint("/proc/sys/net/netfilter/nf_conntrack_count")
	maxc, err2 := readUint("/proc/sys/net/netfilter/nf_conntrack_max")
	if err1 != nil || err2 != nil {
		ev.Notes = append(ev.Notes, Note{LayerKernel, "conntrack", NotApplicable, "connection tracking is not loaded in this namespace"})
		return
	}
	ct := &Conntrack{Count: count, Max: maxc}
	if fs, err := promfs.NewFS("/proc/thread-self"); err == nil {
		if st, err := fs.ConntrackStat(); err == nil {
			for _, e := range st {
				ct.InsertFailed.End += e.InsertFailed
				ct.Drop.End += e.Drop
				ct.EarlyDrop.End += e.EarlyDrop
			}
		}
	}
	ev.Conntrack = ct
}

func readUint(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
}

func readSNMP(ev *Evidence) error {
	ev.SNMP = map[string]Counter{}
	for _, f := range []string{"snmp", "netstat"} {
		b, err := os.ReadFile(threadNet + f)
		if err != nil {
			return err
		}
		m, err := ParseSNMP(b)
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		for k, v := range m {
			ev.SNMP[k] = Counter{End: v}
		}
	}
	// IPv6 UDP counters are in snmp6 ("Udp6RcvbufErrors 0").
	if b, err := os.ReadFile(threadNet + "snmp6"); err == nil {
		for k, v := range ParseSNMP6(b) {
			if strings.HasPrefix(k, "Udp6") {
				ev.SNMP["Udp6."+strings.TrimPrefix(k, "Udp6")] = Counter{End: v}
			}
		}
	}
	return nil
}

var tcpStates = [...]string{"", "established", "syn-sent", "syn-recv", "fin-wait-1", "fin-wait-2", "time-wait",
	"close", "close-wait", "last-ack", "listen", "closing", "new-syn-recv"}

func cookie(id netlink.SocketID) uint64 {
	return uint64(id.Cookie[0]) | uint64(id.Cookie[1])<<32
}

func readTCPSockets(ev *Evidence) error {
	h, err := netlink.NewHandle(unix.NETLINK_INET_DIAG)
	if err != nil {
		return fmt.Errorf("sock_diag: %w", err)
	}
	defer h.Close()
	for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
		socks, err := h.SocketDiagTCP(fam)
		if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
			return fmt.Errorf("sock_diag tcp: %w", err)
		}
		for _, s := range socks {
			st := ""
			if int(s.State) < len(tcpStates) {
				st = tcpStates[s.State]
			}
			if st == "time-wait" || st == "new-syn-recv" || s.INode == 0 {
				continue
			}
			e := Socket{Proto: "tcp", State: st, Inode: uint64(s.INode), Cookie: cookie(s.ID),
				Local: hostPort(s.ID.Source, uint64(s.ID.SourcePort))}
			e.RecvQ.End = uint64(s.RQueue)
			if st == "listen" {
				e.Backlog = s.WQueue
			} else {
				e.SendQ.End = uint64(s.WQueue)
				e.Remote = hostPort(s.ID.Destination, uint64(s.ID.DestinationPort))
			}
			ev.Sockets = append(ev.Sockets, e)
		}
	}
	return nil
}

func readUDPSockets(ev *Evidence) error {
	fs, err := promfs.NewFS("/proc/thread-self")
	if err != nil {
		return err
	}
	cookies := map[uint64]uint64{}
	if h, err := netlink.NewHandle(unix.NETLINK_INET_DIAG); err == nil {
		for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
			socks, _ := h.SocketDiagUDP(fam)
			for _, s := range socks {
				cookies[uint64(s.INode)] = cookie(s.ID)
			}
		}
		h.Close()
	}
	for _, read := range []func() (promfs.NetUDP, error){fs.NetUDP, fs.NetUDP6} {
		lines, err := read()
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return err
		}
		for _, l := range lines {
			if l.Inode == 0 {
				continue
			}
			e := Socket{Proto: "udp", Inode: l.Inode, Cookie: cookies[l.Inode], Local: hostPort(l.LocalAddr, l.LocalPort)}
			if l.RemPort != 0 {
				e.Remote = hostPort(l.RemAddr, l.RemPort)
			}
			e.RecvQ.End, e.SendQ.End = l.RxQueue, l.TxQueue
			if l.Drops != nil {
				e.Drops.End = *l.Drops
			}
			ev.Sockets = append(ev.Sockets, e)
		}
	}
	return nil
}
