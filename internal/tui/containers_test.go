package tui

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/charmbracelet/colorprofile"

	"github.com/netmeter/netmeter/internal/snapshot"
)

// ctrSnap is flowSnap with three containers: a compose service with
// published ports and traffic of every peer class, a host-network agent,
// and a container whose runtime gave no metadata (its name is the short
// id, as the engine reports it).
func ctrSnap(i int) snapshot.Snapshot {
	s := flowSnap(i)
	f := float64(i + 1)
	n := uint64(i + 1)
	rate := func(cur float64) snapshot.Rate {
		return snapshot.Rate{Current: cur, Window2s: cur * 0.9, Window10s: cur * 0.5, Window40s: cur * 0.25}
	}
	tr := func(tx, rx uint64) snapshot.Traffic {
		return snapshot.Traffic{TxPayload: tx * 9 / 10, RxPayload: rx * 9 / 10, TxBytes: tx, RxBytes: rx}
	}
	s.Containers = []snapshot.Container{
		{ID: "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90", Runtime: "docker", Name: "shop-web-1",
			Image: "nginx:1.27", Account: "shop/web", ComposeService: "shop/web", NetnsInode: 4026533001,
			Labels:    map[string]string{"com.docker.compose.project": "shop", "com.docker.compose.service": "web", "tier": "frontend"},
			Processes: 3, Sockets: 17,
			Total: tr(734003200*n, 10485760*n), External: tr(629145600*n, 5242880*n), Local: tr(104857600*n, 4194304*n),
			Host: tr(0, 1048576*n), TxRate: rate(1536000 * f), RxRate: rate(20480 * f), Accepted: 1234 * n, Opened: 56,
			Ports: []snapshot.Port{
				{Proto: "tcp", Port: 443, Accepted: 34, Total: tr(34003200, 1485760)},
				{Proto: "tcp", Port: 80, Accepted: 1200 * n, Total: tr(700000000*n, 9000000*n)},
			}},
		{ID: "9d1e4c", Runtime: "podman", Name: "node-agent", Image: "quay.io/acme/agent:2.1", Account: "infra",
			Labels: map[string]string{"netmeter.account": "infra"}, HostNetwork: true, Processes: 1, Sockets: 2,
			Total: tr(52428800*n, 1048576*n), External: tr(50331648*n, 524288*n), Host: tr(2097152*n, 524288*n),
			TxRate: rate(65536 * f), RxRate: rate(2048 * f), Opened: 42 * n},
		{ID: "0f3c2a9b8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a", Name: "0f3c2a9b8d7e", NetnsInode: 4026533002,
			Total: tr(2048*n+512, 4096*n+512), External: tr(2048*n, 4096*n), Internal: tr(512, 512), TxRate: rate(10), RxRate: rate(20), Opened: 3},
	}
	return s
}

func ctrSeries(n int) []snapshot.Snapshot {
	out := make([]snapshot.Snapshot, n)
	for i := range out {
		out[i] = ctrSnap(i)
	}
	return out
}

func TestContainerViewGolden(t *testing.T) {
	snaps := ctrSeries(5)
	noEngine := series(3)
	empty := snaps[4]
	empty.Containers = nil
	ctrs := func() Model { return New(nil, Options{View: ViewContainers}) }
	tests := []struct {
		name string
		w, h int
		m    func() Model
	}{
		{"ctrs", 80, 24, func() Model { return feed(ctrs(), snaps...) }},
		{"ctrs", 132, 30, func() Model { return feed(ctrs(), snaps...) }},
		{"ctrs_detail", 80, 24, func() Model { return keys(feed(ctrs(), snaps...), "enter") }},
		{"ctrs_detail", 132, 30, func() Model { return keys(feed(ctrs(), snaps...), "enter") }},
		{"ctrs_detail_hostnet", 80, 24, func() Model { return keys(feed(ctrs(), snaps...), "j", "enter") }},
		{"ctrs_detail_noruntime", 132, 30, func() Model { return keys(feed(ctrs(), snaps...), "G", "tab") }},
		{"ctrs_windows", 80, 24, func() Model { return keys(feed(ctrs(), snaps...), "t") }},
		{"ctrs_totals", 80, 24, func() Model { return keys(feed(ctrs(), snaps...), "t", "t") }},
		{"ctrs_totals", 132, 30, func() Model { return keys(feed(ctrs(), snaps...), "t", "t") }},
		{"ctrs_filter", 80, 24, func() Model { return keys(feed(ctrs(), snaps...), "/", "i", "n", "f", "r", "a", "enter") }},
		{"ctrs_filter_none", 80, 24, func() Model { return keys(feed(ctrs(), snaps...), "/", "z", "z") }},
		{"ctrs_empty", 80, 24, func() Model { return feed(ctrs(), empty) }},
		{"ctrs_empty", 132, 30, func() Model { return feed(ctrs(), empty) }},
		{"ctrs_no_engine", 80, 24, func() Model { return feed(ctrs(), noEngine...) }},
		{"ctrs_no_engine", 132, 30, func() Model { return feed(ctrs(), noEngine...) }},
		{"ctrs_detail_narrow", 40, 12, func() Model { return keys(feed(ctrs(), snaps...), "enter") }},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s_%dx%d", tt.name, tt.w, tt.h), func(t *testing.T) {
			m := sized(tt.m(), tt.w, tt.h)
			got := render(t, m, colorprofile.NoTTY)
			checkFits(t, got, tt.w, tt.h)
			if strings.Contains(got, "\x1b") {
				t.Error("NoTTY view contains escape sequences")
			}
			if strings.Contains(got, "unknown") {
				t.Error("something is labelled \"unknown\"")
			}
			golden(t, fmt.Sprintf("%s_%dx%d.golden", tt.name, tt.w, tt.h), got)
		})
	}
}

func TestContainerKeys(t *testing.T) {
	base := sized(feed(New(nil, Options{}), ctrSeries(3)...), 80, 24)
	names := func(m Model) string {
		var out []string
		for _, r := range m.ctrRows {
			out = append(out, rowName(&r))
		}
		return strings.Join(out, ",")
	}
	sel := func(m Model) string {
		ls := m.lists[ViewContainers]
		if len(m.ctrRows) == 0 {
			return ""
		}
		return rowName(&m.ctrRows[ls.sel])
	}
	typed := func(view, text string) []string {
		ks := []string{view, "/"}
		for _, r := range text {
			ks = append(ks, string(r))
		}
		return ks
	}
	tests := []struct {
		desc  string
		keys  []string
		check func(Model) bool
	}{
		{"4 → containers", []string{"4"}, func(m Model) bool { return m.view == ViewContainers }},
		{"4 1 → interfaces", []string{"4", "1"}, func(m Model) bool { return m.view == ViewInterfaces }},
		{"3 4 → containers, family untouched", []string{"3", "4"}, func(m Model) bool { return m.view == ViewContainers && m.family == FamilyAll }},
		{"f in the containers view changes only the family", []string{"4", "f"}, func(m Model) bool {
			return m.view == ViewContainers && m.family == FamilyIPv4 && len(m.ctrRows) == 3
		}},
		{"sort tx", []string{"4"}, func(m Model) bool { return names(m) == "shop-web-1,node-agent,0f3c2a9b8d7e" }},
		{"s → rx", []string{"4", "s"}, func(m Model) bool { return m.fsort == FlowByRx && names(m) == "shop-web-1,node-agent,0f3c2a9b8d7e" }},
		{"s s s → name", []string{"4", "s", "s", "s"}, func(m Model) bool {
			return m.fsort == FlowByName && names(m) == "0f3c2a9b8d7e,node-agent,shop-web-1"
		}},
		{"t → windows", []string{"4", "t"}, func(m Model) bool { return m.columnsOf(ViewContainers) == ColumnsWindows }},
		{"t t → totals", []string{"4", "t", "t"}, func(m Model) bool { return m.columnsOf(ViewContainers) == ColumnsTotals }},
		{"t t t → now", []string{"4", "t", "t", "t"}, func(m Model) bool { return m.columnsOf(ViewContainers) == ColumnsNow }},
		{"t here leaves processes alone", []string{"4", "t", "2"}, func(m Model) bool { return m.columnsOf(ViewProcesses) == ColumnsNow }},
		{"j selects", []string{"4", "j"}, func(m Model) bool { return sel(m) == "node-agent" }},
		{"G end", []string{"4", "G"}, func(m Model) bool { return sel(m) == "0f3c2a9b8d7e" }},
		{"j past the end stays", []string{"4", "j", "j", "j", "j"}, func(m Model) bool { return sel(m) == "0f3c2a9b8d7e" }},
		{"selection follows across a re-sort", []string{"4", "G", "s", "s", "s"}, func(m Model) bool {
			return sel(m) == "0f3c2a9b8d7e" && m.lists[ViewContainers].sel == 0
		}},
		{"enter opens the pane", []string{"4", "enter"}, func(m Model) bool { return m.cdetail && m.paneHeight() > 0 }},
		{"tab tab closes it", []string{"4", "tab", "tab"}, func(m Model) bool { return !m.cdetail }},
		{"esc closes it", []string{"4", "enter", "esc"}, func(m Model) bool { return !m.cdetail }},
		{"enter in processes opens nothing", []string{"2", "enter"}, func(m Model) bool { return !m.cdetail && !m.detail }},
		{"interface detail is separate", []string{"4", "enter", "1"}, func(m Model) bool { return !m.detail && m.cdetail }},
		{"filter by name", typed("4", "agent"), func(m Model) bool { return names(m) == "node-agent" }},
		{"filter by id prefix", typed("4", "A1B2"), func(m Model) bool { return names(m) == "shop-web-1" }},
		{"id matches only as a prefix", typed("4", "c3d4e5"), func(m Model) bool { return names(m) == "" }},
		{"filter by image", typed("4", "nginx"), func(m Model) bool { return names(m) == "shop-web-1" }},
		{"filter by account", typed("4", "infra"), func(m Model) bool { return names(m) == "node-agent" }},
		{"filter by label value", typed("4", "frontend"), func(m Model) bool { return names(m) == "shop-web-1" }},
		{"label keys do not match", typed("4", "tier"), func(m Model) bool { return names(m) == "" }},
		{"filter by runtime", typed("4", "podman"), func(m Model) bool { return names(m) == "node-agent" }},
		{"typed 4 is text", typed("2", "4"), func(m Model) bool { return m.view == ViewProcesses && m.filter == "4" }},
		{"filter applies to processes too", append(typed("4", "curl"), "enter", "2"), func(m Model) bool {
			return m.view == ViewProcesses && len(m.procRows) == 1 && len(m.ctrRows) == 0
		}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			m := base
			for _, k := range tt.keys {
				m = upd(m, keyMsg(k))
				_ = m.View()
			}
			if !tt.check(m) {
				t.Errorf("after %v: view=%v fsort=%v filter=%q cdetail=%v sel=%q ctrs=%s",
					tt.keys, m.view, m.fsort, m.filter, m.cdetail, sel(m), names(m))
			}
		})
	}
}

func TestContainerRowsBounded(t *testing.T) {
	s := ctrSnap(0)
	s.Containers = nil
	for i := range 50 {
		s.Containers = append(s.Containers, snapshot.Container{ID: fmt.Sprintf("%064d", i), Name: fmt.Sprintf("c%02d", i),
			TxRate: snapshot.Rate{Current: float64(i)}})
	}
	s.Containers = append(s.Containers, s.Containers[49]) // the same container twice
	m := sized(feed(New(nil, Options{View: ViewContainers, MaxRows: 10}), s), 80, 24)
	if len(m.ctrRows) != 10 || m.ctrHidden != 40 || m.ctrRows[0].ctr.Name != "c49" || m.ctrRows[1].ctr.Name != "c48" {
		t.Errorf("rows %d hidden %d first %q, want 10, 40 and the busiest first, once", len(m.ctrRows), m.ctrHidden, m.ctrRows[0].ctr.Name)
	}
	if v := plainView(t, m); !strings.Contains(v, "50 containers +40 not shown") {
		t.Errorf("header does not say rows are not shown:\n%s", v)
	}
	// The pane never squeezes the list below three rows, and the
	// selection stays visible while it moves through a long list.
	big := ctrSnap(0)
	for i := range 300 {
		big.Containers[0].Ports = append(big.Containers[0].Ports, snapshot.Port{Proto: "tcp", Port: uint16(1000 + i), Accepted: 1})
	}
	for i := range 40 {
		big.Containers = append(big.Containers, snapshot.Container{ID: fmt.Sprintf("x%d", i), Name: fmt.Sprintf("x%02d", i)})
	}
	m = keys(sized(feed(New(nil, Options{View: ViewContainers}), big), 80, 24), "enter")
	if got := m.flowRows(ViewContainers); got != minListRows {
		t.Errorf("list rows with a tall pane: %d, want %d", got, minListRows)
	}
	for range 20 {
		m = keys(m, "j")
		v := plainView(t, m)
		name := rowName(&m.ctrRows[m.lists[ViewContainers].sel])
		if !strings.Contains(v, "> "+name) || !strings.Contains(v, "── "+name+" ") {
			t.Fatalf("selected %q not shown with its pane:\n%s", name, v)
		}
		checkFits(t, v, 80, 24)
	}
	m = keys(m, "g")
	if v := plainView(t, m); !strings.Contains(v, "more ports") {
		t.Errorf("cut port table does not say so:\n%s", v)
	}
}

func TestContainerHostileInput(t *testing.T) {
	s := ctrSnap(0)
	c := &s.Containers[0]
	c.Name = "evil\x1b[2J\x1b]0;pwned\x07"
	c.Image = "img\r\n"
	c.Account = "acct\x1b[31m"
	c.Labels = map[string]string{"k\x1b": "v\x1b[5m", "wide": strings.Repeat("名", 200)}
	c.Ports = []snapshot.Port{{Proto: "tcp\x1b", Port: 1}}
	s.Containers[1].TxRate.Current = math.NaN()
	for _, ks := range [][]string{{"enter"}, {"t", "enter"}, {"t", "t", "enter"}} {
		for _, w := range []int{40, 80, 132} {
			m := keys(sized(feed(New(nil, Options{View: ViewContainers}), s), w, 24), ks...)
			v := render(t, m, colorprofile.NoTTY)
			checkFits(t, v, w, 24)
			if strings.ContainsAny(v, "\x1b\x07\r") || strings.Contains(v, "NaN") {
				t.Errorf("%v at %d: hostile text reached the screen:\n%q", ks, w, v)
			}
		}
	}
}

func TestContainerTinyWindowsDoNotPanic(t *testing.T) {
	full := feed(New(nil, Options{View: ViewContainers}), ctrSeries(5)...)
	for _, base := range []Model{full, keys(full, "enter"), keys(full, "t", "enter"), keys(full, "t", "t", "enter")} {
		for w := 0; w <= 30; w++ {
			for h := 0; h <= 14; h++ {
				v := render(t, sized(base, w, h), colorprofile.NoTTY)
				checkFits(t, v, w, h)
			}
		}
	}
}

func TestContainerUpdateDoesNotMutatePreviousModel(t *testing.T) {
	m := sized(keys(feed(New(nil, Options{View: ViewContainers}), ctrSeries(3)...), "enter"), 80, 24)
	before := render(t, m, colorprofile.NoTTY)
	m2 := keys(feed(m, ctrSeries(6)[3:]...), "j", "s", "t", "/", "a", "enter", "esc", "tab")
	_ = m2.View()
	if after := render(t, m, colorprofile.NoTTY); after != before {
		t.Errorf("previous model changed:\n--- before ---\n%s\n--- after ---\n%s", before, after)
	}
}

func TestContainerPaneFits(t *testing.T) {
	m := keys(feed(New(nil, Options{View: ViewContainers}), ctrSeries(3)...), "enter")
	for _, w := range []int{sideBySide - 1, sideBySide, 100, 132} {
		v := render(t, sized(m, w, 30), colorprofile.NoTTY)
		var ports, peers int
		for _, l := range strings.Split(v, "\n") {
			if strings.Contains(l, "PORT") {
				ports++
				if !strings.HasSuffix(l, "RECV") {
					t.Errorf("width %d: port table header cut: %q", w, l)
				}
			}
			if strings.Contains(l, "PEER") {
				peers++
				if strings.Contains(l, "PORT") != (w >= sideBySide) {
					t.Errorf("width %d: side by side = %v, want %v", w, !(w >= sideBySide), w >= sideBySide)
				}
			}
		}
		if ports != 1 || peers != 1 {
			t.Errorf("width %d: %d port and %d peer headers:\n%s", w, ports, peers, v)
		}
	}
}
