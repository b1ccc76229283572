package tui

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/netmeter/netmeter/internal/health"
	"github.com/netmeter/netmeter/internal/output"
	"github.com/netmeter/netmeter/internal/snapshot"
)

// Analysis is what the health view reads; a *health.Analyzer satisfies it.
// Update calls it when a snapshot arrives (TopFlows also when "s" changes
// the order), View never does.
type Analysis interface {
	Health() health.Report
	TopFlows(window time.Duration, by string, limit int) ([]health.Flow, error)
}

// healthWindow is the span the health view's flows are summed over.
const healthWindow = 10 * time.Second

// healthSort orders the health view's flows; "s" cycles. Its names are
// TopFlows' keys.
type healthSort int

const (
	healthByBytes   healthSort = iota // tx+rx bytes over the window
	healthByRate                      // tx+rx in the latest interval
	healthByRetrans                   // retransmitted segments
	healthByRTT                       // mean RTT
	healthByDrops                     // kernel drops
	numHealthSorts
)

func (k healthSort) String() string {
	switch k {
	case healthByRate:
		return "rate"
	case healthByRetrans:
		return "retrans"
	case healthByRTT:
		return "rtt"
	case healthByDrops:
		return "drops"
	default:
		return "bytes"
	}
}

// Health states are coloured; the state's text says the same without
// colour.
var (
	styleGood = lipgloss.NewStyle().Foreground(lipgloss.Green)
	styleWarn = lipgloss.NewStyle().Foreground(lipgloss.Yellow)
	styleBad  = lipgloss.NewStyle().Foreground(lipgloss.Red)
)

// stateStyle colours a health state: healthy green, degraded red, unknown
// dim; yellow while the latest interval disagrees with the state (healthy
// while a threshold is crossed, degraded while recovering).
func stateStyle(st health.State, changing bool) lipgloss.Style {
	switch {
	case st != health.StateHealthy && !st.Degraded():
		return styleHelp
	case changing:
		return styleWarn
	case st.Degraded():
		return styleBad
	}
	return styleGood
}

// statusStyle is stateStyle for a status: the signals of its latest
// interval say whether it is changing.
func statusStyle(s *health.Status) lipgloss.Style {
	crossed := len(s.Evidence.Signals) > 0
	return stateStyle(s.State, crossed != s.State.Degraded())
}

// analyze reads the health report and the flows from Analysis; called for
// every snapshot.
func (m Model) analyze() Model {
	if m.opts.Analysis == nil {
		return m
	}
	m.report = m.opts.Analysis.Health()
	return m.topFlows()
}

// topFlows reads every flow of the window, in the view's order.
func (m Model) topFlows() Model {
	if m.opts.Analysis == nil || m.received == 0 {
		return m
	}
	m.hflows, m.hflowErr = m.opts.Analysis.TopFlows(healthWindow, m.hsort.String(), 0)
	return m
}

// buildHealthFlows lists the flows whose local id or remote group matches
// the filter, at most MaxRows of them, in Analysis's order; it returns how
// many more matched.
func (m Model) buildHealthFlows() ([]flowRow, int) {
	rows := make([]flowRow, 0, min(len(m.hflows), m.opts.MaxRows))
	n := 0
	for i := range m.hflows {
		f := &m.hflows[i]
		if !m.match(f.Local.ID, f.Group) {
			continue
		}
		n++
		if len(rows) < m.opts.MaxRows {
			rows = append(rows, flowRow{key: f.ID, kind: rowFlow, flow: f})
		}
	}
	return rows, n - len(rows)
}

// statusRows are the report's groups (by name), then its monitors (in
// config order).
func (m Model) statusRows() []flowRow {
	r := &m.report
	rows := make([]flowRow, 0, len(r.Groups)+len(r.Monitors))
	for i := range r.Groups {
		rows = append(rows, flowRow{key: "g" + r.Groups[i].Name, kind: rowStatus, status: &r.Groups[i], skind: "group"})
	}
	for i := range r.Monitors {
		rows = append(rows, flowRow{key: "m" + r.Monitors[i].Name, kind: rowStatus, status: &r.Monitors[i], skind: "monitor"})
	}
	return rows
}

// healthScreen is how the health view shares out the height.
type healthScreen struct {
	shown []int // indexes into statusRows, in report order
	more  int   // statuses left out
	flows int   // flow rows
}

const (
	// healthFixed is the drops line, the flows' title and column header.
	healthFixed = 3
	// minHealthFlows is how many flow rows the statuses leave room for.
	minHealthFlows = 3
	// statusLines is a status's row and its explanation.
	statusLines = 2
)

func (m Model) healthLayout() healthScreen {
	body := max(m.height-2, 0) // between header and footer
	rows := m.statusRows()
	n := len(rows)
	used := 1 // "no group yet"
	var hs healthScreen
	if n > 0 {
		avail := body - healthFixed - max(min(len(m.hflowRows), minHealthFlows), 1)
		k := n
		if 1+statusLines*n > avail { // header, and a line saying how many are left out
			k = clamp((avail-2)/statusLines, 0, n)
		}
		hs.shown, hs.more = pickStatuses(rows, k), n-k
		used = 0
		if k > 0 {
			used = 1 + statusLines*k
		}
		if hs.more > 0 {
			used++
		}
	}
	hs.flows = max(body-healthFixed-used, 0)
	return hs
}

// pickStatuses chooses k statuses to show: degraded ones first, then those
// whose latest interval crossed a threshold, then the rest; it returns
// their indexes in report order.
func pickStatuses(rows []flowRow, k int) []int {
	idx := make([]int, len(rows))
	for i := range idx {
		idx[i] = i
	}
	if k >= len(rows) {
		return idx
	}
	score := func(i int) int {
		s := rows[i].status
		return 2*b2i(s.State.Degraded()) + b2i(len(s.Evidence.Signals) > 0)
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(score(b), score(a)) })
	idx = idx[:k]
	slices.Sort(idx)
	return idx
}

// healthBody renders the health view: the drops of the latest interval,
// the status of every remote group and monitor with its explanation, and
// the flows of the window.
func (m Model) healthBody(w int) []string {
	if m.opts.Analysis == nil {
		return []string{"", "  no health: the eBPF engine is not running (flows and health need it)"}
	}
	lay := m.healthLayout()
	lines := []string{m.dropsLine(w)}
	lines = append(lines, m.statusTable(w, lay)...)
	return append(lines, m.healthFlowTable(w, lay)...)
}

func (m Model) statusTable(w int, lay healthScreen) []string {
	all := m.statusRows()
	if len(all) == 0 {
		return []string{styleHelp.Render("  no remote group yet: a group appears with its first connection")}
	}
	rows := make([]flowRow, 0, len(lay.shown))
	for _, i := range lay.shown {
		rows = append(rows, all[i])
	}
	var lines []string
	if len(rows) > 0 {
		cols, sep := fitFlow(statusColumns(), rows, 1, w)
		lines = append(lines, headerLine(cols, sep))
		const indent = "    "
		for i := range rows {
			r := &rows[i]
			lines = append(lines, rowLine(r, 0, cols, sep, false))
			why := ansi.Truncate(output.Printable(r.status.Explanation), max(w-len(indent), 0), "…")
			st := styleHelp
			if r.status.State.Degraded() {
				st = plain
			}
			lines = append(lines, indent+st.Render(why))
		}
	}
	if lay.more > 0 {
		lines = append(lines, styleHelp.Render(fmt.Sprintf("  +%d more groups and monitors", lay.more)))
	}
	return lines
}

// statusColumns are the columns of the health view's status table.
func statusColumns() []fcol {
	text := func(f func(s *health.Status) string) func(r *flowRow, _, _ int) seg {
		return func(r *flowRow, _, _ int) seg { return seg{f(r.status), plain} }
	}
	return []fcol{
		{title: "KIND", prio: 50, cell: func(r *flowRow, _, _ int) seg { return seg{r.skind, plain} }},
		{title: "NAME", prio: 100, flex: true, min: 8, want: 16, cell: text(func(s *health.Status) string { return output.Printable(s.Name) })},
		{title: "STATE", prio: 99, cell: func(r *flowRow, _, _ int) seg {
			return seg{output.Printable(string(r.status.State)), statusStyle(r.status)}
		}},
		{title: "RTT (BASE)", right: true, prio: 90, cell: text(func(s *health.Status) string {
			e := &s.Evidence
			if e.RTTUS <= 0 {
				return "-"
			}
			base := "-"
			if e.RTTBaselineUS > 0 {
				base = output.Micros(uint64(e.RTTBaselineUS))
			}
			return output.Micros(uint64(e.RTTUS)) + " (" + base + ")"
		})},
		{title: "RETRANS (BASE)", right: true, prio: 85, cell: text(func(s *health.Status) string {
			e := &s.Evidence
			if e.SegsOut == 0 {
				return "-"
			}
			return percent(e.RetransPercent) + " (" + percent(e.RetransBaselinePercent) + ")"
		})},
		{title: "RTO", right: true, prio: 60, cell: text(func(s *health.Status) string { return strconv.FormatUint(s.Evidence.RTOs, 10) })},
	}
}

func percent(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) + "%" }

func (m Model) healthFlowTable(w int, lay healthScreen) []string {
	title := "── top flows · last " + healthWindow.String() + " · by " + m.hsort.String() + " "
	lines := []string{styleColHdr.Render(title + strings.Repeat("─", max(w-ansi.StringWidth(title), 0)))}
	if m.hflowErr != nil {
		return append(lines, "  "+output.Printable(m.hflowErr.Error()))
	}
	rows := m.hflowRows
	cols, sep := fitFlow(m.healthFlowColumns(), rows, 1, w)
	lines = append(lines, headerLine(cols, sep))
	if len(rows) == 0 {
		msg := "  no flows in the last " + healthWindow.String()
		if m.filter != "" {
			msg = "  no flows match /" + m.filter
		}
		return append(lines, msg)
	}
	return append(lines, listLines(rows, cols, sep, m.lists[ViewHealth], lay.flows, 1)...)
}

// healthFlowColumns are the flow table's columns; the column of the sort
// key is kept longest when the terminal is narrow. HEALTH goes early: it is
// the remote group's state, which the status table shows.
func (m Model) healthFlowColumns() []fcol {
	num := func(n uint64) string { return strconv.FormatUint(n, 10) }
	key := func(c fcol, k healthSort) fcol {
		if m.hsort == k {
			c.prio = 97
		}
		return c
	}
	return []fcol{
		{title: "LOCAL", prio: 100, flex: true, min: 10, want: 20, cell: func(r *flowRow, _, _ int) seg {
			return seg{output.Printable(r.flow.Local.ID), plain}
		}},
		{title: "REMOTE GROUP", prio: 96, max: 20, cell: func(r *flowRow, _, _ int) seg {
			return seg{output.Printable(r.flow.Group), plain}
		}},
		{title: "CONNS", right: true, prio: 55, cell: func(r *flowRow, _, _ int) seg {
			return seg{strconv.Itoa(r.flow.Connections), plain}
		}},
		{title: "TX/s", right: true, prio: 95, cell: func(r *flowRow, _, _ int) seg {
			return seg{m.rateText(r.flow.TxRate), styleTx}
		}},
		{title: "RX/s", right: true, prio: 94, cell: func(r *flowRow, _, _ int) seg {
			return seg{m.rateText(r.flow.RxRate), styleRx}
		}},
		key(fcol{title: "LAST/s", right: true, prio: 40, cell: func(r *flowRow, _, _ int) seg {
			return seg{m.rateText(r.flow.LastRate), plain}
		}}, healthByRate),
		key(fcol{title: "RTT", right: true, prio: 88, cell: func(r *flowRow, _, _ int) seg {
			if r.flow.RTTMeanUS <= 0 {
				return seg{"-", plain}
			}
			return seg{output.Micros(uint64(r.flow.RTTMeanUS)), plain}
		}}, healthByRTT),
		{title: "RETRANS", right: true, prio: 87, cell: func(r *flowRow, _, _ int) seg {
			if r.flow.SegsOut == 0 {
				return seg{"-", plain}
			}
			return seg{percent(r.flow.RetransPercent), plain}
		}},
		key(fcol{title: "RESENT", right: true, prio: 45, cell: func(r *flowRow, _, _ int) seg {
			return seg{num(r.flow.RetransSegs), plain}
		}}, healthByRetrans),
		{title: "RTO", right: true, prio: 62, cell: func(r *flowRow, _, _ int) seg { return seg{num(r.flow.RTOs), plain} }},
		key(fcol{title: "DROPS", right: true, prio: 64, cell: func(r *flowRow, _, _ int) seg {
			return seg{num(r.flow.Drops), plain}
		}}, healthByDrops),
		{title: "HEALTH", prio: 58, cell: func(r *flowRow, _, _ int) seg {
			if r.flow.Health == "" {
				return seg{"-", plain}
			}
			return seg{output.Printable(string(r.flow.Health)), stateStyle(r.flow.Health, false)}
		}},
	}
}

// dropsLine names the busiest kernel drop reasons of the latest interval,
// each with its rate and where it happened, as many as fit in w.
func (m Model) dropsLine(w int) string {
	type place struct{ reason, where string }
	sums := map[place]uint64{}
	for i := range m.snap.Drops {
		d := &m.snap.Drops[i]
		if d.DeltaPackets > 0 {
			sums[place{output.Printable(d.Reason), dropPlace(d)}] += d.DeltaPackets
		}
	}
	label := styleColHdr.Render("drops")
	if len(sums) == 0 {
		return label + styleHelp.Render("  none in the last interval")
	}
	keys := make([]place, 0, len(sums))
	for k := range sums {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b place) int {
		return cmp.Or(cmp.Compare(sums[b], sums[a]), cmp.Compare(a.reason, b.reason), cmp.Compare(a.where, b.where))
	})
	var b strings.Builder
	b.WriteString(label)
	used := ansi.StringWidth("drops")
	for i, k := range keys {
		sep := "  "
		if i > 0 {
			sep = " · "
		}
		where := ""
		if k.where != "" {
			where = " (" + k.where + ")"
		}
		rate := m.perSecond(sums[k])
		wide := ansi.StringWidth(sep + k.reason + " " + rate + where)
		more := ""
		if i < len(keys)-1 {
			more = " · +" + strconv.Itoa(len(keys)-i-1) + " more"
		}
		if used+wide+len(more) > w && i > 0 {
			b.WriteString(styleHelp.Render(" · +" + strconv.Itoa(len(keys)-i) + " more"))
			break
		}
		b.WriteString(sep + k.reason + " " + styleHot.Render(rate) + where)
		used += wide
	}
	return b.String()
}

// perSecond is packets in the latest interval as a rate.
func (m Model) perSecond(n uint64) string {
	sec := m.snap.Interval.Seconds()
	if sec <= 0 {
		return strconv.FormatUint(n, 10)
	}
	v := float64(n) / sec
	if v >= 10 || v == float64(int64(v)) {
		return strconv.FormatFloat(v, 'f', 0, 64) + "/s"
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + "/s"
}

// dropPlace says where a drop happened: the interface (else the protocol),
// the process and the container.
func dropPlace(d *snapshot.Drop) string {
	var parts []string
	switch {
	case d.Interface != "":
		parts = append(parts, output.Printable(d.Interface))
	case d.Ifindex > 0:
		parts = append(parts, "ifindex "+strconv.Itoa(d.Ifindex))
	case d.Proto != "":
		parts = append(parts, output.Printable(d.Proto))
	}
	switch {
	case d.PID > 0 && d.Comm != "":
		parts = append(parts, "pid "+strconv.Itoa(d.PID)+" "+output.Printable(d.Comm))
	case d.PID > 0:
		parts = append(parts, "pid "+strconv.Itoa(d.PID))
	case d.Comm != "":
		parts = append(parts, output.Printable(d.Comm))
	}
	if d.Container != "" {
		parts = append(parts, "container "+output.Printable(d.Container))
	}
	return strings.Join(parts, ", ")
}

// healthHeaderCounts is the header's summary of the health view.
func (m Model) healthHeaderCounts() string {
	if m.opts.Analysis == nil {
		return "engine off"
	}
	r := &m.report
	parts := []string{plural(len(r.Groups), "group")}
	if len(r.Monitors) > 0 {
		parts = append(parts, plural(len(r.Monitors), "monitor"))
	}
	bad := 0
	for _, s := range slices.Concat(r.Groups, r.Monitors) {
		if s.State.Degraded() {
			bad++
		}
	}
	if bad > 0 {
		parts = append(parts, styleBad.Render(strconv.Itoa(bad)+" degraded"))
	}
	if m.hflowHidden > 0 {
		parts = append(parts, fmt.Sprintf("+%d flows not shown", m.hflowHidden))
	}
	return strings.Join(parts, ", ")
}
