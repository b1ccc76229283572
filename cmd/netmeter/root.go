package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/netmeter/netmeter/internal/aggregate"
	"github.com/netmeter/netmeter/internal/config"
	"github.com/netmeter/netmeter/internal/nsutil"
	"github.com/netmeter/netmeter/internal/pipeline"
	"github.com/netmeter/netmeter/internal/snapshot"
	"github.com/netmeter/netmeter/internal/tui"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// app carries what every subcommand shares once flags are parsed.
type app struct {
	cfg config.Config
	log *slog.Logger
	// ledger makes the collection keep the billing ledger in --state-file
	// (netmeter top --ledger) until `netmeter serve` does it.
	ledger bool
	// flags are the parsed flags (serve re-reads the config on SIGHUP),
	// level the logger's level, which a reload can change.
	flags *pflag.FlagSet
	level slog.LevelVar
}

func newRoot() *cobra.Command {
	a := &app{}
	root := &cobra.Command{
		Use:   "netmeter",
		Short: "Who uses the network, how well it flows, and what it costs",
		Long: `netmeter is a Linux network traffic monitor.

Run without a subcommand it opens the live view: every interface with its
receive and transmit rates (current and 2 s / 10 s / 40 s averages), a graph,
totals, and errors and drops highlighted when they grow. When standard output
is not a terminal it prints one 'ifstat' table instead.

Reading interfaces needs no privileges; --netns and the eBPF engine need root.
Options come from flags, NETMETER_* environment variables and a YAML config
file (see docs/CONFIG.md).`,
		Example: `  netmeter                          # live view
  netmeter ifstat                   # one table, rates over one interval
  netmeter ifstat --json --watch 2s # JSON Lines every 2 seconds
  sudo netmeter --netns blue        # a namespace made with 'ip netns add blue'`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          noArgs,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(cmd.Flags(), os.Getenv)
			if err != nil {
				return err
			}
			a.cfg = cfg
			a.flags = cmd.Flags()
			a.log = newLogger(cfg, &a.level)
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !term.IsTerminal(int(os.Stdout.Fd())) {
				return a.ifstat(cmd.Context(), cmd.OutOrStdout(), ifstatOpts{})
			}
			return a.live(cmd.Context())
		},
	}
	root.Version = version
	config.RegisterFlags(root.PersistentFlags())
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newIfstat(a), newTop(a), newFlows(a), newHealth(a), newTopology(a), newServe(a), newReport(a), newQuota(a), newImport(a), newLedger(a), newVersion(), newConfigCmd(a))
	for _, c := range extraCommands {
		root.AddCommand(c(a))
	}
	return root
}

// extraCommands are commands that register themselves from their own file
// (init), so commands developed side by side do not edit one line.
var extraCommands []func(*app) *cobra.Command

func newLogger(cfg config.Config, level *slog.LevelVar) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.LogLevel)) // validated by config
	level.Set(lvl)
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(os.Stderr, opts)
	if cfg.LogFormat == "json" {
		h = slog.NewJSONHandler(os.Stderr, opts)
	}
	return slog.New(h)
}

// netnsPath turns --netns into a path: a bare name is under /run/netns.
func netnsPath(v string) string {
	if v == "" || strings.ContainsRune(v, '/') {
		return v
	}
	return nsutil.NamedPath(v)
}

// openLoop opens the sources chosen by the configuration; withEngine asks
// for the eBPF engine as --engine allows.
func (a *app) openLoop(withEngine bool) (*aggregate.Loop, func(), error) {
	mode := a.cfg.Engine
	if !withEngine {
		mode = "off"
	}
	nsPath := netnsPath(a.cfg.Netns)
	pc := pipeline.Config{
		Interval: a.cfg.Interval, NetnsPath: nsPath, NetnsName: a.cfg.Netns, Source: a.cfg.Source,
		Engine: mode, MaxLinkRate: a.cfg.MaxLinkRate, Log: a.log, NftCounters: a.cfg.NftCounters && mode != "off",
		NoTCPHealth: !a.cfg.TCPHealth, NoRTTSamples: !a.cfg.RTTSamples, MaxConnections: a.cfg.MaxConns,
	}
	if a.ledger && mode != "off" {
		pc.StateFile, pc.PinPath, pc.BillingDay = a.cfg.StateFile, a.cfg.PinPath, a.cfg.BillingDay
	}
	p, err := pipeline.Open(pc)
	if err != nil {
		if mode == "ebpf" {
			err = fmt.Errorf("%w (or run with --engine off for interfaces only)", err)
		}
		return nil, nil, err
	}
	return p.Loop, func() { p.Close() }, nil
}

// filter keeps the interfaces matching the --interfaces patterns.
func (a *app) filter(s snapshot.Snapshot) snapshot.Snapshot {
	if len(a.cfg.Interfaces) == 0 {
		return s
	}
	kept := make([]snapshot.Interface, 0, len(s.Interfaces))
	for _, ifc := range s.Interfaces {
		for _, p := range a.cfg.Interfaces {
			if ok, _ := path.Match(p, ifc.Name); ok {
				kept = append(kept, ifc)
				break
			}
		}
	}
	s.Interfaces = kept
	return s
}

// stream starts the configured source and returns its snapshots, filtered
// by --interfaces. Each setup sees the loop before it runs (to add stages
// such as pipeline.Analyze); if one fails, the source is closed and its
// error returned. stop ends the stream, waits for the loop, then releases
// the source and returns the loop's error; call it exactly once.
func (a *app) stream(ctx context.Context, withEngine bool, setup ...func(*aggregate.Loop) error) (_ <-chan snapshot.Snapshot, stop func() error, _ error) {
	loop, closeSrc, err := a.openLoop(withEngine)
	if err != nil {
		return nil, nil, err
	}
	for _, f := range setup {
		if err := f(loop); err != nil {
			closeSrc()
			return nil, nil, err
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	raw := make(chan snapshot.Snapshot, 1)
	out := make(chan snapshot.Snapshot, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- loop.Run(ctx, raw)
		close(raw)
	}()
	go func() {
		defer close(out)
		for s := range raw {
			select {
			case out <- a.filter(s):
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, func() error {
		cancel()
		err := <-errc
		closeSrc()
		return err
	}, nil
}

func (a *app) live(ctx context.Context) error {
	opts := tui.Options{Bits: a.cfg.Units == "bits"}
	// The health view reads an analyzer fed by the loop; without the
	// engine (--engine off, or auto and it could not load) there is none,
	// and Analysis stays an untyped nil so that the view says so.
	analyze := func(loop *aggregate.Loop) error {
		if loop.Flows == nil {
			return nil
		}
		an, err := pipeline.Analyze(loop, a.cfg.Health)
		if err != nil {
			return err
		}
		opts.Analysis = an
		return nil
	}
	ch, stop, err := a.stream(ctx, true, analyze)
	if err != nil {
		return err
	}
	runErr := tui.Run(ctx, ch, opts)
	if err := stop(); err != nil {
		return err
	}
	return runErr
}

func newVersion() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  noArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), "netmeter", version)
		},
	}
}

func newConfigCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "config",
		Short: "Print the effective configuration and where each value came from",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			w := cmd.OutOrStdout()
			file := a.cfg.ConfigFile
			if file == "" {
				file = "(none)"
			}
			fmt.Fprintf(w, "# config file: %s\n", file)
			fmt.Fprintf(w, "engine: %s\n", a.cfg.Engine)
			fmt.Fprintf(w, "interval: %s\nnetns: %q\nsource: %s\ninterfaces: [%s]\nunits: %s\nmax_link_rate: %g\nlog_level: %s\nlog_format: %s\n",
				a.cfg.Interval, a.cfg.Netns, a.cfg.Source, strings.Join(a.cfg.Interfaces, ", "), a.cfg.Units, a.cfg.MaxLinkRate, a.cfg.LogLevel, a.cfg.LogFormat)
			return nil
		},
	}
}
