package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"time"
)

// nmReport is one line of `netmeter report --json` (docs/HISTORY.md).
type nmReport struct {
	Version int `json:"version"`
	Entity  struct {
		Kind  string   `json:"kind"`
		Names []string `json:"names"`
	} `json:"entity"`
	Resolution string `json:"resolution"`
	Rows       []struct {
		Start time.Time `json:"start"`
		Rx    uint64    `json:"rx_bytes"`
		Tx    uint64    `json:"tx_bytes"`
	} `json:"rows"`
}

// vnJSON is `vnstat --json` (jsonversion 2).
type vnJSON struct {
	JSONVersion string `json:"jsonversion"`
	Interfaces  []struct {
		Name    string `json:"name"`
		Traffic struct {
			Month []vnRow `json:"month"`
			Top   []vnRow `json:"top"`
		} `json:"traffic"`
	} `json:"interfaces"`
}

type vnRow struct {
	Date struct {
		Year  int `json:"year"`
		Month int `json:"month"`
		Day   int `json:"day"`
	} `json:"date"`
	Rx uint64 `json:"rx"`
	Tx uint64 `json:"tx"`
}

func (r vnRow) period() period {
	d := max(r.Date.Day, 1)
	return period{time.Date(r.Date.Year, time.Month(r.Date.Month), d, 0, 0, 0, 0, time.UTC).Unix(), r.Rx, r.Tx}
}

type checkResult struct {
	Interfaces int  `json:"interfaces"`
	Months     int  `json:"months_compared"` // per interface and tool
	TopDays    int  `json:"top_days_compared"`
	OK         bool `json:"ok"`
}

// cmdCheck is the correctness gate: every interface's months and top 10
// days, as each tool's CLI reports them, equal the generator's sums.
func cmdCheck(args []string) error {
	fs := flag.NewFlagSet("check", flag.ExitOnError)
	truthPath := fs.String("truth", "", "truth.json from gen")
	nmMonths := fs.String("netmeter-months", "", "output of `netmeter report -m --json` (every interface)")
	nmTop := fs.String("netmeter-top", "", "output of `netmeter report --top --limit 10 --json`")
	vnMonths := fs.String("vnstat-months", "", "output of `vnstat --json m`")
	vnTop := fs.String("vnstat-top", "", "output of `vnstat --json t 10`")
	out := fs.String("out", "", "write the result here (JSON)")
	fs.Parse(args)
	var truth truthFile
	if err := readJSON(*truthPath, &truth); err != nil {
		return err
	}
	nmM, err := readNetmeter(*nmMonths, "month")
	if err != nil {
		return err
	}
	nmT, err := readNetmeter(*nmTop, "top")
	if err != nil {
		return err
	}
	vnM, err := readVnStat(*vnMonths, false)
	if err != nil {
		return err
	}
	vnT, err := readVnStat(*vnTop, true)
	if err != nil {
		return err
	}
	var errs []error
	res := checkResult{Interfaces: len(truth.Interfaces)}
	for _, it := range truth.Interfaces {
		res.Months, res.TopDays = len(it.Months), len(it.Top)
		for _, c := range []struct {
			what      string
			got, want []period
			sortAsTop bool
		}{
			{"netmeter months", nmM[it.Name], it.Months, false},
			{"vnStat months", vnM[it.Name], it.Months, false},
			{"netmeter top days", nmT[it.Name], it.Top, false}, // netmeter lists them busiest first
			{"vnStat top days", vnT[it.Name], it.Top, true},
		} {
			got := c.got
			if c.sortAsTop {
				got = slices.Clone(got)
				sortTop(got)
			}
			if !slices.Equal(got, c.want) {
				errs = append(errs, fmt.Errorf("%s %s: got %v, want %v", it.Name, c.what, got, c.want))
			}
		}
	}
	res.OK = len(errs) == 0
	if *out != "" {
		if err := writeJSON(*out, res); err != nil {
			return err
		}
	}
	if len(errs) > 5 {
		errs = append(errs[:5], fmt.Errorf("… and %d more", len(errs)-5))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "gate: netmeter and vnStat report the generator's sums for %d interfaces × %d months and their top %d days\n",
		res.Interfaces, res.Months, res.TopDays)
	return nil
}

func readNetmeter(path, res string) (map[string][]period, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m := map[string][]period{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		var r nmReport
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if r.Resolution != res || len(r.Entity.Names) != 1 {
			return nil, fmt.Errorf("%s: resolution %q of %v, want %s of one interface", path, r.Resolution, r.Entity.Names, res)
		}
		ps := []period{}
		for _, row := range r.Rows {
			ps = append(ps, period{row.Start.Unix(), row.Rx, row.Tx})
		}
		m[r.Entity.Names[0]] = ps
	}
	return m, sc.Err()
}

func readVnStat(path string, top bool) (map[string][]period, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var v vnJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	m := map[string][]period{}
	for _, i := range v.Interfaces {
		rows := i.Traffic.Month
		if top {
			rows = i.Traffic.Top
		}
		ps := []period{}
		for _, r := range rows {
			ps = append(ps, r.period())
		}
		m[i.Name] = ps
	}
	return m, nil
}
