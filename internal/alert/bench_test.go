package alert

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/netmeter/netmeter/internal/health"
	"github.com/netmeter/netmeter/internal/quota"
	"github.com/netmeter/netmeter/internal/snapshot"
)

// BenchmarkObserve: every built-in rule over one interval of a busy host
// (16 interfaces, 300 processes, 20 containers, 3000 connections, 50
// listeners), after the warm-up, with nothing new to report.
func BenchmarkObserve(b *testing.B) {
	e, err := New(Defaults())
	if err != nil {
		b.Fatal(err)
	}
	s := snapOf(time.Second)
	for i := range 16 {
		s.Interfaces = append(s.Interfaces, snapOf(time.Second, ifc{name: fmt.Sprintf("eth%d", i), rx: 1 << 20, tx: 1 << 18, speedMbps: 10000}).Interfaces[0])
	}
	for i := range 300 {
		s.Processes = append(s.Processes, snapshot.Process{PID: 1000 + i, Comm: fmt.Sprintf("prog%d", i%100),
			Delta: snapshot.Traffic{RxBytes: 10000, TxBytes: 5000}})
	}
	for i := range 20 {
		s.Containers = append(s.Containers, snapshot.Container{Name: fmt.Sprintf("c%d", i), Delta: snapshot.Traffic{RxBytes: 1 << 16}})
	}
	for i := range 3000 {
		a := netip.AddrFrom4([4]byte{203, 0, byte(i % 64), byte(i)})
		s.Connections = append(s.Connections, conn(1000+i%300, fmt.Sprintf("prog%d", i%100), a.String(), 443))
	}
	for i := range 50 {
		s.Connections = append(s.Connections, listener(1000+i, fmt.Sprintf("prog%d", i), uint16(8000+i)))
	}
	rep := health.Report{Time: t0, Groups: []health.Status{{Name: "203.0.0.0/24", State: health.StateHealthy}}}
	q := []quota.Result{{Name: "m", Status: quota.StatusOK}}
	now := t0
	for range 700 { // past the 10-minute warm-up
		now = now.Add(time.Second)
		e.Observe(now, s, rep, q)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		now = now.Add(time.Second)
		if ev := e.Observe(now, s, rep, q); len(ev) > 0 {
			b.Fatalf("events %v", ev)
		}
	}
}
