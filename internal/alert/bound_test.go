package alert

import (
	"fmt"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/netmeter/netmeter/internal/snapshot"
)

// TestScanBounded: after the warm-up, one program listens on 100k sockets
// (every TCP port, some twice on other addresses) and connects to 100k
// distinct /24 subnets; then 100k programs each listen on a port and talk
// to a subnet, and report 100k KiB/s of traffic. The learned state stays at
// the bounds, each rule fires at most bound + 1 alerts (the items learned
// plus one overflow alert), a second scan adds nothing, and the heap after
// the scans is a few MB, not the scans' size.
func TestScanBounded(t *testing.T) {
	const step = time.Minute
	rules := []Rule{
		{Name: "listen", Kind: KindNewListener, Warmup: 2 * time.Minute, MaxPerProgram: 64, MaxPrograms: 1024},
		{Name: "remote", Kind: KindNewRemote, Warmup: 2 * time.Minute, MaxPerProgram: 256, MaxPrograms: 1024},
		{Name: "surge", Kind: KindSurge, MaxEntities: 4096},
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	w := newWorld(t, step, rules...)
	base := &snapshot.Snapshot{Connections: []snapshot.Connection{listener(1, "sshd", 22)}}
	for range 3 {
		w.tick(base)
	}
	scan := func(seed int) {
		const n = 100_000
		s := &snapshot.Snapshot{Connections: make([]snapshot.Connection, 0, 2*n)}
		for i := range n {
			l := listener(666, "scanner", uint16(i%65535+1))
			l.Local.Addr = fmt.Sprintf("192.0.2.%d", i/65535+1)
			s.Connections = append(s.Connections, l)
			a := netip.AddrFrom4([4]byte{byte(11 + seed + i>>16), byte(i >> 8), byte(i), 1})
			s.Connections = append(s.Connections, conn(666, "scanner", a.String(), uint16(i%65535+1)))
		}
		w.tick(s)
		s = &snapshot.Snapshot{Connections: make([]snapshot.Connection, 0, 2*n), Processes: make([]snapshot.Process, 0, n)}
		for i := range n {
			comm := fmt.Sprintf("p%d-%d", seed, i)
			s.Connections = append(s.Connections, listener(1000+i, comm, uint16(i%65535+1)),
				conn(1000+i, comm, netip.AddrFrom4([4]byte{byte(100 + seed), byte(i >> 16), byte(i >> 8), byte(i)}).String(), 443))
			s.Processes = append(s.Processes, snapshot.Process{PID: 1000 + i, Comm: comm, Delta: snapshot.Traffic{RxBytes: 60 * kib}})
		}
		w.tick(s)
	}
	scan(0)
	stats := func() map[string]RuleStats {
		m := map[string]RuleStats{}
		for _, s := range w.e.Stats() {
			m[s.Name] = s
		}
		return m
	}
	first := stats()
	scan(1)
	st := stats()
	bounds := map[string]int{"listen": 1024*1 + 64, "remote": 1024*1 + 256, "surge": 4096}
	for name, max := range bounds {
		s := st[name]
		if s.Tracked > max || s.Tracked != first[name].Tracked {
			t.Errorf("%s tracks %d after the first scan, %d after the second; bound %d", name, first[name].Tracked, s.Tracked, max)
		}
		if s.Refused < 100_000 {
			t.Errorf("%s refused only %d", name, s.Refused)
		}
		t.Logf("%s: tracked %d, refused %d, active %d", name, s.Tracked, s.Refused, s.Active)
	}
	for _, name := range []string{"listen", "remote"} {
		// Every learned item but sshd's listener (learned in the warm-up)
		// fired, plus the scanner's and the rule's overflow alerts.
		want := st[name].Tracked + 2
		if name == "listen" {
			want--
		}
		if st[name].Active != want || w.count(StatusFiring, "alertname", name) != want {
			t.Errorf("%s: %d active, %d fired; want %d", name, st[name].Active, w.count(StatusFiring, "alertname", name), want)
		}
		for _, ov := range [][]string{{"program", "scanner", "overflow", "max_per_program"}, {"overflow", "max_programs"}} {
			if w.count(StatusFiring, append([]string{"alertname", name}, ov...)...) != 1 {
				t.Errorf("%s: no single overflow alert %v", name, ov)
			}
		}
	}
	w.events = nil
	runtime.GC()
	runtime.ReadMemStats(&after)
	grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("heap after two scans of 100k listeners, 100k subnets and 100k programs: %+d KiB", grown>>10)
	if grown > 16<<20 {
		t.Errorf("the evaluator holds %d MiB after the scans", grown>>20)
	}
	runtime.KeepAlive(w.e)

	// The overflow and item alerts resolve after hold; nothing re-fires.
	for range 61 {
		w.tick(base)
	}
	if w.count(StatusFiring) != 0 || w.count(StatusResolved, "alertname", "listen") != st["listen"].Active {
		t.Errorf("after hold: %d fired, %d resolved", w.count(StatusFiring), w.count(StatusResolved, "alertname", "listen"))
	}
}
