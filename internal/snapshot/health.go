package snapshot

import "strconv"

// TCPStats is one TCP connection's health. Gauges and lifetime counters are
// the kernel's own (struct tcp_sock, read when netmeter reads the sockets,
// so they cost nothing per packet and include what happened before netmeter
// started); RTT samples and the fast/RTO split of retransmissions come from
// the health hooks (sock_ops and tcp tracepoints) and start when netmeter
// saw the connection open.
type TCPStats struct {
	// SRTT is the smoothed round-trip time (tcpi_rtt), RTTVar its mean
	// deviation (tcpi_rttvar), MinRTT the kernel's windowed minimum
	// (tcpi_min_rtt), all in microseconds.
	SRTT   uint32 `json:"srtt_us"`
	RTTVar uint32 `json:"rttvar_us"`
	MinRTT uint32 `json:"min_rtt_us"`
	// Interval summarises the RTT samples the kernel took during the last
	// interval (one per round trip: the kernel's RTT callback fires when an
	// ACK covers the mark it set one round trip earlier); Samples is 0 when
	// there were none, e.g. an idle connection or one opened before netmeter.
	Interval RTTWindow `json:"interval_rtt"`
	// Cwnd and Ssthresh are in segments; SndWnd is the window the peer
	// advertises (0: the remote receiver is full), RcvWnd the one this end
	// advertises (0: this host's application does not read).
	Cwnd     uint32 `json:"cwnd"`
	Ssthresh uint32 `json:"ssthresh"`
	SndWnd   uint32 `json:"snd_wnd"`
	RcvWnd   uint32 `json:"rcv_wnd"`
	// RcvQueue is bytes received and not yet read by the application;
	// SndQueue bytes written and not yet acknowledged by the peer.
	RcvQueue uint32 `json:"rcv_queue_bytes"`
	SndQueue uint32 `json:"snd_queue_bytes"`
	// CAState is the congestion-avoidance state: "open", "disorder", "cwr",
	// "recovery" (fast retransmit) or "loss" (after a timeout).
	CAState string `json:"ca_state"`
	// Lost and Retrans are segments currently marked lost / in flight again.
	Lost    uint32 `json:"lost_segs"`
	Retrans uint32 `json:"retrans_out_segs"`
	// Setup is the handshake time in microseconds: SYN sent → ESTABLISHED
	// for a client, the SYN-ACK's round trip for a server; 0 when netmeter
	// did not see the connection open.
	Setup uint32 `json:"setup_us"`
	// StateChanges counts TCP state transitions netmeter saw.
	StateChanges uint32 `json:"state_changes"`

	Total TCPCounters `json:"total"` // since the connection opened
	Delta TCPCounters `json:"delta"` // during the last interval
}

// RTTWindow summarises RTT samples, in microseconds.
type RTTWindow struct {
	Samples uint32 `json:"samples"`
	Min     uint32 `json:"min_us"`
	Max     uint32 `json:"max_us"`
	Mean    uint32 `json:"mean_us"`
}

// TCPCounters are a TCP connection's event counters.
type TCPCounters struct {
	SegsOut     uint64 `json:"segs_out"`      // tcpi_segs_out: every segment sent, retransmissions included
	SegsIn      uint64 `json:"segs_in"`       // tcpi_segs_in
	DataSegsOut uint64 `json:"data_segs_out"` // segments that carried payload
	DataSegsIn  uint64 `json:"data_segs_in"`
	// RetransSegs is tcpi_total_retrans: every retransmitted segment.
	// FastRetrans and RTORetrans split the retransmissions netmeter saw by
	// cause: outside timeout recovery (fast retransmit, tail loss probe,
	// SACK recovery) and after a retransmission timeout.
	RetransSegs uint64 `json:"retrans_segs"`
	FastRetrans uint64 `json:"fast_retrans_segs"`
	RTORetrans  uint64 `json:"rto_retrans_segs"`
	// RTOs counts retransmission timeouts (tcpi_total_rto).
	RTOs           uint64 `json:"rto_events"`
	ResetsSent     uint64 `json:"resets_sent"`
	ResetsReceived uint64 `json:"resets_received"`
	// RTTSamples and RTTSum (µs) give a mean RTT over any span of deltas.
	RTTSamples uint64 `json:"rtt_samples"`
	RTTSum     uint64 `json:"rtt_sum_us"`
}

// Sub returns c-o, field by field, clamping at zero.
func (c TCPCounters) Sub(o TCPCounters) TCPCounters {
	d := func(a, b uint64) uint64 {
		if a < b {
			return 0
		}
		return a - b
	}
	return TCPCounters{
		SegsOut: d(c.SegsOut, o.SegsOut), SegsIn: d(c.SegsIn, o.SegsIn),
		DataSegsOut: d(c.DataSegsOut, o.DataSegsOut), DataSegsIn: d(c.DataSegsIn, o.DataSegsIn),
		RetransSegs: d(c.RetransSegs, o.RetransSegs), FastRetrans: d(c.FastRetrans, o.FastRetrans),
		RTORetrans: d(c.RTORetrans, o.RTORetrans), RTOs: d(c.RTOs, o.RTOs),
		ResetsSent: d(c.ResetsSent, o.ResetsSent), ResetsReceived: d(c.ResetsReceived, o.ResetsReceived),
		RTTSamples: d(c.RTTSamples, o.RTTSamples), RTTSum: d(c.RTTSum, o.RTTSum),
	}
}

// Add returns c+o, field by field.
func (c TCPCounters) Add(o TCPCounters) TCPCounters {
	return TCPCounters{
		SegsOut: c.SegsOut + o.SegsOut, SegsIn: c.SegsIn + o.SegsIn,
		DataSegsOut: c.DataSegsOut + o.DataSegsOut, DataSegsIn: c.DataSegsIn + o.DataSegsIn,
		RetransSegs: c.RetransSegs + o.RetransSegs, FastRetrans: c.FastRetrans + o.FastRetrans,
		RTORetrans: c.RTORetrans + o.RTORetrans, RTOs: c.RTOs + o.RTOs,
		ResetsSent: c.ResetsSent + o.ResetsSent, ResetsReceived: c.ResetsReceived + o.ResetsReceived,
		RTTSamples: c.RTTSamples + o.RTTSamples, RTTSum: c.RTTSum + o.RTTSum,
	}
}

// Drop is packets the kernel dropped for one reason at one place, from the
// skb:kfree_skb tracepoint. Reason is the kernel's enum skb_drop_reason
// without its SKB_DROP_REASON_ prefix (e.g. "NETFILTER_DROP",
// "SOCKET_RCVBUFF", "TCP_LISTEN_OVERFLOW", "QDISC_DROP"), read from the
// running kernel's BTF so new reasons are named too.
type Drop struct {
	Reason string `json:"reason"`
	// Interface is the device the packet was on (ifindex in NetnsInode's
	// namespace); "" when the packet had none (e.g. dropped at a socket).
	Interface  string `json:"interface,omitempty"`
	Ifindex    int    `json:"ifindex"`
	NetnsInode uint64 `json:"netns_inode"`
	Family     int    `json:"family"` // 4, 6; 0 for non-IP
	Proto      string `json:"proto"`  // "tcp", "udp", "icmp", "icmpv6", … ; "" unknown
	// The socket the packet was for or from, and its owner, when known.
	Cookie    uint64 `json:"cookie,omitempty"`
	PID       int    `json:"pid,omitempty"`
	Comm      string `json:"comm,omitempty"`
	Container string `json:"container,omitempty"`

	Packets      uint64 `json:"packets"` // since netmeter started
	Bytes        uint64 `json:"bytes"`
	DeltaPackets uint64 `json:"delta_packets"` // during the last interval
	DeltaBytes   uint64 `json:"delta_bytes"`
}

// ProtoName names an IP protocol number the way Drop.Proto does: "tcp",
// "udp", "icmp", "icmpv6", …, "" for 0 and "ip-N" for the others.
func ProtoName(p uint8) string {
	switch p {
	case 0:
		return ""
	case 1:
		return "icmp"
	case 2:
		return "igmp"
	case 6:
		return "tcp"
	case 17:
		return "udp"
	case 47:
		return "gre"
	case 58:
		return "icmpv6"
	case 132:
		return "sctp"
	case 136:
		return "udplite"
	}
	return "ip-" + strconv.Itoa(int(p))
}
