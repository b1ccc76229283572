package tui

import (
	"cmp"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/netmeter/netmeter/internal/health"
	"github.com/netmeter/netmeter/internal/output"
	"github.com/netmeter/netmeter/internal/snapshot"
)

// ViewKind selects what the live view shows; the keys 1 to 5 switch.
type ViewKind int

// Views.
const (
	ViewInterfaces  ViewKind = iota // one row per interface (nload, bmon)
	ViewProcesses                   // one row per process (nethogs)
	ViewConnections                 // one row per connection (iftop)
	ViewContainers                  // one row per container ("docker stats" for the network)
	ViewHealth                      // health per remote group and monitor, top flows, drops
	numViews
)

// flowViews are the views built from the eBPF engine's data.
var flowViews = [...]ViewKind{ViewProcesses, ViewConnections, ViewContainers, ViewHealth}

func (v ViewKind) String() string {
	switch v {
	case ViewProcesses:
		return "processes"
	case ViewConnections:
		return "connections"
	case ViewContainers:
		return "containers"
	case ViewHealth:
		return "health"
	default:
		return "interfaces"
	}
}

// FlowSort orders the processes, connections and containers views; "s"
// cycles.
// Rates and totals are compared as the view's columns show them (current
// rate, 2s average, or total bytes). Exited processes and closed
// connections always sort after live ones, unattributed buckets last.
type FlowSort int

// Flow sort orders.
const (
	FlowByTx    FlowSort = iota // sent, highest first
	FlowByRx                    // received, highest first
	FlowByTotal                 // sent+received, highest first
	FlowByName                  // program name, then pid
	numFlowSorts
)

func (k FlowSort) String() string {
	switch k {
	case FlowByRx:
		return "rx"
	case FlowByTotal:
		return "total"
	case FlowByName:
		return "name"
	default:
		return "tx"
	}
}

// Columns selects the rate columns of the processes, connections and
// containers views; "t" cycles through ColumnsNow, ColumnsWindows and
// ColumnsTotals.
type Columns int

// Column sets.
const (
	// ColumnsDefault is ColumnsNow in the processes and containers views
	// and ColumnsWindows in the connections view.
	ColumnsDefault Columns = iota
	// ColumnsNow shows the current rates and the totals since start.
	ColumnsNow
	// ColumnsWindows shows iftop's 2s, 10s and 40s averages on two lines
	// per row (sent above, received below) and the totals.
	ColumnsWindows
	// ColumnsTotals shows IP-byte and payload totals since start (in the
	// containers view: IP-byte totals split by peer).
	ColumnsTotals
)

func (c Columns) String() string {
	switch c {
	case ColumnsWindows:
		return "2s/10s/40s"
	case ColumnsTotals:
		return "totals"
	default:
		return "now"
	}
}

// Family restricts the connections view to one address family; "f"
// cycles through both, IPv4 only and IPv6 only.
type Family int

// Families.
const (
	FamilyAll Family = iota
	FamilyIPv4
	FamilyIPv6
)

func (f Family) String() string {
	switch f {
	case FamilyIPv4:
		return "IPv4"
	case FamilyIPv6:
		return "IPv6"
	default:
		return "IPv4+IPv6"
	}
}

type rowKind int

const (
	rowProc rowKind = iota
	rowBucket
	rowConn
	rowContainer
	rowFlow   // a health flow
	rowStatus // a health status (group or monitor)
)

// flowRow is one row of the processes, connections, containers or health
// view. It points into the model's latest snapshot, health report or flows,
// which are never modified.
type flowRow struct {
	key    string
	kind   rowKind
	proc   *snapshot.Process
	conn   *snapshot.Connection
	bucket *snapshot.Bucket
	ctr    *snapshot.Container
	flow   *health.Flow
	status *health.Status
	skind  string        // a status's kind: "group" or "monitor"
	tx, rx snapshot.Rate // IP bytes/s
	total  snapshot.Traffic
	dim    bool // exited process, closed connection
}

// flowTotals sums the rows that pass the filter (the capped ones too).
type flowTotals struct {
	n, dim  int
	buckets int // rows that are unattributed buckets, counted in n
	tx, rx  snapshot.Rate
	total   snapshot.Traffic
}

func (t flowTotals) add(r *flowRow) flowTotals {
	t.n++
	if r.kind == rowBucket {
		t.buckets++
	}
	if r.dim {
		t.dim++
	}
	t.tx = addRate(t.tx, r.tx)
	t.rx = addRate(t.rx, r.rx)
	t.total = t.total.Add(r.total)
	return t
}

func addRate(a, b snapshot.Rate) snapshot.Rate {
	a.Current += b.Current
	a.Window2s += b.Window2s
	a.Window10s += b.Window10s
	a.Window40s += b.Window40s
	return a
}

// listState is the selection and scroll position of one list.
type listState struct {
	sel, offset int
	key         string // identity of the selection, kept across re-sorts
	picked      bool   // the user moved the selection: follow key, not the index
}

// bucketSample is one interval of an unattributed bucket, kept to compute
// the 2s/10s/40s averages the snapshot does not carry for buckets.
type bucketSample struct {
	at     time.Time
	tx, rx uint64
}

const (
	maxBuckets       = 32
	maxBucketSamples = 64
	bucketWindow     = 40 * time.Second
)

// pushBuckets records this snapshot's bucket deltas; histories older than
// 40 s are pruned, buckets not in the snapshot are forgotten.
func pushBuckets(prev map[string][]bucketSample, s *snapshot.Snapshot) map[string][]bucketSample {
	next := make(map[string][]bucketSample, min(len(s.Unattributed), maxBuckets))
	for i := range s.Unattributed {
		b := &s.Unattributed[i]
		if len(next) >= maxBuckets {
			break
		}
		if _, dup := next[b.Name]; dup {
			continue
		}
		h := push(prev[b.Name], bucketSample{at: s.Time, tx: b.Delta.TxBytes, rx: b.Delta.RxBytes}, maxBucketSamples)
		for len(h) > 1 && s.Time.Sub(h[0].at) > bucketWindow {
			h = h[1:]
		}
		next[b.Name] = h
	}
	return next
}

// bucketRates computes a bucket's Rate from its history: Current from the
// last interval, the windows as bytes in the window over the time the
// samples cover (at most the window).
func bucketRates(h []bucketSample, now time.Time, interval time.Duration) (tx, rx snapshot.Rate) {
	if len(h) == 0 || interval <= 0 {
		return
	}
	last := h[len(h)-1]
	sec := interval.Seconds()
	tx.Current, rx.Current = float64(last.tx)/sec, float64(last.rx)/sec
	win := func(d time.Duration) (float64, float64) {
		var st, sr uint64
		n := 0
		for _, s := range h {
			if now.Sub(s.at) < d {
				st += s.tx
				sr += s.rx
				n++
			}
		}
		cover := min(d.Seconds(), float64(n)*sec)
		if cover <= 0 {
			return 0, 0
		}
		return float64(st) / cover, float64(sr) / cover
	}
	tx.Window2s, rx.Window2s = win(2 * time.Second)
	tx.Window10s, rx.Window10s = win(10 * time.Second)
	tx.Window40s, rx.Window40s = win(40 * time.Second)
	return tx, rx
}

// rebuild recomputes the flow lists from the latest snapshot, the filter,
// the family and the sort, and keeps each selection.
func (m Model) rebuild() Model {
	m.procRows, m.procTotals, m.procHidden = m.buildProcs()
	m.connRows, m.connTotals, m.connHidden = m.buildConns()
	m.ctrRows, m.ctrTotals, m.ctrHidden = m.buildCtrs()
	m.hflowRows, m.hflowHidden = m.buildHealthFlows()
	for _, v := range flowViews {
		m.lists[v] = reselect(m.lists[v], m.rows(v))
	}
	return m
}

// reselect keeps the selected row across a rebuild: the same key when the
// user picked it, else the same index.
func reselect(ls listState, rows []flowRow) listState {
	if ls.picked {
		if i := slices.IndexFunc(rows, func(r flowRow) bool { return r.key == ls.key }); i >= 0 {
			ls.sel = i
		}
	}
	ls.sel = clamp(ls.sel, 0, len(rows)-1)
	ls.key = ""
	if len(rows) > 0 {
		ls.key = rows[ls.sel].key
	}
	return ls
}

func (m Model) rows(v ViewKind) []flowRow {
	switch v {
	case ViewConnections:
		return m.connRows
	case ViewContainers:
		return m.ctrRows
	case ViewHealth:
		return m.hflowRows
	}
	return m.procRows
}

func (m Model) columnsOf(v ViewKind) Columns {
	c := m.cols[v]
	if c == ColumnsDefault {
		if v == ViewConnections {
			return ColumnsWindows
		}
		return ColumnsNow
	}
	return c
}

func (m Model) buildProcs() ([]flowRow, flowTotals, int) {
	s := &m.snap
	var tot flowTotals
	rows := make([]flowRow, 0, min(len(s.Processes), m.opts.MaxRows))
	for i := range s.Processes {
		p := &s.Processes[i]
		r := flowRow{
			key: "p" + strconv.Itoa(p.PID) + "@" + strconv.FormatInt(p.StartTime.UnixNano(), 36),
			// key: pid and start time, so that a reused pid is a new row
			kind: rowProc, proc: p, tx: p.TxRate, rx: p.RxRate, total: p.Total, dim: p.Exited,
		}
		if !m.matchProc(p) {
			continue
		}
		tot = tot.add(&r)
		rows = append(rows, r)
	}
	m.sortRows(rows, ViewProcesses)
	hidden := max(len(rows)-m.opts.MaxRows, 0)
	rows = rows[:len(rows)-hidden]
	for i := range s.Unattributed {
		b := &s.Unattributed[i]
		h, ok := m.buckets[b.Name]
		if !ok || !m.match(output.BucketName(b)) {
			continue
		}
		r := flowRow{key: "b" + b.Name, kind: rowBucket, bucket: b, total: b.Total}
		r.tx, r.rx = bucketRates(h, s.Time, s.Interval)
		if slices.ContainsFunc(rows, func(o flowRow) bool { return o.key == r.key }) {
			continue
		}
		tot = tot.add(&r)
		rows = append(rows, r)
	}
	return rows, tot, hidden
}

func (m Model) buildConns() ([]flowRow, flowTotals, int) {
	s := &m.snap
	var tot flowTotals
	rows := make([]flowRow, 0, min(len(s.Connections), m.opts.MaxRows))
	for i := range s.Connections {
		c := &s.Connections[i]
		if (m.family == FamilyIPv4 && c.Family != 4) || (m.family == FamilyIPv6 && c.Family != 6) {
			continue
		}
		if !m.matchConn(c) {
			continue
		}
		r := flowRow{
			key:  "c" + strconv.FormatUint(c.NetnsInode, 36) + "/" + strconv.FormatUint(c.Cookie, 36),
			kind: rowConn, conn: c, tx: c.TxRate, rx: c.RxRate, total: c.Total, dim: c.Closed,
		}
		tot = tot.add(&r)
		rows = append(rows, r)
	}
	m.sortRows(rows, ViewConnections)
	hidden := max(len(rows)-m.opts.MaxRows, 0)
	return rows[:len(rows)-hidden], tot, hidden
}

// sortValue is what the sort compares for one direction, as the view's
// columns show it.
func sortValue(r *flowRow, c Columns, by FlowSort) float64 {
	pick := func(rt snapshot.Rate, total uint64) float64 {
		switch c {
		case ColumnsWindows:
			return rt.Window2s
		case ColumnsTotals:
			return float64(total)
		default:
			return rt.Current
		}
	}
	tx, rx := pick(r.tx, r.total.TxBytes), pick(r.rx, r.total.RxBytes)
	var v float64
	switch by {
	case FlowByTx:
		v = tx
	case FlowByRx:
		v = rx
	default:
		v = tx + rx
	}
	if v != v || v < 0 { // NaN or invalid: last
		return -1
	}
	return v
}

func (m Model) sortRows(rows []flowRow, v ViewKind) {
	c := m.columnsOf(v)
	slices.SortStableFunc(rows, func(a, b flowRow) int {
		if d := cmp.Compare(b2i(a.dim), b2i(b.dim)); d != 0 {
			return d
		}
		if m.fsort != FlowByName {
			if d := cmp.Compare(sortValue(&b, c, m.fsort), sortValue(&a, c, m.fsort)); d != 0 {
				return d
			}
		}
		return cmp.Or(
			cmp.Compare(rowName(&a), rowName(&b)),
			cmp.Compare(rowPID(&a), rowPID(&b)),
			cmp.Compare(a.key, b.key),
		)
	})
}

func rowName(r *flowRow) string {
	switch r.kind {
	case rowProc:
		return output.ProgramName(r.proc)
	case rowConn:
		return r.conn.Owner.Comm
	case rowContainer:
		return output.ContainerName(r.ctr)
	}
	return output.BucketName(r.bucket)
}

func rowPID(r *flowRow) int {
	switch r.kind {
	case rowProc:
		return r.proc.PID
	case rowConn:
		return r.conn.Owner.PID
	}
	return 0
}

// maxFilter bounds the filter's length (in bytes).
const maxFilter = 64

// match reports whether any of the fields contains the filter, ignoring
// case. The empty filter matches everything.
func (m Model) match(fields ...string) bool {
	if m.filter == "" {
		return true
	}
	f := strings.ToLower(m.filter)
	for _, s := range fields {
		if strings.Contains(strings.ToLower(s), f) {
			return true
		}
	}
	return false
}

func (m Model) matchProc(p *snapshot.Process) bool {
	if m.filter == "" {
		return true
	}
	return m.match(output.ProgramName(p), p.Comm, path.Base(p.Exe), strconv.Itoa(p.PID), p.User)
}

func (m Model) matchConn(c *snapshot.Connection) bool {
	if m.filter == "" {
		return true
	}
	fields := []string{
		output.FormatEndpoint(c.Local), output.FormatEndpoint(c.Remote), c.Proto,
		c.Owner.Comm, strconv.Itoa(c.Owner.PID),
	}
	if c.Peer != nil {
		fields = append(fields, c.Peer.Comm, strconv.Itoa(c.Peer.PID))
	}
	if name, ok := m.hostName(c.Remote.Addr); ok {
		fields = append(fields, name)
	}
	return m.match(fields...)
}
