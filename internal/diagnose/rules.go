package diagnose

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Finding is one problem the walk found.
type Finding struct {
	Layer Layer `json:"layer"`
	// Kind is a stable identifier of the rule that fired (see
	// docs/DIAGNOSE.md), e.g. "udp_rcvbuf" or "qdisc_drops".
	Kind     string `json:"kind"`
	Severity string `json:"severity"`
	// Subject is what the finding is about (a socket, a qdisc, a rule); Kind
	// and Subject together identify a finding across --watch runs.
	Subject  string   `json:"subject"`
	Title    string   `json:"title"`
	Evidence []string `json:"evidence"`
	Owner    *Process `json:"owner,omitempty"`
	Fix      string   `json:"fix"`
	// Rate is the drop (or event) rate per second that decided the finding.
	Rate float64 `json:"rate_per_second"`
}

// Key identifies a finding across runs.
func (f Finding) Key() string { return f.Kind + " " + f.Subject }

// Severities.
const (
	Critical = "critical"
	Warning  = "warning"
)

// Thresholds of the rules (docs/DIAGNOSE.md).
const (
	// RetransShare is the TCP retransmitted share of sent segments above
	// which retransmission is a finding, when at least RetransMinSegs were
	// sent in the window.
	RetransShare   = 0.02
	RetransMinSegs = 200
	// ConntrackFill is the table fill above which conntrack is a finding.
	ConntrackFill = 0.90
	// QueueGrowth is how many bytes a TCP socket's Recv-Q or Send-Q must
	// hold at the end of the window, having grown, to be a finding.
	QueueGrowth = 64 << 10
	// SqueezeRate is time squeezes per second above which softnet is a
	// finding.
	SqueezeRate = 10
	// KernelDropMin is how many packets the kernel must drop for one reason
	// on one link during the window for a reason no other rule explains to
	// be a finding.
	KernelDropMin = 10
)

// Rules turns evidence into findings, most severe and fastest first.
func Rules(ev Evidence) []Finding {
	var out []Finding
	for _, r := range rules {
		out = append(out, r(&ev)...)
	}
	for _, r := range lateRules {
		out = append(out, r(&ev, out)...)
	}
	slices.SortStableFunc(out, func(a, b Finding) int {
		if c := cmp.Compare(sevRank(a.Severity), sevRank(b.Severity)); c != 0 {
			return c
		}
		if c := cmp.Compare(slices.Index(Layers, a.Layer), slices.Index(Layers, b.Layer)); c != 0 {
			return c
		}
		return cmp.Compare(b.Rate, a.Rate)
	})
	return out
}

func sevRank(s string) int {
	if s == Critical {
		return 0
	}
	return 1
}

var rules = []func(*Evidence) []Finding{
	linkRules, softnetRules, qdiscRules, netfilterRules, conntrackRules,
	udpRules, listenRules, tcpRules, queueRules,
}

// Rules that explain what the others did not: they see the findings made
// so far.
var lateRules = []func(*Evidence, []Finding) []Finding{linkDropRules, dropReasonRules}

func rate(n uint64, w time.Duration) string {
	if w <= 0 {
		return fmt.Sprintf("+%d", n)
	}
	return fmt.Sprintf("+%d in %s (%.1f/s)", n, w.Round(time.Millisecond), float64(n)/w.Seconds())
}

// named is a counter with the name its evidence shows.
type named struct {
	name string
	c    Counter
}

// grown is the evidence ("name N/s") of the counters that grew in the
// window w, and their total growth.
func grown(w time.Duration, cs ...named) (evidence []string, total uint64) {
	for _, x := range cs {
		if d := x.c.Delta(); d > 0 {
			evidence = append(evidence, x.name+" "+rate(d, w))
			total += d
		}
	}
	return evidence, total
}

func perSec(n uint64, w time.Duration) float64 {
	if w <= 0 {
		return 0
	}
	return float64(n) / w.Seconds()
}

func linkRules(ev *Evidence) []Finding {
	var out []Finding
	w := ev.Window
	for _, l := range ev.Links {
		if l.Kind == "loopback" {
			continue
		}
		if l.AdminUp && !l.Carrier {
			out = append(out, Finding{
				Layer: LayerPhysical, Kind: "no_carrier", Severity: Critical, Subject: l.Name,
				Title:    fmt.Sprintf("%s is up but has no carrier", l.Name),
				Evidence: []string{"operational state " + l.Oper},
				Fix:      "check the cable, the switch port or the peer (for a veth: bring the other end up)",
			})
		}
		if d := l.CarrierChanges.Delta(); d > 0 {
			out = append(out, Finding{
				Layer: LayerPhysical, Kind: "carrier_flaps", Severity: Warning, Subject: l.Name, Rate: perSec(d, w),
				Title:    fmt.Sprintf("%s link flapped %d times", l.Name, d),
				Evidence: []string{"carrier changes " + rate(d, w), fmt.Sprintf("lifetime %d", l.CarrierChanges.End)},
				Fix:      "a flapping link drops everything in flight: check cable, optics, switch port and autonegotiation (ethtool " + l.Name + ")",
			})
		}
		nic, n := grown(w, named{"rx_missed_errors", l.RxMissed}, named{"rx_fifo_errors", l.RxFifo}, named{"rx_over_errors", l.RxOver})
		for _, k := range sortedKeys(l.NIC) {
			if d := l.NIC[k].Delta(); d > 0 {
				nic = append(nic, "ethtool -S "+k+" "+rate(d, w))
				if n == 0 {
					n = d
				}
			}
		}
		if len(nic) > 0 {
			fix := "the NIC ran out of receive descriptors: the host does not drain the ring fast enough"
			if r := l.Rings; r != nil && r.RxMax > r.RxPending {
				fix = fmt.Sprintf("enlarge the receive ring: ethtool -G %s rx %d (now %d); spread interrupts (RSS, irqbalance)", l.Name, r.RxMax, r.RxPending)
				nic = append(nic, fmt.Sprintf("rx ring %d of maximum %d", r.RxPending, r.RxMax))
			} else if r != nil {
				fix += fmt.Sprintf("; the ring is already at its maximum (%d): spread interrupts over more CPUs (RSS, irqbalance) or reduce per-packet work", r.RxMax)
			}
			if l.Driver != "" {
				nic = append(nic, "driver "+l.Driver+" firmware "+cmp.Or(l.Firmware, "?"))
			}
			out = append(out, Finding{
				Layer: LayerPhysical, Kind: "nic_rx_missed", Severity: Critical, Subject: l.Name, Rate: perSec(n, w),
				Title: fmt.Sprintf("%s: the NIC dropped received packets (no buffer)", l.Name), Evidence: nic, Fix: fix,
			})
		}
	}
	return out
}

func softnetRules(ev *Evidence) []Finding {
	s := ev.Softnet
	if s == nil || !s.HostWide {
		return nil
	}
	var out []Finding
	w := ev.Window
	if d := s.Dropped.Delta(); d > 0 {
		out = append(out, Finding{
			Layer: LayerKernel, Kind: "softnet_backlog", Severity: Critical, Subject: "softnet", Rate: perSec(d, w),
			Title:    "the per-CPU input backlog overflowed",
			Evidence: []string{"softnet_stat dropped " + rate(d, w)},
			Fix:      "raise net.core.netdev_max_backlog (sysctl -w net.core.netdev_max_backlog=…) and spread receive work over CPUs (RPS/RSS)",
		})
	}
	if d := s.TimeSqueezed.Delta(); perSec(d, w) >= SqueezeRate {
		out = append(out, Finding{
			Layer: LayerKernel, Kind: "softnet_squeeze", Severity: Warning, Subject: "softnet", Rate: perSec(d, w),
			Title:    "receive processing ran out of budget (time squeeze)",
			Evidence: []string{"softnet_stat time_squeeze " + rate(d, w)},
			Fix:      "raise net.core.netdev_budget and net.core.netdev_budget_usecs, or spread receive work over CPUs (RPS/RSS)",
		})
	}
	return out
}

func qdiscRules(ev *Evidence) []Finding {
	var out []Finding
	w := ev.Window
	for _, q := range ev.Qdiscs {
		d := q.Drops.Delta()
		if d == 0 {
			continue
		}
		subj := fmt.Sprintf("%s %s %s", q.Link, q.Kind, q.Handle)
		evd := []string{"qdisc drops " + rate(d, w)}
		if o := q.Overlimits.Delta(); o > 0 {
			evd = append(evd, "overlimits "+rate(o, w))
		}
		evd = append(evd, fmt.Sprintf("backlog %d B, %d packets queued", q.Backlog, q.Qlen))
		fix := fmt.Sprintf("the queue of %s overflows: raise its limit (tc qdisc change dev %s %s limit …) or the interface's txqueuelen, or send less", q.Link, q.Link, q.Kind)
		title := fmt.Sprintf("qdisc %s (%s) on %s is dropping packets", q.Kind, q.Handle, q.Link)
		switch q.Kind {
		case "tbf", "htb", "hfsc", "cake", "cbs", "taprio":
			title = fmt.Sprintf("rate limit: qdisc %s (%s) on %s is dropping packets", q.Kind, q.Handle, q.Link)
			if q.RateBps > 0 {
				evd = append(evd, fmt.Sprintf("rate %s, limit %d B", bitrate(q.RateBps), q.LimitBytes))
			}
			fix = fmt.Sprintf("traffic exceeds the shaped rate: raise the rate or the limit (tc qdisc change dev %s %s %s rate … limit …), or remove the shaper if it is not wanted", q.Link, parentArg(q.Parent), q.Kind)
		}
		f := Finding{
			Layer: LayerKernel, Kind: "qdisc_drops", Severity: Critical, Subject: subj, Rate: perSec(d, w),
			Title: title, Evidence: evd, Fix: fix,
		}
		// The sender whose packets the queue drops most, from drop tracing.
		for _, dr := range ev.Drops { // most first
			if dr.Reason == "QDISC_DROP" && dr.Link == q.Link && dr.Owner != nil {
				f.Owner = dr.Owner
				f.Evidence = append(f.Evidence, fmt.Sprintf("most dropped packets are sent by %s (pid %d) from socket %s (%d in the window)",
					dr.Owner.Comm, dr.Owner.PID, dr.Socket, dr.Packets))
				break
			}
		}
		out = append(out, f)
	}
	return out
}

func parentArg(p string) string {
	if p == "root" || p == "" {
		return "root"
	}
	return "parent " + p
}

func bitrate(bytesPerSec uint64) string {
	b := float64(bytesPerSec) * 8
	switch {
	case b >= 1e9:
		return fmt.Sprintf("%.3gGbit", b/1e9)
	case b >= 1e6:
		return fmt.Sprintf("%.3gMbit", b/1e6)
	case b >= 1e3:
		return fmt.Sprintf("%.3gKbit", b/1e3)
	}
	return fmt.Sprintf("%.0fbit", b)
}

func netfilterRules(ev *Evidence) []Finding {
	var out []Finding
	w := ev.Window
	for _, r := range ev.Netfilter {
		d := r.Packets.Delta()
		if d == 0 {
			continue
		}
		out = append(out, Finding{
			Layer: LayerKernel, Kind: "netfilter_drop", Severity: Critical, Subject: r.name(), Rate: perSec(d, w),
			Title:    "netfilter " + r.Verdict + " " + r.name() + " is dropping packets",
			Evidence: []string{"rule counter " + rate(d, w), fmt.Sprintf("lifetime %d packets", r.Packets.End)},
			Fix:      r.fix(),
		})
	}
	if len(out) > 0 {
		return out
	}
	// No counter grew: the kernel's drop reason still tells.
	var n uint64
	for _, d := range ev.Drops {
		if strings.HasPrefix(d.Reason, "NETFILTER_DROP") || d.Reason == "IPTABLES_DROP" {
			n += d.Packets
		}
	}
	if n == 0 {
		return nil
	}
	f := Finding{
		Layer: LayerKernel, Kind: "netfilter_drop", Severity: Critical, Subject: "netfilter", Rate: perSec(n, w),
		Title:    "netfilter is dropping packets",
		Evidence: []string{"kfree_skb reason NETFILTER_DROP " + rate(n, w)},
		Fix:      "list the firewall (nft -a list ruleset) and delete or narrow the rule that drops this traffic",
	}
	var cands []string
	for _, r := range ev.Netfilter {
		if !r.Counted {
			cands = append(cands, r.name())
		}
	}
	if len(cands) == 1 {
		r := ev.Netfilter[slices.IndexFunc(ev.Netfilter, func(r NftRule) bool { return r.name() == cands[0] })]
		f.Subject, f.Title, f.Fix = r.name(), "netfilter "+r.Verdict+" "+r.name()+" is dropping packets", r.fix()
		f.Evidence = append(f.Evidence, "the only drop rule or policy without a counter")
	} else if len(cands) > 0 {
		f.Evidence = append(f.Evidence, "drop rules or policies without counters: "+strings.Join(cands, "; "))
	}
	return []Finding{f}
}

func (r NftRule) name() string {
	if r.Policy {
		return fmt.Sprintf("policy of chain %s %s %s", r.Family, r.Table, r.Chain)
	}
	return fmt.Sprintf("rule %s %s %s handle %d", r.Family, r.Table, r.Chain, r.Handle)
}

func (r NftRule) fix() string {
	if r.Policy {
		return fmt.Sprintf("the chain's policy is drop: add an accept rule for this traffic (nft add rule %s %s %s … accept) or change the policy", r.Family, r.Table, r.Chain)
	}
	return fmt.Sprintf("if this traffic should pass, delete or narrow the rule: nft -a list chain %s %s %s; nft delete rule %s %s %s handle %d",
		r.Family, r.Table, r.Chain, r.Family, r.Table, r.Chain, r.Handle)
}

func conntrackRules(ev *Evidence) []Finding {
	c := ev.Conntrack
	if c == nil {
		return nil
	}
	w := ev.Window
	evd, n := grown(w, named{"insert_failed", c.InsertFailed}, named{"drop", c.Drop}, named{"early_drop", c.EarlyDrop})
	full := c.Max > 0 && float64(c.Count) >= ConntrackFill*float64(c.Max)
	if n == 0 && !full {
		return nil
	}
	evd = append(evd, fmt.Sprintf("table %d of %d entries (%.0f%%)", c.Count, c.Max, 100*float64(c.Count)/float64(max(c.Max, 1))))
	title := "the connection tracking table is full"
	if !full {
		title = "connection tracking fails to insert or drops entries"
	}
	return []Finding{{
		Layer: LayerKernel, Kind: "conntrack", Severity: Critical, Subject: "conntrack", Rate: perSec(n, w),
		Title: title, Evidence: evd,
		Fix: fmt.Sprintf("raise net.netfilter.nf_conntrack_max (now %d) and nf_conntrack_buckets, shorten timeouts, or exempt busy flows (notrack)", c.Max),
	}}
}

func (ev *Evidence) snmp(name string) uint64 {
	return ev.SNMP[name].Delta()
}

func udpRules(ev *Evidence) []Finding {
	w := ev.Window
	var out []Finding
	snmp := ev.snmp("Udp.RcvbufErrors") + ev.snmp("Udp6.RcvbufErrors")
	for _, s := range ev.Sockets {
		d := s.Drops.Delta()
		if s.Proto != "udp" || d == 0 {
			continue
		}
		own := ""
		if p := s.Owner(); p != nil {
			own = fmt.Sprintf(" of %s (pid %d)", p.Comm, p.PID)
		}
		evd := []string{"socket drops " + rate(d, w), fmt.Sprintf("Recv-Q %d B", s.RecvQ.End)}
		if snmp > 0 {
			evd = append(evd, "Udp RcvbufErrors "+rate(snmp, w))
		}
		out = append(out, Finding{
			Layer: LayerApplication, Kind: "udp_rcvbuf", Severity: Critical, Subject: "udp " + s.Local, Rate: perSec(d, w),
			Title:    fmt.Sprintf("UDP receive buffer full: socket %s%s drops datagrams", s.Local, own),
			Evidence: evd, Owner: s.Owner(),
			Fix: "the process does not read fast enough: read faster (more threads, recvmmsg), or give the socket a bigger buffer " +
				"(SO_RCVBUF; raise net.core.rmem_max / net.core.rmem_default)",
		})
	}
	if len(out) == 0 && snmp > 0 {
		out = append(out, Finding{
			Layer: LayerProtocol, Kind: "udp_rcvbuf", Severity: Critical, Subject: "udp", Rate: perSec(snmp, w),
			Title:    "UDP receive buffers overflow",
			Evidence: []string{"Udp RcvbufErrors " + rate(snmp, w), "no socket left with growing drops (it may have closed)"},
			Fix:      "a receiver does not read fast enough: read faster, or raise SO_RCVBUF / net.core.rmem_max",
		})
	}
	return out
}

func listenRules(ev *Evidence) []Finding {
	w := ev.Window
	ovf, drops := ev.snmp("TcpExt.ListenOverflows"), ev.snmp("TcpExt.ListenDrops")
	n := max(ovf, drops)
	if n == 0 {
		return nil
	}
	base := []string{"TcpExt ListenOverflows " + rate(ovf, w), "TcpExt ListenDrops " + rate(drops, w)}
	if d := ev.snmp("TcpExt.SyncookiesSent"); d > 0 {
		base = append(base, "SYN cookies sent "+rate(d, w))
	}
	somax := ""
	if ev.Somaxconn > 0 {
		somax = fmt.Sprintf(" (net.core.somaxconn is %d)", ev.Somaxconn)
	}
	var out []Finding
	for _, s := range ev.Sockets {
		if s.Proto != "tcp" || s.State != "listen" || s.Backlog == 0 && s.RecvQ.End == 0 || s.RecvQ.End < uint64(s.Backlog) {
			continue
		}
		own := ""
		if p := s.Owner(); p != nil {
			own = fmt.Sprintf(" of %s (pid %d)", p.Comm, p.PID)
		}
		evd := append([]string{fmt.Sprintf("accept queue %d of backlog %d (full)", s.RecvQ.End, s.Backlog)}, base...)
		out = append(out, Finding{
			Layer: LayerApplication, Kind: "listen_overflow", Severity: Critical, Subject: "tcp " + s.Local, Rate: perSec(n, w),
			Title:    fmt.Sprintf("listen backlog overflow: listener %s%s does not accept fast enough", s.Local, own),
			Evidence: evd, Owner: s.Owner(),
			Fix: "accept connections faster (more acceptor threads), and raise the backlog passed to listen(2)" + somax +
				" (sysctl -w net.core.somaxconn=… and net.ipv4.tcp_max_syn_backlog=…)",
		})
	}
	if len(out) == 0 {
		out = append(out, Finding{
			Layer: LayerProtocol, Kind: "listen_overflow", Severity: Critical, Subject: "tcp", Rate: perSec(n, w),
			Title:    "TCP listen queues overflow",
			Evidence: append(base, "no listener has a full accept queue now"),
			Fix:      "a server accepts too slowly: accept faster and raise its listen(2) backlog and net.core.somaxconn" + somax,
		})
	}
	return out
}

func tcpRules(ev *Evidence) []Finding {
	w := ev.Window
	var out []Finding
	sent, re := ev.snmp("Tcp.OutSegs"), ev.snmp("Tcp.RetransSegs")
	if sent >= RetransMinSegs && float64(re) >= RetransShare*float64(sent) {
		out = append(out, Finding{
			Layer: LayerProtocol, Kind: "tcp_retrans", Severity: Warning, Subject: "tcp", Rate: perSec(re, w),
			Title:    fmt.Sprintf("TCP retransmits %.1f%% of its segments", 100*float64(re)/float64(sent)),
			Evidence: []string{"RetransSegs " + rate(re, w), "OutSegs " + rate(sent, w), "TCPTimeouts " + rate(ev.snmp("TcpExt.TCPTimeouts"), w)},
			Fix:      "packets are lost on the path: look for drops below (qdisc, NIC, netfilter) on this host, then along the path (netmeter health names the remote group)",
		})
	}
	if d := ev.snmp("TcpExt.SyncookiesSent"); d > 0 && ev.snmp("TcpExt.ListenOverflows") == 0 {
		out = append(out, Finding{
			Layer: LayerProtocol, Kind: "syn_cookies", Severity: Warning, Subject: "tcp", Rate: perSec(d, w),
			Title:    "SYN queue overflows: the kernel answers with SYN cookies",
			Evidence: []string{"SyncookiesSent " + rate(d, w), "ListenDrops " + rate(ev.snmp("TcpExt.ListenDrops"), w)},
			Fix:      "a SYN flood, or a listener's backlog too small: raise net.ipv4.tcp_max_syn_backlog and the listen(2) backlog",
		})
	}
	return out
}

func queueRules(ev *Evidence) []Finding {
	var out []Finding
	for _, s := range ev.Sockets {
		if s.Proto != "tcp" || s.State == "listen" {
			continue
		}
		own := ""
		if p := s.Owner(); p != nil {
			own = fmt.Sprintf(" of %s (pid %d)", p.Comm, p.PID)
		}
		if s.RecvQ.End >= QueueGrowth && s.RecvQ.End > s.RecvQ.Start {
			out = append(out, Finding{
				Layer: LayerApplication, Kind: "recv_queue", Severity: Warning, Subject: "tcp " + s.Local + " " + s.Remote,
				Title:    fmt.Sprintf("Recv-Q grows on %s → %s%s: the application does not read", s.Local, s.Remote, own),
				Evidence: []string{fmt.Sprintf("Recv-Q %d → %d B", s.RecvQ.Start, s.RecvQ.End)}, Owner: s.Owner(),
				Fix: "the process is slow to read (busy, blocked or stuck): profile it; its peer will soon see a zero window",
			})
		}
		if s.SendQ.End >= QueueGrowth && s.SendQ.End > s.SendQ.Start {
			out = append(out, Finding{
				Layer: LayerApplication, Kind: "send_queue", Severity: Warning, Subject: "tcp " + s.Local + " " + s.Remote,
				Title:    fmt.Sprintf("Send-Q grows on %s → %s%s: the peer or the path is slower than the sender", s.Local, s.Remote, own),
				Evidence: []string{fmt.Sprintf("Send-Q %d → %d B", s.SendQ.Start, s.SendQ.End)}, Owner: s.Owner(),
				Fix: "check the peer's receive window and the path (netmeter health); not a problem if this is a bulk transfer",
			})
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// linkDropRules reports a link whose rx_dropped or tx_dropped grew, with the
// kernel's drop reasons on it, unless a finding already explains that link.
func linkDropRules(ev *Evidence, found []Finding) []Finding {
	var out []Finding
	w := ev.Window
	for _, l := range ev.Links {
		rx, tx := l.RxDropped.Delta(), l.TxDropped.Delta()
		if rx+tx == 0 || slices.ContainsFunc(found, func(f Finding) bool { return strings.HasPrefix(f.Subject, l.Name+" ") || f.Subject == l.Name }) {
			continue
		}
		evd := []string{"rx_dropped " + rate(rx, w), "tx_dropped " + rate(tx, w)}
		fix := "the stack or the driver dropped these packets: the kernel drop reasons on this link say why"
		if d := l.RxNoHandler.Delta(); d > 0 {
			evd = append(evd, "rx_nohandler "+rate(d, w))
			fix = "packets of a protocol nothing on this host handles (e.g. a VLAN or ethertype without an interface, LLDP): harmless unless unexpected; filter them at the switch"
		}
		for _, d := range ev.Drops {
			if d.Link == l.Name {
				evd = append(evd, fmt.Sprintf("kernel drop reason %s: %d packets", d.Reason, d.Packets))
			}
		}
		out = append(out, Finding{
			Layer: LayerKernel, Kind: "link_dropped", Severity: Warning, Subject: l.Name, Rate: perSec(rx+tx, w),
			Title: fmt.Sprintf("%s: the dropped counter grows", l.Name), Evidence: evd, Fix: fix,
		})
	}
	return out
}

// dropHints are fixes for kernel drop reasons (enum skb_drop_reason) that
// no other rule explains.
var dropHints = map[string]string{
	"NO_SOCKET":           "packets to a port nobody listens on: a client uses the wrong port, or its server is down",
	"SOCKET_BACKLOG":      "a socket's backlog is full while its owner holds the socket lock: the process handles each packet too slowly",
	"SOCKET_RCVBUFF":      "a socket's receive buffer is full: its process does not read fast enough (or raise SO_RCVBUF)",
	"SOCKET_FILTER":       "a socket filter (BPF, SO_ATTACH_FILTER) discarded the packets: check the program attached to the socket",
	"TCP_ZEROWINDOW":      "the receiver's window is zero: the receiving process does not read",
	"TCP_OFOMERGE":        "out-of-order queue pruned for memory: raise net.ipv4.tcp_rmem or fix the loss upstream",
	"PROTO_MEM":           "the protocol's memory limit is reached: raise net.ipv4.tcp_mem / udp_mem or find who holds the memory",
	"NEIGH_FAILED":        "neighbour resolution (ARP/NDP) failed: the next hop does not answer",
	"NEIGH_QUEUEFULL":     "packets wait for neighbour resolution and the queue is full: the next hop does not answer",
	"NEIGH_DEAD":          "the neighbour entry died while packets waited",
	"IP_RPFILTER":         "reverse-path filter: the route back to the source does not use the interface the packet came in on (check routes or net.ipv4.conf.*.rp_filter)",
	"IP_INADDRERRORS":     "packets to an address that is not this host's and is not forwarded (net.ipv4.ip_forward)",
	"IP_INNOROUTES":       "no route for received packets",
	"IP_OUTNOROUTES":      "no route for sent packets: add a route",
	"IP_NOPROTO":          "packets of an IP protocol nothing handles",
	"UNHANDLED_PROTO":     "packets of a protocol nothing handles",
	"OTHERHOST":           "packets for another host's MAC address (promiscuous mode or flooding switch): harmless",
	"PKT_TOO_BIG":         "packets larger than the MTU without fragmentation: fix the MTU along the path",
	"CPU_BACKLOG":         "the per-CPU input backlog overflowed: raise net.core.netdev_max_backlog, spread receive work (RPS/RSS)",
	"FULL_RING":           "a packet socket's ring (capture, tap) is full: its reader is too slow",
	"DEV_READY":           "the device was not ready (down or carrier lost)",
	"TC_INGRESS":          "a tc ingress filter or action dropped the packets: tc filter show dev IFACE ingress",
	"TC_EGRESS":           "a tc egress filter or action dropped the packets: tc filter show dev IFACE egress",
	"TC_DROP":             "a tc filter or action dropped the packets",
	"XDP":                 "an XDP program dropped the packets: ip link show dev IFACE",
	"IP_CSUM":             "corrupted packets (bad checksum): check the cable, NIC or a middlebox",
	"UDP_CSUM":            "corrupted packets (bad checksum): check the cable, NIC or a middlebox",
	"TCP_CSUM":            "corrupted packets (bad checksum): check the cable, NIC or a middlebox",
	"NETFILTER_DROP":      "a netfilter rule or policy dropped the packets: nft -a list ruleset",
	"QDISC_DROP":          "a queueing discipline dropped the packets: tc -s qdisc show",
	"SKB_UCOPY_FAULT":     "copying to the application failed (bad buffer)",
	"TCP_LISTEN_OVERFLOW": "a listener's accept queue is full: accept faster, raise the backlog",
}

// benignDrops are drop reasons that are housekeeping rather than loss: data
// freed with a socket that closed unread, duplicate TCP segments, and the
// unspecified reason (too common to mean anything by itself). They are
// listed in the report, never a finding.
var benignDrops = map[string]bool{
	"NOT_SPECIFIED": true, "SOCKET_CLOSE": true, "QUEUE_PURGE": true, "SOCKET_DESTROYED": true,
	"TCP_CLOSE": true, "TCP_ABORT_ON_DATA": true, "TCP_OLD_DATA": true, "TCP_OLD_ACK": true, "TCP_TOO_OLD_ACK": true,
}

// explained says which finding kinds explain a drop reason.
func explained(reason string, found []Finding) bool {
	var kinds []string
	switch {
	case strings.HasPrefix(reason, "NETFILTER") || strings.HasSuffix(reason, "TABLES_DROP"):
		kinds = []string{"netfilter_drop"}
	case strings.HasPrefix(reason, "QDISC") || strings.HasPrefix(reason, "FQ_") || strings.HasPrefix(reason, "CAKE"):
		kinds = []string{"qdisc_drops"}
	case reason == "SOCKET_RCVBUFF":
		kinds = []string{"udp_rcvbuf", "recv_queue"}
	case reason == "CPU_BACKLOG":
		kinds = []string{"softnet_backlog"}
	case strings.HasPrefix(reason, "TCP_LISTEN") || reason == "TCP_REQQFULLDROP":
		kinds = []string{"listen_overflow", "syn_cookies"}
	case benignDrops[reason]:
		return true
	}
	return slices.ContainsFunc(found, func(f Finding) bool { return slices.Contains(kinds, f.Kind) })
}

// dropReasonRules reports, per reason and link, what the kernel dropped
// that no other finding explains.
func dropReasonRules(ev *Evidence, found []Finding) []Finding {
	type key struct{ reason, link string }
	sums := map[key]uint64{}
	top := map[key]Drop{}
	var keys []key
	for _, d := range ev.Drops { // most first
		k := key{d.Reason, d.Link}
		if explained(d.Reason, found) {
			continue
		}
		if _, ok := sums[k]; !ok {
			keys = append(keys, k)
		}
		sums[k] += d.Packets
		if t, ok := top[k]; !ok || t.Owner == nil && d.Owner != nil {
			top[k] = d
		}
	}
	var out []Finding
	w := ev.Window
	for _, k := range keys {
		n := sums[k]
		if n < KernelDropMin {
			continue
		}
		on := ""
		if k.link != "" {
			on = " on " + k.link
		}
		f := Finding{
			Layer: LayerKernel, Kind: "kernel_drops", Severity: Warning, Subject: strings.TrimSpace(k.reason + " " + k.link), Rate: perSec(n, w),
			Title:    fmt.Sprintf("the kernel drops packets%s: %s", on, k.reason),
			Evidence: []string{"kfree_skb reason " + k.reason + " " + rate(n, w)},
			Fix:      cmp.Or(dropHints[k.reason], "see the kernel's enum skb_drop_reason (include/net/dropreason-core.h) for "+k.reason),
		}
		if d := top[k]; d.Owner != nil {
			f.Owner = d.Owner
			f.Layer = LayerApplication
			f.Evidence = append(f.Evidence, fmt.Sprintf("socket %s of %s (pid %d)", d.Socket, d.Owner.Comm, d.Owner.PID))
		}
		out = append(out, f)
	}
	return out
}
