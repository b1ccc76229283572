package tui

import (
	"fmt"
	"strconv"
	"strings"

	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/netmeter/netmeter/internal/output"
)

// Styles use the 16 basic ANSI colours so they survive any terminal; the
// program downsamples them further (to none) on terminals without colour.
var (
	styleTitle  = lipgloss.NewStyle().Bold(true).Foreground(lipgloss.Cyan)
	styleColHdr = lipgloss.NewStyle().Bold(true)
	styleHelp   = lipgloss.NewStyle().Faint(true)
	styleGone   = lipgloss.NewStyle().Faint(true)
	styleRx     = lipgloss.NewStyle().Foreground(lipgloss.Green)
	styleTx     = lipgloss.NewStyle().Foreground(lipgloss.Magenta)
	// styleHot marks an error or drop counter that grew in the last
	// interval. Nothing else is bold red.
	styleHot = lipgloss.NewStyle().Bold(true).Foreground(lipgloss.Red)
	plain    = lipgloss.NewStyle()
)

// View renders the model in the alternate screen.
func (m Model) View() tea.View {
	v := tea.NewView(m.render())
	v.AltScreen = true
	v.WindowTitle = "netmeter"
	return v
}

// screen is how the height is shared out.
type screen struct {
	rows   int  // visible list rows
	panel  bool // the selected interface's panel
	graphH int  // graph rows per direction in the panel
	info   bool // detail lines in the panel
}

const (
	chromeLines = 3 // header, column header, footer
	rateLines   = 4 // separator, rate table header, RX, TX
	infoLines   = 5
)

func (m Model) layout() screen {
	avail := m.height - chromeLines
	n := max(len(m.order), 1)
	if avail <= 0 || m.width <= 0 {
		return screen{}
	}
	// Spare height goes to taller graphs, up to maxGraph rows each.
	const maxGraph = 6
	if m.detail {
		base := rateLines + infoLines
		gh := clamp((avail-min(n, 5)-base)/2, 1, maxGraph)
		if rows := min(n, avail-base-2*gh); rows >= 1 {
			gh = clamp((avail-rows-base)/2, 1, maxGraph)
			return screen{rows: rows, panel: true, graphH: gh, info: true}
		}
	}
	if rows := min(n, avail-rateLines-2); rows >= min(n, 3) {
		gh := clamp((avail-rows-rateLines)/2, 1, maxGraph)
		return screen{rows: rows, panel: true, graphH: gh}
	}
	return screen{rows: min(n, avail)}
}

func (m Model) render() string {
	if m.width <= 0 || m.height <= 0 {
		return ""
	}
	w := m.width
	lay := m.layout()
	lines := make([]string, 0, m.height)
	lines = append(lines, m.header(w))
	switch {
	case m.help:
		lines = append(lines, helpText...)
	case m.received == 0:
		lines = append(lines, "", "  waiting for the first snapshot…")
	case m.view == ViewHealth:
		lines = append(lines, m.healthBody(w)...)
	case m.view != ViewInterfaces:
		lines = append(lines, m.flowBody(w)...)
	default:
		lines = append(lines, m.list(w, lay)...)
		if lay.panel {
			lines = append(lines, m.panel(w, lay)...)
		}
	}
	for len(lines) < m.height-1 {
		lines = append(lines, "")
	}
	lines = lines[:min(len(lines), m.height-1)]
	lines = append(lines, m.footer(w))
	lines = lines[max(len(lines)-m.height, 0):]
	if m.height == 1 {
		lines = lines[:0]
		lines = append(lines, m.header(w))
	}
	for i, l := range lines {
		lines[i] = ansi.Truncate(l, w, "")
	}
	return strings.Join(lines, "\n")
}

func (m Model) header(w int) string {
	parts := []string{styleTitle.Render("netmeter")}
	if m.received > 0 && m.view != ViewInterfaces {
		parts = append(parts, m.snap.Time.Format("15:04:05"), m.flowHeaderCounts())
	} else if m.received > 0 {
		s := m.snap
		gone := 0
		for _, st := range m.ifaces {
			if isGone(st) {
				gone++
			}
		}
		n := fmt.Sprintf("%d ifaces", len(m.ifaces))
		if gone > 0 {
			n += fmt.Sprintf(" (%d gone)", gone)
		}
		if m.hidden > 0 {
			n += fmt.Sprintf(" +%d untracked", m.hidden)
		}
		parts = append(parts, s.Time.Format("15:04:05"), orDash(s.Source)+" every "+s.Interval.String(), n)
	}
	unit := "bytes/s"
	if m.bits {
		unit = "bits/s"
	}
	right := unit + "  sort " + m.sort.String()
	if m.view != ViewInterfaces {
		right = strings.Join(append([]string{unit}, m.flowStatus()...), "  ")
	}
	if m.filter != "" && !m.editing {
		right = "/" + m.filter + "  " + right
	}
	left := parts[0]
	for _, p := range parts[1:] {
		if ansi.StringWidth(left)+2+ansi.StringWidth(p) > w {
			break
		}
		left += "  " + p
	}
	if gap := w - ansi.StringWidth(left) - ansi.StringWidth(right); gap >= 2 {
		return left + strings.Repeat(" ", gap) + right
	}
	return left
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// seg is a run of text in one style.
type seg struct {
	text  string
	style lipgloss.Style
}

func segWidth(ss []seg) int {
	n := 0
	for _, s := range ss {
		n += ansi.StringWidth(s.text)
	}
	return n
}

// column of the interface list.
type column struct {
	title string
	right bool
	prio  int // columns with the lowest priority go first when too narrow
	width int
	cell  func(st ifState, width int) []seg
}

func (m Model) columns() []column {
	rate := func(v float64, gone bool) string {
		if gone {
			return output.Invalid
		}
		return output.FormatRate(v, m.bits)
	}
	pair := func(a, b uint64, hotA, hotB bool) []seg {
		sa, sb := plain, plain
		if hotA {
			sa = styleHot
		}
		if hotB {
			sb = styleHot
		}
		return []seg{{strconv.FormatUint(a, 10), sa}, {"/", plain}, {strconv.FormatUint(b, 10), sb}}
	}
	return []column{
		{title: "IFACE", prio: 100, cell: func(st ifState, w int) []seg {
			return []seg{{ansi.Truncate(output.DisplayName(&st.cur), w, "…"), plain}}
		}},
		{title: "STATE", prio: 50, cell: func(st ifState, _ int) []seg {
			return []seg{{shortState(st), plain}}
		}},
		{title: "RX/s", right: true, prio: 91, cell: func(st ifState, _ int) []seg {
			return []seg{{rate(st.cur.RxBytesRate.Current, isGone(st)), styleRx}}
		}},
		{title: "TX/s", right: true, prio: 90, cell: func(st ifState, _ int) []seg {
			return []seg{{rate(st.cur.TxBytesRate.Current, isGone(st)), styleTx}}
		}},
		{title: "RX TOTAL", right: true, prio: 40, cell: func(st ifState, _ int) []seg {
			return []seg{{output.FormatBytes(st.cur.Kernel.RxBytes), plain}}
		}},
		{title: "TX TOTAL", right: true, prio: 40, cell: func(st ifState, _ int) []seg {
			return []seg{{output.FormatBytes(st.cur.Kernel.TxBytes), plain}}
		}},
		{title: "ERRS", right: true, prio: 60, cell: func(st ifState, _ int) []seg {
			g := st.grew()
			return pair(st.cur.Kernel.RxErrors, st.cur.Kernel.TxErrors, g.rxErr > 0, g.txErr > 0)
		}},
		{title: "DROPS", right: true, prio: 60, cell: func(st ifState, _ int) []seg {
			g := st.grew()
			return pair(st.cur.Kernel.RxDropped, st.cur.Kernel.TxDropped, g.rxDrop > 0, g.txDrop > 0)
		}},
	}
}

func isGone(st ifState) bool { return st.missing > 0 || !st.cur.Present }

// shortState abbreviates RFC 2863 states to at most 7 cells.
func shortState(st ifState) string {
	if isGone(st) {
		return output.StateGone
	}
	switch s := st.cur.OperState; s {
	case "":
		return "unknown"
	case "lowerlayerdown":
		return "lldown"
	case "notpresent":
		return "notpres"
	default:
		return s
	}
}

const (
	markerWidth   = 2 // "> " before the selected row
	nameMin       = 6
	nameMax       = 16
	graphMinWidth = 8
)

// fitColumns sizes the columns to their content and returns them with the
// separator width: two spaces if everything fits, else one, dropping the
// lowest priorities until the row fits in w. Spare width goes to a history
// graph column.
func (m Model) fitColumns(w int) ([]column, int) {
	cols := m.columns()
	for i := range cols {
		c := &cols[i]
		c.width = ansi.StringWidth(c.title)
		for _, k := range m.order {
			c.width = max(c.width, segWidth(c.cell(m.ifaces[k], 1<<10)))
		}
	}
	cols[0].width = clamp(cols[0].width, nameMin, nameMax)
	sep := 2
	total := func() int {
		n := markerWidth
		for i, c := range cols {
			if i > 0 {
				n += sep
			}
			n += c.width
		}
		return n
	}
	if total() > w {
		sep = 1
	}
	all := len(cols)
	for total() > w && len(cols) > 1 {
		low := cols[1].prio
		for _, c := range cols[1:] {
			low = min(low, c.prio)
		}
		kept := cols[:0]
		for _, c := range cols {
			if c.prio != low {
				kept = append(kept, c)
			}
		}
		cols = kept
	}
	// The graph only takes width that no column needs.
	if spare := w - total() - sep; spare >= graphMinWidth && len(cols) == all {
		width := min(spare, m.opts.History)
		title := "HISTORY"
		if width >= len("HISTORY (RX+TX)") {
			title = "HISTORY (RX+TX)"
		}
		cols = append(cols, column{
			title: title,
			width: width,
			cell: func(st ifState, width int) []seg {
				sum := make([]float64, len(st.rx))
				for i := range st.rx {
					sum[i] = st.rx[i] + st.tx[i]
				}
				g, _ := bars(sum, width, 1)
				return []seg{{g[0], styleRx}}
			},
		})
	}
	return cols, sep
}

func (m Model) list(w int, lay screen) []string {
	cols, sep := m.fitColumns(w)
	var lines []string
	hdr := make([]seg, 0, 2*len(cols)+1)
	hdr = append(hdr, seg{strings.Repeat(" ", markerWidth), plain})
	for i, c := range cols {
		hdr = appendCell(hdr, i, sep, c, []seg{{c.title, styleColHdr}})
	}
	lines = append(lines, join(hdr, false))
	if len(m.order) == 0 {
		if m.filter != "" && len(m.ifaces) > 0 {
			return append(lines, "  no interfaces match /"+m.filter+" (esc clears)")
		}
		return append(lines, "  no interfaces")
	}
	off := scrollOffset(m.offset, m.sel, lay.rows, len(m.order))
	for i := off; i < min(off+lay.rows, len(m.order)); i++ {
		st := m.ifaces[m.order[i]]
		selected := i == m.sel
		marker := "  "
		if selected {
			marker = "> "
		}
		row := []seg{{marker, plain}}
		for j, c := range cols {
			row = appendCell(row, j, sep, c, c.cell(st, c.width))
		}
		if isGone(st) { // a gone interface has no growing counters to highlight
			for k := range row {
				row[k].style = styleGone
			}
		}
		lines = append(lines, join(row, selected))
	}
	return lines
}

// appendCell pads the cell to the column width and adds it to the row.
func appendCell(row []seg, i, sep int, c column, cell []seg) []seg {
	if i > 0 {
		row = append(row, seg{strings.Repeat(" ", sep), plain})
	}
	pad := seg{strings.Repeat(" ", max(c.width-segWidth(cell), 0)), plain}
	if c.right {
		row = append(row, pad)
		return append(row, cell...)
	}
	row = append(row, cell...)
	return append(row, pad)
}

// join renders the segments, without trailing blanks; a selected row is
// drawn in reverse video.
func join(row []seg, selected bool) string {
	for len(row) > 0 && strings.TrimSpace(row[len(row)-1].text) == "" {
		row = row[:len(row)-1]
	}
	var b strings.Builder
	for _, s := range row {
		st := s.style
		if selected {
			st = st.Reverse(true)
		}
		if s.text == "" {
			continue
		}
		b.WriteString(st.Render(s.text))
	}
	return b.String()
}

// panel shows the selected interface: rate windows, graphs and, in detail
// mode, its attributes and counters.
func (m Model) panel(w int, lay screen) []string {
	if len(m.order) == 0 {
		return nil
	}
	st := m.ifaces[m.order[m.sel]]
	ifc := &st.cur
	var lines []string

	title := "── " + output.DisplayName(ifc) + "  " + shortState(st)
	if ifc.Kind != "" {
		title += "  " + ifc.Kind
	}
	if ifc.SpeedMbps > 0 {
		title += fmt.Sprintf("  %d Mbit/s", ifc.SpeedMbps)
	}
	if ifc.Master != "" {
		title += "  master " + ifc.Master
	}
	if ifc.MAC != "" {
		title += "  " + ifc.MAC
	}
	title += " "
	lines = append(lines, styleColHdr.Render(title+strings.Repeat("─", max(w-ansi.StringWidth(title), 0))))

	// Rate windows.
	rate := func(v float64) string { return output.FormatRate(v, m.bits) }
	hdr := []string{"now", "2s", "10s", "40s", "avg", "max"}
	rx, tx := ifc.RxBytesRate, ifc.TxBytesRate
	rxv := []string{rate(rx.Current), rate(rx.Window2s), rate(rx.Window10s), rate(rx.Window40s), rate(rx.Avg), rate(rx.Max)}
	txv := []string{rate(tx.Current), rate(tx.Window2s), rate(tx.Window10s), rate(tx.Window40s), rate(tx.Avg), rate(tx.Max)}
	if isGone(st) {
		rxv[0], txv[0] = output.Invalid, output.Invalid
	}
	widths := make([]int, len(hdr))
	for i := range hdr {
		widths[i] = max(len(hdr[i]), len(rxv[i]), len(txv[i]))
	}
	fit, used := 0, 2
	for _, wd := range widths {
		if used+2+wd > w {
			break
		}
		used += 2 + wd
		fit++
	}
	cells := func(label string, ls lipgloss.Style, vs []string) string {
		var b strings.Builder
		b.WriteString(ls.Render(label))
		for i, v := range vs[:fit] {
			b.WriteString(strings.Repeat(" ", 2+widths[i]-len(v)))
			b.WriteString(ls.Render(v))
		}
		return b.String()
	}
	lines = append(lines,
		cells("  ", styleColHdr, hdr),
		cells("RX", styleRx, rxv),
		cells("TX", styleTx, txv),
	)

	// Graphs, scaled to the largest sample shown.
	const scaleW = 19 // " peak 1023.9 Mbit/s"
	gw := w - 3 - scaleW
	if gw < graphMinWidth {
		gw = w - 3
	}
	for _, d := range []struct {
		label string
		hist  []float64
		style lipgloss.Style
	}{{"RX", st.rx, styleRx}, {"TX", st.tx, styleTx}} {
		g, peak := bars(d.hist, gw, lay.graphH)
		for r, row := range g {
			label := "   "
			if r == len(g)-1 {
				label = d.label + " "
			}
			line := d.style.Render(label) + d.style.Render(row)
			if r == 0 && gw < w-3 {
				line += " " + styleHelp.Render("peak "+rate(peak))
			}
			lines = append(lines, line)
		}
	}
	if lay.info {
		lines = append(lines, m.info(st)...)
	}
	return lines
}

// info is the detail pane's text: attributes, packets, session totals,
// errors and drops (highlighted when they grew in the last interval).
func (m Model) info(st ifState) []string {
	ifc := &st.cur
	k, t := &ifc.Kernel, &ifc.Total
	g := st.grew()
	num := func(n uint64, hot bool) string {
		if hot {
			return styleHot.Render(strconv.FormatUint(n, 10))
		}
		return strconv.FormatUint(n, 10)
	}
	attr := fmt.Sprintf("link     index %d  mtu %d  admin %s  carrier %s", ifc.Index, ifc.MTU,
		onOff(ifc.AdminUp, "up", "down"), onOff(ifc.Carrier, "yes", "no"))
	if ifc.Qdisc != "" {
		attr += "  qdisc " + ifc.Qdisc
	}

	pkts := fmt.Sprintf("packets  rx %d (%.0f/s)  tx %d (%.0f/s)", k.RxPackets, ifc.RxPacketsRate.Current, k.TxPackets, ifc.TxPacketsRate.Current)

	session := fmt.Sprintf("session  rx %s  tx %s  since %s  resets %d",
		output.FormatBytes(t.RxBytes), output.FormatBytes(t.TxBytes), ifc.FirstSeen.Format("15:04:05"), ifc.Resets)

	errs := "errors   rx " + num(k.RxErrors, g.rxErr > 0) + details([][2]any{
		{"crc", k.RxCRCErrors}, {"frame", k.RxFrameErrors}, {"fifo", k.RxFIFOErrors},
		{"missed", k.RxMissedErrors}, {"length", k.RxLengthErrors}, {"over", k.RxOverErrors},
	}) + "  tx " + num(k.TxErrors, g.txErr > 0) + details([][2]any{
		{"carrier", k.TxCarrierErrors}, {"aborted", k.TxAbortedErrors}, {"fifo", k.TxFIFOErrors},
		{"heartbeat", k.TxHeartbeatErrors}, {"window", k.TxWindowErrors},
	})
	if k.Collisions > 0 {
		errs += fmt.Sprintf("  collisions %d", k.Collisions)
	}

	sum := st.faultSum()
	drops := "drops    rx " + num(k.RxDropped, g.rxDrop > 0) + "  tx " + num(k.TxDropped, g.txDrop > 0)
	if k.RxNoHandler > 0 {
		drops += fmt.Sprintf("  nohandler %d", k.RxNoHandler)
	}
	drops += fmt.Sprintf("  last %d intervals: errors +%d/+%d drops +%d/+%d",
		len(st.faults), sum.rxErr, sum.txErr, sum.rxDrop, sum.txDrop)

	return []string{attr, pkts, session, errs, drops}
}

// details lists the non-zero counters as " (name n, name n)".
func details(kv [][2]any) string {
	var parts []string
	for _, p := range kv {
		if n := p[1].(uint64); n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", p[0], n))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

func onOff(b bool, on, off string) string {
	if b {
		return on
	}
	return off
}
