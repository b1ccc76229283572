package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/netmeter/netmeter/internal/aggregate"
	"github.com/netmeter/netmeter/internal/output"
)

func newLedger(a *app) *cobra.Command {
	var period, format string
	var all bool
	cmd := &cobra.Command{
		Use:   "ledger",
		Short: "Print container traffic per billing account and period (month to date)",
		Long: `Print the billing ledger kept by a netmeter agent in --state-file: the traffic
of every stable account (label netmeter.account, compose project/service,
pod namespace/name, or container name) in the current billing period (which
starts on --billing-day), or in --period YYYY-MM, or in all periods (--all).

Totals survive container restarts and IP changes (accounts are names, not
addresses) and agent restarts (the state is saved every 10 s and at exit; with
--pin-path the kernel also counts while no agent runs). Export as --format
csv or json for invoicing.`,
		Example: `  netmeter ledger
  netmeter ledger --period 2026-10 --format csv > october.csv`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch format {
			case "table", "csv", "json":
			default:
				return usageError{fmt.Errorf("--format %q is not one of table, csv, json", format)}
			}
			l, err := aggregate.NewLedger(a.cfg.BillingDay, time.Local)
			if err != nil {
				return err
			}
			if _, err := aggregate.LoadCheckpoint(a.cfg.StateFile, time.Now(), l, nil); err != nil {
				return err
			}
			if period == "" && !all {
				period = l.Period(time.Now())
			}
			if period != "" {
				if _, err := time.Parse("2006-01", period); err != nil {
					return usageError{fmt.Errorf("--period %q is not YYYY-MM", period)}
				}
			}
			return writeLedger(cmd.OutOrStdout(), l.Entries(period), format)
		},
	}
	f := cmd.Flags()
	f.StringVar(&period, "period", "", "billing period YYYY-MM (default: the current one)")
	f.BoolVar(&all, "all", false, "every period")
	f.StringVar(&format, "format", "table", "table, csv or json")
	return cmd
}

func writeLedger(w io.Writer, es []aggregate.Entry, format string) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if es == nil {
			es = []aggregate.Entry{}
		}
		return enc.Encode(es)
	case "csv":
		cw := csv.NewWriter(w)
		cw.Write([]string{"period", "account", "tx_bytes", "rx_bytes", "tx_packets", "rx_packets", "tx_payload_bytes", "rx_payload_bytes"})
		for _, e := range es {
			t := e.Total
			cw.Write([]string{e.Period, e.Account, u(t.TxBytes), u(t.RxBytes), u(t.TxPackets), u(t.RxPackets), u(t.TxPayload), u(t.RxPayload)})
		}
		cw.Flush()
		return cw.Error()
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "PERIOD\tACCOUNT\tTX\tRX\tTOTAL\t")
	for _, e := range es {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", e.Period, e.Account, output.FormatBytes(e.Total.TxBytes),
			output.FormatBytes(e.Total.RxBytes), output.FormatBytes(e.Total.TxBytes+e.Total.RxBytes))
	}
	return tw.Flush()
}

func u(v uint64) string { return strconv.FormatUint(v, 10) }
