package health

import "github.com/netmeter/netmeter/internal/snapshot"

// tally is what one interval (or a sum of intervals) of some connections
// adds up to: a flow, a group, a monitor.
type tally struct {
	traffic snapshot.Traffic
	// conns counts the connections present in the interval, newConns those
	// of them that were not in the same flow the interval before. Over a
	// window, distinct connections = conns of the first interval − its
	// newConns + every interval's newConns (see sumFlows).
	conns, newConns int

	// TCP, connected sockets only.
	tcp            snapshot.TCPCounters // deltas: segments, retransmissions, RTOs, resets, RTT samples
	rttMin, rttMax uint32               // µs, from the kernel's per-interval RTT windows; rttMin 0: none
	srttSum, srttN uint64               // SRTT of active connections, the RTT when there are no samples
	zeroRcv        int                  // active connections this end advertised a zero window on
	zeroSnd        int                  // active connections the peer advertised a zero window on
	rcvQueue       uint64               // bytes received and not read, summed over active connections

	drops, socketDrops uint64 // packets the kernel dropped; socketDrops for socket reasons
}

// receivingStates and sendingStates are the TCP states in which a zero
// receive (send) window means a stall. "" is a TCP socket whose state the
// snapshot does not name.
var (
	receivingStates = map[string]bool{"": true, "established": true, "fin_wait1": true, "fin_wait2": true}
	sendingStates   = map[string]bool{"": true, "established": true, "close_wait": true}
)

// addConn adds one connection's interval. Only connected sockets' TCP
// health counts: a listener's counters say nothing about a path.
func (t *tally) addConn(c *snapshot.Connection, tcp *snapshot.TCPStats, connected bool) {
	t.traffic = t.traffic.Add(c.Delta)
	t.conns++
	if tcp == nil || !connected {
		return
	}
	t.tcp = t.tcp.Add(tcp.Delta)
	if w := tcp.Interval; w.Samples > 0 {
		if t.rttMin == 0 || (w.Min > 0 && w.Min < t.rttMin) {
			t.rttMin = w.Min
		}
		t.rttMax = max(t.rttMax, w.Max)
	}
	if c.Closed {
		return
	}
	moving := c.Delta.TxBytes+c.Delta.RxBytes > 0
	if moving && tcp.SRTT > 0 {
		t.srttSum += uint64(tcp.SRTT)
		t.srttN++
	}
	if !moving && tcp.RcvQueue == 0 && tcp.SndQueue == 0 {
		return // idle: its windows are stale
	}
	if tcp.RcvWnd == 0 && receivingStates[c.State] {
		t.zeroRcv++
	}
	if tcp.SndWnd == 0 && sendingStates[c.State] {
		t.zeroSnd++
	}
	t.rcvQueue += uint64(tcp.RcvQueue)
}

// add adds o into t. Gauges (queues, zero windows) are summed too: over a
// window they read as connection-intervals.
func (t *tally) add(o *tally) {
	t.traffic = t.traffic.Add(o.traffic)
	t.conns += o.conns
	t.newConns += o.newConns
	t.tcp = t.tcp.Add(o.tcp)
	if o.rttMin > 0 && (t.rttMin == 0 || o.rttMin < t.rttMin) {
		t.rttMin = o.rttMin
	}
	t.rttMax = max(t.rttMax, o.rttMax)
	t.srttSum += o.srttSum
	t.srttN += o.srttN
	t.zeroRcv += o.zeroRcv
	t.zeroSnd += o.zeroSnd
	t.rcvQueue += o.rcvQueue
	t.drops += o.drops
	t.socketDrops += o.socketDrops
}

// rtt returns the mean RTT in µs and how many samples it is over: the
// kernel's RTT samples when there are any, else the SRTT of connections
// that moved data. source is "samples", "srtt" or "".
func (t *tally) rtt() (mean float64, n uint64, source string) {
	sum, n := t.rttTotals()
	switch {
	case n == 0:
		return 0, 0, ""
	case t.tcp.RTTSamples > 0:
		source = "samples"
	default:
		source = "srtt"
	}
	return float64(sum) / float64(n), n, source
}

// rttTotals returns the (sum, count) the RTT mean is made of.
func (t *tally) rttTotals() (sum, n uint64) {
	if t.tcp.RTTSamples > 0 {
		return t.tcp.RTTSum, t.tcp.RTTSamples
	}
	return t.srttSum, t.srttN
}

// retransRatio is retransmitted segments per segment sent.
func (t *tally) retransRatio() float64 {
	if t.tcp.SegsOut == 0 {
		return 0
	}
	return float64(t.tcp.RetransSegs) / float64(t.tcp.SegsOut)
}

// active reports whether the tally has any TCP activity to learn from.
func (t *tally) active() bool {
	_, n := t.rttTotals()
	return t.tcp.SegsOut > 0 || n > 0
}
