package diagnose

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func c(start, end uint64) Counter { return Counter{Start: start, End: end} }

func TestRules(t *testing.T) {
	owner := []Process{{PID: 42, Comm: "sink"}}
	lo := Link{Name: "lo", Kind: "loopback", AdminUp: true, Oper: "unknown"}
	tests := []struct {
		name  string
		ev    Evidence
		kinds []string // in order
		owner int      // pid of the first finding's owner, 0 = none
		in    string   // the first finding's title or fix contains this
	}{
		{name: "quiet", ev: Evidence{Links: []Link{lo}, SNMP: map[string]Counter{"Udp.RcvbufErrors": c(7, 7)}}},
		{name: "lifetime totals alone decide nothing", ev: Evidence{
			Qdiscs:    []Qdisc{{Link: "eth0", Kind: "tbf", Handle: "1:", Drops: c(900, 900)}},
			Netfilter: []NftRule{{Family: "inet", Table: "f", Chain: "in", Handle: 3, Verdict: "drop", Counted: true, Packets: c(5, 5)}},
			Sockets:   []Socket{{Proto: "udp", Local: "0.0.0.0:53", Drops: c(100, 100), Owners: owner}},
			SNMP:      map[string]Counter{"TcpExt.ListenOverflows": c(9, 9)},
		}},
		{name: "udp socket drops", ev: Evidence{
			SNMP:    map[string]Counter{"Udp.RcvbufErrors": c(10, 60)},
			Sockets: []Socket{{Proto: "udp", Local: "127.0.0.1:5000", Drops: c(0, 50), RecvQ: c(2304, 2304), Owners: owner}},
		}, kinds: []string{"udp_rcvbuf"}, owner: 42, in: "127.0.0.1:5000"},
		{name: "udp errors, socket gone", ev: Evidence{SNMP: map[string]Counter{"Udp6.RcvbufErrors": c(0, 3)}},
			kinds: []string{"udp_rcvbuf"}, in: "SO_RCVBUF"},
		{name: "listen overflow with full listener", ev: Evidence{
			SNMP: map[string]Counter{"TcpExt.ListenOverflows": c(1, 20), "TcpExt.ListenDrops": c(1, 20)},
			Sockets: []Socket{
				{Proto: "tcp", State: "listen", Local: "127.0.0.1:80", Backlog: 128, RecvQ: c(0, 3)},
				{Proto: "tcp", State: "listen", Local: "127.0.0.1:8080", Backlog: 1, RecvQ: c(2, 2), Owners: owner},
			},
			Somaxconn: 4096,
		}, kinds: []string{"listen_overflow"}, owner: 42, in: "127.0.0.1:8080"},
		{name: "listen overflow without a full listener", ev: Evidence{SNMP: map[string]Counter{"TcpExt.ListenDrops": c(0, 4)}},
			kinds: []string{"listen_overflow"}, in: "listen queues"},
		{name: "netfilter counter", ev: Evidence{Netfilter: []NftRule{
			{Family: "inet", Table: "f", Chain: "in", Handle: 3, Verdict: "drop", Counted: true, Packets: c(5, 5)},
			{Family: "ip", Table: "t", Chain: "input", Handle: 9, Verdict: "drop", Counted: true, Packets: c(5, 500)},
		}}, kinds: []string{"netfilter_drop"}, in: "nft delete rule ip t input handle 9"},
		{name: "netfilter by drop reason, one candidate", ev: Evidence{
			Netfilter: []NftRule{{Family: "inet", Table: "f", Chain: "in", Verdict: "drop", Policy: true}},
			Drops:     []Drop{{Reason: "NETFILTER_DROP", Packets: 30}},
		}, kinds: []string{"netfilter_drop"}, in: "policy of chain inet f in"},
		{name: "netfilter by drop reason, several candidates", ev: Evidence{
			Netfilter: []NftRule{{Family: "inet", Table: "f", Chain: "in", Handle: 1, Verdict: "drop"}, {Family: "inet", Table: "f", Chain: "in", Handle: 2, Verdict: "reject"}},
			Drops:     []Drop{{Reason: "NETFILTER_DROP", Packets: 30}},
		}, kinds: []string{"netfilter_drop"}, in: "nft -a list ruleset"},
		{name: "tbf", ev: Evidence{Qdiscs: []Qdisc{{Link: "veth0", Kind: "tbf", Handle: "1:", Parent: "root", Drops: c(0, 70), Overlimits: c(0, 90), RateBps: 12500}}},
			kinds: []string{"qdisc_drops"}, in: "tc qdisc change dev veth0 root tbf"},
		{name: "fifo", ev: Evidence{Qdiscs: []Qdisc{{Link: "eth0", Kind: "pfifo_fast", Handle: "0:", Drops: c(0, 7)}}},
			kinds: []string{"qdisc_drops"}, in: "txqueuelen"},
		{name: "nic missed, ring below max", ev: Evidence{Links: []Link{{Name: "eth0", AdminUp: true, Carrier: true, BusInfo: "0000:01:00.0",
			RxMissed: c(0, 10), Rings: &Rings{RxPending: 256, RxMax: 4096}, Driver: "ixgbe"}}},
			kinds: []string{"nic_rx_missed"}, in: "ethtool -G eth0 rx 4096"},
		{name: "nic driver counter, ring at max", ev: Evidence{Links: []Link{{Name: "eth0", AdminUp: true, Carrier: true, BusInfo: "0000:01:00.0",
			NIC: map[string]Counter{"rx_no_buffer_count": c(1, 5)}, Rings: &Rings{RxPending: 4096, RxMax: 4096}}}},
			kinds: []string{"nic_rx_missed"}, in: "already at its maximum"},
		{name: "no carrier and flaps", ev: Evidence{Links: []Link{lo, {Name: "eth1", AdminUp: true, Oper: "down", CarrierChanges: c(4, 6)}}},
			kinds: []string{"no_carrier", "carrier_flaps"}, in: "no carrier"},
		{name: "softnet in the host namespace", ev: Evidence{Softnet: &Softnet{Dropped: c(0, 5), TimeSqueezed: c(0, 100), HostWide: true}},
			kinds: []string{"softnet_backlog", "softnet_squeeze"}, in: "netdev_max_backlog"},
		{name: "softnet is context in another namespace", ev: Evidence{Softnet: &Softnet{Dropped: c(0, 5), TimeSqueezed: c(0, 100)}}},
		{name: "conntrack full", ev: Evidence{Conntrack: &Conntrack{Count: 95, Max: 100}}, kinds: []string{"conntrack"}, in: "nf_conntrack_max"},
		{name: "conntrack insert failures", ev: Evidence{Conntrack: &Conntrack{Count: 5, Max: 100, InsertFailed: c(0, 2)}}, kinds: []string{"conntrack"}, in: "fails to insert"},
		{name: "retransmissions", ev: Evidence{SNMP: map[string]Counter{"Tcp.OutSegs": c(0, 1000), "Tcp.RetransSegs": c(0, 50)}},
			kinds: []string{"tcp_retrans"}, in: "5.0%"},
		{name: "few segments decide nothing", ev: Evidence{SNMP: map[string]Counter{"Tcp.OutSegs": c(0, 100), "Tcp.RetransSegs": c(0, 50)}}},
		{name: "syn cookies", ev: Evidence{SNMP: map[string]Counter{"TcpExt.SyncookiesSent": c(0, 5)}}, kinds: []string{"syn_cookies"}},
		{name: "growing queues", ev: Evidence{Sockets: []Socket{
			{Proto: "tcp", State: "established", Local: "a", Remote: "b", RecvQ: c(1000, 200000), Owners: owner},
			{Proto: "tcp", State: "established", Local: "c", Remote: "d", SendQ: c(100000, 300000)},
			{Proto: "tcp", State: "established", Local: "e", Remote: "f", RecvQ: c(300000, 200000)},
		}}, kinds: []string{"recv_queue", "send_queue"}, owner: 42, in: "does not read"},
		{name: "link dropped with its drop reasons", ev: Evidence{
			Links: []Link{{Name: "eth0", AdminUp: true, Carrier: true, RxDropped: c(0, 30)}},
			Drops: []Drop{{Reason: "OTHERHOST", Link: "eth0", Packets: 30}},
		}, kinds: []string{"link_dropped", "kernel_drops"}, in: "kernel drop reason OTHERHOST: 30 packets"},
		{name: "link dropped by no handler", ev: Evidence{Links: []Link{{Name: "eth0", AdminUp: true, Carrier: true, RxDropped: c(0, 3), RxNoHandler: c(0, 3)}}},
			kinds: []string{"link_dropped"}, in: "nothing on this host handles"},
		{name: "link drops explained by a qdisc", ev: Evidence{
			Links:  []Link{{Name: "eth0", AdminUp: true, Carrier: true, TxDropped: c(0, 30)}},
			Qdiscs: []Qdisc{{Link: "eth0", Kind: "tbf", Handle: "1:", Drops: c(0, 30)}},
			Drops:  []Drop{{Reason: "QDISC_DROP", Link: "eth0", Packets: 30}},
		}, kinds: []string{"qdisc_drops"}},
		{name: "unexplained drop reason with a socket", ev: Evidence{Drops: []Drop{
			{Reason: "SOCKET_BACKLOG", Link: "lo", Packets: 8},
			{Reason: "SOCKET_BACKLOG", Link: "lo", Packets: 5, Socket: "tcp 127.0.0.1:80", Owner: &Process{PID: 42, Comm: "srv"}},
			{Reason: "NOT_SPECIFIED", Link: "lo", Packets: 500},
			{Reason: "SOCKET_CLOSE", Packets: 500},
			{Reason: "NO_SOCKET", Link: "lo", Packets: 9},
		}}, kinds: []string{"kernel_drops"}, owner: 42, in: "backlog is full"},
		{name: "qdisc drops name the sender", ev: Evidence{
			Qdiscs: []Qdisc{{Link: "eth0", Kind: "tbf", Handle: "1:", Drops: c(0, 30)}},
			Drops: []Drop{{Reason: "QDISC_DROP", Link: "eth0", Packets: 2}, {Reason: "QDISC_DROP", Link: "eth0", Packets: 1,
				Socket: "udp 10.0.0.1:5000", Owner: &Process{PID: 42, Comm: "sender"}}},
		}, kinds: []string{"qdisc_drops"}, owner: 42, in: "sent by sender (pid 42)"},
		{name: "severity then layer order", ev: Evidence{
			SNMP:   map[string]Counter{"Udp.RcvbufErrors": c(0, 3), "TcpExt.SyncookiesSent": c(0, 5)},
			Qdiscs: []Qdisc{{Link: "eth0", Kind: "fq_codel", Handle: "0:", Drops: c(0, 1)}},
		}, kinds: []string{"qdisc_drops", "udp_rcvbuf", "syn_cookies"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.ev.Window = 2 * time.Second
			got := Rules(tt.ev)
			var kinds []string
			for _, f := range got {
				kinds = append(kinds, f.Kind)
				if f.Fix == "" || f.Title == "" || len(f.Evidence) == 0 || f.Subject == "" {
					t.Errorf("incomplete finding %+v", f)
				}
				if !slices.Contains(Layers, f.Layer) {
					t.Errorf("finding %s in layer %q", f.Kind, f.Layer)
				}
			}
			if !slices.Equal(kinds, tt.kinds) {
				t.Fatalf("kinds %v, want %v", kinds, tt.kinds)
			}
			if len(got) == 0 {
				return
			}
			f := got[0]
			if tt.owner != 0 && (f.Owner == nil || f.Owner.PID != tt.owner) {
				t.Errorf("owner %+v, want pid %d", f.Owner, tt.owner)
			}
			if tt.owner == 0 && f.Owner != nil {
				t.Errorf("owner %+v, want none", f.Owner)
			}
			if tt.in != "" && !strings.Contains(f.Title+" "+f.Fix+" "+strings.Join(f.Evidence, " "), tt.in) {
				t.Errorf("%q not in %+v", tt.in, f)
			}
		})
	}
}

func TestCounter(t *testing.T) {
	if d := c(10, 4).Delta(); d != 0 {
		t.Errorf("a counter that went back grew by %d", d)
	}
	if r := c(0, 10).Rate(2 * time.Second); r != 5 {
		t.Errorf("rate %v, want 5", r)
	}
	if r := c(0, 10).Rate(0); r != 0 {
		t.Errorf("rate over no window %v", r)
	}
}

func TestMerge(t *testing.T) {
	r0 := &reading{ev: Evidence{
		Links:   []Link{{Name: "eth0", RxDropped: Counter{End: 5}}},
		Qdiscs:  []Qdisc{{Link: "eth0", Kind: "tbf", Handle: "1:", Drops: Counter{End: 7}}},
		SNMP:    map[string]Counter{"Udp.RcvbufErrors": {End: 3}},
		Sockets: []Socket{{Proto: "udp", Inode: 9, Drops: Counter{End: 1}}},
		Notes:   []Note{{LayerKernel, "x", Unavailable, "y"}},
	}}
	r1 := &reading{ev: Evidence{
		Links:   []Link{{Name: "eth0", RxDropped: Counter{End: 8}}, {Name: "new0", RxDropped: Counter{End: 2}}},
		Qdiscs:  []Qdisc{{Link: "eth0", Kind: "tbf", Handle: "1:", Drops: Counter{End: 9}}},
		SNMP:    map[string]Counter{"Udp.RcvbufErrors": {End: 4}, "Udp.New": {End: 6}},
		Sockets: []Socket{{Proto: "udp", Inode: 9, Drops: Counter{End: 4}}, {Proto: "udp", Inode: 10, Drops: Counter{End: 2}}},
		Notes:   []Note{{LayerKernel, "x", Unavailable, "y"}},
	}}
	ev := merge(r0, r1)
	if ev.Links[0].RxDropped != c(5, 8) || ev.Links[1].RxDropped != c(0, 2) {
		t.Errorf("links %+v", ev.Links)
	}
	if ev.Qdiscs[0].Drops != c(7, 9) {
		t.Errorf("qdisc %+v", ev.Qdiscs[0])
	}
	if ev.SNMP["Udp.RcvbufErrors"] != c(3, 4) || ev.SNMP["Udp.New"].Delta() != 0 {
		t.Errorf("snmp %+v", ev.SNMP)
	}
	if ev.Sockets[0].Drops != c(1, 4) || ev.Sockets[1].Drops != c(0, 2) {
		t.Errorf("sockets %+v", ev.Sockets)
	}
	if len(ev.Notes) != 1 {
		t.Errorf("notes %+v", ev.Notes)
	}
}
