package alert

import (
	"maps"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/netmeter/netmeter/internal/health"
	"github.com/netmeter/netmeter/internal/quota"
	"github.com/netmeter/netmeter/internal/snapshot"
)

// TestSurgeFiresAndResolves: 2 MiB/s for 15 minutes, then 10 MiB/s. The
// surge fires once within a window of the jump, with the numbers in the
// description, and resolves once when the earlier window has caught up.
func TestSurgeFiresAndResolves(t *testing.T) {
	const step = 10 * time.Second
	w := newWorld(t, step, Rule{Name: "surge", Kind: KindSurge})
	rate := uint64(2 * mib)
	w.run(90, func(int) *snapshot.Snapshot {
		return snapOf(step, ifc{name: "eth0", rx: rate * 10 * 3 / 4, tx: rate * 10 / 4})
	})
	if len(w.events) > 0 {
		w.noEvents("steady 2 MiB/s")
	}
	jump := w.now
	rate = 10 * mib
	var firedAt time.Time
	for range 90 {
		for _, a := range w.tick(snapOf(step, ifc{name: "eth0", rx: rate * 10 * 3 / 4, tx: rate * 10 / 4})) {
			if a.Status == StatusFiring {
				firedAt = w.now
			}
		}
	}
	if got := w.count(StatusFiring); got != 1 {
		t.Fatalf("%d firing events, want 1: %v", got, w.events)
	}
	a, _ := w.first(StatusFiring)
	want := map[string]string{"alertname": "surge", "kind": "surge", "severity": "warning", "instance": "host1",
		"interface": "eth0", "direction": "total"}
	if !maps.Equal(a.Labels, want) {
		t.Errorf("labels %v, want %v", a.Labels, want)
	}
	if d := firedAt.Sub(jump); d <= 0 || d > 5*time.Minute {
		t.Errorf("fired %s after the jump, want within the 5m window", d)
	}
	desc := a.Annotations["description"]
	for _, s := range []string{"interface eth0", "over the last 5m0s", "from 2.0 MiB/s", "more than +200 %", "at least 1.0 MiB/s"} {
		if !strings.Contains(desc, s) {
			t.Errorf("description %q lacks %q", desc, s)
		}
	}
	if a.Annotations["summary"] == "" || a.Fingerprint != Fingerprint(a.Labels) || !a.StartsAt.Equal(firedAt) || !a.EndsAt.IsZero() {
		t.Errorf("alert %+v", a)
	}
	if got := w.count(StatusResolved); got != 1 {
		t.Fatalf("%d resolved events, want 1 (the new level became the earlier window)", got)
	}
	r, _ := w.first(StatusResolved)
	if r.Fingerprint != a.Fingerprint || !r.StartsAt.Equal(a.StartsAt) || r.EndsAt.Before(a.StartsAt) ||
		r.EndsAt.Sub(jump) > 10*time.Minute {
		t.Errorf("resolved %+v after firing %+v", r, a)
	}
	if len(w.e.Active()) != 0 {
		t.Errorf("still active: %v", w.e.Active())
	}
}

// TestSurgeQuietOnNormalTraffic: an hour of traffic that varies ±50 %
// around its level on an interface, a program and a container; an idle
// interface that starts a trickle below min_rate; a program that appears
// already busy (no earlier window to compare). Nothing fires.
func TestSurgeQuietOnNormalTraffic(t *testing.T) {
	const step = 10 * time.Second
	w := newWorld(t, step, Rule{Name: "surge", Kind: KindSurge})
	rng := rand.New(rand.NewPCG(1, 2))
	noisy := func(mean float64) uint64 { return uint64(mean * (0.5 + rng.Float64()) * step.Seconds()) }
	w.run(360, func(i int) *snapshot.Snapshot {
		trickle := uint64(0)
		if i > 100 {
			trickle = 100 * kib * 10
		}
		s := snapOf(step, ifc{name: "eth0", rx: noisy(4 * mib), tx: noisy(mib)}, ifc{name: "eth1", rx: trickle})
		s.Processes = []snapshot.Process{
			{PID: 10, Comm: "firefox", Delta: snapshot.Traffic{RxBytes: noisy(2 * mib), TxBytes: noisy(100 * kib)}},
			{PID: 11, Comm: "firefox", Delta: snapshot.Traffic{RxBytes: noisy(mib)}},
		}
		if i > 150 {
			s.Processes = append(s.Processes, snapshot.Process{PID: 12, Comm: "rsync", Delta: snapshot.Traffic{TxBytes: 50 * mib * 10}})
		}
		s.Containers = []snapshot.Container{{ID: "abc", Name: "web", Delta: snapshot.Traffic{TxBytes: noisy(3 * mib)}}}
		return s
	})
	w.noEvents("normal traffic")
	st := w.e.Stats()[0]
	if st.Tracked != 5 || st.Refused != 0 {
		t.Errorf("stats %+v, want 5 entities (eth0, eth1, firefox, rsync, web) and no refusals", st)
	}
}

// TestSurgeProgramAndContainer: programs are summed by comm, containers by
// name; each gets its own alert with its own label.
func TestSurgeProgramAndContainer(t *testing.T) {
	const step = 10 * time.Second
	w := newWorld(t, step, Rule{Name: "s", Kind: KindSurge, Entities: []string{"program", "container"}, Direction: "rx",
		GrowthPercent: 100, Window: time.Minute, MinRate: "100KiB/s"})
	level := uint64(100 * kib)
	mk := func(int) *snapshot.Snapshot {
		s := snapOf(step, ifc{name: "eth0", rx: 100 * mib}) // interfaces are not watched
		s.Processes = []snapshot.Process{
			{PID: 1, Comm: "curl", Delta: snapshot.Traffic{RxBytes: level * 10 / 2}},
			{PID: 2, Comm: "curl", Delta: snapshot.Traffic{RxBytes: level * 10 / 2}},
		}
		s.Containers = []snapshot.Container{{Name: "db", Delta: snapshot.Traffic{RxBytes: level * 10}}}
		return s
	}
	w.run(30, mk)
	w.noEvents("steady")
	level = 500 * kib
	w.run(6, mk)
	for _, l := range [][]string{{"program", "curl", "direction", "rx"}, {"container", "db"}} {
		if w.count(StatusFiring, l...) != 1 {
			t.Errorf("no single surge alert with %v: %v", l, w.events)
		}
	}
	if w.count(StatusFiring, "interface", "eth0") != 0 {
		t.Error("interfaces are not in entities")
	}
}

// TestLinkSaturation: 90 % of a 1 Gbit/s link. 110 s above, a dip, then 120 s
// above: it fires once at 2 minutes with startsAt at the start of the
// sustained period, and resolves when the rate falls. 50 % never fires, and
// neither does a link without a speed (loopback, veth) at any rate.
func TestLinkSaturation(t *testing.T) {
	const step = 10 * time.Second
	w := newWorld(t, step, Rule{Name: "sat", Kind: KindLinkSaturation})
	speed := uint32(1000)
	perTick := func(share float64) uint64 { return uint64(share * 125e6 * 10) }
	tick := func(share float64) []Alert {
		return w.tick(snapOf(step, ifc{name: "eth0", rx: perTick(share), tx: perTick(0.1), speedMbps: speed},
			ifc{name: "lo", rx: 10 * perTick(1), tx: 10 * perTick(1)}))
	}
	for range 20 {
		tick(0.5)
	}
	for range 11 {
		tick(0.9)
	}
	tick(0.7)
	w.noEvents("50 %, 110 s at 90 %, a dip")
	begin := w.now
	for i := range 12 {
		if ev := tick(0.9); (len(ev) > 0) != (i == 11) {
			t.Fatalf("tick %d (%s at 90 %%): events %v", i, w.now.Sub(begin), ev)
		}
	}
	a, _ := w.first(StatusFiring)
	if !a.StartsAt.Equal(begin) || !hasLabels(a, "interface", "eth0", "direction", "rx", "severity", "warning") {
		t.Errorf("alert %v from %s, want eth0 rx from %s", a.Labels, a.StartsAt, begin)
	}
	if d := a.Annotations["description"]; !strings.Contains(d, "now 900.0 Mbit/s of 1.0 Gbit/s (90.0 %)") {
		t.Errorf("description %q", d)
	}
	for range 30 {
		tick(0.95)
	}
	if w.count(StatusFiring) != 1 || w.count(StatusResolved) != 0 {
		t.Fatalf("dedup: %v", w.events)
	}
	tick(0.5)
	if w.count(StatusResolved, "interface", "eth0") != 1 {
		t.Fatalf("not resolved: %v", w.events)
	}
	if w.count(StatusFiring, "interface", "lo") != 0 {
		t.Error("a link without a speed fired")
	}
}

// TestInterfaceErrors: errors fire at once and resolve after a window
// without any; drops fire above 1/s averaged over the window, not at
// 0.5/s.
func TestInterfaceErrors(t *testing.T) {
	const step = 10 * time.Second
	w := newWorld(t, step, Rule{Name: "errs", Kind: KindInterfaceErrors})
	var errs, drops uint64 = 0, 5 // 0.5 drops/s
	mk := func(int) *snapshot.Snapshot {
		return snapOf(step, ifc{name: "eth0", rx: 10 * mib, tx: mib, errs: errs, drop: drops})
	}
	w.run(60, mk)
	w.noEvents("no errors, 0.5 drops/s")
	errs = 3
	ev := w.tick(mk(0))
	if len(ev) != 1 || !hasLabels(ev[0], "interface", "eth0", "counter", "errors") ||
		!strings.Contains(ev[0].Annotations["description"], "3 receive and 0 transmit errors in the last 5m0s") {
		t.Fatalf("events %v", ev)
	}
	errs = 0
	var resolved time.Time
	for range 40 {
		for _, a := range w.tick(mk(0)) {
			if a.Status == StatusResolved {
				resolved = a.EndsAt
			}
		}
	}
	if d := resolved.Sub(ev[0].StartsAt); d < 4*time.Minute+30*time.Second || d > 5*time.Minute+30*time.Second {
		t.Errorf("resolved %s after the error, want about the 5m window", d)
	}
	drops = 50 // 5/s
	w.run(60, mk)
	if w.count(StatusFiring, "counter", "drops") != 1 {
		t.Fatalf("drops at 5/s: %v", w.events)
	}
	drops = 5
	w.run(60, mk)
	if w.count(StatusResolved, "counter", "drops") != 1 || w.count(StatusFiring) != 2 {
		t.Fatalf("events %v", w.events)
	}
}

// TestQuota: warning, then exceeded (the warning resolves), nil keeps the
// last results, an empty list resolves; severities follow the status.
func TestQuota(t *testing.T) {
	w := newWorld(t, time.Second, Rule{Name: "quota", Kind: KindQuota})
	res := func(st quota.Status, used uint64) []quota.Result {
		return []quota.Result{{Name: "monthly", Entity: "interface:eth0", Direction: "total", Used: used, Limit: 100 << 30,
			Percent: float64(used) / float64(100<<30) * 100, Status: st, Threshold: 80,
			PeriodStart: t0.AddDate(0, 0, -10), PeriodEnd: t0.AddDate(0, 0, 20), Estimate: 250 << 30, EstimateValid: true}}
	}
	if ev := w.tickWith(nil, health.Report{}, res(quota.StatusOK, 10<<30)); len(ev) != 0 {
		t.Fatalf("ok fired: %v", ev)
	}
	ev := w.tickWith(nil, health.Report{}, res(quota.StatusWarning, 85<<30))
	if len(ev) != 1 || !hasLabels(ev[0], "quota", "monthly", "status", "warning", "severity", "warning", "entity", "interface:eth0") {
		t.Fatalf("warning: %v", ev)
	}
	if d := ev[0].Annotations["description"]; !strings.Contains(d, "85.0 GiB used of 100.0 GiB (85.0 %)") ||
		!strings.Contains(d, "estimate at the period's end (2026-12-13): 250.0 GiB") || !strings.Contains(d, "80 % warning") {
		t.Errorf("description %q", d)
	}
	for range 5 {
		if ev := w.tickWith(nil, health.Report{}, nil); len(ev) != 0 {
			t.Fatalf("nil quotas changed something: %v", ev)
		}
	}
	ev = w.tickWith(nil, health.Report{}, res(quota.StatusExceeded, 101<<30))
	if len(ev) != 2 || ev[0].Status != StatusResolved || !hasLabels(ev[0], "status", "warning") ||
		ev[1].Status != StatusFiring || !hasLabels(ev[1], "status", "exceeded", "severity", "critical") {
		t.Fatalf("exceeded: %v", ev)
	}
	ev = w.tickWith(nil, health.Report{}, []quota.Result{})
	if len(ev) != 1 || ev[0].Status != StatusResolved {
		t.Fatalf("new period: %v", ev)
	}
	w2 := newWorld(t, time.Second, Rule{Name: "q", Kind: KindQuota, Statuses: []string{"forecast_exceeded"}, Severity: "critical"})
	if ev := w2.tickWith(nil, health.Report{}, res(quota.StatusForecast, 30<<30)); len(ev) != 1 || !hasLabels(ev[0], "severity", "critical") {
		t.Fatalf("forecast: %v", ev)
	}
	if ev := w2.tickWith(nil, health.Report{}, res(quota.StatusWarning, 85<<30)); len(ev) != 1 || ev[0].Status != StatusResolved {
		t.Fatalf("statuses filter: %v", ev)
	}
}

// TestHealth: a group degraded in 2 reports does not fire, in 3 it does
// (startsAt = when the state was entered); intervals without a report
// neither count nor resolve; a change between kinds of degradation keeps
// the alert; healthy resolves it. A healthy group never fires.
func TestHealth(t *testing.T) {
	w := newWorld(t, time.Second, Rule{Name: "health", Kind: KindHealth})
	since := t0.Add(-time.Minute)
	rep := func(st health.State) health.Report {
		return health.Report{Time: w.now, Groups: []health.Status{
			{Name: "203.0.113.0/24", State: st, Since: since, Explanation: "RTT 40 ms, baseline 10 ms",
				Evidence: health.Evidence{Signals: []string{"rtt_high"}}},
			{Name: "loopback", State: health.StateHealthy},
		}, Monitors: []health.Status{{Name: "db", State: health.StateHealthy}}}
	}
	for range 10 {
		w.tickWith(nil, rep(health.StateHealthy), nil)
	}
	w.tickWith(nil, rep(health.StateNetwork), nil)
	w.tickWith(nil, rep(health.StateNetwork), nil)
	w.tickWith(nil, health.Report{}, nil)
	w.noEvents("degraded in 2 reports")
	ev := w.tickWith(nil, rep(health.StateThisHost), nil)
	if len(ev) != 1 || !hasLabels(ev[0], "group", "203.0.113.0/24", "severity", "warning") || !ev[0].StartsAt.Equal(since) ||
		!strings.Contains(ev[0].Annotations["description"], "degraded: this host for 3 reports: RTT 40 ms") {
		t.Fatalf("events %v", ev)
	}
	w.tickWith(nil, rep(health.StateNetwork), nil)
	w.tickWith(nil, health.Report{}, nil)
	if w.count(StatusFiring) != 1 || w.count(StatusResolved) != 0 {
		t.Fatalf("events %v", w.events)
	}
	ev = w.tickWith(nil, rep(health.StateHealthy), nil)
	if len(ev) != 1 || ev[0].Status != StatusResolved {
		t.Fatalf("recovery: %v", ev)
	}
}

// TestNewListener: listeners seen during the warm-up are learned quietly;
// after it a new port fires once (not again while it stays, nor when it
// comes back), resolves after hold; steady listeners never fire.
func TestNewListener(t *testing.T) {
	const step = 10 * time.Second
	w := newWorld(t, step, Rule{Name: "listen", Kind: KindNewListener})
	conns := []snapshot.Connection{listener(100, "sshd", 22), listener(200, "nginx", 80)}
	mk := func(int) *snapshot.Snapshot {
		return &snapshot.Snapshot{Connections: append([]snapshot.Connection(nil), conns...)}
	}
	w.run(30, mk) // 5 minutes into the 10-minute warm-up
	conns = append(conns, listener(200, "nginx", 443))
	w.run(60, mk) // past the warm-up
	w.noEvents("warm-up and steady listeners")
	conns = append(conns, listener(300, "nc", 4444), snapshot.Connection{Proto: "tcp", State: "established",
		Local: snapshot.Endpoint{Port: 5555}, Remote: snapshot.Endpoint{Addr: "192.0.2.1", Port: 1}, Owner: snapshot.Owner{PID: 300, Comm: "nc"}})
	conns[len(conns)-2].Local.Addr = "0.0.0.0"
	ev := w.tick(mk(0))
	if len(ev) != 1 || !hasLabels(ev[0], "program", "nc", "proto", "tcp", "port", "4444", "severity", "info", "kind", "new_listener") {
		t.Fatalf("events %v", ev)
	}
	if d := ev[0].Annotations["description"]; !strings.Contains(d, "nc (pid 300) listens on tcp 0.0.0.0:4444") ||
		!strings.Contains(d, "since netmeter started watching at 2026-11-23T12:00:10Z") {
		t.Errorf("description %q", d)
	}
	w.run(300, mk) // 50 minutes
	conns = conns[:3]
	w.run(60, mk)
	conns = append(conns, listener(301, "nc", 4444)) // back again: learned
	w.run(60, mk)
	if w.count(StatusFiring) != 1 || w.count(StatusResolved) != 1 {
		t.Fatalf("events %v", w.events)
	}
	r, _ := w.first(StatusResolved)
	if d := r.EndsAt.Sub(r.StartsAt); d != time.Hour {
		t.Errorf("resolved after %s, want the 1h hold", d)
	}
}

// TestNewRemote: subnets are /24 and /64; loopback, link-local, local peers
// and the ignore list are left out; each new subnet fires once.
func TestNewRemote(t *testing.T) {
	const step = time.Minute
	w := newWorld(t, step, Rule{Name: "remote", Kind: KindNewRemote, Warmup: 5 * time.Minute, Ignore: []string{"198.51.100.0/24"}})
	peer := conn(1, "postgres", "192.0.2.99", 5432)
	peer.Peer = &snapshot.Owner{PID: 2, Comm: "app"}
	conns := []snapshot.Connection{conn(1, "curl", "203.0.113.7", 443), conn(1, "curl", "2001:db8:1:2::5", 443)}
	mk := func(int) *snapshot.Snapshot {
		return &snapshot.Snapshot{Connections: append([]snapshot.Connection(nil), conns...)}
	}
	w.run(10, mk)
	conns = append(conns,
		conn(1, "curl", "203.0.113.200", 80),       // same /24
		conn(1, "curl", "2001:db8:1:2:ffff::1", 1), // same /64
		conn(1, "curl", "127.0.0.1", 8080), conn(1, "curl", "::1", 8080), conn(1, "curl", "fe80::1", 1),
		conn(1, "curl", "224.0.0.251", 5353), conn(1, "curl", "198.51.100.3", 53), peer,
		conn(2, "wget", "203.0.113.7", 443)) // same subnet, other program: new for wget
	w.run(10, mk)
	if w.count(StatusFiring) != 1 || w.count(StatusFiring, "program", "wget", "subnet", "203.0.113.0/24") != 1 {
		t.Fatalf("events %v", w.events)
	}
	conns = append(conns, conn(1, "curl", "::ffff:192.0.2.44", 443), conn(1, "curl", "2001:db8:9::1", 443))
	ev := w.tick(mk(0))
	if len(ev) != 2 || !hasLabels(ev[0], "subnet", "192.0.2.0/24") && !hasLabels(ev[1], "subnet", "192.0.2.0/24") {
		t.Fatalf("events %v", ev)
	}
	for _, a := range ev {
		if d := a.Annotations["description"]; !strings.Contains(d, "GeoIP") || !strings.Contains(d, "curl (pid 1) has a tcp connection to") {
			t.Errorf("description %q", d)
		}
	}
	if got := w.count(StatusFiring, "subnet", "2001:db8:9::/64"); got != 1 {
		t.Errorf("v6 /64: %d", got)
	}
}

// TestDedup: an Evaluator fed the same firing condition many times fires
// it once, and two rules of one kind fire their own alerts.
func TestDedup(t *testing.T) {
	w := newWorld(t, time.Second, Rule{Name: "a", Kind: KindQuota}, Rule{Name: "b", Kind: KindQuota, Labels: map[string]string{"team": "net"}})
	q := []quota.Result{{Name: "x", Status: quota.StatusExceeded}}
	for range 100 {
		w.tickWith(nil, health.Report{}, q)
	}
	if w.count(StatusFiring) != 2 || w.count(StatusFiring, "alertname", "b", "team", "net") != 1 {
		t.Fatalf("events %v", w.events)
	}
	if act := w.e.Active(); len(act) != 2 || act[0].Labels["alertname"] != "a" {
		t.Fatalf("active %v", act)
	}
	// Events handed out share nothing with the evaluator's state.
	w.events[0].Labels["alertname"] = "changed"
	if w.e.Active()[0].Labels["alertname"] != "a" {
		t.Error("an event's labels alias the evaluator's")
	}
}
