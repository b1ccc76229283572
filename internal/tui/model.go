package tui

import (
	"cmp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	tea "charm.land/bubbletea/v2"

	"github.com/netmeter/netmeter/internal/health"
	"github.com/netmeter/netmeter/internal/output"
	"github.com/netmeter/netmeter/internal/snapshot"
)

// SortKey orders the interface list.
type SortKey int

// Sort orders, cycled with the "s" key.
const (
	SortName SortKey = iota // by name, then netns (gone interfaces last in every order)
	SortRx                  // by current RX rate, highest first
	SortTx                  // by current TX rate, highest first
)

func (k SortKey) String() string {
	switch k {
	case SortRx:
		return "rx"
	case SortTx:
		return "tx"
	default:
		return "name"
	}
}

// Defaults and bounds for [Options].
const (
	DefaultHistory       = 120 // samples of rate history per interface
	MaxHistory           = 3600
	DefaultMaxInterfaces = 256
	DefaultForgetAfter   = 10 // snapshots an absent interface is kept
	DefaultMaxRows       = 1000
	MaxMaxRows           = 100000
)

// Options configures a [Model]. The zero value is valid: byte units, sorted
// by name, and the defaults above.
type Options struct {
	// Bits starts in bits per second instead of bytes per second ("u"
	// toggles).
	Bits bool
	// Sort is the initial sort order ("s" cycles).
	Sort SortKey
	// History is how many rate samples are kept per interface for the
	// graphs; 0 means DefaultHistory, larger than MaxHistory is clamped.
	History int
	// MaxInterfaces bounds how many interfaces the model tracks; interfaces
	// beyond it are counted in the header but not shown. 0 means
	// DefaultMaxInterfaces.
	MaxInterfaces int
	// ForgetAfter is how many consecutive snapshots an interface may be
	// missing (absent, or Present=false) before it is forgotten; 0 means
	// DefaultForgetAfter.
	ForgetAfter int

	// View is the view shown first (1 to 5 switch).
	View ViewKind
	// FlowSort is the initial order of the processes, connections and
	// containers views.
	FlowSort FlowSort
	// ProcessColumns, ConnectionColumns and ContainerColumns are the
	// initial rate columns of those views ("t" cycles); ColumnsDefault
	// means now, 2s/10s/40s and now.
	ProcessColumns    Columns
	ConnectionColumns Columns
	ContainerColumns  Columns
	// MaxRows bounds the rows of each of the processes, connections and
	// containers views (after filtering, in sort order; the rest is
	// counted in the header); 0 means DefaultMaxRows, larger than
	// MaxMaxRows is clamped.
	MaxRows int

	// DNS starts with host names in the connections view ("n" toggles).
	// Lookups run in commands, at most DNSWorkers at a time (0 means
	// DefaultDNSWorkers), answers are cached for DNSTTL (0 means
	// DefaultDNSTTL; failures for at most a minute) in a cache of
	// DNSCacheSize entries (0 means DefaultDNSCacheSize).
	DNS          bool
	DNSWorkers   int
	DNSCacheSize int
	DNSTTL       time.Duration
	// Resolver looks up names; nil means net.DefaultResolver.LookupAddr.
	Resolver Resolver

	// Analysis is read when a snapshot arrives, for the health view; nil
	// (an untyped nil, not a nil pointer) when the eBPF engine is not
	// running, and the view says so.
	Analysis Analysis
}

func (o Options) normalized() Options {
	if o.History <= 0 {
		o.History = DefaultHistory
	}
	o.History = min(o.History, MaxHistory)
	if o.MaxInterfaces <= 0 {
		o.MaxInterfaces = DefaultMaxInterfaces
	}
	if o.ForgetAfter <= 0 {
		o.ForgetAfter = DefaultForgetAfter
	}
	if o.Sort < SortName || o.Sort > SortTx {
		o.Sort = SortName
	}
	if o.View < 0 || o.View >= numViews {
		o.View = ViewInterfaces
	}
	if o.FlowSort < 0 || o.FlowSort >= numFlowSorts {
		o.FlowSort = FlowByTx
	}
	if o.ProcessColumns < ColumnsDefault || o.ProcessColumns > ColumnsTotals {
		o.ProcessColumns = ColumnsDefault
	}
	if o.ConnectionColumns < ColumnsDefault || o.ConnectionColumns > ColumnsTotals {
		o.ConnectionColumns = ColumnsDefault
	}
	if o.ContainerColumns < ColumnsDefault || o.ContainerColumns > ColumnsTotals {
		o.ContainerColumns = ColumnsDefault
	}
	if o.MaxRows <= 0 {
		o.MaxRows = DefaultMaxRows
	}
	o.MaxRows = min(o.MaxRows, MaxMaxRows)
	if o.DNSWorkers <= 0 {
		o.DNSWorkers = DefaultDNSWorkers
	}
	o.DNSWorkers = min(o.DNSWorkers, MaxDNSWorkers)
	if o.DNSCacheSize <= 0 {
		o.DNSCacheSize = DefaultDNSCacheSize
	}
	o.DNSCacheSize = min(o.DNSCacheSize, MaxDNSCacheSize)
	if o.DNSTTL <= 0 {
		o.DNSTTL = DefaultDNSTTL
	}
	return o
}

// SnapshotMsg carries one snapshot from the channel into Update.
type SnapshotMsg struct{ Snapshot snapshot.Snapshot }

// SourceClosedMsg reports that the snapshot channel was closed; the model
// answers with tea.Quit.
type SourceClosedMsg struct{}

// WaitForSnapshot returns a command that blocks until the next snapshot (a
// [SnapshotMsg]) or until ch is closed (a [SourceClosedMsg]). Update re-arms
// it after every snapshot. A nil channel yields a nil command.
func WaitForSnapshot(ch <-chan snapshot.Snapshot) tea.Cmd {
	if ch == nil {
		return nil
	}
	return func() tea.Msg {
		s, ok := <-ch
		if !ok {
			return SourceClosedMsg{}
		}
		return SnapshotMsg{Snapshot: s}
	}
}

// Model is the TUI state. It is a value: Update returns a new Model and
// leaves the receiver's history untouched.
type Model struct {
	ch   <-chan snapshot.Snapshot
	opts Options

	width, height int

	snap     snapshot.Snapshot // latest, for the header
	received int               // snapshots seen
	ifaces   map[ifKey]ifState // never mutated in place: replaced per snapshot
	order    []ifKey           // display order; replaced, never mutated in place
	hidden   int               // interfaces in the latest snapshot beyond MaxInterfaces

	sel    int   // index into order
	selKey ifKey // identity of the selection, kept across re-sorts
	picked bool  // the user moved the selection: follow selKey, not the index
	offset int   // first visible list row
	detail bool
	bits   bool
	sort   SortKey
	closed bool

	view    ViewKind
	help    bool   // the key help replaces the list
	filter  string // case-insensitive substring; "" shows everything
	editing bool   // typing the filter
	family  Family
	fsort   FlowSort
	cols    [numViews]Columns
	lists   [numViews]listState // processes, connections, containers and health views
	cdetail bool                // the selected container's pane

	// Flow rows, rebuilt from snap on every change; never modified in place.
	procRows, connRows, ctrRows       []flowRow
	procTotals, connTotals, ctrTotals flowTotals
	procHidden, connHidden, ctrHidden int // rows beyond MaxRows
	buckets                           map[string][]bucketSample
	dns                               dnsState

	// The health view: what Analysis said at the latest snapshot (or the
	// latest "s"), and the rows built from it. Never modified in place.
	hsort       healthSort
	report      health.Report
	hflows      []health.Flow // every flow of the window, in hsort order
	hflowErr    error
	hflowRows   []flowRow // those that pass the filter, at most MaxRows
	hflowHidden int
}

// New returns a model reading snapshots from ch.
func New(ch <-chan snapshot.Snapshot, opts Options) Model {
	opts = opts.normalized()
	return Model{
		ch:     ch,
		opts:   opts,
		ifaces: map[ifKey]ifState{},
		bits:   opts.Bits,
		sort:   opts.Sort,
		view:   opts.View,
		fsort:  opts.FlowSort,
		cols: [numViews]Columns{
			ViewProcesses: opts.ProcessColumns, ViewConnections: opts.ConnectionColumns, ViewContainers: opts.ContainerColumns,
		},
		dns: newDNS(opts),
	}
}

// Init starts waiting for the first snapshot.
func (m Model) Init() tea.Cmd { return WaitForSnapshot(m.ch) }

// Update handles snapshots, window sizes and keys.
func (m Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case SnapshotMsg:
		m = m.ingest(msg.Snapshot)
		m, lookups := m.lookups()
		return m, tea.Batch(WaitForSnapshot(m.ch), lookups)
	case dnsMsg:
		m.dns = m.dns.answer(msg, m.snap.Time)
		if m.filter != "" { // names take part in the filter
			m = m.rebuild().follow()
		}
		return m, nil
	case tea.PasteMsg:
		if m.editing {
			m = m.setFilter(m.filter + msg.Content)
		}
		return m, nil
	case SourceClosedMsg:
		m.closed = true
		return m, tea.Quit
	case tea.WindowSizeMsg:
		m.width, m.height = max(msg.Width, 0), max(msg.Height, 0)
		m = m.follow()
		return m, nil
	case tea.KeyPressMsg:
		return m.key(msg)
	}
	return m, nil
}

func (m Model) key(msg tea.KeyPressMsg) (tea.Model, tea.Cmd) {
	k := msg.String()
	if k == "ctrl+c" {
		return m, tea.Quit
	}
	if m.editing {
		return m.editKey(msg)
	}
	switch k {
	case "q":
		return m, tea.Quit
	case "1", "2", "3", "4", "5":
		m.view = ViewKind(k[0] - '1')
		m.help = false
		return m.follow(), nil
	case "?":
		m.help = !m.help
		return m, nil
	case "/":
		m.editing, m.help = true, false
		return m, nil
	case "u":
		m.bits = !m.bits
		return m, nil
	case "esc":
		if m.help {
			m.help = false
			return m, nil
		}
		m.detail, m.cdetail = false, false
		if m.filter != "" {
			m = m.setFilter("")
		}
		return m.follow(), nil
	case "f":
		m.family = (m.family + 1) % (FamilyIPv6 + 1) // both → IPv4 → IPv6 → both
		m = m.rebuild().follow()
		return m.lookups()
	case "n":
		m.dns.on = !m.dns.on
		if m.filter != "" {
			m = m.rebuild().follow()
		}
		return m.lookups()
	}
	if m.view == ViewInterfaces {
		return m.ifaceKey(k)
	}
	return m.flowKey(k)
}

// editKey handles a key while the filter is being typed: printable text
// goes into the filter, enter keeps it, esc clears it; the selection keys
// keep working.
func (m Model) editKey(msg tea.KeyPressMsg) (tea.Model, tea.Cmd) {
	switch k := msg.String(); k {
	case "enter":
		m.editing = false
		return m, nil
	case "esc":
		m.editing = false
		return m.setFilter("").follow(), nil
	case "backspace":
		r := []rune(m.filter)
		if len(r) > 0 {
			m = m.setFilter(string(r[:len(r)-1]))
		}
		return m, nil
	case "ctrl+u":
		return m.setFilter(""), nil
	case "up", "down", "pgup", "pgdown", "home", "end":
		if m.view == ViewInterfaces {
			return m.ifaceKey(k)
		}
		return m.flowKey(k)
	}
	if msg.Text != "" && msg.Mod&^tea.ModShift == 0 {
		return m.setFilter(m.filter + msg.Text), nil
	}
	return m, nil
}

// setFilter applies a new filter (at most maxFilter bytes of printable
// text) to every view.
func (m Model) setFilter(f string) Model {
	f = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return -1
	}, f)
	for len(f) > maxFilter {
		_, n := utf8.DecodeLastRuneInString(f)
		f = f[:len(f)-n]
	}
	if f == m.filter {
		return m
	}
	m.filter = f
	m.order = m.sorted()
	if i := slices.Index(m.order, m.selKey); i >= 0 && m.picked {
		m.sel = i
	}
	if n := len(m.order); n > 0 {
		m.sel = clamp(m.sel, 0, n-1)
		m.selKey = m.order[m.sel]
	}
	return m.rebuild().follow()
}

// ifaceKey handles the interfaces view's keys.
func (m Model) ifaceKey(k string) (tea.Model, tea.Cmd) {
	n := len(m.order)
	switch k {
	case "up", "k", "down", "j", "pgup", "pgdown", "home", "g", "end", "G":
		m.picked = true
	}
	switch k {
	case "up", "k":
		m.sel--
	case "down", "j":
		m.sel++
	case "pgup":
		m.sel -= max(m.layout().rows, 1)
	case "pgdown":
		m.sel += max(m.layout().rows, 1)
	case "home", "g":
		m.sel = 0
	case "end", "G":
		m.sel = n - 1
	case "enter", "tab":
		m.detail = !m.detail
	case "s":
		m.sort = (m.sort + 1) % 3
		m.order = m.sorted()
		if i := slices.Index(m.order, m.selKey); i >= 0 && m.picked {
			m.sel = i
		}
	default:
		return m, nil
	}
	m.sel = clamp(m.sel, 0, n-1)
	if n > 0 {
		m.selKey = m.order[m.sel]
	}
	m = m.follow()
	return m, nil
}

// flowKey handles the processes, connections, containers and health views' keys.
func (m Model) flowKey(k string) (tea.Model, tea.Cmd) {
	v := m.view
	ls := m.lists[v]
	rows := m.rows(v)
	page := max(m.flowRows(v), 1)
	switch k {
	case "up", "k":
		ls.sel--
	case "down", "j":
		ls.sel++
	case "pgup":
		ls.sel -= page
	case "pgdown":
		ls.sel += page
	case "home", "g":
		ls.sel = 0
	case "end", "G":
		ls.sel = len(rows) - 1
	case "s":
		if v == ViewHealth {
			m.hsort = (m.hsort + 1) % numHealthSorts
			return m.topFlows().rebuild().follow(), nil
		}
		m.fsort = (m.fsort + 1) % numFlowSorts
		m = m.rebuild().follow()
		return m.lookups()
	case "t":
		if v == ViewHealth {
			return m, nil
		}
		c := m.columnsOf(v)%ColumnsTotals + 1 // now → windows → totals → now
		m.cols[v] = c
		m = m.rebuild().follow()
		return m, nil
	case "enter", "tab":
		if v == ViewContainers {
			m.cdetail = !m.cdetail
			return m.follow(), nil
		}
		return m, nil
	default:
		return m, nil
	}
	ls.picked = true
	ls.sel = clamp(ls.sel, 0, len(rows)-1)
	if len(rows) > 0 {
		ls.key = rows[ls.sel].key
	}
	m.lists[v] = ls
	return m.follow(), nil
}

// follow clamps the selections and scrolls the lists so that they are
// visible.
func (m Model) follow() Model {
	n := len(m.order)
	m.sel = clamp(m.sel, 0, n-1)
	m.offset = scrollOffset(m.offset, m.sel, m.layout().rows, n)
	for _, v := range flowViews {
		ls := m.lists[v]
		n := len(m.rows(v))
		ls.sel = clamp(ls.sel, 0, n-1)
		ls.offset = scrollOffset(ls.offset, ls.sel, m.flowRows(v), n)
		m.lists[v] = ls
	}
	return m
}

func scrollOffset(off, sel, rows, n int) int {
	if rows <= 0 {
		return clamp(sel, 0, max(n-1, 0))
	}
	if sel < off {
		off = sel
	}
	if sel >= off+rows {
		off = sel - rows + 1
	}
	return clamp(off, 0, max(n-rows, 0))
}

// sorted returns a new slice of the tracked interfaces in display order.
func (m Model) sorted() []ifKey {
	keys := make([]ifKey, 0, len(m.ifaces))
	for k, st := range m.ifaces {
		if m.match(output.DisplayName(&st.cur), st.cur.Kind) {
			keys = append(keys, k)
		}
	}
	rate := func(st ifState) float64 {
		var v float64
		switch m.sort {
		case SortRx:
			v = st.cur.RxBytesRate.Current
		case SortTx:
			v = st.cur.TxBytesRate.Current
		}
		if v != v { // NaN
			return -1
		}
		return v
	}
	slices.SortFunc(keys, func(a, b ifKey) int {
		sa, sb := m.ifaces[a], m.ifaces[b]
		// Gone interfaces sink to the bottom whatever the order.
		if c := cmp.Compare(b2i(isGone(sa)), b2i(isGone(sb))); c != 0 {
			return c
		}
		if m.sort != SortName {
			if c := cmp.Compare(rate(sb), rate(sa)); c != 0 {
				return c
			}
		}
		return a.compare(b)
	})
	return keys
}

// ingest folds one snapshot into a new model state.
func (m Model) ingest(s snapshot.Snapshot) Model {
	m.snap = s
	m.received++
	limit := m.opts.History

	next := make(map[ifKey]ifState, len(s.Interfaces))
	for i := range s.Interfaces {
		ifc := &s.Interfaces[i]
		k := keyOf(ifc)
		if _, dup := next[k]; dup {
			continue
		}
		st := m.ifaces[k] // zero value for a new interface
		st.cur = *ifc
		if ifc.Present {
			st.missing = 0
			st.rx = push(st.rx, ifc.RxBytesRate.Current, limit)
			st.tx = push(st.tx, ifc.TxBytesRate.Current, limit)
			st.faults = push(st.faults, faultsOf(&ifc.Delta), limit)
		} else {
			st.missing++
			st = st.idle(limit)
		}
		next[k] = st
	}
	for k, st := range m.ifaces {
		if _, ok := next[k]; ok {
			continue
		}
		st.missing++
		next[k] = st.idle(limit)
	}
	for k, st := range next {
		if st.missing > m.opts.ForgetAfter {
			delete(next, k)
		}
	}
	m.hidden = 0
	if len(next) > m.opts.MaxInterfaces {
		next, m.hidden = evict(next, m.ifaces, m.opts.MaxInterfaces)
	}
	m.ifaces = next
	m.order = m.sorted()
	if i := slices.Index(m.order, m.selKey); i >= 0 && m.picked {
		m.sel = i
	}
	if n := len(m.order); n > 0 {
		m.sel = clamp(m.sel, 0, n-1)
		m.selKey = m.order[m.sel]
	}
	m.buckets = pushBuckets(m.buckets, &s)
	return m.analyze().rebuild().follow()
}

// evict keeps max interfaces: present ones before missing ones, already
// tracked before new, then by name. It returns how many present interfaces
// of the snapshot were left out.
func evict(next, prev map[ifKey]ifState, limit int) (map[ifKey]ifState, int) {
	keys := make([]ifKey, 0, len(next))
	for k := range next {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b ifKey) int {
		sa, sb := next[a], next[b]
		_, ta := prev[a]
		_, tb := prev[b]
		return cmp.Or(
			cmp.Compare(sa.missing, sb.missing),
			-cmp.Compare(b2i(ta), b2i(tb)),
			a.compare(b),
		)
	})
	hidden := 0
	for _, k := range keys[limit:] {
		if next[k].missing == 0 {
			hidden++
		}
		delete(next, k)
	}
	return next, hidden
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func clamp(v, lo, hi int) int {
	if hi < lo {
		return lo
	}
	return min(max(v, lo), hi)
}
