package diagnose

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// SchemaVersion is the version of the JSON report (docs/DIAGNOSE.md). It
// changes when a field is removed or changes meaning, not when one is added.
const SchemaVersion = 1

// Report is what `netmeter diagnose` prints.
type Report struct {
	Schema    int       `json:"schema_version"`
	Time      time.Time `json:"time"`
	Netns     string    `json:"netns,omitempty"`
	Interface string    `json:"interface,omitempty"`
	WindowMS  int64     `json:"window_ms"`
	// Problem says whether any finding was made; Findings are most severe
	// first.
	Problem  bool      `json:"problem_found"`
	Findings []Finding `json:"findings"`
	// Layers is one status per layer, bottom-up.
	Layers []LayerStatus `json:"layers"`
	// DropTracing says whether the kernel's drop reasons were traced;
	// Drops are the top ones during the window.
	DropTracing bool   `json:"drop_tracing"`
	Drops       []Drop `json:"drop_reasons"`
	// Context holds lifetime totals and gauges that decided nothing but
	// help to read the findings.
	Context Context `json:"context"`
	// Changes is set by --watch: findings new or cleared since the
	// previous report.
	Changes *Changes `json:"changes,omitempty"`
}

// LayerStatus sums up one layer: "problem", "ok", "not_applicable", with
// notes on checks that did not apply or could not run.
type LayerStatus struct {
	Layer  Layer  `json:"layer"`
	Status string `json:"status"`
	Notes  []Note `json:"notes,omitempty"`
}

// Context is evidence shown for reading, not deciding.
type Context struct {
	Links     []Link             `json:"links"`
	Qdiscs    []Qdisc            `json:"qdiscs"`
	Netfilter []NftRule          `json:"netfilter_drop_rules"`
	Conntrack *Conntrack         `json:"conntrack,omitempty"`
	Softnet   *Softnet           `json:"softnet,omitempty"`
	SNMP      map[string]float64 `json:"snmp_rates_per_second"`
	Totals    map[string]uint64  `json:"snmp_totals"`
}

// Changes are the differences between two reports.
type Changes struct {
	New     []Finding `json:"new"`
	Cleared []Finding `json:"cleared"`
}

// contextSNMP are the SNMP counters the report shows.
var contextSNMP = []string{
	"Tcp.OutSegs", "Tcp.RetransSegs", "TcpExt.TCPTimeouts", "TcpExt.ListenOverflows", "TcpExt.ListenDrops",
	"TcpExt.SyncookiesSent", "TcpExt.TCPBacklogDrop", "TcpExt.TCPRcvQDrop", "TcpExt.TCPZeroWindowDrop",
	"Udp.InDatagrams", "Udp.RcvbufErrors", "Udp.SndbufErrors", "Udp.InErrors", "Udp.NoPorts",
	"Udp6.RcvbufErrors", "Ip.InDiscards", "Ip.OutDiscards",
}

// MaxDrops is how many drop reasons a report lists.
const MaxDrops = 10

// NewReport applies the rules to ev.
func NewReport(ev Evidence) Report {
	r := Report{
		Schema: SchemaVersion, Time: ev.Start.Add(ev.Window).UTC(), Netns: ev.Netns, Interface: ev.Interface,
		WindowMS: ev.Window.Milliseconds(), Findings: Rules(ev), DropTracing: ev.DropTraced,
		Drops: ev.Drops[:min(len(ev.Drops), MaxDrops)],
	}
	if r.Findings == nil {
		r.Findings = []Finding{}
	}
	if r.Drops == nil {
		r.Drops = []Drop{}
	}
	r.Problem = len(r.Findings) > 0
	for _, l := range Layers {
		st := LayerStatus{Layer: l, Status: "ok"}
		for _, n := range ev.Notes {
			if n.Layer == l {
				st.Notes = append(st.Notes, n)
			}
		}
		if l == LayerPhysical && allVirtual(ev.Links) {
			st.Status = NotApplicable
			st.Notes = append(st.Notes, Note{l, "nic", NotApplicable, "no physical NIC here (virtual links only): no rings, driver counters or firmware"})
		}
		if slices.ContainsFunc(r.Findings, func(f Finding) bool { return f.Layer == l }) {
			st.Status = "problem"
		}
		r.Layers = append(r.Layers, st)
	}
	c := Context{Links: ev.Links, Qdiscs: ev.Qdiscs, Netfilter: ev.Netfilter, Conntrack: ev.Conntrack, Softnet: ev.Softnet,
		SNMP: map[string]float64{}, Totals: map[string]uint64{}}
	for _, k := range contextSNMP {
		if v, ok := ev.SNMP[k]; ok {
			c.Totals[k] = v.End
			if ev.Window > 0 {
				c.SNMP[k] = math.Round(v.Rate(ev.Window)*100) / 100
			}
		}
	}
	if c.Links == nil {
		c.Links = []Link{}
	}
	if c.Qdiscs == nil {
		c.Qdiscs = []Qdisc{}
	}
	if c.Netfilter == nil {
		c.Netfilter = []NftRule{}
	}
	r.Context = c
	return r
}

func allVirtual(ls []Link) bool {
	for _, l := range ls {
		if !l.Virtual() {
			return false
		}
	}
	return true
}

// Diff sets r.Changes against the previous report (nil: every finding is
// new).
func (r *Report) Diff(prev *Report) {
	ch := &Changes{New: []Finding{}, Cleared: []Finding{}}
	had := map[string]bool{}
	if prev != nil {
		for _, f := range prev.Findings {
			had[f.Key()] = true
		}
	}
	has := map[string]bool{}
	for _, f := range r.Findings {
		has[f.Key()] = true
		if !had[f.Key()] {
			ch.New = append(ch.New, f)
		}
	}
	if prev != nil {
		for _, f := range prev.Findings {
			if !has[f.Key()] {
				ch.Cleared = append(ch.Cleared, f)
			}
		}
	}
	r.Changes = ch
}

// WriteJSON writes r as one line of JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// WriteText writes r for a person.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	where := "this host's namespace"
	if r.Netns != "" {
		where = "namespace " + r.Netns
	}
	ifc := "all interfaces"
	if r.Interface != "" {
		ifc = r.Interface
	}
	fmt.Fprintf(&b, "netmeter diagnose: %s, %s, window %s\n\n", where, ifc, time.Duration(r.WindowMS)*time.Millisecond)
	if !r.Problem {
		b.WriteString("No problem found: no drop counter grew during the window.\n")
		for _, l := range r.Layers {
			if slices.ContainsFunc(l.Notes, func(n Note) bool { return n.Status == Unavailable }) {
				b.WriteString("Some checks could not run: see the notes below.\n")
				break
			}
		}
	} else {
		fmt.Fprintf(&b, "%d problem(s) found:\n", len(r.Findings))
		for i, f := range r.Findings {
			writeFinding(&b, i+1, f)
		}
	}
	b.WriteString("\nLayers (bottom-up):\n")
	for _, l := range r.Layers {
		fmt.Fprintf(&b, "  %-12s %s\n", l.Layer, strings.ReplaceAll(l.Status, "_", " "))
		for _, n := range l.Notes {
			fmt.Fprintf(&b, "  %-12s   %s: %s (%s)\n", "", n.Check, n.Why, strings.ReplaceAll(n.Status, "_", " "))
		}
	}
	b.WriteString("\nKernel drop reasons during the window:")
	switch {
	case !r.DropTracing:
		b.WriteString(" not traced (see the kernel layer's note)\n")
	case len(r.Drops) == 0:
		b.WriteString(" none\n")
	default:
		b.WriteString("\n")
		for _, d := range r.Drops {
			fmt.Fprintf(&b, "  %8d  %s", d.Packets, d.Reason)
			if d.Link != "" {
				fmt.Fprintf(&b, " on %s", d.Link)
			}
			if d.Proto != "" {
				fmt.Fprintf(&b, " (%s)", d.Proto)
			}
			if d.Socket != "" {
				fmt.Fprintf(&b, " socket %s", d.Socket)
			}
			if d.Owner != nil {
				fmt.Fprintf(&b, " %s (pid %d)", d.Owner.Comm, d.Owner.PID)
			}
			b.WriteString("\n")
		}
	}
	writeContext(&b, r)
	_, err := io.WriteString(w, b.String())
	return err
}

func writeFinding(b *strings.Builder, n int, f Finding) {
	fmt.Fprintf(b, "\n %d. [%s, %s] %s\n", n, f.Layer, f.Severity, f.Title)
	if f.Owner != nil {
		fmt.Fprintf(b, "    owner:    %s (pid %d)\n", f.Owner.Comm, f.Owner.PID)
	}
	for i, e := range f.Evidence {
		label := "evidence:"
		if i > 0 {
			label = ""
		}
		fmt.Fprintf(b, "    %-9s %s\n", label, e)
	}
	fmt.Fprintf(b, "    fix:      %s\n", f.Fix)
}

func writeContext(b *strings.Builder, r *Report) {
	c := r.Context
	b.WriteString("\nContext:\n")
	for _, l := range c.Links {
		fmt.Fprintf(b, "  link %s: %s", l.Name, cmp.Or(l.Oper, "?"))
		if l.Kind != "" {
			fmt.Fprintf(b, ", %s", l.Kind)
		}
		if l.SpeedMbs > 0 {
			fmt.Fprintf(b, ", %d Mb/s %s duplex", l.SpeedMbs, l.Duplex)
		}
		if l.Driver != "" {
			fmt.Fprintf(b, ", driver %s", l.Driver)
		}
		if l.Firmware != "" {
			fmt.Fprintf(b, " firmware %s", l.Firmware)
		}
		if l.Rings != nil {
			fmt.Fprintf(b, ", rx ring %d/%d", l.Rings.RxPending, l.Rings.RxMax)
		}
		fmt.Fprintf(b, "; lifetime rx_dropped %d, tx_dropped %d, carrier changes %d\n", l.RxDropped.End, l.TxDropped.End, l.CarrierChanges.End)
	}
	for _, q := range c.Qdiscs {
		fmt.Fprintf(b, "  qdisc %s %s on %s: lifetime drops %d, overlimits %d\n", q.Kind, q.Handle, q.Link, q.Drops.End, q.Overlimits.End)
	}
	for _, n := range c.Netfilter {
		fmt.Fprintf(b, "  netfilter %s: %s", n.name(), n.Verdict)
		if n.Counted {
			fmt.Fprintf(b, ", lifetime %d packets", n.Packets.End)
		}
		b.WriteString("\n")
	}
	if ct := c.Conntrack; ct != nil {
		fmt.Fprintf(b, "  conntrack: %d of %d entries; lifetime insert_failed %d, drop %d, early_drop %d\n", ct.Count, ct.Max, ct.InsertFailed.End, ct.Drop.End, ct.EarlyDrop.End)
	}
	if s := c.Softnet; s != nil {
		fmt.Fprintf(b, "  softnet (whole host): lifetime dropped %d, time_squeeze %d\n", s.Dropped.End, s.TimeSqueezed.End)
	}
	var rates []string
	for _, k := range contextSNMP {
		if v := c.SNMP[k]; v > 0 {
			rates = append(rates, fmt.Sprintf("%s %.1f/s", k, v))
		}
	}
	if len(rates) > 0 {
		fmt.Fprintf(b, "  snmp during the window: %s\n", strings.Join(rates, ", "))
	}
	var parts []string
	for _, k := range contextSNMP {
		if v, ok := c.Totals[k]; ok && v > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, v))
		}
	}
	if len(parts) > 0 {
		fmt.Fprintf(b, "  snmp lifetime: %s\n", strings.Join(parts, ", "))
	}
}

// WriteChanges writes what changed since the previous report (--watch).
func (r *Report) WriteChanges(w io.Writer) error {
	var b strings.Builder
	ts := r.Time.Local().Format("15:04:05")
	if r.Changes == nil || len(r.Changes.New) == 0 && len(r.Changes.Cleared) == 0 {
		state := "no problem"
		if r.Problem {
			state = fmt.Sprintf("%d problem(s), unchanged", len(r.Findings))
		}
		fmt.Fprintf(&b, "%s  %s\n", ts, state)
	} else {
		for i, f := range r.Changes.New {
			fmt.Fprintf(&b, "%s  NEW", ts)
			writeFinding(&b, i+1, f)
		}
		for _, f := range r.Changes.Cleared {
			fmt.Fprintf(&b, "%s  CLEARED [%s] %s\n", ts, f.Layer, f.Title)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
