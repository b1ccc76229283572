package main

import (
	"cmp"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/netmeter/netmeter/internal/chart"
	"github.com/netmeter/netmeter/internal/history"
	"github.com/netmeter/netmeter/internal/output"
	"github.com/netmeter/netmeter/internal/quota"
)

// ReportVersion is the version of `netmeter report --json`'s schema
// (docs/HISTORY.md); it changes only when a field changes meaning or goes.
const ReportVersion = 1

type reportOpts struct {
	top                  bool
	begin, end           string
	iface, process, ctr  string
	account, group       string
	monitor              string
	json, csv            bool
	svg                  string
	limit                int
	five, hours, days    bool
	weeks, months, years bool
}

func newReport(a *app) *cobra.Command {
	var o reportOpts
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Traffic history like vnStat: 5-minute, hourly, daily, weekly, monthly, yearly and top days",
		Long: `report reads the history that 'netmeter serve' records in --data-dir and prints,
per period, received, sent and total bytes and the average rate, with an
estimate for the current period (only once enough of it has passed) and the
95th percentile of 5-minute rates (burstable billing) where 5-minute data
covers the range. Periods start in --timezone. Downtime of the agent is
listed as gaps.

Entities: every interface by default; -i eth0+eth1 merges interfaces;
--process, --container and --account select other entities.`,
		Example: `  netmeter report -d                 # daily, every interface
  netmeter report -m -i eth0+eth1    # monthly, two interfaces merged
  netmeter report -h --json          # hourly, versioned JSON (docs/HISTORY.md)
  netmeter report --top --container web
  netmeter report -5 --begin 2026-11-23T08:00 --end 2026-11-23T12:00 --csv`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.report(cmd.OutOrStdout(), o)
		},
	}
	f := cmd.Flags()
	f.Bool("help", false, "help for report") // frees -h for hours, as in vnStat
	f.BoolVarP(&o.five, "fiveminutes", "5", false, "5-minute resolution")
	f.BoolVarP(&o.hours, "hours", "h", false, "hourly")
	f.BoolVarP(&o.days, "days", "d", false, "daily (the default)")
	f.BoolVarP(&o.weeks, "weeks", "w", false, "weekly")
	f.BoolVarP(&o.months, "months", "m", false, "monthly")
	f.BoolVarP(&o.years, "years", "y", false, "yearly")
	f.BoolVarP(&o.top, "top", "t", false, "top days by total traffic")
	f.StringVar(&o.begin, "begin", "", "first period to show: YYYY-MM-DD, YYYY-MM-DDTHH:MM or RFC 3339, in --timezone")
	f.StringVar(&o.end, "end", "", "show periods before this time (same forms as --begin)")
	f.StringVarP(&o.iface, "interface", "i", "", "interface, or interfaces joined by + to merge them")
	f.StringVar(&o.process, "process", "", "a program (by name), + to merge several")
	f.StringVar(&o.ctr, "container", "", "a container (by name), + to merge several")
	f.StringVar(&o.account, "account", "", "a billing account, + to merge several")
	f.StringVar(&o.group, "group", "", "a remote group (docs/HEALTH.md: 10.1.2.0/24, loopback, or a named group), + to merge several")
	f.StringVar(&o.monitor, "monitor", "", "a health monitor, + to merge several")
	f.BoolVar(&o.json, "json", false, "versioned JSON (docs/HISTORY.md)")
	f.BoolVar(&o.csv, "csv", false, "CSV")
	f.StringVar(&o.svg, "svg", "", "also write a chart to this SVG file")
	f.IntVar(&o.limit, "limit", 0, "at most this many periods, the newest (0: all stored; --top: 10)")
	return cmd
}

// parseWhen reads --begin/--end.
func parseWhen(s string, loc *time.Location) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02", "2006-01"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q: want YYYY-MM-DD, YYYY-MM-DDTHH:MM or RFC 3339", s)
}

// reportSet is one line of the report: an entity or a merged set.
type reportSet struct {
	Kind     string           `json:"kind"`
	Names    []string         `json:"names"`
	entities []history.Entity `json:"-"`
}

func (a *app) reportSets(st *history.Store, o reportOpts) ([]reportSet, error) {
	var sets []reportSet
	pick := func(kind history.Kind, v string) {
		if v == "" {
			return
		}
		set := reportSet{Kind: string(kind)}
		for _, n := range strings.Split(v, "+") {
			set.Names = append(set.Names, n)
			set.entities = append(set.entities, history.Entity{Kind: kind, Name: n})
		}
		sets = append(sets, set)
	}
	pick(history.KindInterface, o.iface)
	pick(history.KindProcess, o.process)
	pick(history.KindContainer, o.ctr)
	pick(history.KindAccount, o.account)
	pick(history.KindGroup, o.group)
	pick(history.KindMonitor, o.monitor)
	if len(sets) > 0 {
		return sets, nil
	}
	ifs, err := st.Entities(history.KindInterface)
	if err != nil {
		return nil, err
	}
	for _, e := range ifs {
		sets = append(sets, reportSet{Kind: string(e.Kind), Names: []string{e.Name}, entities: []history.Entity{e}})
	}
	return sets, nil
}

// reportRow is one period in the JSON and CSV output.
type reportRow struct {
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
	Rx      uint64    `json:"rx_bytes"`
	Tx      uint64    `json:"tx_bytes"`
	Total   uint64    `json:"total_bytes"`
	RxPkts  uint64    `json:"rx_packets"`
	TxPkts  uint64    `json:"tx_packets"`
	AvgRate float64   `json:"avg_bytes_per_second"` // total over the period's elapsed part
	Partial bool      `json:"partial"`              // the current, unfinished period
}

type reportEstimate struct {
	Rx    uint64 `json:"rx_bytes"`
	Tx    uint64 `json:"tx_bytes"`
	Total uint64 `json:"total_bytes"`
}

type reportOut struct {
	Version    int                       `json:"version"`
	Set        reportSet                 `json:"entity"`
	Resolution string                    `json:"resolution"` // "5min" … "year", or "top"
	Timezone   string                    `json:"timezone"`
	Rows       []reportRow               `json:"rows"`
	Estimate   *reportEstimate           `json:"estimate,omitempty"` // the current period's projection, when enough of it passed
	P95        *history.PercentileResult `json:"p95,omitempty"`
	Gaps       []history.Gap             `json:"gaps,omitempty"`
}

func (o reportOpts) resolution() (history.Resolution, error) {
	var picked []history.Resolution
	for _, r := range []struct {
		on  bool
		res history.Resolution
	}{{o.five, history.Res5Min}, {o.hours, history.ResHour}, {o.days, history.ResDay}, {o.weeks, history.ResWeek}, {o.months, history.ResMonth}, {o.years, history.ResYear}} {
		if r.on {
			picked = append(picked, r.res)
		}
	}
	switch {
	case len(picked) > 1:
		return "", fmt.Errorf("pick one of -5, -h, -d, -w, -m, -y")
	case len(picked) == 1:
		return picked[0], nil
	}
	return history.ResDay, nil
}

func (a *app) report(w io.Writer, o reportOpts) error {
	res, err := o.resolution()
	if err != nil {
		return usageError{err}
	}
	if o.json && o.csv {
		return usageError{fmt.Errorf("--json and --csv exclude each other")}
	}
	loc, err := time.LoadLocation(a.cfg.Timezone)
	if err != nil {
		return usageError{err}
	}
	begin, err := parseWhen(o.begin, loc)
	if err != nil {
		return usageError{fmt.Errorf("--begin %w", err)}
	}
	end, err := parseWhen(o.end, loc)
	if err != nil {
		return usageError{fmt.Errorf("--end %w", err)}
	}
	st, err := a.openHistory(false)
	if err != nil {
		return err
	}
	defer st.Close()
	sets, err := a.reportSets(st, o)
	if err != nil {
		return err
	}
	now := time.Now()
	var outs []reportOut
	for _, set := range sets {
		out := reportOut{Version: ReportVersion, Set: set, Resolution: string(res), Timezone: loc.String(), Rows: []reportRow{}}
		var rows []history.Row
		if o.top {
			out.Resolution = "top"
			rows, err = st.Top(set.entities, cmp.Or(o.limit, 10))
		} else {
			rows, err = st.Query(history.Query{Entities: set.entities, Resolution: res, Begin: begin, End: end})
			if err == nil && o.limit > 0 && len(rows) > o.limit {
				rows = rows[len(rows)-o.limit:]
			}
		}
		if err != nil {
			return err
		}
		for _, r := range rows {
			rr := reportRow{Start: r.Start.In(loc), End: r.End.In(loc), Rx: r.RxBytes, Tx: r.TxBytes, Total: r.RxBytes + r.TxBytes,
				RxPkts: r.RxPackets, TxPkts: r.TxPackets}
			span := r.End.Sub(r.Start)
			if now.Before(r.End) && !now.Before(r.Start) {
				rr.Partial = true
				span = now.Sub(r.Start)
			}
			if span > 0 {
				rr.AvgRate = float64(rr.Total) / span.Seconds()
			}
			out.Rows = append(out.Rows, rr)
		}
		if n := len(out.Rows); n > 0 && !o.top && out.Rows[n-1].Partial {
			last := out.Rows[n-1]
			if el := now.Sub(last.Start); el >= quota.MinElapsed(last.Start, last.End) {
				f := last.End.Sub(last.Start).Seconds() / el.Seconds()
				out.Estimate = &reportEstimate{Rx: uint64(float64(last.Rx) * f), Tx: uint64(float64(last.Tx) * f)}
				out.Estimate.Total = out.Estimate.Rx + out.Estimate.Tx
			}
		}
		if len(out.Rows) > 0 && !o.top && res != history.Res5Min {
			pend := out.Rows[len(out.Rows)-1].End
			if now.Before(pend) {
				pend = now
			}
			p, err := st.Percentile(set.entities, out.Rows[0].Start, pend, 95)
			if err == nil && p.Samples > 0 {
				out.P95 = &p
			}
		}
		if len(out.Rows) > 0 {
			gaps, err := st.Gaps(out.Rows[0].Start, out.Rows[len(out.Rows)-1].End)
			if err != nil {
				return err
			}
			out.Gaps = gaps
		}
		outs = append(outs, out)
	}
	if o.svg != "" {
		if err := writeReportSVG(o.svg, outs); err != nil {
			return err
		}
	}
	switch {
	case o.json:
		enc := json.NewEncoder(w)
		for _, out := range outs {
			if err := enc.Encode(out); err != nil {
				return err
			}
		}
		return nil
	case o.csv:
		return reportCSV(w, outs)
	}
	return reportText(w, outs, a.cfg.Units == "bits")
}

func periodLabel(res string, t time.Time) string {
	switch res {
	case "5min", "hour":
		return t.Format("2006-01-02 15:04")
	case "month":
		return t.Format("2006-01")
	case "year":
		return t.Format("2006")
	case "week":
		y, wk := t.ISOWeek()
		return fmt.Sprintf("%d-W%02d (%s)", y, wk, t.Format("Jan 02"))
	}
	return t.Format("2006-01-02")
}

func reportText(w io.Writer, outs []reportOut, bits bool) error {
	if len(outs) == 0 {
		_, err := fmt.Fprintln(w, "no entities recorded yet")
		return err
	}
	for i, out := range outs {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "%s %s  /  %s  (%s)\n", out.Set.Kind, strings.Join(out.Set.Names, "+"), out.Resolution, out.Timezone)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "PERIOD\tRX\tTX\tTOTAL\tAVG RATE\t")
		for _, r := range out.Rows {
			label := periodLabel(out.Resolution, r.Start)
			if r.Partial {
				label += " *"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", label, output.FormatBytes(r.Rx), output.FormatBytes(r.Tx),
				output.FormatBytes(r.Total), output.FormatRate(r.AvgRate, bits))
		}
		if len(out.Rows) == 0 {
			fmt.Fprintln(tw, "(no data in range)\t\t\t\t\t")
		}
		if e := out.Estimate; e != nil {
			fmt.Fprintf(tw, "estimated\t%s\t%s\t%s\t\t\n", output.FormatBytes(e.Rx), output.FormatBytes(e.Tx), output.FormatBytes(e.Total))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if p := out.P95; p != nil {
			fmt.Fprintf(w, "95th percentile of %d 5-minute samples: rx %s, tx %s, max(rx,tx) %s%s\n", p.Samples,
				output.FormatRate(p.Rx, bits), output.FormatRate(p.Tx, bits), output.FormatRate(p.Max, bits), truncNote(p.Truncated))
		}
		for _, g := range out.Gaps {
			fmt.Fprintf(w, "gap %s → %s: %s\n", g.Start.Format(time.RFC3339), g.End.Format(time.RFC3339), g.Reason)
		}
		if n := len(out.Rows); n > 0 && out.Rows[n-1].Partial {
			fmt.Fprintln(w, "* the current period, still running")
		}
	}
	return nil
}

func truncNote(t bool) string {
	if t {
		return " (5-minute data does not reach back over the whole range)"
	}
	return ""
}

func reportCSV(w io.Writer, outs []reportOut) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"kind", "entity", "resolution", "start", "end", "rx_bytes", "tx_bytes", "total_bytes", "rx_packets", "tx_packets", "avg_bytes_per_second", "partial"})
	for _, out := range outs {
		for _, r := range out.Rows {
			cw.Write([]string{out.Set.Kind, strings.Join(out.Set.Names, "+"), out.Resolution,
				r.Start.Format(time.RFC3339), r.End.Format(time.RFC3339),
				strconv.FormatUint(r.Rx, 10), strconv.FormatUint(r.Tx, 10), strconv.FormatUint(r.Total, 10),
				strconv.FormatUint(r.RxPkts, 10), strconv.FormatUint(r.TxPkts, 10),
				strconv.FormatFloat(r.AvgRate, 'f', 3, 64), strconv.FormatBool(r.Partial)})
		}
	}
	cw.Flush()
	return cw.Error()
}

// writeReportSVG draws the first entity's rows as a bar chart (see
// internal/chart), with the current period's estimate hatched.
func writeReportSVG(path string, outs []reportOut) error {
	if len(outs) == 0 {
		return fmt.Errorf("--svg: no entity to draw")
	}
	out := outs[0]
	c := chart.BarChart{Title: fmt.Sprintf("%s %s — %s", out.Set.Kind, strings.Join(out.Set.Names, "+"), out.Resolution)}
	for _, r := range out.Rows {
		c.Labels = append(c.Labels, periodLabel(out.Resolution, r.Start))
		c.Rx = append(c.Rx, r.Rx)
		c.Tx = append(c.Tx, r.Tx)
	}
	if e := out.Estimate; e != nil {
		c.Estimate = &chart.Estimate{Rx: e.Rx, Tx: e.Tx}
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--svg: %w", err)
	}
	if err := chart.Bars(f, c); err != nil {
		f.Close()
		return fmt.Errorf("--svg: %w", err)
	}
	return f.Close()
}
