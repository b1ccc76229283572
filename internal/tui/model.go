package tui

import (
	"cmp"
	"slices"

	tea "charm.land/bubbletea/v2"

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
	}
}

// Init starts waiting for the first snapshot.
func (m Model) Init() tea.Cmd { return WaitForSnapshot(m.ch) }

// Update handles snapshots, window sizes and keys.
func (m Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case SnapshotMsg:
		m = m.ingest(msg.Snapshot)
		return m, WaitForSnapshot(m.ch)
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
	n := len(m.order)
	switch msg.String() {
	case "q", "ctrl+c":
		return m, tea.Quit
	case "up", "k", "down", "j", "pgup", "pgdown", "home", "g", "end", "G":
		m.picked = true
	}
	switch msg.String() {
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
	case "esc":
		m.detail = false
	case "u":
		m.bits = !m.bits
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

// follow clamps the selection and scrolls the list so that it is visible.
func (m Model) follow() Model {
	n := len(m.order)
	m.sel = clamp(m.sel, 0, n-1)
	m.offset = scrollOffset(m.offset, m.sel, m.layout().rows, n)
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
	for k := range m.ifaces {
		keys = append(keys, k)
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
	return m.follow()
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
