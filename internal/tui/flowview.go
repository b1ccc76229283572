package tui

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/charmbracelet/x/ansi"

	"github.com/netmeter/netmeter/internal/output"
	"github.com/netmeter/netmeter/internal/snapshot"
)

// optional is the priority below which a column gives way to the flex
// column's wanted width.
const optional = 70

// flowChrome is the header, totals line, column header and footer.
const flowChrome = 4

func (m Model) linesPerRow(v ViewKind) int {
	if m.columnsOf(v) == ColumnsWindows {
		return 2
	}
	return 1
}

// flowRows is how many rows of view v fit on the screen (above the
// containers view's detail pane when it is open; under the health view's
// statuses).
func (m Model) flowRows(v ViewKind) int {
	if m.width <= 0 || m.height <= 0 {
		return 0
	}
	if v == ViewHealth {
		return m.healthLayout().flows
	}
	avail := max(m.height-flowChrome, 0)
	if v == ViewContainers {
		avail -= m.paneHeight()
	}
	return max(avail, 0) / m.linesPerRow(v)
}

// fcol is a column of the processes or connections view. A row has one
// or two lines (two with ColumnsWindows: sent above, received below).
type fcol struct {
	title string
	right bool
	prio  int  // lowest priorities are dropped first when too narrow
	flex  bool // takes the width left over, between min and its content
	min   int
	want  int // the flex column gets this much before optional columns (prio < optional)
	max   int // content wider than this is cut with "…" (0: no limit)
	width int
	cell  func(r *flowRow, line, width int) seg
}

func (m Model) rateText(v float64) string { return output.FormatRate(v, m.bits) }

// procColumns and connColumns return the columns of a view for its
// column set.
func (m Model) procColumns() []fcol {
	cols := []fcol{
		{title: "PID", right: true, prio: 80, cell: func(r *flowRow, line, _ int) seg {
			if line > 0 || r.kind != rowProc {
				return seg{}
			}
			return seg{strconv.Itoa(r.proc.PID), plain}
		}},
		{title: "USER", prio: 75, max: 8, cell: func(r *flowRow, line, _ int) seg {
			if line > 0 || r.kind != rowProc {
				return seg{}
			}
			u := r.proc.User
			if u == "" {
				u = strconv.FormatUint(uint64(r.proc.UID), 10)
			}
			return seg{u, plain}
		}},
		{title: "PROGRAM", prio: 100, flex: true, min: 8, want: 16, cell: func(r *flowRow, line, _ int) seg {
			if line > 0 {
				return seg{}
			}
			if r.kind == rowBucket {
				return seg{output.BucketName(r.bucket), styleHelp}
			}
			name := output.ProgramName(r.proc)
			if r.proc.Exited {
				name += " (exited)"
			}
			return seg{name, plain}
		}},
		{title: "SOCK", right: true, prio: 40, cell: func(r *flowRow, line, _ int) seg {
			if line > 0 || r.kind != rowProc {
				return seg{}
			}
			return seg{strconv.Itoa(r.proc.Sockets), plain}
		}},
	}
	return append(cols, m.rateColumns(ViewProcesses)...)
}

func (m Model) connColumns() []fcol {
	c := m.columnsOf(ViewConnections)
	ends := fcol{title: "LOCAL → REMOTE", prio: 100, flex: true, min: 16, want: 30, cell: func(r *flowRow, line, width int) seg {
		if line == 0 {
			return seg{m.endpoints(r.conn, width), plain}
		}
		// The second line of a two-line row says who and what.
		parts := []string{output.ProtoName(r.conn), connProcess(r.conn)}
		switch st := output.ConnState(r.conn); st {
		case "-":
		case "established": // as ss abbreviates it
			parts = append(parts, "estab")
		default:
			parts = append(parts, st)
		}
		return seg{"  " + strings.Join(parts, "  "), styleHelp}
	}}
	if c == ColumnsWindows {
		return append([]fcol{ends}, m.rateColumns(ViewConnections)...)
	}
	cols := []fcol{
		ends,
		{title: "PROTO", prio: 72, cell: func(r *flowRow, _, _ int) seg { return seg{output.ProtoName(r.conn), plain} }},
		{title: "PROCESS", prio: 85, max: 24, cell: func(r *flowRow, _, _ int) seg { return seg{connProcess(r.conn), plain} }},
	}
	return append(cols, m.rateColumns(ViewConnections)...)
}

// connProcess names the owner, and the peer of a local connection:
// "curl ⇄ nginx".
func connProcess(c *snapshot.Connection) string {
	name := func(o snapshot.Owner) string {
		switch {
		case o.Comm != "":
			return o.Comm
		case o.PID == 0:
			return "[no process]" // a socket nobody holds (kernel, or older than netmeter and unclaimed)
		}
		return "pid " + strconv.Itoa(o.PID)
	}
	if c.Peer != nil {
		return name(c.Owner) + " ⇄ " + name(*c.Peer)
	}
	return name(c.Owner)
}

// endpoints is "local → remote" in at most width cells: the local address
// goes first (":port" is the part that matters), then the remote is cut.
func (m Model) endpoints(c *snapshot.Connection, width int) string {
	remote := output.FormatEndpoint(c.Remote)
	if name, ok := m.hostName(c.Remote.Addr); ok {
		remote = output.HostPort(name, c.Remote.Port)
		if strings.Contains(name, ":") { // never bracket a name
			remote = name + ":" + strconv.Itoa(int(c.Remote.Port))
		}
	}
	local := output.FormatEndpoint(c.Local)
	full := local + " → " + remote
	if ansi.StringWidth(full) <= width || c.Local.Port == 0 {
		return full
	}
	return ":" + strconv.Itoa(int(c.Local.Port)) + " → " + remote
}

// rateColumns are the rate and total columns for a view's column set.
func (m Model) rateColumns(v ViewKind) []fcol {
	rate := func(title string, prio int, tx bool, pick func(snapshot.Rate) float64) fcol {
		return fcol{title: title, right: true, prio: prio, cell: func(r *flowRow, line, _ int) seg {
			if tx {
				return seg{m.rateText(pick(r.tx)), styleTx}
			}
			return seg{m.rateText(pick(r.rx)), styleRx}
		}}
	}
	total := func(title string, prio int, f func(t snapshot.Traffic) uint64) fcol {
		return fcol{title: title, right: true, prio: prio, cell: func(r *flowRow, line, _ int) seg {
			if line > 0 {
				return seg{}
			}
			return seg{output.FormatBytes(f(r.total)), plain}
		}}
	}
	cur := func(rt snapshot.Rate) float64 { return rt.Current }
	switch m.columnsOf(v) {
	case ColumnsWindows:
		// Two lines: sent above, received below, like iftop's => and <=.
		window := func(title string, prio int, pick func(snapshot.Rate) float64) fcol {
			return fcol{title: title, right: true, prio: prio, cell: func(r *flowRow, line, _ int) seg {
				if line == 0 {
					return seg{m.rateText(pick(r.tx)), styleTx}
				}
				return seg{m.rateText(pick(r.rx)), styleRx}
			}}
		}
		return []fcol{
			{title: "", prio: 98, cell: func(r *flowRow, line, _ int) seg {
				if line == 0 {
					return seg{"sent", styleTx}
				}
				return seg{"recv", styleRx}
			}},
			window("2s", 97, func(rt snapshot.Rate) float64 { return rt.Window2s }),
			window("10s", 70, func(rt snapshot.Rate) float64 { return rt.Window10s }),
			window("40s", 65, func(rt snapshot.Rate) float64 { return rt.Window40s }),
			{title: "TOTAL", right: true, prio: 60, cell: func(r *flowRow, line, _ int) seg {
				if line == 0 {
					return seg{output.FormatBytes(r.total.TxBytes), plain}
				}
				return seg{output.FormatBytes(r.total.RxBytes), plain}
			}},
		}
	case ColumnsTotals:
		if v == ViewContainers {
			return append([]fcol{
				total("SENT", 95, func(t snapshot.Traffic) uint64 { return t.TxBytes }),
				total("RECV", 95, func(t snapshot.Traffic) uint64 { return t.RxBytes }),
			}, peerColumns()...)
		}
		return []fcol{
			total("SENT", 95, func(t snapshot.Traffic) uint64 { return t.TxBytes }),
			total("RECV", 95, func(t snapshot.Traffic) uint64 { return t.RxBytes }),
			total("SENT PAYLOAD", 55, func(t snapshot.Traffic) uint64 { return t.TxPayload }),
			total("RECV PAYLOAD", 55, func(t snapshot.Traffic) uint64 { return t.RxPayload }),
		}
	default:
		return []fcol{
			rate("SENT/s", 95, true, cur),
			rate("RECV/s", 95, false, cur),
			total("SENT", 60, func(t snapshot.Traffic) uint64 { return t.TxBytes }),
			total("RECV", 60, func(t snapshot.Traffic) uint64 { return t.RxBytes }),
		}
	}
}

// fitFlow sizes the columns to the rows' content and drops the lowest
// priorities until they fit in w; the flex column gets what is left.
func fitFlow(cols []fcol, rows []flowRow, lines, w int) ([]fcol, int) {
	for i := range cols {
		c := &cols[i]
		c.width = ansi.StringWidth(c.title)
		for r := range rows {
			for l := range lines {
				c.width = max(c.width, ansi.StringWidth(c.cell(&rows[r], l, 1<<10).text))
			}
		}
		if c.max > 0 {
			c.width = min(c.width, c.max)
		}
	}
	sep := 2
	// total is the row width with the flex column at most flexW wide.
	total := func(flexW int) int {
		n := markerWidth
		for i, c := range cols {
			if i > 0 {
				n += sep
			}
			if c.flex {
				n += min(flexW, c.width)
			} else {
				n += c.width
			}
		}
		return n
	}
	if total(1<<20) > w {
		sep = 1
	}
	// drop removes the lowest-priority column below prio; false if none.
	drop := func(prio int) bool {
		low := -1
		for i, c := range cols {
			if !c.flex && c.prio < prio && (low < 0 || c.prio < cols[low].prio) {
				low = i
			}
		}
		if low < 0 {
			return false
		}
		cols = append(cols[:low:low], cols[low+1:]...)
		return true
	}
	want, least := 0, 0
	for _, c := range cols {
		if c.flex {
			want, least = c.want, c.min
		}
	}
	// Optional columns give way to the flex column's wanted width, then
	// any column to its minimum.
	for total(want) > w && drop(optional) {
	}
	for total(least) > w && drop(1<<20) {
	}
	if over := total(1<<20) - w; over > 0 {
		for i := range cols {
			if cols[i].flex {
				cols[i].width = max(cols[i].width-over, min(cols[i].min, cols[i].width))
			}
		}
	}
	return cols, sep
}

// flowBody renders the totals line, the column header and the rows of the
// processes, connections or containers view, and the containers view's
// detail pane.
func (m Model) flowBody(w int) []string {
	v := m.view
	rows := m.rows(v)
	tot, what, needs := m.procTotals, "processes", "per-process"
	var cols []fcol
	switch v {
	case ViewConnections:
		tot, what = m.connTotals, "connections"
		cols = m.connColumns()
	case ViewContainers:
		tot, what, needs = m.ctrTotals, "containers", "per-container"
		cols = m.ctrColumns()
	default:
		cols = m.procColumns()
	}
	if m.snap.Engine == nil && len(rows) == 0 {
		return []string{"", "  no " + what + ": no engine is running (" + needs + " traffic needs the eBPF or the classic engine)"}
	}
	lines := []string{m.totalsLine(tot)}
	per := m.linesPerRow(v)
	cols, sep := fitFlow(cols, rows, per, w)
	lines = append(lines, headerLine(cols, sep))
	if len(rows) == 0 {
		msg := "  no " + what
		if m.filter != "" {
			msg += " match /" + m.filter
		}
		if v == ViewConnections && m.family != FamilyAll {
			msg += " (" + m.family.String() + " only)"
		}
		if v == ViewContainers && m.filter == "" {
			msg += ": no process in a container has used the network yet"
		}
		return append(lines, msg)
	}
	lines = append(lines, listLines(rows, cols, sep, m.lists[v], m.flowRows(v), per)...)
	if v == ViewContainers {
		// The pane sits right under the last row.
		lines = append(lines, m.pane(w, m.paneHeight())...)
	}
	return lines
}

// headerLine is the column titles.
func headerLine(cols []fcol, sep int) string {
	hdr := []seg{{strings.Repeat(" ", markerWidth), plain}}
	for i, c := range cols {
		hdr = appendFlowCell(hdr, i, sep, c, seg{c.title, styleColHdr})
	}
	return join(hdr, false)
}

// listLines renders the n rows of a list from its scroll position, per
// lines each, the selected one marked.
func listLines(rows []flowRow, cols []fcol, sep int, ls listState, n, per int) []string {
	var lines []string
	off := scrollOffset(ls.offset, ls.sel, n, len(rows))
	for i := off; i < min(off+n, len(rows)); i++ {
		for l := range per {
			lines = append(lines, rowLine(&rows[i], l, cols, sep, i == ls.sel))
		}
	}
	return lines
}

// rowLine renders line l of a row; exited and closed rows are dim.
func rowLine(r *flowRow, l int, cols []fcol, sep int, selected bool) string {
	marker := "  "
	if selected && l == 0 {
		marker = "> "
	}
	row := []seg{{marker, plain}}
	for j, c := range cols {
		cell := c.cell(r, l, c.width)
		if ansi.StringWidth(cell.text) > c.width {
			cell.text = ansi.Truncate(cell.text, c.width, "…")
		}
		row = appendFlowCell(row, j, sep, c, cell)
	}
	if r.dim {
		for k := range row {
			row[k].style = styleGone
		}
	}
	return join(row, selected)
}

func appendFlowCell(row []seg, i, sep int, c fcol, cell seg) []seg {
	return appendCell(row, i, sep, column{width: c.width, right: c.right}, []seg{cell})
}

// totalsLine sums the listed rows: rates as the columns show them, and the
// totals since start; engine losses are flagged.
func (m Model) totalsLine(t flowTotals) string {
	var b strings.Builder
	title, pick := "total", func(r snapshot.Rate) float64 { return r.Current }
	if m.columnsOf(m.view) == ColumnsWindows {
		title, pick = "total 2s", func(r snapshot.Rate) float64 { return r.Window2s }
	}
	b.WriteString(styleColHdr.Render(title))
	fmt.Fprintf(&b, "  sent %s  recv %s", styleTx.Render(m.rateText(pick(t.tx))), styleRx.Render(m.rateText(pick(t.rx))))
	fmt.Fprintf(&b, "  │  cum sent %s  recv %s", output.FormatBytes(t.total.TxBytes), output.FormatBytes(t.total.RxBytes))
	if e := m.snap.Engine; e != nil {
		if e.Approximate {
			b.WriteString("  " + styleHot.Render("≈ approximate ("+e.Kind+" engine)"))
		}
		if e.CaptureDropped > 0 {
			b.WriteString("  " + styleHot.Render(fmt.Sprintf("capture dropped %d", e.CaptureDropped)))
		}
		if e.MapFull > 0 {
			b.WriteString("  " + styleHot.Render(fmt.Sprintf("map full %d", e.MapFull)))
		}
		if e.RingLost > 0 {
			b.WriteString("  " + styleHot.Render(fmt.Sprintf("ring lost %d", e.RingLost)))
		}
	}
	return b.String()
}

// flowHeaderCounts is the header's summary of the flow view.
func (m Model) flowHeaderCounts() string {
	var n string
	switch m.view {
	case ViewProcesses:
		t := m.procTotals
		n = plural(t.n-t.buckets, "proc")
		if t.dim > 0 {
			n += fmt.Sprintf(" (%d exited)", t.dim)
		}
		if m.procHidden > 0 {
			n += fmt.Sprintf(" +%d not shown", m.procHidden)
		}
	case ViewContainers:
		n = plural(m.ctrTotals.n, "container")
		if m.ctrHidden > 0 {
			n += fmt.Sprintf(" +%d not shown", m.ctrHidden)
		}
	case ViewHealth:
		n = m.healthHeaderCounts()
	default:
		t := m.connTotals
		n = plural(t.n, "conn")
		if t.dim > 0 {
			n += fmt.Sprintf(" (%d closed)", t.dim)
		}
		if m.connHidden > 0 {
			n += fmt.Sprintf(" +%d not shown", m.connHidden)
		}
	}
	return n
}

// helpText is the "?" screen.
var helpText = []string{
	"keys",
	"  1 2 3 4 5     interfaces, processes, connections, containers, health",
	"  j/k ↑/↓       select; pgup/pgdown, g/G home/end",
	"  s             sort: interfaces name → rx → tx; health bytes → rate →",
	"                retrans → rtt → drops; the others tx → rx → total → name",
	"  t             columns: now → 2s/10s/40s → totals (views 2, 3 and 4)",
	"  /             filter by name, pid, user, port, address or host name;",
	"                containers by name, id, image, account or label value;",
	"                health flows by local id or remote group",
	"  f  n          connections: both families → IPv4 → IPv6; host names",
	"  u             bytes/s ↔ bits/s",
	"  enter  tab    interface or container details",
	"  esc           close details or help, clear the filter",
	"  q  ctrl+c     quit",
	"",
	"Rates and totals are IP bytes (headers included); PAYLOAD is what",
	"applications sent and received. [kernel] is traffic no process owns",
	"(TIME-WAIT, RSTs), [overflow] what did not fit the engine's maps.",
	"Containers: ACC/OPEN are TCP connections accepted/opened; C↔C is",
	"traffic with other containers here, C↔HOST with this host's processes;",
	"(host net) marks a container in the host's network namespace.",
	"Health: each remote group against its own baseline (docs/HEALTH.md).",
}

// footer lists the views (the current one in brackets) and the keys that
// fit, most useful first; "? help" and "q quit" always stay.
func (m Model) footer(w int) string {
	if m.editing {
		return styleTitle.Render("/") + m.filter + "▏" + styleHelp.Render("  enter keep  esc clear")
	}
	tabs := make([]string, 0, numViews)
	for v, name := range []string{"ifaces", "procs", "conns", "ctrs", "health"} {
		t := strconv.Itoa(v+1) + " " + name
		if ViewKind(v) == m.view {
			t = "[" + t + "]"
		}
		tabs = append(tabs, t)
	}
	var opt []string
	switch m.view {
	case ViewInterfaces:
		opt = []string{"enter details", "s sort", "/ filter", "u units"}
	case ViewProcesses:
		opt = []string{"s sort", "t columns", "/ filter", "u units"}
	case ViewContainers:
		opt = []string{"enter details", "s sort", "t columns", "/ filter", "u units"}
		if m.cdetail {
			opt[0] = "enter close"
		}
	case ViewHealth:
		opt = []string{"s sort", "/ filter", "u units"}
	default:
		opt = []string{"s sort", "/ filter", "f family", "n dns", "t columns", "u units"}
	}
	if m.filter != "" {
		opt = append([]string{"esc clear filter"}, opt...)
	}
	fixed := strings.Join(tabs, " ")
	tail := "  ? help  q quit"
	if ansi.StringWidth(fixed)+ansi.StringWidth(tail) > w { // just the numbers
		for v := range tabs {
			tabs[v] = strconv.Itoa(v + 1)
			if ViewKind(v) == m.view {
				tabs[v] = "[" + tabs[v] + "]"
			}
		}
		fixed = strings.Join(tabs, " ")
	}
	used := ansi.StringWidth(fixed) + ansi.StringWidth(tail)
	keep := make([]bool, len(opt))
	for i, o := range opt {
		if used+2+ansi.StringWidth(o) <= w {
			used += 2 + ansi.StringWidth(o)
			keep[i] = true
		}
	}
	var b strings.Builder
	b.WriteString(fixed)
	for i, o := range opt {
		if keep[i] {
			b.WriteString("  " + o)
		}
	}
	b.WriteString(tail)
	return styleHelp.Render(b.String())
}

// flowStatus is the right side of the header in a flow view.
func (m Model) flowStatus() []string {
	var st []string
	if m.view == ViewConnections {
		if m.family != FamilyAll {
			st = append(st, m.family.String()+" only")
		}
		if m.dns.on {
			st = append(st, "dns")
		}
	}
	if m.view == ViewHealth {
		return append(st, "sort "+m.hsort.String())
	}
	return append(st, "sort "+m.fsort.String())
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}
