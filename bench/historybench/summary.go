package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
)

// pairs are the process comparisons: the same question to both tools.
var pairs = []struct{ name, nm, vn string }{
	{"start-up (version)", "nm-version", "vn-version"},
	{"month report, text", "nm-month-text", "vn-month-text"},
	{"month report, JSON", "nm-month-json", "vn-month-json"},
	{"top 10 days, text", "nm-top-text", "vn-top-text"},
	{"top 10 days, JSON", "nm-top-json", "vn-top-json"},
}

type pairResult struct {
	Name       string  `json:"name"`
	Netmeter   string  `json:"netmeter_label"`
	VnStat     string  `json:"vnstat_label"`
	NmWall     float64 `json:"netmeter_wall_ms"`
	VnWall     float64 `json:"vnstat_wall_ms"`
	NmNet      float64 `json:"netmeter_net_ms"` // wall minus the tool's start-up baseline (difference of medians)
	VnNet      float64 `json:"vnstat_net_ms"`
	NmCPU      float64 `json:"netmeter_cpu_ms"`
	VnCPU      float64 `json:"vnstat_cpu_ms"`
	NmRSS      float64 `json:"netmeter_max_rss_kib"`
	VnRSS      float64 `json:"vnstat_max_rss_kib"`
	WallRatio  float64 `json:"wall_ratio"` // netmeter / vnStat
	NetRatio   float64 `json:"net_ratio"`
	NetNmMinVn float64 `json:"net_difference_ms"` // netmeter net − vnStat net
}

type metaFlag map[string]string

func (m metaFlag) String() string { return fmt.Sprint(map[string]string(m)) }
func (m metaFlag) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok {
		return errors.New("want key=value")
	}
	m[k] = val
	return nil
}

func cmdSummary(args []string) error {
	fs := flag.NewFlagSet("summary", flag.ExitOnError)
	dir := fs.String("dir", "", "OUT_DIR holding gen.json, check.json, inproc.json, proc.json")
	meta := metaFlag{}
	fs.Var(meta, "meta", "key=value to record in summary.json (repeatable)")
	fs.Parse(args)
	var gen genResult
	var check checkResult
	var inproc []inprocOp
	var proc []procResult
	for _, f := range []struct {
		name string
		v    any
	}{{"gen.json", &gen}, {"check.json", &check}, {"inproc.json", &inproc}, {"proc.json", &proc}} {
		if err := readJSON(filepath.Join(*dir, f.name), f.v); err != nil {
			return err
		}
	}
	byLabel := map[string]procResult{}
	for _, p := range proc {
		byLabel[p.Label] = p
	}
	var prs []pairResult
	nmBase, vnBase := byLabel["nm-version"].Wall.Median, byLabel["vn-version"].Wall.Median
	for _, p := range pairs {
		a, okA := byLabel[p.nm]
		b, okB := byLabel[p.vn]
		if !okA || !okB {
			continue
		}
		r := pairResult{Name: p.name, Netmeter: p.nm, VnStat: p.vn, NmWall: a.Wall.Median, VnWall: b.Wall.Median,
			NmCPU: a.CPU.Median, VnCPU: b.CPU.Median, NmRSS: a.MaxRSSK, VnRSS: b.MaxRSSK}
		r.WallRatio = r.NmWall / r.VnWall
		if p.nm != "nm-version" {
			r.NmNet, r.VnNet = r.NmWall-nmBase, r.VnWall-vnBase
			r.NetNmMinVn = r.NmNet - r.VnNet
			if r.VnNet > 0 {
				r.NetRatio = r.NmNet / r.VnNet
			}
		}
		prs = append(prs, r)
	}
	rounds := 0
	if len(proc) > 0 {
		rounds = proc[0].Wall.N
	}
	sum := map[string]any{"meta": meta, "data": gen, "gate": check, "process": prs, "process_runs": proc, "inproc": inproc, "rounds": rounds}
	if err := writeJSON(filepath.Join(*dir, "summary.json"), sum); err != nil {
		return err
	}
	var noop *procResult
	if p, ok := byLabel["go-noop"]; ok {
		noop = &p
	}
	printTable(os.Stdout, gen, check, prs, noop, rounds, inproc)
	return nil
}

func printTable(out io.Writer, gen genResult, check checkResult, prs []pairResult, noop *procResult, rounds int, inproc []inprocOp) {
	fmt.Fprintf(out, "\nHistory store vs vnStat: %d interfaces, 5-minute traffic %s – %s, each database with its default retention\n",
		gen.Interfaces, gen.From.Format("2006-01-02"), gen.End.Format("2006-01-02"))
	fmt.Fprintf(out, "gate: %v (%d interfaces × %d months and top %d days equal the generator's sums in both tools' --json)\n\n",
		check.OK, check.Interfaces, check.Months, check.TopDays)

	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(out, "Processes, end to end (median of %d interleaved rounds; ms; net = minus the tool's own start-up):\n", rounds)
	fmt.Fprintln(w, "\tnetmeter wall\tnet\tcpu\tvnStat wall\tnet\tcpu\twall ratio\tnet diff\t")
	for _, r := range prs {
		if r.Netmeter == "nm-version" {
			fmt.Fprintf(w, "%s\t%.2f\t–\t%.2f\t%.2f\t–\t%.2f\t%.2f×\t–\t\n", r.Name, r.NmWall, r.NmCPU, r.VnWall, r.VnCPU, r.WallRatio)
			continue
		}
		fmt.Fprintf(w, "%s\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f×\t%+.2f\t\n", r.Name, r.NmWall, r.NmNet, r.NmCPU, r.VnWall, r.VnNet, r.VnCPU, r.WallRatio, r.NetNmMinVn)
	}
	w.Flush()
	if noop != nil {
		fmt.Fprintf(out, "reference: a Go binary linking only the history store, doing nothing (historybench noop): %.2f ms wall, %.2f ms cpu\n",
			noop.Wall.Median, noop.CPU.Median)
	}

	fmt.Fprintln(out, "\nIn-process (median ms; vnstat-sql = vnStat's own queries on its database through the same Go SQLite driver):")
	w = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	for _, o := range inproc {
		fmt.Fprintf(w, "  %s\t%.3f\t(n=%d, p90 %.3f)\t%s\n", o.Name, o.Median, o.N, o.P90, o.Desc)
	}
	w.Flush()

	fmt.Fprintln(out, "\nFiles:")
	w = tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	nm, vn := gen.Sizes["netmeter"], gen.Sizes["vnstat"]
	fmt.Fprintln(w, "\tnetmeter\tvnStat\tratio\t")
	kib := func(b int64) string { return fmt.Sprintf("%.0f KiB", float64(b)/1024) }
	fmt.Fprintf(w, "as built\t%s\t%s\t%.2f×\t\n", kib(nm.AsBuilt), kib(vn.AsBuilt), float64(nm.AsBuilt)/float64(vn.AsBuilt))
	fmt.Fprintf(w, "  of which free pages\t%s\t%s\t\t\n", kib(nm.AsBuiltFree), kib(vn.AsBuiltFree))
	fmt.Fprintf(w, "after VACUUM\t%s\t%s\t%.2f×\t\n", kib(nm.Vacuumed), kib(vn.Vacuumed), float64(nm.Vacuumed)/float64(vn.Vacuumed))
	w.Flush()
	for _, d := range []struct {
		name string
		s    dbSize
	}{{"netmeter", nm}, {"vnStat", vn}} {
		fmt.Fprintf(out, "  %s rows: %s\n", d.name, kv(d.s.Rows, func(v int64) string { return fmt.Sprint(v) }))
		if len(d.s.Objects) > 0 {
			fmt.Fprintf(out, "  %s bytes after VACUUM: %s\n", d.name, kv(d.s.Objects, func(v int64) string { return fmt.Sprintf("%.0fK", float64(v)/1024) }))
		}
	}
	fmt.Fprintf(out, "\nbuild: netmeter %.1f s (%d Records), vnStat %.1f s\n", gen.NetmeterBuildS, gen.NetmeterRecords, gen.VnStatBuildS)
}

func kv(m map[string]int64, f func(int64) string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(k + " " + f(m[k]))
	}
	return b.String()
}
