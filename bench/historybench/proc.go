package main

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type procCmd struct {
	Label string   `json:"label"`
	Argv  []string `json:"argv"`
}

type procResult struct {
	procCmd
	Wall    stat    `json:"wall"`
	CPU     stat    `json:"cpu"` // user + system
	MaxRSSK float64 `json:"max_rss_kib_median"`
}

// cmdProc runs every command of a file (one a line: label, then argv, all
// separated by tabs) as a process, round after round with the order rotated
// each round, after warm-up rounds that are not counted, and records each
// run's wall time (start to exit), CPU time and peak memory. Output is
// discarded through a pipe, as a consumer reading it would.
func cmdProc(args []string) error {
	fs := flag.NewFlagSet("proc", flag.ExitOnError)
	file := fs.String("cmds", "", "commands file: label<TAB>argv0<TAB>argv1…")
	rounds := fs.Int("rounds", 15, "counted rounds")
	warmup := fs.Int("warmup", 2, "rounds run first and not counted")
	csvPath := fs.String("csv", "", "append every run here (CSV)")
	out := fs.String("out", "", "write the medians here (JSON)")
	fs.Parse(args)
	cmds, err := readCmds(*file)
	if err != nil {
		return err
	}
	var w *csv.Writer
	if *csvPath != "" {
		f, err := os.Create(*csvPath)
		if err != nil {
			return err
		}
		defer f.Close()
		w = csv.NewWriter(f)
		defer w.Flush()
		w.Write([]string{"round", "label", "wall_ms", "user_ms", "sys_ms", "max_rss_kib"})
	}
	wall := make([][]time.Duration, len(cmds))
	cpu := make([][]time.Duration, len(cmds))
	rss := make([][]float64, len(cmds))
	for r := -*warmup; r < *rounds; r++ {
		for k := range cmds {
			i := (k + max(r, 0)) % len(cmds)
			d, user, sys, maxrss, err := runOnce(cmds[i].Argv)
			if err != nil {
				return fmt.Errorf("%s: %w", cmds[i].Label, err)
			}
			if r < 0 {
				continue
			}
			wall[i] = append(wall[i], d)
			cpu[i] = append(cpu[i], user+sys)
			rss[i] = append(rss[i], float64(maxrss))
			if w != nil {
				w.Write([]string{strconv.Itoa(r), cmds[i].Label, ms(d), ms(user), ms(sys), strconv.FormatInt(maxrss, 10)})
			}
		}
	}
	var res []procResult
	for i, c := range cmds {
		slices.Sort(rss[i])
		p := procResult{procCmd: c, Wall: summarise(wall[i]), CPU: summarise(cpu[i]), MaxRSSK: rss[i][len(rss[i])/2]}
		fmt.Fprintf(os.Stderr, "  %-20s wall median %7.2f ms (min %6.2f)  cpu %6.2f ms  rss %6.0f KiB\n",
			c.Label, p.Wall.Median, p.Wall.Min, p.CPU.Median, p.MaxRSSK)
		res = append(res, p)
	}
	if *out != "" {
		return writeJSON(*out, res)
	}
	return nil
}

func ms(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 3, 64) }

func readCmds(path string) ([]procCmd, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var cmds []procCmd
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\t")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Split(line, "\t")
		if len(fields) < 2 {
			return nil, fmt.Errorf("%s: %q: want label<TAB>argv…", path, line)
		}
		cmds = append(cmds, procCmd{fields[0], fields[1:]})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(cmds) == 0 {
		return nil, errors.New(path + ": no commands")
	}
	return cmds, nil
}

func runOnce(argv []string) (wall, user, sys time.Duration, maxrssKiB int64, err error) {
	c := exec.Command(argv[0], argv[1:]...)
	c.Stdout = io.Discard
	var stderr bytes.Buffer
	c.Stderr = &stderr
	start := time.Now()
	if err := c.Start(); err != nil {
		return 0, 0, 0, 0, err
	}
	err = c.Wait()
	wall = time.Since(start)
	if err != nil {
		return 0, 0, 0, 0, fmt.Errorf("%v: %w: %s", argv, err, bytes.TrimSpace(stderr.Bytes()))
	}
	// A floor, not a measure, for small programs: Linux carries the old
	// address space's peak (this process's, shared until exec) into the
	// child's maxrss at exec.
	if ru, ok := c.ProcessState.SysUsage().(*syscall.Rusage); ok {
		maxrssKiB = ru.Maxrss
	}
	return wall, c.ProcessState.UserTime(), c.ProcessState.SystemTime(), maxrssKiB, nil
}
