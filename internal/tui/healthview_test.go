package tui

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/colorprofile"

	"github.com/netmeter/netmeter/internal/health"
	"github.com/netmeter/netmeter/internal/snapshot"
)

// fakeAnalysis stands in for a *health.Analyzer: a fixed report and fixed
// flows, ordered by TopFlows' keys like the analyzer orders them. It
// records the calls in a log shared by its copies.
type fakeAnalysis struct {
	report health.Report
	flows  []health.Flow
	err    error
	log    *[]string
}

func (f fakeAnalysis) Health() health.Report {
	if f.log != nil {
		*f.log = append(*f.log, "health")
	}
	return f.report
}

func (f fakeAnalysis) TopFlows(window time.Duration, by string, limit int) ([]health.Flow, error) {
	if f.log != nil {
		*f.log = append(*f.log, "flows "+window.String()+" "+by)
	}
	if f.err != nil {
		return nil, f.err
	}
	orders := map[string]func(a, b health.Flow) int{
		"bytes":   func(a, b health.Flow) int { return cmp.Compare(b.TxBytes+b.RxBytes, a.TxBytes+a.RxBytes) },
		"rate":    func(a, b health.Flow) int { return cmp.Compare(b.LastRate, a.LastRate) },
		"retrans": func(a, b health.Flow) int { return cmp.Compare(b.RetransSegs, a.RetransSegs) },
		"rtt":     func(a, b health.Flow) int { return cmp.Compare(b.RTTMeanUS, a.RTTMeanUS) },
		"drops":   func(a, b health.Flow) int { return cmp.Compare(b.Drops, a.Drops) },
	}
	out := slices.Clone(f.flows)
	slices.SortStableFunc(out, orders[by])
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func status(name string, st health.State, why string, ev health.Evidence) health.Status {
	ev.WindowIntervals = 5
	return health.Status{Name: name, State: st, Explanation: why, Evidence: ev}
}

// healthFake is a host with two remote groups (one degraded by the
// network), loopback still learning, a monitor watching a threshold, and
// four flows.
func healthFake() fakeAnalysis {
	return fakeAnalysis{
		report: health.Report{
			Time: t0,
			Groups: []health.Status{
				status("10.1.1.0/24", health.StateNetwork,
					"RTT 56.0 ms is 2.8× its baseline 20.0 ms; 1 of 2 active groups not degraded; no receiver is full",
					health.Evidence{RTTUS: 56000, RTTBaselineUS: 20000, RTTSamples: 100, SegsOut: 1000, RetransSegs: 2,
						RetransPercent: 0.2, RetransBaselinePercent: 0.1, Signals: []string{"rtt_high"}}),
				status("db", health.StateHealthy,
					"RTT 1.2 ms (baseline 1.1 ms), 0.10% retransmitted (baseline 0.12%), 0 RTOs in the last 5 intervals",
					health.Evidence{RTTUS: 1200, RTTBaselineUS: 1100, RTTSamples: 400, SegsOut: 5000, RetransSegs: 5,
						RetransPercent: 0.1, RetransBaselinePercent: 0.12}),
				status("loopback", health.StateUnknown, "learning the baseline: 7 of 20 intervals with TCP traffic",
					health.Evidence{RTTUS: 40, RTTSamples: 30}),
			},
			Monitors: []health.Status{
				status("web-to-db", health.StateHealthy,
					"healthy, watching (1 of 2 degraded intervals): 3 retransmission timeouts (baseline 0.2)",
					health.Evidence{RTTUS: 1300, RTTBaselineUS: 1100, SegsOut: 800, RTOs: 3, Signals: []string{"rto_high"}}),
			},
		},
		flows: []health.Flow{
			{ID: "process:curl->group:10.1.1.0/24", Local: health.Entity{ID: "process:curl", Kind: "process", Name: "curl"},
				Group: "10.1.1.0/24", Health: health.StateNetwork, TxBytes: 50 << 20, RxBytes: 2 << 20,
				TxRate: 5 << 20, RxRate: 200 << 10, LastRate: 4 << 20, Connections: 1,
				SegsOut: 1000, RetransSegs: 2, RetransPercent: 0.2, RTTMeanUS: 56000},
			{ID: "container:web->group:db", Local: health.Entity{ID: "container:web", Kind: "container", Name: "web"},
				Group: "db", Health: health.StateHealthy, TxBytes: 20 << 20, RxBytes: 10 << 20,
				TxRate: 2 << 20, RxRate: 1 << 20, LastRate: 9 << 20, Connections: 12,
				SegsOut: 1000, RetransSegs: 25, RetransPercent: 2.5, RTOs: 3, RTTMeanUS: 1200},
			{ID: "process:nginx->group:loopback", Local: health.Entity{ID: "process:nginx", Kind: "process", Name: "nginx"},
				Group: "loopback", Health: health.StateUnknown, TxBytes: 3 << 20, RxBytes: 1 << 20,
				TxRate: 300 << 10, RxRate: 100 << 10, LastRate: 400 << 10, Connections: 4,
				SegsOut: 300, RTTMeanUS: 40, Drops: 7, SocketDrops: 7},
			{ID: "process:dnsd->group:unconnected", Local: health.Entity{ID: "process:dnsd", Kind: "process", Name: "dnsd"},
				Group: "unconnected", TxBytes: 4096, RxBytes: 8192, TxRate: 409.6, RxRate: 819.2, Drops: 3},
		},
	}
}

// healthSnap is flowSnap with kernel drops: a firewall on eth0, a full
// receive buffer of dnsd's socket (two entries, one place), and a reason
// that did not grow in the last interval.
func healthSnap(i int) snapshot.Snapshot {
	s := flowSnap(i)
	s.Drops = []snapshot.Drop{
		{Reason: "NETFILTER_DROP", Interface: "eth0", Ifindex: 2, Family: 4, Proto: "tcp", Packets: 120, DeltaPackets: 12},
		{Reason: "SOCKET_RCVBUFF", Family: 4, Proto: "udp", Cookie: 9, PID: 812, Comm: "dnsd", Packets: 30, DeltaPackets: 2},
		{Reason: "SOCKET_RCVBUFF", Family: 4, Proto: "udp", Cookie: 10, PID: 812, Comm: "dnsd", Packets: 10, DeltaPackets: 1},
		{Reason: "NO_SOCKET", Family: 4, Proto: "udp", Packets: 500},
	}
	return s
}

func healthSeries(n int) []snapshot.Snapshot {
	out := make([]snapshot.Snapshot, n)
	for i := range out {
		out[i] = healthSnap(i)
	}
	return out
}

func healthModel(a Analysis) Model {
	return feed(New(nil, Options{View: ViewHealth, Analysis: a}), healthSeries(3)...)
}

// manyGroups is healthFake with 20 more healthy groups before the
// degraded one, so that the statuses do not fit in 24 lines.
func manyGroups() fakeAnalysis {
	f := healthFake()
	var groups []health.Status
	for i := range 20 {
		groups = append(groups, status(fmt.Sprintf("10.0.%d.0/24", i), health.StateHealthy, "RTT 1.0 ms (baseline 1.0 ms)",
			health.Evidence{RTTUS: 1000, RTTBaselineUS: 1000}))
	}
	f.report.Groups = append(groups, f.report.Groups...)
	return f
}

func TestHealthViewGolden(t *testing.T) {
	empty := fakeAnalysis{report: health.Report{Time: t0, Groups: []health.Status{}, Monitors: []health.Status{}}}
	noDrops := healthSnap(3)
	noDrops.Drops = nil
	tests := []struct {
		name string
		w, h int
		m    func() Model
	}{
		{"health", 80, 24, func() Model { return healthModel(healthFake()) }},
		{"health", 132, 30, func() Model { return healthModel(healthFake()) }},
		{"health_narrow", 40, 12, func() Model { return healthModel(healthFake()) }},
		{"health_bits_sort_rtt", 80, 24, func() Model { return keys(healthModel(healthFake()), "u", "s", "s", "s") }},
		{"health_sort_retrans", 132, 30, func() Model { return keys(healthModel(healthFake()), "s", "s") }},
		{"health_filter", 80, 24, func() Model { return keys(healthModel(healthFake()), "/", "w", "e", "b", "enter") }},
		{"health_filter_none", 80, 24, func() Model { return keys(healthModel(healthFake()), "/", "z", "z") }},
		{"health_many_groups", 80, 24, func() Model { return healthModel(manyGroups()) }},
		{"health_empty", 80, 24, func() Model { return feed(healthModel(empty), noDrops) }},
		{"health_no_engine", 80, 24, func() Model {
			return feed(New(nil, Options{View: ViewHealth}), series(3)...)
		}},
		{"health_help", 80, 24, func() Model { return keys(healthModel(healthFake()), "?") }},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s_%dx%d", tt.name, tt.w, tt.h), func(t *testing.T) {
			m := sized(tt.m(), tt.w, tt.h)
			got := render(t, m, colorprofile.NoTTY)
			checkFits(t, got, tt.w, tt.h)
			if strings.Contains(got, "\x1b") {
				t.Error("NoTTY view contains escape sequences")
			}
			golden(t, fmt.Sprintf("%s_%dx%d.golden", tt.name, tt.w, tt.h), got)
		})
	}
}

func TestHealthContent(t *testing.T) {
	v := plainView(t, healthModel(healthFake()))
	for _, want := range []string{
		// the statuses: kind, name, state, RTT and retransmissions against
		// the baseline, RTOs and the explanation
		"group    10.1.1.0/24  degraded: network  56.0ms (20.0ms)   0.20% (0.10%)    0",
		"RTT 56.0 ms is 2.8× its baseline 20.0 ms; 1 of 2 active groups not degraded…",
		"db           healthy", "loopback     unknown", "learning the baseline: 7 of 20 intervals",
		"monitor  web-to-db    healthy", "healthy, watching (1 of 2 degraded intervals)",
		// the flows and the drops
		"top flows · last 10s · by bytes", "process:curl  10.1.1.0/24    5.0 MiB/s 200.0 KiB/s 56.0ms   0.20%",
		"drops  NETFILTER_DROP 12/s (eth0) · SOCKET_RCVBUFF 3/s (udp, pid 812 dnsd)",
		"3 groups, 1 monitor, 1 degraded", "sort bytes", "[5 health]",
	} {
		if !strings.Contains(v, want) {
			t.Errorf("health view lacks %q:\n%s", want, v)
		}
	}
	if strings.Contains(v, "NO_SOCKET") {
		t.Error("a drop reason that did not grow in the last interval is shown")
	}
}

// flowIDs are the local ids of the listed flows, in order.
func flowIDs(m Model) string {
	var out []string
	for _, r := range m.hflowRows {
		out = append(out, r.flow.Local.ID)
	}
	return strings.Join(out, ",")
}

func TestHealthSortCycles(t *testing.T) {
	var log []string
	fake := healthFake()
	fake.log = &log
	m := sized(healthModel(fake), 80, 24)
	want := []struct{ by, order string }{
		{"bytes", "process:curl,container:web,process:nginx,process:dnsd"},
		{"rate", "container:web,process:curl,process:nginx,process:dnsd"},
		{"retrans", "container:web,process:curl,process:nginx,process:dnsd"},
		{"rtt", "process:curl,container:web,process:nginx,process:dnsd"},
		{"drops", "process:nginx,process:dnsd,process:curl,container:web"},
		{"bytes", "process:curl,container:web,process:nginx,process:dnsd"},
	}
	for i, w := range want {
		if i > 0 {
			log = nil
			m = keys(m, "s")
			if len(log) != 1 || log[0] != "flows 10s "+w.by {
				t.Errorf("s → %s: Analysis calls %q, want one TopFlows(10s, %q)", w.by, log, w.by)
			}
		}
		if m.hsort.String() != w.by || flowIDs(m) != w.order {
			t.Errorf("sort %s: flows %s, want %s", m.hsort, flowIDs(m), w.order)
		}
		v := plainView(t, m)
		if !strings.Contains(v, "sort "+w.by) || !strings.Contains(v, "· by "+w.by+" ") {
			t.Errorf("sort %s not in the header and title:\n%s", w.by, v)
		}
		// The first listed flow is the first row under the column header.
		first := strings.SplitN(w.order, ",", 2)[0]
		if !strings.Contains(v, "> "+first+" ") {
			t.Errorf("sort %s: %s is not the first row:\n%s", w.by, first, v)
		}
	}
	// The sort key's column stays at 80 columns.
	for by, col := range map[string]string{"retrans": "RESENT", "rate": "LAST/s", "drops": "DROPS", "rtt": "RTT"} {
		m := sized(healthModel(healthFake()), 80, 24)
		for m.hsort.String() != by {
			m = keys(m, "s")
		}
		if v := plainView(t, m); !strings.Contains(v, col) {
			t.Errorf("sorted by %s, column %s is not shown:\n%s", by, col, v)
		}
	}
	// s in the other views leaves the health order alone, and the other way round.
	m = keys(healthModel(healthFake()), "2", "s", "5")
	if m.hsort != healthByBytes || m.fsort != FlowByRx {
		t.Errorf("s in processes: hsort %v fsort %v", m.hsort, m.fsort)
	}
}

func TestHealthReadsAnalysisOnSnapshots(t *testing.T) {
	var log []string
	fake := healthFake()
	fake.log = &log
	m := New(nil, Options{View: ViewHealth, Analysis: fake})
	m = sized(m, 80, 24)
	_ = m.View()
	m = keys(m, "s") // before the first snapshot: nothing to read yet
	if len(log) != 0 {
		t.Fatalf("Analysis read before any snapshot: %q", log)
	}
	m = keys(m, "s", "s", "s", "s") // back to bytes
	m = feed(m, healthSnap(0))
	if got := strings.Join(log, "|"); got != "health|flows 10s bytes" {
		t.Errorf("one snapshot: calls %q, want the report and the flows once", got)
	}
	log = nil
	m = keys(m, "j", "k", "u", "/", "c", "enter", "esc", "1", "5", "?", "?")
	_ = render(t, m, colorprofile.ANSI)
	_ = m.View()
	if len(log) != 0 {
		t.Errorf("keys or View read Analysis: %q", log)
	}
	// The other views read it too: switching to 5 shows the latest.
	m = keys(m, "2")
	_ = feed(m, healthSnap(1))
	if got := strings.Join(log, "|"); got != "health|flows 10s bytes" {
		t.Errorf("snapshot in another view: calls %q", got)
	}
}

func TestHealthFilter(t *testing.T) {
	typed := func(text string) []string {
		ks := []string{"/"}
		for _, r := range text {
			ks = append(ks, string(r))
		}
		return ks
	}
	tests := []struct{ filter, want string }{
		{"web", "container:web"},                                // local id
		{"PROCESS:", "process:curl,process:nginx,process:dnsd"}, // case-insensitive
		{"10.1.1", "process:curl"},                              // group
		{"unconn", "process:dnsd"},                              // group
		{"loop", "process:nginx"},                               // group
		{"db", "container:web"},                                 // group, not the "dnsd" local id
		{"nothing", ""},
	}
	for _, tt := range tests {
		m := keys(sized(healthModel(healthFake()), 80, 24), typed(tt.filter)...)
		if got := flowIDs(m); got != tt.want {
			t.Errorf("/%s: flows %q, want %q", tt.filter, got, tt.want)
		}
		v := plainView(t, m)
		// The statuses are not filtered.
		if !strings.Contains(v, "10.1.1.0/24  degraded: network") || !strings.Contains(v, "web-to-db") {
			t.Errorf("/%s hid the statuses:\n%s", tt.filter, v)
		}
		if tt.want == "" && !strings.Contains(v, "no flows match /"+tt.filter) {
			t.Errorf("/%s: no message for an empty list:\n%s", tt.filter, v)
		}
	}
	// The filter survives a snapshot and a re-sort; esc clears it.
	m := keys(sized(healthModel(healthFake()), 80, 24), typed("process")...)
	m = keys(feed(m, healthSnap(5)), "enter", "s")
	if got := flowIDs(m); got != "process:curl,process:nginx,process:dnsd" {
		t.Errorf("filter after a snapshot and s: %q", got)
	}
	if m = keys(m, "esc"); len(m.hflowRows) != 4 {
		t.Errorf("esc: %d flows, want 4", len(m.hflowRows))
	}
}

func TestHealthUnits(t *testing.T) {
	m := sized(healthModel(healthFake()), 80, 24)
	v := plainView(t, m)
	if !strings.Contains(v, "5.0 MiB/s") || !strings.Contains(v, "bytes/s") || strings.Contains(v, "bit/s") {
		t.Errorf("bytes: \n%s", v)
	}
	v = plainView(t, keys(m, "u"))
	// 5 MiB/s is 41.9 Mbit/s; 409.6 B/s is 3.3 kbit/s.
	for _, want := range []string{"41.9 Mbit/s", "3.3 kbit/s", "bits/s"} {
		if !strings.Contains(v, want) {
			t.Errorf("bits: lacks %q\n%s", want, v)
		}
	}
	if strings.Contains(v, "MiB/s") {
		t.Errorf("bits: still bytes\n%s", v)
	}
}

func TestHealthNarrow(t *testing.T) {
	for _, a := range []fakeAnalysis{healthFake(), manyGroups()} {
		m := healthModel(a)
		for _, ks := range [][]string{nil, {"u"}, {"s"}, {"s", "s"}, {"s", "s", "s", "s"}, {"G"}} {
			for _, d := range [][2]int{{80, 24}, {80, 12}, {60, 20}, {40, 12}} {
				v := render(t, sized(keys(m, ks...), d[0], d[1]), colorprofile.NoTTY)
				checkFits(t, v, d[0], d[1])
				lines := strings.Split(v, "\n")
				if len(lines) != d[1] {
					t.Errorf("%v at %dx%d: %d lines", ks, d[0], d[1], len(lines))
				}
				if !strings.Contains(lines[len(lines)-1], "[5") {
					t.Errorf("%v at %dx%d: footer lost: %q", ks, d[0], d[1], lines[len(lines)-1])
				}
				// The degraded group is shown whatever else is left out.
				if d[1] >= 12 && !strings.Contains(v, "degraded: network") {
					t.Errorf("%v at %dx%d: the degraded group is not shown:\n%s", ks, d[0], d[1], v)
				}
				// The selected flow is on the screen.
				if !strings.Contains(v, "> ") {
					t.Errorf("%v at %dx%d: no selected flow:\n%s", ks, d[0], d[1], v)
				}
			}
		}
	}
	// At 80 columns the statuses keep their columns, and the explanation
	// is cut to the width.
	v := plainView(t, healthModel(healthFake()))
	for _, col := range []string{"KIND", "NAME", "STATE", "RTT (BASE)", "RETRANS (BASE)", "RTO", "LOCAL", "REMOTE GROUP", "TX/s", "RX/s", "RETRANS", "DROPS"} {
		if !strings.Contains(v, col) {
			t.Errorf("80 columns: %s missing\n%s", col, v)
		}
	}
	if !strings.Contains(v, "no receiver is full") && !strings.Contains(v, "not degraded…") {
		t.Errorf("80 columns: explanation not cut with …:\n%s", v)
	}
}

func TestHealthScrollsFlows(t *testing.T) {
	f := healthFake()
	f.flows = nil
	for i := range 40 {
		f.flows = append(f.flows, health.Flow{ID: fmt.Sprintf("process:p%02d->group:db", i),
			Local: health.Entity{ID: fmt.Sprintf("process:p%02d", i)}, Group: "db", TxBytes: uint64(1000 - i)})
	}
	m := sized(healthModel(f), 80, 24)
	rows := m.flowRows(ViewHealth)
	if rows < minHealthFlows {
		t.Fatalf("%d flow rows at 80x24", rows)
	}
	for i := range 39 {
		m = keys(m, "j")
		v := plainView(t, m)
		if want := fmt.Sprintf("> process:p%02d ", i+1); !strings.Contains(v, want) {
			t.Fatalf("after %d× j: %q not on screen:\n%s", i+1, want, v)
		}
		checkFits(t, v, 80, 24)
	}
	// The selection follows the flow across a snapshot that reorders.
	m = keys(m, "g", "j", "j")
	f.flows[2].TxBytes = 1
	m.opts.Analysis = f
	m = feed(m, healthSnap(9))
	if sel := m.hflowRows[m.lists[ViewHealth].sel].flow.Local.ID; sel != "process:p02" {
		t.Errorf("selection after a reorder: %s, want process:p02", sel)
	}
	// MaxRows caps the list; the header counts the rest.
	m = sized(feed(New(nil, Options{View: ViewHealth, Analysis: f, MaxRows: 10}), healthSnap(0)), 80, 24)
	if len(m.hflowRows) != 10 || m.hflowHidden != 30 || !strings.Contains(plainView(t, m), "+30 flows not shown") {
		t.Errorf("MaxRows 10: %d rows, %d hidden:\n%s", len(m.hflowRows), m.hflowHidden, plainView(t, m))
	}
}

func TestHealthEngineOff(t *testing.T) {
	for _, snaps := range [][]snapshot.Snapshot{series(3), healthSeries(3)} {
		m := feed(New(nil, Options{View: ViewHealth}), snaps...)
		m = keys(m, "s", "j", "/", "x", "enter")
		v := plainView(t, m)
		if !strings.Contains(v, "no health: the eBPF engine is not running") {
			t.Errorf("engine off:\n%s", v)
		}
		if strings.Contains(v, "LOCAL") || strings.Contains(v, "KIND") {
			t.Errorf("engine off shows an empty table:\n%s", v)
		}
	}
}

func TestHealthFlowsError(t *testing.T) {
	f := healthFake()
	f.err = errors.New("top flows by \"x\": unknown key")
	v := plainView(t, healthModel(f))
	if !strings.Contains(v, `top flows by "x": unknown key`) || !strings.Contains(v, "10.1.1.0/24") {
		t.Errorf("a TopFlows error is not shown in place of the flows:\n%s", v)
	}
}

// stylePrefix is the escape sequence st starts "X" with in the ANSI profile.
func stylePrefix(t *testing.T, st lipgloss.Style) string {
	t.Helper()
	var buf bytes.Buffer
	w := &colorprofile.Writer{Forward: &buf, Profile: colorprofile.ANSI}
	w.WriteString(st.Render("X"))
	p, _, ok := strings.Cut(buf.String(), "X")
	if !ok || p == "" {
		t.Fatalf("style renders no escape sequence: %q", buf.String())
	}
	return p
}

func TestHealthStateColours(t *testing.T) {
	v := render(t, sized(healthModel(healthFake()), 132, 30), colorprofile.ANSI)
	for _, tt := range []struct {
		text  string
		style lipgloss.Style
	}{
		{"degraded: network", styleBad}, // degraded now
		{"healthy", styleGood},          // db
		{"unknown", styleHelp},          // loopback, still learning
		{"healthy", styleWarn},          // web-to-db: a threshold crossed, not confirmed yet
	} {
		if !strings.Contains(v, stylePrefix(t, tt.style)+tt.text) {
			t.Errorf("%q is not drawn in its colour:\n%q", tt.text, v)
		}
	}
	// A degraded status whose latest interval was healthy is recovering.
	s := health.Status{State: health.StateRemote}
	if statusStyle(&s).GetForeground() != styleWarn.GetForeground() {
		t.Error("a recovering status is not yellow")
	}
}

func TestHealthKeys(t *testing.T) {
	m := healthModel(healthFake())
	if m = keys(m, "1"); m.view != ViewInterfaces {
		t.Fatal("1 does not leave the health view")
	}
	if m = keys(m, "5"); m.view != ViewHealth {
		t.Fatal("5 does not open the health view")
	}
	// t has no column sets here; enter opens nothing.
	m2 := keys(m, "t", "enter", "tab")
	if m2.cols != m.cols || m2.cdetail || m2.detail {
		t.Errorf("t/enter in the health view changed something")
	}
	if got := New(nil, Options{View: ViewHealth}).view; got != ViewHealth {
		t.Errorf("Options.View = ViewHealth opens %v", got)
	}
	// Typed 5 is text in the filter.
	if m = keys(m, "/", "5"); m.filter != "5" || m.view != ViewHealth {
		t.Errorf("typed 5: filter %q view %v", m.filter, m.view)
	}
}

func TestHealthHostileInput(t *testing.T) {
	f := healthFake()
	f.report.Groups[0].Name = "evil\x1b[2J"
	f.report.Groups[0].Explanation = "why\x1b]0;pwned\x07 " + strings.Repeat("名", 200)
	f.flows[0].Local.ID = "process:\x1b[31mred"
	f.flows[0].Group = "g\r\n"
	f.flows[1].RxRate = math.NaN()
	s := healthSnap(0)
	s.Drops[0].Reason = "R\x1b[5m"
	s.Drops[1].Comm = "c\x07"
	for _, w := range []int{40, 80, 132} {
		m := sized(feed(New(nil, Options{View: ViewHealth, Analysis: f}), s), w, 24)
		v := render(t, m, colorprofile.NoTTY)
		checkFits(t, v, w, 24)
		if strings.ContainsAny(v, "\x1b\x07\r") || strings.Contains(v, "NaN") {
			t.Errorf("at %d: hostile text reached the screen:\n%q", w, v)
		}
	}
}

func TestHealthTinyWindowsDoNotPanic(t *testing.T) {
	for _, a := range []fakeAnalysis{healthFake(), manyGroups()} {
		full := healthModel(a)
		for _, base := range []Model{full, keys(full, "G"), keys(full, "s", "u")} {
			for w := 0; w <= 30; w++ {
				for h := 0; h <= 14; h++ {
					v := render(t, sized(base, w, h), colorprofile.NoTTY)
					checkFits(t, v, w, h)
				}
			}
		}
	}
}

func TestHealthUpdateDoesNotMutatePreviousModel(t *testing.T) {
	f := healthFake()
	m := sized(healthModel(f), 80, 24)
	before := render(t, m, colorprofile.NoTTY)
	f.report.Groups = f.report.Groups[:1]
	m.opts.Analysis = f
	m2 := keys(feed(m, healthSeries(6)[3:]...), "j", "s", "u", "/", "p", "enter")
	_ = m2.View()
	if after := render(t, m, colorprofile.NoTTY); after != before {
		t.Errorf("previous model changed:\n--- before ---\n%s\n--- after ---\n%s", before, after)
	}
}
