package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/netmeter/netmeter/internal/diagnose"
)

func init() { extraCommands = append(extraCommands, newDiagnose) }

// diagnoseProblem is the exit status of diagnose when it found a problem.
const diagnoseProblem = 3

func newDiagnose(a *app) *cobra.Command {
	var (
		window  time.Duration
		asJSON  bool
		watch   bool
		count   int
		noTrace bool
	)
	cmd := &cobra.Command{
		Use:   "diagnose [IFACE]",
		Short: `Why is "dropped" growing? Walk the layers bottom-up and name the cause, with evidence and a fix`,
		Long: `diagnose reads every layer twice, a window apart, and reports what is dropping
packets now, with the evidence, the owning process where there is one, and a
suggested fix:

  physical     link state, carrier changes, speed/duplex, NIC missed/no-buffer/
               fifo counters, ring sizes against their maximum, driver, firmware
  kernel       softnet backlog and time squeezes, qdisc drops, netfilter drop
               rules, conntrack fill and failures, the kernel's drop reasons
               (skb:kfree_skb, needs root and BTF)
  protocol     SNMP counters as rates: TCP retransmit share, listen overflows,
               SYN cookies, UDP receive buffer errors
  application  sockets that drop or whose queues grow, and their process

Only counters that grew during the window decide a finding; lifetime totals
are context. IFACE limits the link, qdisc and drop-reason checks to one
interface. Rules, thresholds and the JSON schema: docs/DIAGNOSE.md.

Exit status: 0 no problem found, 3 problems found, 1 error, 2 usage error.
With --watch it runs until interrupted (or --count reports) and exits 0.`,
		Example: `  sudo netmeter diagnose                    # this host, all interfaces, 2 s window
  sudo netmeter diagnose eth0 --window 5s
  sudo netmeter --netns blue diagnose --json
  sudo netmeter diagnose --watch            # re-check every window, print what changed`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usageError{fmt.Errorf("diagnose takes at most one interface, got %d arguments", len(args))}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if window < 100*time.Millisecond {
				return usageError{fmt.Errorf("--window %v is too short (at least 100ms)", window)}
			}
			if count < 0 {
				return usageError{errors.New("--count must not be negative")}
			}
			opt := diagnose.Options{NetnsPath: netnsPath(a.cfg.Netns), NetnsName: a.cfg.Netns, Window: window, NoDropTracing: noTrace}
			if len(args) == 1 {
				opt.Interface = args[0]
			}
			c, err := diagnose.NewCollector(opt)
			if err != nil {
				return err
			}
			defer c.Close()
			w := cmd.OutOrStdout()
			var prev *diagnose.Report
			for n := 0; ; n++ {
				ev, err := c.Collect(cmd.Context())
				if err != nil {
					if watch && errors.Is(err, context.Canceled) {
						return nil
					}
					return err
				}
				if opt.Interface != "" && len(ev.Links) == 0 {
					return usageError{fmt.Errorf("no interface %q in %s", opt.Interface, nsLabel(a.cfg.Netns))}
				}
				r := diagnose.NewReport(ev)
				if watch {
					r.Diff(prev)
				}
				switch {
				case asJSON:
					err = r.WriteJSON(w)
				case watch && prev != nil:
					err = r.WriteChanges(w)
				default:
					err = r.WriteText(w)
				}
				if err != nil {
					return err
				}
				if !watch {
					if r.Problem {
						return statusError{diagnoseProblem}
					}
					return nil
				}
				if count > 0 && n+1 >= count {
					return nil
				}
				prev = &r
			}
		},
	}
	f := cmd.Flags()
	f.DurationVar(&window, "window", diagnose.DefaultWindow, "sampling window: counters are read at its start and end")
	f.BoolVar(&asJSON, "json", false, "print JSON (JSON Lines with --watch; schema in docs/DIAGNOSE.md)")
	f.BoolVar(&watch, "watch", false, "re-check every window and print what changed, until interrupted")
	f.IntVar(&count, "count", 0, "with --watch, stop after this many reports")
	f.BoolVar(&noTrace, "no-drop-tracing", false, "do not load the kernel drop tracing (skb:kfree_skb)")
	return cmd
}

func nsLabel(ns string) string {
	if ns == "" {
		return "this namespace"
	}
	return "namespace " + ns
}
