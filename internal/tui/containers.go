package tui

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/charmbracelet/x/ansi"

	"github.com/netmeter/netmeter/internal/output"
	"github.com/netmeter/netmeter/internal/snapshot"
)

// buildCtrs lists the containers that pass the filter, sorted, at most
// MaxRows of them; a container id seen twice is shown once.
func (m Model) buildCtrs() ([]flowRow, flowTotals, int) {
	s := &m.snap
	var tot flowTotals
	rows := make([]flowRow, 0, min(len(s.Containers), m.opts.MaxRows))
	seen := make(map[string]bool, min(len(s.Containers), m.opts.MaxRows))
	for i := range s.Containers {
		c := &s.Containers[i]
		key := "k" + c.Runtime + "/" + c.ID
		if seen[key] || !m.matchCtr(c) {
			continue
		}
		seen[key] = true
		r := flowRow{key: key, kind: rowContainer, ctr: c, tx: c.TxRate, rx: c.RxRate, total: c.Total}
		tot = tot.add(&r)
		rows = append(rows, r)
	}
	m.sortRows(rows, ViewContainers)
	hidden := max(len(rows)-m.opts.MaxRows, 0)
	return rows[:len(rows)-hidden], tot, hidden
}

// matchCtr matches the filter against the container's name, the start of
// its id, its image, runtime, account, compose service, pod and label
// values.
func (m Model) matchCtr(c *snapshot.Container) bool {
	if m.filter == "" {
		return true
	}
	if strings.HasPrefix(strings.ToLower(c.ID), strings.ToLower(m.filter)) {
		return true
	}
	fields := []string{output.ContainerName(c), c.Image, c.Runtime, c.Account, c.ComposeService, c.PodName, c.PodNamespace}
	for _, v := range c.Labels {
		fields = append(fields, v)
	}
	return m.match(fields...)
}

// hostNetMark follows the name of a container in the host's network
// namespace.
const hostNetMark = " (host net)"

// ctrColumns are the containers view's columns for its column set.
func (m Model) ctrColumns() []fcol {
	windows := m.columnsOf(ViewContainers) == ColumnsWindows
	text := func(s string) seg { return seg{output.Printable(s), plain} }
	cols := []fcol{
		{title: "NAME", prio: 100, flex: true, min: 8, want: 16, cell: func(r *flowRow, line, _ int) seg {
			if line > 0 { // the second line of a two-line row: the image
				return seg{"  " + output.Printable(r.ctr.Image), styleHelp}
			}
			name := output.ContainerName(r.ctr)
			if r.ctr.HostNetwork {
				name += hostNetMark
			}
			return seg{name, plain}
		}},
		{title: "RUNTIME", prio: 50, max: 10, cell: func(r *flowRow, line, _ int) seg {
			if line > 0 {
				return seg{}
			}
			return text(orDash(r.ctr.Runtime))
		}},
		{title: "ACCOUNT", prio: 75, max: 20, cell: func(r *flowRow, line, _ int) seg {
			if line > 0 {
				return seg{}
			}
			return text(orDash(r.ctr.Account))
		}},
	}
	if !windows {
		cols = append(cols, fcol{title: "IMAGE", prio: 40, max: 24, cell: func(r *flowRow, _, _ int) seg {
			return text(orDash(r.ctr.Image))
		}})
	}
	cols = append(cols, fcol{title: "ACC/OPEN", right: true, prio: 55, cell: func(r *flowRow, line, _ int) seg {
		if line > 0 {
			return seg{}
		}
		return seg{strconv.FormatUint(r.ctr.Accepted, 10) + "/" + strconv.FormatUint(r.ctr.Opened, 10), plain}
	}})
	return append(cols, m.rateColumns(ViewContainers)...)
}

// peerColumns are the totals columns of the containers view: IP bytes
// sent+received per peer class.
func peerColumns() []fcol {
	peer := func(title string, prio int, f func(c *snapshot.Container) snapshot.Traffic) fcol {
		return fcol{title: title, right: true, prio: prio, cell: func(r *flowRow, _, _ int) seg {
			t := f(r.ctr)
			return seg{output.FormatBytes(t.TxBytes + t.RxBytes), plain}
		}}
	}
	return []fcol{
		peer("EXTERNAL", 58, func(c *snapshot.Container) snapshot.Traffic { return c.External }),
		peer("C↔C", 57, func(c *snapshot.Container) snapshot.Traffic { return c.Local }),
		peer("C↔HOST", 56, func(c *snapshot.Container) snapshot.Traffic { return c.Host }),
		peer("INTERNAL", 45, func(c *snapshot.Container) snapshot.Traffic { return c.Internal }),
	}
}

// Detail pane of the containers view.
const (
	paneHeadLines = 4 // title, identity, account, labels
	peerLines     = 5 // header and four peer classes
	// sideBySide is the width from which the port table is right of the
	// peer table, two blanks apart, rather than under it.
	sideBySide  = peerWidth + 2 + portWidth
	minListRows = 3 // list rows kept above the pane when it is tall
)

// paneWant is the height the pane would like for container c at width w.
func paneWant(c *snapshot.Container, w int) int {
	ports := 1 + len(c.Ports) // header and ports, or one "none" line
	if len(c.Ports) == 0 {
		ports = 1
	}
	if w >= sideBySide {
		return paneHeadLines + max(peerLines, ports)
	}
	return paneHeadLines + peerLines + ports
}

// paneHeight is how many lines the containers view gives its detail pane:
// what the tallest pane of the listed containers wants (so that the list
// does not jump as the selection moves), leaving at least minListRows
// rows to the list. 0 when the pane is closed.
func (m Model) paneHeight() int {
	if !m.cdetail || len(m.ctrRows) == 0 || m.width <= 0 {
		return 0
	}
	avail := max(m.height-flowChrome, 0)
	want := 0
	for i := range m.ctrRows {
		want = max(want, paneWant(m.ctrRows[i].ctr, m.width))
	}
	keep := min(len(m.ctrRows), minListRows) * m.linesPerRow(ViewContainers)
	if h := min(want, avail-keep); h > paneHeadLines {
		return h
	}
	return 0 // too small to be useful
}

// pane renders the selected container's detail in h lines at most: who it
// is, its traffic split by peer and its per-port table.
func (m Model) pane(w, h int) []string {
	rows := m.ctrRows
	if h <= 0 || len(rows) == 0 {
		return nil
	}
	c := rows[clamp(m.lists[ViewContainers].sel, 0, len(rows)-1)].ctr
	p := output.Printable
	title := "── " + output.ContainerName(c) + " "
	lines := []string{styleColHdr.Render(title + strings.Repeat("─", max(w-ansi.StringWidth(title), 0)))}

	id := []string{"id " + orDash(p(output.ShortID(c.ID))), "runtime " + orDash(p(c.Runtime)), "image " + orDash(p(c.Image)),
		plural(c.Processes, "proc"), plural(c.Sockets, "socket")}
	cut := func(s string) string { return ansi.Truncate(s, w, "…") }
	lines = append(lines, cut(strings.Join(id, "  ")))

	who := []string{"account " + orDash(p(c.Account))}
	if c.ComposeService != "" {
		who = append(who, "compose "+p(c.ComposeService))
	}
	if c.PodName != "" || c.PodNamespace != "" {
		who = append(who, "pod "+p(c.PodNamespace)+"/"+p(c.PodName))
	}
	if c.HostNetwork {
		who = append(who, styleColHdr.Render("host network"))
	} else if c.NetnsInode != 0 {
		who = append(who, "netns "+strconv.FormatUint(c.NetnsInode, 10))
	}
	labels := "labels none"
	if len(c.Labels) > 0 {
		kv := make([]string, 0, len(c.Labels))
		for _, k := range slices.Sorted(maps.Keys(c.Labels)) {
			kv = append(kv, p(k)+"="+p(c.Labels[k]))
		}
		labels = "labels " + strings.Join(kv, "  ")
	}
	lines = append(lines, cut(strings.Join(who, "  ")), styleHelp.Render(cut(labels)))

	peers := m.peerTable(c)
	if w >= sideBySide {
		ports := portTable(c, h-len(lines))
		for i := range max(len(peers), len(ports)) {
			var l, r string
			if i < len(peers) {
				l = peers[i]
			}
			if i < len(ports) {
				r = ports[i]
			}
			if r != "" {
				l += strings.Repeat(" ", max(peerWidth+2-ansi.StringWidth(l), 1)) + r
			}
			lines = append(lines, l)
		}
	} else {
		lines = append(lines, peers...)
		lines = append(lines, portTable(c, h-len(lines))...)
	}
	return lines[:min(len(lines), h)]
}

// peerWidth and portWidth are the widths of the peer and port tables.
const (
	peerWidth = 2 + 19 + 2 + 10 + 2 + 10 + 2 + 5
	portWidth = 2 + 9 + 2 + 8 + 2 + 10 + 2 + 10
)

// peerTable is the container's IP-byte totals by peer, with each class's
// share of the total.
func (m Model) peerTable(c *snapshot.Container) []string {
	all := c.Total.TxBytes + c.Total.RxBytes
	row := func(name string, t snapshot.Traffic) string {
		share := "-"
		if all > 0 {
			share = strconv.FormatFloat(100*float64(t.TxBytes+t.RxBytes)/float64(all), 'f', 0, 64) + "%"
		}
		return fmt.Sprintf("  %-19s  %s  %s  %5s", name,
			styleTx.Render(fmt.Sprintf("%10s", output.FormatBytes(t.TxBytes))),
			styleRx.Render(fmt.Sprintf("%10s", output.FormatBytes(t.RxBytes))), share)
	}
	return []string{
		styleColHdr.Render(fmt.Sprintf("  %-19s  %10s  %10s  %5s", "PEER", "SENT", "RECV", "SHARE")),
		row("external", c.External),
		row("container↔container", c.Local),
		row("container↔host", c.Host),
		row("internal", c.Internal),
	}
}

// portTable is the traffic of the connections the container accepted per
// local port, busiest first, in at most h lines (the last one then says
// how many ports are left out).
func portTable(c *snapshot.Container, h int) []string {
	if h <= 0 {
		return nil
	}
	if len(c.Ports) == 0 {
		return []string{styleHelp.Render("  no accepted connections")}
	}
	ports := slices.Clone(c.Ports)
	slices.SortFunc(ports, func(a, b snapshot.Port) int {
		return cmp.Or(
			cmp.Compare(b.Total.TxBytes+b.Total.RxBytes, a.Total.TxBytes+a.Total.RxBytes),
			cmp.Compare(a.Port, b.Port),
			cmp.Compare(a.Proto, b.Proto),
		)
	})
	lines := []string{styleColHdr.Render(fmt.Sprintf("  %-9s  %8s  %10s  %10s", "PORT", "ACCEPTED", "SENT", "RECV"))}
	for i, pt := range ports {
		if len(lines) == h-1 && i < len(ports)-1 {
			lines = append(lines, styleHelp.Render(fmt.Sprintf("  +%d more ports", len(ports)-i)))
			break
		}
		lines = append(lines, fmt.Sprintf("  %-9s  %8d  %s  %s", output.Printable(orDash(pt.Proto))+"/"+strconv.Itoa(int(pt.Port)), pt.Accepted,
			styleTx.Render(fmt.Sprintf("%10s", output.FormatBytes(pt.Total.TxBytes))),
			styleRx.Render(fmt.Sprintf("%10s", output.FormatBytes(pt.Total.RxBytes)))))
	}
	return lines[:min(len(lines), h)]
}
