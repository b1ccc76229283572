package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/netmeter/netmeter/internal/health"
	"github.com/netmeter/netmeter/internal/output"
	"github.com/netmeter/netmeter/internal/pipeline"
	"github.com/netmeter/netmeter/internal/snapshot"
)

// analysisOpts are the flags flows, health and topology share.
type analysisOpts struct {
	duration time.Duration // collect this long, then print once
	watch    bool          // print after every interval instead
	count    int           // with watch: stop after this many prints (0 = until interrupted)
	json     bool
	// approximate, when set, is told whether the engine's numbers are
	// approximate (the classic engine).
	approximate *bool
}

func (o *analysisOpts) register(cmd *cobra.Command, defDuration time.Duration) {
	f := cmd.Flags()
	f.DurationVar(&o.duration, "duration", defDuration, "collect this long before printing (at least two intervals)")
	f.BoolVar(&o.watch, "watch", false, "print after every interval (JSON Lines with --json) until interrupted")
	f.IntVar(&o.count, "count", 0, "with --watch, stop after this many prints")
	f.BoolVar(&o.json, "json", false, "print JSON (documented in docs/HEALTH.md)")
}

// analyze runs the engine with a health analyzer and calls show once after
// --duration, or after every interval with --watch.
func (a *app) analyze(ctx context.Context, o analysisOpts, show func(*health.Analyzer) error) error {
	if o.duration < 2*a.cfg.Interval {
		return usageError{fmt.Errorf("--duration %v is shorter than two intervals (%v)", o.duration, 2*a.cfg.Interval)}
	}
	if o.count < 0 {
		return usageError{fmt.Errorf("--count must not be negative")}
	}
	if a.cfg.Engine == "off" {
		return usageError{fmt.Errorf("flows and health need the eBPF engine: drop --engine off")}
	}
	loop, closeSrc, err := a.openLoop(true)
	if err != nil {
		return err
	}
	if d, ok := loop.Engine.(interface{ Describe(*snapshot.EngineStats) }); ok && o.approximate != nil {
		var es snapshot.EngineStats
		d.Describe(&es)
		*o.approximate = es.Approximate
	}
	an, err := pipeline.Analyze(loop, a.cfg.Health)
	if err != nil {
		closeSrc()
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	snaps := make(chan snapshot.Snapshot, 1)
	errc := make(chan error, 1)
	go func() { errc <- loop.Run(ctx, snaps) }()
	running := true
	defer func() {
		// The loop must be done before its sources close.
		cancel()
		if running {
			<-errc
		}
		closeSrc()
	}()
	deadline := time.After(o.duration)
	printed := 0
	for {
		select {
		case <-snaps:
			if !o.watch {
				continue
			}
			if err := show(an); err != nil {
				return err
			}
			if printed++; o.count > 0 && printed >= o.count {
				return nil
			}
		case <-deadline:
			if !o.watch {
				return show(an)
			}
		case err := <-errc:
			running = false
			if err != nil {
				return err
			}
			return nil
		}
	}
}

func newFlows(a *app) *cobra.Command {
	var o analysisOpts
	var window time.Duration
	var by string
	var limit int
	cmd := &cobra.Command{
		Use:   "flows",
		Short: "Top flows: traffic, retransmissions, RTT and drops by (local process or container, remote group)",
		Long: `flows groups connections by their local end (a program, by name, or a container)
and their remote end's group (a user-defined CIDR group from the config file's
health: section, else the remote's /24 or /64, or "loopback"), and ranks them
over a window by bytes, rate, retransmissions, RTT or drops. Needs root.`,
		Example: `  sudo netmeter flows                       # collect 5 s, top 20 by bytes
  sudo netmeter flows --by retrans --window 30s --duration 30s
  sudo netmeter flows --json --watch        # JSON Lines every interval`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if window <= 0 {
				return usageError{fmt.Errorf("--window must be positive")}
			}
			if err := health.CheckFlowOrder(by); err != nil {
				return usageError{fmt.Errorf("--by: %w", err)}
			}
			w := cmd.OutOrStdout()
			var approx bool
			o.approximate = &approx
			return a.analyze(cmd.Context(), o, func(an *health.Analyzer) error {
				fl, err := an.TopFlows(window, by, limit)
				if err != nil {
					return usageError{err}
				}
				if o.json {
					return writeJSONLine(w, struct {
						Time        time.Time     `json:"time"`
						By          string        `json:"by"`
						Window      int64         `json:"window_ms"`
						Approximate bool          `json:"approximate,omitempty"`
						Flows       []health.Flow `json:"flows"`
					}{time.Now(), by, window.Milliseconds(), approx, fl})
				}
				if approx {
					fmt.Fprintln(w, "approximate: classic engine (packet capture joined to /proc; no RTT, retransmissions or drops)")
				}
				return flowsTable(w, fl)
			})
		},
	}
	o.register(cmd, 5*time.Second)
	cmd.Flags().DurationVar(&window, "window", 10*time.Second, "rank over this recent span")
	cmd.Flags().StringVar(&by, "by", "bytes", "rank by: bytes, rate, retrans, rtt or drops")
	cmd.Flags().IntVar(&limit, "limit", 20, "show at most this many flows (0 = all)")
	return cmd
}

func newHealth(a *app) *cobra.Command {
	var o analysisOpts
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Network Health Indicator per remote group and monitor, with its evidence",
		Long: `health says, per remote group and per monitor (config file, health: section),
whether TCP to it is healthy or degraded, and whose fault it likely is:
"degraded: network" (RTT or retransmissions up against the group's own
baseline), "degraded: this host" (this host does not read fast enough: zero
windows, growing receive queues, socket drops), or "degraded: remote" (the
peer's window is zero, or it resets). A group needs a warm-up (see
docs/HEALTH.md) before its first verdict; until then it is "unknown".
Exit status 3 when any group or monitor is degraded (for scripts).`,
		Example: `  sudo netmeter health --duration 30s
  sudo netmeter health --json --watch`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			w := cmd.OutOrStdout()
			var degraded bool
			err := a.analyze(cmd.Context(), o, func(an *health.Analyzer) error {
				r := an.Health()
				degraded = anyDegraded(r)
				if o.json {
					return writeJSONLine(w, r)
				}
				return healthTable(w, r)
			})
			if err == nil && degraded && !o.watch {
				return statusError{3}
			}
			return err
		},
	}
	o.register(cmd, 10*time.Second)
	return cmd
}

func newTopology(a *app) *cobra.Command {
	var o analysisOpts
	var window time.Duration
	cmd := &cobra.Command{
		Use:   "topology",
		Short: "Who talks to whom: local processes and containers, remote groups, and the edges between them (JSON)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			w := cmd.OutOrStdout()
			return a.analyze(cmd.Context(), o, func(an *health.Analyzer) error {
				return writeJSONLine(w, an.Topology(window))
			})
		},
	}
	o.register(cmd, 5*time.Second)
	cmd.Flags().DurationVar(&window, "window", 10*time.Second, "sum edges over this recent span")
	return cmd
}

func anyDegraded(r health.Report) bool {
	for _, s := range append(append([]health.Status{}, r.Groups...), r.Monitors...) {
		if s.State.Degraded() {
			return true
		}
	}
	return false
}

func writeJSONLine(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

func flowsTable(w io.Writer, fl []health.Flow) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "LOCAL\tREMOTE GROUP\tCONNS\tTX\tRX\tRATE\tRTT\tRETRANS\tRTO\tDROPS\tHEALTH\t")
	for _, f := range fl {
		rtt := "-"
		if f.RTTMeanUS > 0 {
			rtt = output.Micros(uint64(f.RTTMeanUS))
		}
		h := string(f.Health)
		if h == "" {
			h = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%.2f%%\t%d\t%d\t%s\t\n",
			f.Local.ID, f.Group, f.Connections,
			output.FormatBytes(f.TxBytes), output.FormatBytes(f.RxBytes),
			output.FormatRate(f.TxRate+f.RxRate, false), rtt, f.RetransPercent, f.RTOs, f.Drops, h)
	}
	return tw.Flush()
}

func healthTable(w io.Writer, r health.Report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tNAME\tSTATE\tRTT (BASELINE)\tRETRANS (BASELINE)\tWHY")
	row := func(kind string, s health.Status) {
		e := s.Evidence
		rtt := "-"
		if e.RTTUS > 0 {
			rtt = fmt.Sprintf("%s (%s)", output.Micros(uint64(e.RTTUS)), output.Micros(uint64(e.RTTBaselineUS)))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.2f%% (%.2f%%)\t%s\n", kind, s.Name, s.State, rtt,
			e.RetransPercent, e.RetransBaselinePercent, s.Explanation)
	}
	for _, s := range r.Groups {
		row("group", s)
	}
	for _, s := range r.Monitors {
		row("monitor", s)
	}
	return tw.Flush()
}
