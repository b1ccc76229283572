// Command historybench is the Go half of bench/history.sh: it writes one
// year of the same deterministic 5-minute traffic of 50 interfaces into a
// netmeter history store and into a vnStat 2.x database, each as its own
// default retention leaves it, checks that both tools report the generator's
// sums, and times queries in-process and as processes.
//
// Subcommands (each writes JSON for the next; `historybench CMD -h` lists
// the flags):
//
//	gen      build both databases and truth.json (the generator's sums)
//	check    compare `netmeter report --json` and `vnstat --json` with truth.json
//	inproc   time netmeter's month report and top days in this process, and
//	         vnStat's own SQL on its database through the same driver
//	proc     time commands as processes, interleaved, median of several rounds
//	summary  merge the JSON files, print the table, write summary.json
//	once     (for inproc) one cold open+query+close, timed inside a fresh process
//	noop     nothing: the start-up of a Go binary linking the history store
package main

import (
	"fmt"
	"os"
)

func main() {
	cmds := map[string]func([]string) error{
		"gen":     cmdGen,
		"check":   cmdCheck,
		"inproc":  cmdInproc,
		"proc":    cmdProc,
		"summary": cmdSummary,
		"once":    cmdOnce,
		"noop":    cmdNoop,
	}
	if len(os.Args) < 2 || cmds[os.Args[1]] == nil {
		fmt.Fprintln(os.Stderr, "usage: historybench gen|check|inproc|proc|summary|once|noop [flags]")
		os.Exit(2)
	}
	if err := cmds[os.Args[1]](os.Args[2:]); err != nil {
		fmt.Fprintf(os.Stderr, "historybench %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}
