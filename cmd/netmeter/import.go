package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/netmeter/netmeter/internal/output"
	"github.com/netmeter/netmeter/internal/vnstat"
)

func newImport(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "import",
		Short: "Bring another tool's traffic history into netmeter's",
		Args:  noArgs,
	}
	var rename []string
	var asJSON bool
	vn := &cobra.Command{
		Use:   "vnstat DATABASE",
		Short: "Import a vnStat 2.x database (e.g. /var/lib/vnstat/vnstat.db) into the history in --data-dir",
		Long: `import vnstat reads a vnStat 2.x database without modifying it (it may be in
use by vnstatd) and writes its interfaces' history into netmeter's: every
5-minute, hourly, daily, monthly and yearly row vnStat still keeps, each byte
once, so 'netmeter report' then shows vnStat's numbers. vnStat's dates are
local times without a zone: they are read in --timezone, which should be the
zone vnStat ran in. An interface imported once is refused the second time.`,
		Example: `  sudo netmeter import vnstat /var/lib/vnstat/vnstat.db
  sudo netmeter import vnstat old.db --as eth0=old-eth0`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError{fmt.Errorf("want the vnStat database file")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.importVnStat(cmd.OutOrStdout(), args[0], rename, asJSON)
		},
	}
	vn.Flags().StringSliceVar(&rename, "as", nil, "store vnStat's interface under another name: VNSTATNAME=NAME (repeatable)")
	vn.Flags().BoolVar(&asJSON, "json", false, "print what was imported as JSON")
	cmd.AddCommand(vn)
	return cmd
}

func (a *app) importVnStat(w io.Writer, path string, rename []string, asJSON bool) error {
	names := map[string]string{}
	for _, r := range rename {
		from, to, ok := strings.Cut(r, "=")
		if !ok || from == "" || to == "" {
			return usageError{fmt.Errorf("--as %q: want VNSTATNAME=NAME", r)}
		}
		names[from] = to
	}
	loc, err := time.LoadLocation(a.cfg.Timezone)
	if err != nil {
		return usageError{err}
	}
	db, err := vnstat.Read(path, vnstat.WithLocation(loc))
	if err != nil {
		return err
	}
	st, err := a.openHistory(true)
	if err != nil {
		return err
	}
	defer st.Close()
	res, err := vnstat.Import(st, db, names)
	if asJSON {
		if jerr := json.NewEncoder(w).Encode(res); jerr != nil && err == nil {
			err = jerr
		}
	} else {
		for _, r := range res {
			fmt.Fprintf(w, "%s → interface %s: rx %s, tx %s in %d records", r.Interface, r.Entity,
				output.FormatBytes(r.RxBytes), output.FormatBytes(r.TxBytes), r.Pieces)
			if r.RxUnplaced+r.TxUnplaced > 0 {
				fmt.Fprintf(w, " (vnStat's lifetime totals hold rx %s, tx %s more that no row dates any more: not imported)",
					output.FormatBytes(r.RxUnplaced), output.FormatBytes(r.TxUnplaced))
			}
			fmt.Fprintln(w)
		}
	}
	return err
}
