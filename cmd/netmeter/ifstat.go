package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/netmeter/netmeter/internal/output"
	"github.com/netmeter/netmeter/internal/snapshot"
)

type ifstatOpts struct {
	json  bool
	exact bool
	watch time.Duration
	count int
}

func newIfstat(a *app) *cobra.Command {
	var o ifstatOpts
	var watch string
	cmd := &cobra.Command{
		Use:   "ifstat",
		Short: "Print interface counters and rates (like ip -s link, with rates)",
		Long: `Print one table of every interface: state, receive and transmit rates over
one --interval, totals over that interval's end, packets, errors and drops.

With --watch it prints again every period until interrupted (or --count times).
With --json it prints one JSON object per snapshot (JSON Lines); the fields
and units are documented in docs/IFSTAT_JSON.md. Bytes are integers and rates
are bytes per second, never rounded.`,
		Example: `  netmeter ifstat
  netmeter ifstat --watch 2 --interfaces 'eth*'
  netmeter ifstat --json --exact | jq '.interfaces[] | {name, rx: .rx_bytes_per_second.current}'`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if watch != "" {
				d, err := parseWatch(watch)
				if err != nil {
					return usageError{fmt.Errorf("--watch: %w", err)}
				}
				o.watch = d
			}
			if o.count < 0 {
				return usageError{fmt.Errorf("--count must be >= 0, got %d", o.count)}
			}
			return a.ifstat(cmd.Context(), cmd.OutOrStdout(), o)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.json, "json", false, "print JSON Lines instead of a table")
	f.BoolVar(&o.exact, "exact", false, "print raw integers (bytes, bytes/s) instead of rounded units")
	f.StringVarP(&watch, "watch", "w", "", "print every period (seconds, or a duration like 500ms) until interrupted")
	f.IntVarP(&o.count, "count", "c", 0, "with --watch, stop after this many tables (0 = no limit)")
	return cmd
}

// parseWatch accepts seconds ("2", "0.5") or a Go duration ("500ms").
func parseWatch(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil {
		s, ferr := strconv.ParseFloat(v, 64)
		if ferr != nil {
			return 0, fmt.Errorf("%q is neither seconds nor a duration like 500ms", v)
		}
		d = time.Duration(s * float64(time.Second))
	}
	if d < 10*time.Millisecond {
		return 0, fmt.Errorf("%v is shorter than 10ms", d)
	}
	return d, nil
}

// ifstat prints tables: the first after one interval (rates need two
// readings), then one per watch period.
func (a *app) ifstat(ctx context.Context, w io.Writer, o ifstatOpts) error {
	if o.watch > 0 {
		a.cfg.Interval = o.watch
	}
	ch, stop, err := a.stream(ctx)
	if err != nil {
		return err
	}
	err = a.printIfstat(ch, w, o)
	if stopErr := stop(); err == nil {
		err = stopErr
	}
	return err
}

// printIfstat prints the snapshots from ch after the baseline, until the
// watch count is reached (or after one without --watch) or ch closes.
func (a *app) printIfstat(ch <-chan snapshot.Snapshot, w io.Writer, o ifstatOpts) error {
	first, printed := true, 0
	for s := range ch {
		if first {
			first = false // the baseline reading
			continue
		}
		var err error
		if o.json {
			err = output.JSON(w, s)
		} else {
			if printed > 0 {
				fmt.Fprintln(w)
			}
			err = output.Table(w, s, output.TableOptions{Bits: a.cfg.Units == "bits", Exact: o.exact})
		}
		if err != nil {
			return fmt.Errorf("write output: %w", err)
		}
		printed++
		if o.watch == 0 || (o.count > 0 && printed >= o.count) {
			return nil
		}
	}
	return nil
}
