// Command toptalkers is an example of the netmeter SDK: every few seconds it
// prints the processes that used the network most over the last 30 seconds.
// Run it as root: go run ./examples/toptalkers
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/signal"
	"time"

	"github.com/netmeter/netmeter"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	m, err := netmeter.New(netmeter.WithInterval(time.Second), netmeter.WithHistory(5*time.Minute))
	if err != nil {
		log.Fatal(err)
	}
	if err := m.Start(ctx); err != nil {
		log.Fatal(err) // e.g. "missing CAP_BPF …: run as root or grant …"
	}
	defer m.Stop()
	tick := time.NewTicker(3 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.Done():
			log.Fatal(m.Err())
		case <-tick.C:
			fmt.Printf("%s  top talkers, last 30 s\n", time.Now().Format(time.TimeOnly))
			for _, p := range m.ProcessRank(5, 30*time.Second) {
				fmt.Printf("  %7d %-16s sent %10d B (%8.0f B/s)  received %10d B (%8.0f B/s)\n",
					p.PID, p.Comm, p.TxBytes, p.TxRate, p.RxBytes, p.RxRate)
			}
		}
	}
}
