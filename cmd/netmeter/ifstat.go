package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/netmeter/netmeter/internal/aggregate"
	"github.com/netmeter/netmeter/internal/output"
	"github.com/netmeter/netmeter/internal/snapshot"
)

type ifstatOpts struct {
	engine bool // load the eBPF engine (top)
	view   string
	json   bool
	exact  bool
	watch  time.Duration
	count  int
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
	var setup []func(*aggregate.Loop) error
	if o.engine {
		setup = append(setup, func(l *aggregate.Loop) error {
			if l.Engine == nil {
				return errors.New("top needs an engine: neither the eBPF engine nor the classic capture could start (see the warnings above): " +
					"run as root, or grant CAP_NET_RAW for the classic engine (setcap cap_net_raw+ep) or CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON for eBPF; " +
					"'netmeter ifstat' or 'netmeter --engine off' show interfaces only")
			}
			return nil
		})
	}
	ch, stop, err := a.stream(ctx, o.engine, setup...)
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
		topt := output.TableOptions{Bits: a.cfg.Units == "bits", Exact: o.exact}
		switch {
		case o.json:
			err = output.JSON(w, s)
		case printed > 0:
			fmt.Fprintln(w)
			fallthrough
		default:
			err = a.printTables(w, s, o, topt)
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

// printTables prints the interface table (ifstat), or the process and
// connection tables (top).
func (a *app) printTables(w io.Writer, s snapshot.Snapshot, o ifstatOpts, topt output.TableOptions) error {
	if o.view == "" {
		return output.Table(w, s, topt)
	}
	if note := output.EngineNote(s); note != "" {
		if _, err := fmt.Fprintln(w, note); err != nil {
			return err
		}
	}
	switch o.view {
	case "processes":
		return output.Processes(w, s, topt)
	case "connections":
		return output.Connections(w, s, topt)
	case "containers":
		return output.Containers(w, s, topt)
	}
	if err := output.Processes(w, s, topt); err != nil {
		return err
	}
	fmt.Fprintln(w)
	return output.Connections(w, s, topt)
}

func newTop(a *app) *cobra.Command {
	o := ifstatOpts{engine: true}
	var watch string
	var once, containers bool
	cmd := &cobra.Command{
		Use:   "top",
		Short: "Print processes and connections by bandwidth (like nethogs and iftop)",
		Long: `Print which processes and connections use the network: per process the IP
bytes sent and received per second and since start, payload bytes, sockets;
per connection both endpoints, protocol, owner (and the peer process of a
local connection) and rates. The eBPF engine needs root, or CAP_BPF,
CAP_NET_ADMIN and CAP_PERFMON, and a kernel with BTF; where it cannot load,
--engine auto (the default) falls back to the classic engine (packet capture
joined to /proc, CAP_NET_RAW; one namespace), whose numbers are marked
approximate. --engine ebpf or --engine classic chooses one.

--once prints one snapshot after one --interval; --watch N prints one per N
seconds. With --json each snapshot is one JSON document per line; the schema
is docs/TOP_JSON.md (and docs/IFSTAT_JSON.md for interfaces).`,
		Example: `  sudo netmeter top --once
  sudo netmeter top --json --watch 1 | jq -c '.processes[] | {pid, comm, tx: .tx_bytes_per_second.current}'`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if watch != "" {
				d, err := parseWatch(watch)
				if err != nil {
					return usageError{fmt.Errorf("--watch: %w", err)}
				}
				o.watch = d
			}
			if once && o.watch > 0 {
				return usageError{fmt.Errorf("--once and --watch exclude each other")}
			}
			if containers {
				o.view = "containers"
			}
			switch o.view {
			case "all", "processes", "connections", "containers":
			default:
				return usageError{fmt.Errorf("--view %q is not one of all, processes, connections, containers", o.view)}
			}
			if a.cfg.Engine == "off" {
				return usageError{fmt.Errorf("top needs an engine (ebpf or classic); --engine off was given")}
			}
			return a.ifstat(cmd.Context(), cmd.OutOrStdout(), o)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.json, "json", false, "print JSON Lines instead of tables")
	f.BoolVar(&once, "once", false, "print one snapshot and exit (the default without --watch)")
	f.BoolVar(&o.exact, "exact", false, "print raw integers (bytes, bytes/s) instead of rounded units")
	f.StringVarP(&watch, "watch", "w", "", "print every period (seconds, or a duration like 500ms) until interrupted")
	f.IntVarP(&o.count, "count", "c", 0, "with --watch, stop after this many snapshots (0 = no limit)")
	f.StringVar(&o.view, "view", "all", "tables to print: all, processes, connections or containers")
	f.BoolVar(&a.ledger, "ledger", false, "keep the billing ledger in --state-file while running (read it with 'netmeter ledger'); with --pin-path it continues across runs")
	f.BoolVar(&containers, "containers", false, "print containers (same as --view containers; with --json every snapshot has them)")
	return cmd
}
