package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/netmeter/netmeter/internal/history"
	"github.com/netmeter/netmeter/internal/output"
	"github.com/netmeter/netmeter/internal/quota"
)

// Exit statuses of `netmeter quota check`, worst wins.
const (
	quotaExitWarning  = 3 // a warning threshold crossed, or forecast to exceed
	quotaExitExceeded = 4 // a limit reached
)

func newQuota(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "quota",
		Short: "Traffic quotas of the config file's quotas: list",
		Args:  noArgs,
	}
	var name string
	var asJSON bool
	check := &cobra.Command{
		Use:   "check",
		Short: "Period-to-date usage of every quota; exit 0 ok, 3 warning or forecast over, 4 exceeded",
		Long: `check compares each quota's period-to-date usage in the history ('netmeter
serve' records it in --data-dir) with its limit, and projects the period's
end from its average rate so far (only after a tenth of the period, and at
least an hour, has passed). Periods start in --timezone.

Exit status, the worst over the quotas checked: 0 all under their thresholds,
3 a warning threshold crossed or the estimate over the limit, 4 a limit
reached; 1 an error, 2 a usage or configuration error.`,
		Example: `  netmeter quota check
  netmeter quota check --name uplink --json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.quotaCheck(cmd.OutOrStdout(), name, asJSON, time.Now())
		},
	}
	check.Flags().StringVar(&name, "name", "", "check only this quota")
	check.Flags().BoolVar(&asJSON, "json", false, "JSON: one object with every quota's result")
	cmd.AddCommand(check)
	return cmd
}

func (a *app) quotaCheck(w io.Writer, name string, asJSON bool, now time.Time) error {
	if len(a.cfg.Quotas) == 0 {
		return usageError{fmt.Errorf("no quotas configured: add a quotas: list to the config file (docs/HISTORY.md)")}
	}
	st, err := a.openHistory(false)
	if err != nil {
		return err
	}
	defer st.Close()
	results, err := evalQuotas(st, a.cfg.Quotas, name, now)
	if err != nil {
		return err
	}
	if len(results) == 0 {
		return usageError{fmt.Errorf("no quota named %q", name)}
	}
	if asJSON {
		if err := json.NewEncoder(w).Encode(struct {
			Time   time.Time      `json:"time"`
			Quotas []quota.Result `json:"quotas"`
		}{now, results}); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "QUOTA\tENTITY\tDIR\tPERIOD\tUSED\tLIMIT\t%\tESTIMATE\tSTATUS")
		for _, r := range results {
			est := "-"
			if r.EstimateValid {
				est = output.FormatBytes(r.Estimate)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s – %s\t%s\t%s\t%.1f\t%s\t%s\n", r.Name, r.Entity, r.Direction,
				r.PeriodStart.Format("2006-01-02"), r.PeriodEnd.Format("2006-01-02"),
				output.FormatBytes(r.Used), output.FormatBytes(r.Limit), r.Percent, est, r.Status)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	worst := 0
	for _, r := range results {
		switch r.Status {
		case quota.StatusExceeded:
			worst = max(worst, quotaExitExceeded)
		case quota.StatusWarning, quota.StatusForecast:
			worst = max(worst, quotaExitWarning)
		}
	}
	if worst != 0 {
		return statusError{worst}
	}
	return nil
}

// evalQuotas computes the state at now of every quota (only the one called
// name, if not ""), from the period-to-date usage in st. Periods start in
// the store's zone (--timezone). A quota the config check let through but
// that does not parse is a usage error.
func evalQuotas(st *history.Store, quotas []quota.Quota, name string, now time.Time) ([]quota.Result, error) {
	loc := st.Location()
	var results []quota.Result
	for _, q := range quotas {
		if name != "" && q.Name != name {
			continue
		}
		p, err := quota.Parse(q)
		if err != nil {
			return nil, usageError{err}
		}
		start, end := p.Bounds(now, loc)
		var ents []history.Entity
		for _, n := range p.Names {
			ents = append(ents, history.Entity{Kind: history.Kind(p.Kind), Name: n})
		}
		rx, tx, err := periodUsage(st, ents, start, now)
		if err != nil {
			return nil, fmt.Errorf("quota %s: %w", q.Name, err)
		}
		results = append(results, p.Evaluate(now, start, end, rx, tx))
	}
	return results, nil
}

// periodUsage sums rx and tx of ents from start to now from the daily
// table: periods start at midnight in the store's time zone (the same
// --timezone), so its days cover a period exactly and outlive the hourly
// retention.
func periodUsage(st *history.Store, ents []history.Entity, start, now time.Time) (rx, tx uint64, err error) {
	rows, err := st.Query(history.Query{Entities: ents, Resolution: history.ResDay, Begin: start, End: now.Add(time.Nanosecond)})
	if err != nil {
		return 0, 0, err
	}
	for _, r := range rows {
		if r.Start.Before(start) {
			continue // a day that began before the period (start_day in a zone change): not counted
		}
		rx += r.RxBytes
		tx += r.TxBytes
	}
	return rx, tx, nil
}
