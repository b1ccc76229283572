// Package metrics is the Prometheus exposition of netmeter's state: an
// [Exporter] (a prometheus.Collector) that the agent updates once per
// interval with the snapshot, the health report, the quota results and the
// ledger, and that every scrape reads as one consistent view.
//
// Interfaces use node_exporter's metric and label names, containers
// cAdvisor's, all under the netmeter_ prefix. Counters only grow: programs,
// containers, remote groups, accounts and drop reasons are bounded by
// [Options], and what does not fit is summed into an "other" series that
// only grows too. docs/METRICS.md lists every metric.
package metrics

import (
	"cmp"
	"net/netip"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/netmeter/netmeter/internal/aggregate"
	"github.com/netmeter/netmeter/internal/health"
	"github.com/netmeter/netmeter/internal/quota"
	"github.com/netmeter/netmeter/internal/snapshot"
)

// Input is one interval's state. Update keeps no reference to it.
type Input struct {
	// Snapshot is the interval's snapshot; nil when there was none (the
	// counters keep their values, the snapshot's gauges are dropped).
	Snapshot *snapshot.Snapshot
	// Health is the health analyzer's report; nil: no health states.
	Health *health.Report
	// Quotas are the quota results; nil: no quota metrics.
	Quotas []quota.Result
	// Ledger is the current billing period's per-account totals (see
	// LedgerOf); nil leaves the account series as they were.
	Ledger *Ledger
	// PollDuration is how long the agent took to read this interval's
	// counters; 0: not measured, no netmeter_poll_duration_seconds.
	PollDuration time.Duration
}

// Ledger is one billing period's totals per account.
type Ledger struct {
	// Period names the period as aggregate.Ledger.Period does ("2006-01");
	// when it changes, the account counters restart from the new period's
	// totals.
	Period string
	// Start is when the period began.
	Start time.Time
	// Entries are the period's totals; entries of other periods are
	// ignored.
	Entries []aggregate.Entry
}

// LedgerOf returns the ledger's totals of the period now falls in.
func LedgerOf(l *aggregate.Ledger, now time.Time) *Ledger {
	p := l.Period(now)
	return &Ledger{Period: p, Start: l.PeriodStart(now), Entries: l.Entries(p)}
}

// Exporter is a prometheus.Collector over the latest Update. Update and
// Collect may run concurrently: a scrape sees one whole update, never half
// of one.
type Exporter struct {
	opt Options
	d   *descs

	mu  sync.Mutex
	seq uint64

	ifaces, procs, ctrs, groups, accounts, drops, unattr *family

	ifPrev   map[string][]uint64         // interface key → Total at the latest update
	ifGauges map[string]ifaceGauges      // interface key → link state, present ones
	ctrPrev  map[string][]uint64         // container ID → totals at the latest update
	acctPrev map[string]snapshot.Traffic // account → period total at the latest update
	period   string
	start    time.Time

	snapTime time.Time
	engine   *snapshot.EngineStats
	haveSnap bool
	states   []stateRow
	quotas   []quota.Result
	poll     time.Duration
}

type ifaceGauges struct {
	up, carrier float64
	linkState   bool // up and carrier are known (netlink, not /proc/net/dev)
	speed, mtu  float64
	hasSpeed    bool
	hasMTU      bool
}

type stateRow struct {
	desc        *prometheus.Desc
	name, state string
}

// New returns an Exporter, or what is wrong with opt.
func New(opt Options) (*Exporter, error) {
	opt, err := opt.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Exporter{
		opt:      opt,
		d:        newDescs(),
		ifaces:   newFamily("interface", opt.MaxInterfaces, len(ifaceCols), other).admittingIdle(),
		procs:    newFamily("process", opt.MaxPrograms, procWidth, other),
		ctrs:     newFamily("container", opt.MaxContainers, ctrWidth, other, other, "", "", "", "", ""),
		groups:   newFamily("group", opt.MaxGroups, tcpWidth+len(opt.RTTBuckets), other),
		accounts: newFamily("account", opt.MaxAccounts, acctWidth, other),
		drops:    newFamily("drop", opt.MaxDrops, 2, other, "", ""),
		unattr:   newFamily("unattributed", maxBuckets, procWidth, other),
		ifPrev:   map[string][]uint64{},
		ctrPrev:  map[string][]uint64{},
		acctPrev: map[string]snapshot.Traffic{},
	}, nil
}

// other is the label value of the series that sums what exceeds a cap.
const other = "other"

// maxBuckets bounds the unattributed buckets ("kernel", "overflow").
const maxBuckets = 16

// Value layouts of the families.
const (
	procWidth = 4 // rx bytes, tx bytes, rx packets, tx packets
	acctWidth = 2 // rx bytes, tx bytes

	// Containers: traffic, then rx and tx bytes per peer class, then
	// connection and request counts.
	ctrPeers    = 4
	ctrAccepted = ctrPeers + 2*len(peerClasses)
	ctrOpened   = ctrAccepted + 1
	ctrRequests = ctrOpened + 1
	ctrWidth    = ctrRequests + 1
)

// Value layout of the remote groups: TCP counters, the RTT histogram's sum
// (µs) and count, then one count per bucket (not cumulative).
const (
	tcpSegsOut = iota
	tcpRetrans
	tcpRTOs
	tcpResetsIn
	tcpResetsOut
	tcpRTTSum
	tcpRTTCount
	tcpWidth
)

// peerClasses are the values of the peer label of the container metrics.
var peerClasses = [...]string{"external", "container", "host", "internal", "unclassified"}

// Describe sends nothing: the Exporter is an unchecked collector, because
// the netns label exists only on interfaces outside netmeter's namespace and
// netmeter_health_state carries a group or a monitor label. Its metric
// names are its own; Gather still checks each scrape's consistency.
func (e *Exporter) Describe(chan<- *prometheus.Desc) {}

// Update replaces the view with one interval's state.
func (e *Exporter) Update(in Input) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.seq++
	if s := in.Snapshot; s != nil {
		e.haveSnap, e.snapTime = true, s.Time
		e.engine = nil
		if s.Engine != nil {
			eng := *s.Engine
			e.engine = &eng
		}
		e.updateInterfaces(s)
		e.updateProcesses(s)
		e.updateContainers(s)
		e.updateTCP(s)
		e.updateDrops(s)
		e.updateUnattributed(s)
	} else {
		e.haveSnap, e.engine, e.ifGauges = false, nil, nil
	}
	if in.Ledger != nil {
		e.updateLedger(in.Ledger)
	}
	e.states = e.healthRows(in.Health)
	e.quotas = nil
	seen := map[string]bool{}
	for _, q := range in.Quotas {
		if !seen[q.Name] { // names are unique in a valid config; never emit a duplicate series
			seen[q.Name] = true
			e.quotas = append(e.quotas, q)
		}
	}
	e.poll = in.PollDuration
}

// growth returns cur − prev per value; a value that went backwards was
// reset, and all of it is new.
func growth(cur, prev []uint64) []uint64 {
	out := make([]uint64, len(cur))
	for i, c := range cur {
		switch {
		case prev == nil || c < prev[i]:
			out[i] = c
		default:
			out[i] = c - prev[i]
		}
	}
	return out
}

func (e *Exporter) updateInterfaces(s *snapshot.Snapshot) {
	in := newSamples(len(ifaceCols))
	cur := map[string][]uint64{}
	gauges := map[string]ifaceGauges{}
	for i := range s.Interfaces {
		ifc := &s.Interfaces[i]
		labels := []string{ifc.Name}
		if ifc.Netns != "" {
			labels = append(labels, ifc.Netns)
		}
		k := labelKey(labels)
		v := cur[k]
		if v == nil {
			v = make([]uint64, len(ifaceCols))
			cur[k] = v
		}
		for j, c := range ifaceCols {
			v[j] += c.get(&ifc.Total)
		}
		in.add(labels, ifc.RxBytesRate.EWMA+ifc.TxBytesRate.EWMA)
		if ifc.Present {
			g := ifaceGauges{linkState: ifc.OperState != ""}
			if ifc.OperState == "up" {
				g.up = 1
			}
			if ifc.Carrier {
				g.carrier = 1
			}
			if ifc.SpeedMbps > 0 {
				g.speed, g.hasSpeed = float64(ifc.SpeedMbps)*1e6/8, true
			}
			if ifc.MTU > 0 {
				g.mtu, g.hasMTU = float64(ifc.MTU), true
			}
			gauges[k] = g
		}
	}
	for k, v := range cur {
		addTo(in.m[k].add, growth(v, e.ifPrev[k]))
	}
	e.ifPrev, e.ifGauges = cur, gauges
	e.ifaces.step(e.seq, in)
}

func (e *Exporter) updateProcesses(s *snapshot.Snapshot) {
	in := newSamples(procWidth)
	for i := range s.Processes {
		p := &s.Processes[i]
		comm := p.Comm
		if comm == "" {
			comm = "unknown"
		}
		in.add1(comm, p.RxRate.EWMA+p.TxRate.EWMA,
			p.Delta.RxBytes, p.Delta.TxBytes, p.Delta.RxPackets, p.Delta.TxPackets)
	}
	e.procs.step(e.seq, in)
}

func (e *Exporter) updateContainers(s *snapshot.Snapshot) {
	in := newSamples(ctrWidth)
	cur := make(map[string][]uint64, len(s.Containers))
	for i := range s.Containers {
		c := &s.Containers[i]
		labels := []string{c.ID, c.Name, c.Image, c.Runtime, c.Account, c.PodName, c.PodNamespace}
		id := c.ID
		if id == "" {
			id = labelKey(labels)
		}
		v := make([]uint64, ctrWidth)
		v[0], v[1], v[2], v[3] = c.Total.RxBytes, c.Total.TxBytes, c.Total.RxPackets, c.Total.TxPackets
		for j, t := range [len(peerClasses)]snapshot.Traffic{c.External, c.Local, c.Host, c.Internal, c.Unclassified} {
			v[ctrPeers+2*j], v[ctrPeers+2*j+1] = t.RxBytes, t.TxBytes
		}
		v[ctrAccepted], v[ctrOpened], v[ctrRequests] = c.Accepted, c.Opened, c.Requests
		in.add(labels, c.RxRate.EWMA+c.TxRate.EWMA, growth(v, e.ctrPrev[id])...)
		cur[id] = v
	}
	e.ctrPrev = cur
	e.ctrs.step(e.seq, in)
}

// updateTCP sums the TCP health of connected sockets per remote group. The
// RTT histogram observes each connection's mean RTT of the interval once
// per RTT sample the kernel took (Interval.Mean weighted by
// Interval.Samples): a connection that made 50 round trips weighs 50 times
// one that made one, as the health indicator's sample-weighted mean does.
func (e *Exporter) updateTCP(s *snapshot.Snapshot) {
	nb := len(e.opt.RTTBuckets)
	in := newSamples(tcpWidth + nb)
	v := make([]uint64, tcpWidth+nb)
	for i := range s.Connections {
		c := &s.Connections[i]
		if c.TCP == nil {
			continue
		}
		a, err := netip.ParseAddr(c.Remote.Addr)
		if err != nil || a.IsUnspecified() {
			continue // a listener's counters say nothing about a path
		}
		g := e.opt.GroupOf(c.Remote.Addr)
		if g == "" {
			continue
		}
		d, w := &c.TCP.Delta, c.TCP.Interval
		clear(v)
		v[tcpSegsOut], v[tcpRetrans], v[tcpRTOs] = d.SegsOut, d.RetransSegs, d.RTOs
		v[tcpResetsIn], v[tcpResetsOut] = d.ResetsReceived, d.ResetsSent
		if w.Samples > 0 {
			n := uint64(w.Samples)
			v[tcpRTTSum], v[tcpRTTCount] = uint64(w.Mean)*n, n
			if b := sort.SearchFloat64s(e.opt.RTTBuckets, float64(w.Mean)/1e6); b < nb {
				v[tcpWidth+b] = n
			}
		}
		in.add1(g, c.TxRate.EWMA+c.RxRate.EWMA, v...)
	}
	e.groups.step(e.seq, in)
}

func (e *Exporter) updateDrops(s *snapshot.Snapshot) {
	devices := map[string][]uint64{} // name → netns inodes of the interfaces netmeter reads
	for i := range s.Interfaces {
		devices[s.Interfaces[i].Name] = append(devices[s.Interfaces[i].Name], s.Interfaces[i].NetnsInode)
	}
	in := newSamples(2)
	for i := range s.Drops {
		d := &s.Drops[i]
		dev := ""
		if d.Interface != "" && slices.ContainsFunc(devices[d.Interface], func(ino uint64) bool {
			return ino == d.NetnsInode || ino == 0 || d.NetnsInode == 0
		}) {
			dev = d.Interface
		}
		in.add([]string{d.Reason, d.Proto, dev}, float64(d.DeltaPackets), d.DeltaPackets, d.DeltaBytes)
	}
	e.drops.step(e.seq, in)
}

func (e *Exporter) updateUnattributed(s *snapshot.Snapshot) {
	in := newSamples(procWidth)
	for i := range s.Unattributed {
		b := &s.Unattributed[i]
		in.add1(b.Name, float64(b.Delta.RxBytes+b.Delta.TxBytes),
			b.Delta.RxBytes, b.Delta.TxBytes, b.Delta.RxPackets, b.Delta.TxPackets)
	}
	e.unattr.step(e.seq, in)
}

// updateLedger follows the period's totals. The ranking score of an
// account is what it used since the previous update.
func (e *Exporter) updateLedger(l *Ledger) {
	if l.Period != e.period {
		e.accounts.reset()
		e.acctPrev = map[string]snapshot.Traffic{}
		e.period = l.Period
	}
	e.start = l.Start
	in := newSamples(acctWidth)
	for _, en := range l.Entries {
		if en.Period != l.Period {
			continue
		}
		g := growth([]uint64{en.Total.RxBytes, en.Total.TxBytes}, trafficBytes(e.acctPrev, en.Account))
		e.acctPrev[en.Account] = en.Total
		in.add1(en.Account, float64(g[0]+g[1]), g...)
	}
	e.accounts.step(e.seq, in)
}

func trafficBytes(m map[string]snapshot.Traffic, k string) []uint64 {
	t, ok := m[k]
	if !ok {
		return nil
	}
	return []uint64{t.RxBytes, t.TxBytes}
}

// healthRows flattens a report into one-hot state rows: every monitor, and
// at most MaxGroups groups, degraded ones first.
func (e *Exporter) healthRows(r *health.Report) []stateRow {
	if r == nil {
		return nil
	}
	rank := func(s health.State) int {
		switch {
		case s.Degraded():
			return 0
		case s == health.StateHealthy:
			return 1
		}
		return 2
	}
	groups := slices.Clone(r.Groups)
	slices.SortStableFunc(groups, func(a, b health.Status) int { return rank(a.State) - rank(b.State) })
	var rows []stateRow
	seen := map[string]bool{}
	for i, g := range groups {
		if i == e.opt.MaxGroups {
			break
		}
		if !seen["g\x00"+g.Name] {
			seen["g\x00"+g.Name] = true
			rows = append(rows, stateRow{e.d.groupState, g.Name, string(g.State)})
		}
	}
	for _, m := range r.Monitors {
		if !seen["m\x00"+m.Name] {
			seen["m\x00"+m.Name] = true
			rows = append(rows, stateRow{e.d.monitorState, m.Name, string(m.State)})
		}
	}
	return rows
}

// healthStates are the one-hot values of netmeter_health_state.
var healthStates = [...]health.State{health.StateUnknown, health.StateHealthy, health.StateNetwork, health.StateThisHost, health.StateRemote}

// quotaStatuses are the one-hot values of netmeter_quota_status.
var quotaStatuses = [...]quota.Status{quota.StatusOK, quota.StatusForecast, quota.StatusWarning, quota.StatusExceeded}

// Collect sends the latest update's metrics.
func (e *Exporter) Collect(ch chan<- prometheus.Metric) {
	e.mu.Lock()
	ms := e.metrics()
	e.mu.Unlock()
	for _, m := range ms {
		ch <- m
	}
}

// metrics builds the exposition; e.mu is held.
func (e *Exporter) metrics() []prometheus.Metric {
	d := e.d
	var out []prometheus.Metric
	emit := func(desc *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) {
		out = append(out, prometheus.MustNewConstMetric(desc, t, v, labels...))
	}
	counters := func(f *family, cols []col) {
		f.each(func(labels []string, v []uint64) {
			for _, c := range cols {
				emit(c.desc, prometheus.CounterValue, float64(v[c.idx]), slices.Concat(labels, c.extra)...)
			}
		})
	}

	emit(d.buildInfo, prometheus.GaugeValue, 1, e.opt.Version, runtime.Version())
	for _, f := range []*family{e.ifaces, e.procs, e.ctrs, e.groups, e.accounts, e.drops, e.unattr} {
		emit(d.evicted, prometheus.CounterValue, float64(f.evicted), f.name)
	}
	if e.poll > 0 {
		emit(d.poll, prometheus.GaugeValue, e.poll.Seconds())
	}

	// Interfaces: the device-only and the device+netns descriptors.
	e.ifaces.each(func(labels []string, v []uint64) {
		for i := range ifaceCols {
			emit(d.iface[len(labels)-1][i], prometheus.CounterValue, float64(v[i]), labels...)
		}
	})
	for k, s := range e.ifaces.series {
		g, ok := e.ifGauges[k]
		if !ok {
			continue
		}
		n := len(s.labels) - 1
		if g.linkState {
			emit(d.ifUp[n], prometheus.GaugeValue, g.up, s.labels...)
			emit(d.ifCarrier[n], prometheus.GaugeValue, g.carrier, s.labels...)
		}
		if g.hasSpeed {
			emit(d.ifSpeed[n], prometheus.GaugeValue, g.speed, s.labels...)
		}
		if g.hasMTU {
			emit(d.ifMTU[n], prometheus.GaugeValue, g.mtu, s.labels...)
		}
	}

	counters(e.procs, d.procCols)
	counters(e.ctrs, d.ctrCols)
	counters(e.drops, d.dropCols)
	counters(e.unattr, d.unattrCols)
	counters(e.groups, d.tcpCols)
	nb := len(e.opt.RTTBuckets)
	e.groups.each(func(labels []string, v []uint64) {
		buckets := make(map[float64]uint64, nb)
		var cum uint64
		for i, b := range e.opt.RTTBuckets {
			cum += v[tcpWidth+i]
			buckets[b] = cum
		}
		out = append(out, prometheus.MustNewConstHistogram(d.rtt, v[tcpRTTCount], float64(v[tcpRTTSum])/1e6, buckets, labels...))
	})

	if e.period != "" {
		counters(e.accounts, d.acctCols)
		emit(d.acctStart, prometheus.GaugeValue, unixSeconds(e.start))
	}

	if e.haveSnap {
		if !e.snapTime.IsZero() {
			emit(d.snapTime, prometheus.GaugeValue, unixSeconds(e.snapTime))
		}
		up := 0.0
		if eng := e.engine; eng != nil {
			up = 1
			emit(d.engineSockets, prometheus.GaugeValue, float64(eng.Sockets))
			emit(d.engineMapFull, prometheus.CounterValue, float64(eng.MapFull))
			emit(d.engineRingLost, prometheus.CounterValue, float64(eng.RingLost))
			emit(d.engineInfo, prometheus.GaugeValue, 1, cmp.Or(eng.Kind, "ebpf"), strconv.FormatBool(eng.Approximate))
			emit(d.engineCaptureDrops, prometheus.CounterValue, float64(eng.CaptureDropped))
		}
		emit(d.engineUp, prometheus.GaugeValue, up)
	}

	for _, r := range e.states {
		known := false
		for _, st := range healthStates {
			v := 0.0
			if health.State(r.state) == st {
				v, known = 1, true
			}
			emit(r.desc, prometheus.GaugeValue, v, r.name, string(st))
		}
		if !known {
			emit(r.desc, prometheus.GaugeValue, 1, r.name, r.state)
		}
	}

	for _, q := range e.quotas {
		emit(d.quotaUsed, prometheus.GaugeValue, float64(q.Used), q.Name, q.Entity, q.Direction)
		emit(d.quotaLimit, prometheus.GaugeValue, float64(q.Limit), q.Name, q.Entity, q.Direction)
		if q.EstimateValid {
			emit(d.quotaEstimate, prometheus.GaugeValue, float64(q.Estimate), q.Name, q.Entity, q.Direction)
		}
		if !q.PeriodStart.IsZero() {
			emit(d.quotaStart, prometheus.GaugeValue, unixSeconds(q.PeriodStart), q.Name)
		}
		if !q.PeriodEnd.IsZero() {
			emit(d.quotaEnd, prometheus.GaugeValue, unixSeconds(q.PeriodEnd), q.Name)
		}
		known := false
		for _, st := range quotaStatuses {
			v := 0.0
			if q.Status == st {
				v, known = 1, true
			}
			emit(d.quotaStatus, prometheus.GaugeValue, v, q.Name, string(st))
		}
		if !known && q.Status != "" {
			emit(d.quotaStatus, prometheus.GaugeValue, 1, q.Name, string(q.Status))
		}
	}
	return out
}

func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }
