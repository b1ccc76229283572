package tui

import (
	"bytes"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/ansi"

	"github.com/netmeter/netmeter/internal/snapshot"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

var t0 = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

// iface returns a present interface with the given current rates.
func iface(name, state string, rx, tx float64) snapshot.Interface {
	return snapshot.Interface{
		Index: 1, Name: name, Kind: "device", OperState: state, AdminUp: true, Carrier: state == "up",
		MTU: 1500, Present: true, FirstSeen: t0,
		RxBytesRate: snapshot.Rate{Current: rx, Window2s: rx, Window10s: rx / 2, Window40s: rx / 4, Avg: rx / 3, Max: rx * 2},
		TxBytesRate: snapshot.Rate{Current: tx, Window2s: tx, Window10s: tx / 2, Window40s: tx / 4, Avg: tx / 3, Max: tx * 2},
	}
}

// series builds n deterministic snapshots of a small host: eth0 with a
// traffic wave, lo, a down wlan0, a veth in netns "app", and docker0 which
// disappears for the last 3. In the last snapshot eth0's rx errors and
// tx drops grow.
func series(n int) []snapshot.Snapshot {
	var out []snapshot.Snapshot
	var eth, veth snapshot.LinkCounters
	for i := range n {
		wave := 1 + math.Sin(float64(i)/4)
		e := iface("eth0", "up", 2e6*wave, 3e5*(2-wave))
		e.Kind, e.SpeedMbps, e.MAC, e.Qdisc, e.Index = "device", 1000, "52:54:00:12:34:56", "fq_codel", 2
		e.Delta = snapshot.LinkCounters{RxBytes: uint64(e.RxBytesRate.Current), TxBytes: uint64(e.TxBytesRate.Current), RxPackets: 1000, TxPackets: 400}
		if i == n-1 {
			e.Delta.RxErrors, e.Delta.TxDropped, e.Delta.RxCRCErrors = 2, 1, 2
		}
		eth.RxBytes += e.Delta.RxBytes + 5e9
		eth.TxBytes += e.Delta.TxBytes
		eth.RxPackets += 1000
		eth.TxPackets += 400
		eth.RxErrors += e.Delta.RxErrors
		eth.RxCRCErrors += e.Delta.RxCRCErrors
		eth.TxDropped += e.Delta.TxDropped
		eth.RxDropped = 5
		e.Kernel = eth
		e.Total = eth
		e.RxPacketsRate.Current, e.TxPacketsRate.Current = 1000, 400

		lo := iface("lo", "unknown", 512, 512)
		lo.Kind, lo.Index, lo.MTU = "loopback", 1, 65536
		lo.Kernel = snapshot.LinkCounters{RxBytes: uint64(512 * (i + 1)), TxBytes: uint64(512 * (i + 1))}

		wl := iface("wlan0", "down", 0, 0)
		wl.Index = 3

		v := iface("veth-app", "up", float64(i%7)*1e5, float64(i%5)*2e5)
		v.Netns, v.NetnsInode, v.Kind, v.Master, v.Index = "app", 4026532999, "veth", "br0", 7
		veth.RxBytes += uint64(v.RxBytesRate.Current)
		veth.TxBytes += uint64(v.TxBytesRate.Current)
		v.Kernel = veth

		ifs := []snapshot.Interface{wl, v, lo, e}
		if i < n-3 {
			d := iface("docker0", "up", 1e4, 1e4)
			d.Kind = "bridge"
			ifs = append(ifs, d)
		}
		out = append(out, snapshot.Snapshot{
			Time: t0.Add(time.Duration(i) * time.Second), Interval: time.Second, Source: "netlink", Interfaces: ifs,
		})
	}
	return out
}

func feed(m Model, snaps ...snapshot.Snapshot) Model {
	for _, s := range snaps {
		m = upd(m, SnapshotMsg{Snapshot: s})
	}
	return m
}

func upd(m Model, msg tea.Msg) Model {
	next, _ := m.Update(msg)
	return next.(Model)
}

func keys(m Model, ks ...string) Model {
	for _, k := range ks {
		m = upd(m, keyMsg(k))
	}
	return m
}

func keyMsg(k string) tea.KeyPressMsg {
	switch k {
	case "up":
		return tea.KeyPressMsg{Code: tea.KeyUp}
	case "down":
		return tea.KeyPressMsg{Code: tea.KeyDown}
	case "enter":
		return tea.KeyPressMsg{Code: tea.KeyEnter}
	case "tab":
		return tea.KeyPressMsg{Code: tea.KeyTab}
	case "esc":
		return tea.KeyPressMsg{Code: tea.KeyEscape}
	case "home":
		return tea.KeyPressMsg{Code: tea.KeyHome}
	case "end":
		return tea.KeyPressMsg{Code: tea.KeyEnd}
	case "backspace":
		return tea.KeyPressMsg{Code: tea.KeyBackspace}
	case "ctrl+c":
		return tea.KeyPressMsg{Code: 'c', Mod: tea.ModCtrl}
	}
	r := []rune(k)[0]
	return tea.KeyPressMsg{Code: r, Text: k}
}

func sized(m Model, w, h int) Model { return upd(m, tea.WindowSizeMsg{Width: w, Height: h}) }

// render returns the view as the terminal would get it with profile p.
func render(t testing.TB, m Model, p colorprofile.Profile) string {
	t.Helper()
	v := m.View()
	if !v.AltScreen {
		t.Error("view is not in the alternate screen")
	}
	var buf bytes.Buffer
	w := &colorprofile.Writer{Forward: &buf, Profile: p}
	if _, err := w.WriteString(v.Content); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (run go test -update if intended)\n--- got ---\n%s\n--- want ---\n%s", path, got, want)
	}
}

// checkFits fails if the view has more lines or wider lines than w×h.
func checkFits(t *testing.T, view string, w, h int) {
	t.Helper()
	if view == "" {
		return
	}
	lines := strings.Split(view, "\n")
	if len(lines) > h {
		t.Errorf("%dx%d: %d lines", w, h, len(lines))
	}
	for _, l := range lines {
		if ansi.StringWidth(l) > w {
			t.Errorf("%dx%d: line %q is %d wide", w, h, l, ansi.StringWidth(l))
		}
	}
}

func TestViewGolden(t *testing.T) {
	snaps := series(40)
	many := snaps[len(snaps)-1]
	many.Interfaces = nil
	for i := range 30 {
		many.Interfaces = append(many.Interfaces, iface(fmt.Sprintf("veth%02d", i), "up", float64(i)*1000, 10))
	}
	tests := []struct {
		name string
		w, h int
		m    func() Model
	}{
		{"waiting", 80, 24, func() Model { return New(nil, Options{}) }},
		{"list", 80, 24, func() Model { return feed(New(nil, Options{}), snaps...) }},
		{"detail", 80, 24, func() Model { return keys(feed(New(nil, Options{}), snaps...), "enter") }},
		{"detail_lo", 80, 24, func() Model { return keys(feed(New(nil, Options{}), snaps...), "j", "enter") }},
		{"bits_sort_rx", 80, 24, func() Model { return keys(feed(New(nil, Options{}), snaps...), "u", "s") }},
		{"scrolled", 80, 24, func() Model { return keys(feed(New(nil, Options{}), many), "end", "k") }},
		{"narrow", 40, 12, func() Model { return feed(New(nil, Options{}), snaps...) }},
		{"wide", 120, 30, func() Model { return keys(feed(New(nil, Options{}), snaps...), "tab") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
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

// hotPrefixes are the escape sequences that start a highlighted counter,
// in a normal and in the (reverse video) selected row.
func hotPrefixes(t *testing.T) []string {
	var out []string
	for _, st := range []lipgloss.Style{styleHot, styleHot.Reverse(true)} {
		var buf bytes.Buffer
		w := &colorprofile.Writer{Forward: &buf, Profile: colorprofile.ANSI}
		w.WriteString(st.Render("X"))
		p, _, ok := strings.Cut(buf.String(), "X")
		if !ok || p == "" {
			t.Fatalf("hot style renders no escape sequence: %q", buf.String())
		}
		out = append(out, p)
	}
	return out
}

// hotCount counts the highlighted occurrences of text ("" for any).
func hotCount(t *testing.T, view, text string) int {
	n := 0
	for _, p := range hotPrefixes(t) {
		n += strings.Count(view, p+text)
	}
	return n
}

func TestHighlightOnlyWhenCountersGrow(t *testing.T) {
	snaps := series(10)
	for _, detail := range []bool{false, true} {
		t.Run(fmt.Sprintf("detail=%v", detail), func(t *testing.T) {
			m := sized(New(nil, Options{}), 80, 24)
			if detail {
				m = keys(m, "enter")
			}
			// eth0 has rx_dropped=5 all along, but it never grows: no highlight.
			m = feed(m, snaps[:9]...)
			m = keys(m, "home") // eth0 (docker0 is gone, at the bottom)
			if v := render(t, m, colorprofile.ANSI); hotCount(t, v, "") > 0 {
				t.Errorf("highlight without growth:\n%q", v)
			}
			// The last snapshot grows rx errors by 2 and tx drops by 1.
			m = feed(m, snaps[9])
			v := render(t, m, colorprofile.ANSI)
			// In the list row, and again in the detail pane.
			want := 1
			if detail {
				want = 2
			}
			if got := hotCount(t, v, "2"); got != want {
				t.Errorf("rx errors (2) not highlighted: %q", v)
			}
			if got := hotCount(t, v, "1"); got != want {
				t.Errorf("tx drops (1) not highlighted: %q", v)
			}
			if hotCount(t, v, "5") > 0 {
				t.Error("rx drops (5, unchanged) highlighted")
			}
			// Next interval without growth: the highlight goes away, the
			// counts stay.
			s := snaps[9]
			s.Time = s.Time.Add(time.Second)
			s.Interfaces = append([]snapshot.Interface(nil), s.Interfaces...)
			for i := range s.Interfaces {
				s.Interfaces[i].Delta = snapshot.LinkCounters{}
			}
			m = feed(m, s)
			if v := render(t, m, colorprofile.ANSI); hotCount(t, v, "") > 0 {
				t.Errorf("highlight after growth stopped:\n%q", v)
			}
		})
	}
}

func TestKeys(t *testing.T) {
	base := sized(feed(New(nil, Options{}), series(10)[:4]...), 80, 24)
	// Sorted by name: docker0, eth0, lo, veth-app@app, wlan0.
	sel := func(m Model) string { return m.order[m.sel].name }
	tests := []struct {
		keys   []string
		check  func(Model) bool
		desc   string
		quits  bool
		detail bool
	}{
		{keys: []string{"up"}, check: func(m Model) bool { return m.sel == 0 }, desc: "up at top stays"},
		{keys: []string{"k", "k"}, check: func(m Model) bool { return m.sel == 0 }, desc: "k at top stays"},
		{keys: []string{"down"}, check: func(m Model) bool { return sel(m) == "eth0" }, desc: "down"},
		{keys: []string{"j", "j", "j", "j", "j", "j", "j"}, check: func(m Model) bool { return sel(m) == "wlan0" }, desc: "j past end stays on last"},
		{keys: []string{"end", "up"}, check: func(m Model) bool { return sel(m) == "veth-app" }, desc: "end then up"},
		{keys: []string{"G", "g"}, check: func(m Model) bool { return m.sel == 0 }, desc: "G g"},
		{keys: []string{"enter"}, detail: true, check: func(m Model) bool { return true }, desc: "enter opens detail"},
		{keys: []string{"tab", "tab"}, check: func(m Model) bool { return true }, desc: "tab toggles twice"},
		{keys: []string{"enter", "esc"}, check: func(m Model) bool { return true }, desc: "esc closes detail"},
		{keys: []string{"u"}, check: func(m Model) bool { return m.bits }, desc: "u → bits"},
		{keys: []string{"u", "u"}, check: func(m Model) bool { return !m.bits }, desc: "u u → bytes"},
		{keys: []string{"s"}, check: func(m Model) bool { return m.sort == SortRx && m.order[0].name == "eth0" }, desc: "s → rx, busiest first"},
		{keys: []string{"s", "s"}, check: func(m Model) bool { return m.sort == SortTx }, desc: "s s → tx"},
		{keys: []string{"s", "s", "s"}, check: func(m Model) bool { return m.sort == SortName && m.order[0].name == "docker0" }, desc: "s s s → name"},
		{keys: []string{"j", "j", "s"}, check: func(m Model) bool { return sel(m) == "lo" }, desc: "selection follows the interface across a re-sort"},
		{keys: []string{"s"}, check: func(m Model) bool { return m.sel == 0 }, desc: "untouched selection stays on top across a re-sort"},
		{keys: []string{"x"}, check: func(m Model) bool { return m.sel == 0 }, desc: "unknown key ignored"},
		{keys: []string{"q"}, quits: true, check: func(m Model) bool { return true }, desc: "q quits"},
		{keys: []string{"ctrl+c"}, quits: true, check: func(m Model) bool { return true }, desc: "ctrl+c quits"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			m := base
			var cmd tea.Cmd
			for _, k := range tt.keys {
				var next tea.Model
				next, cmd = m.Update(keyMsg(k))
				m = next.(Model)
			}
			if !tt.check(m) {
				t.Errorf("after %v: sel=%d (%s) sort=%v bits=%v", tt.keys, m.sel, sel(m), m.sort, m.bits)
			}
			if m.detail != tt.detail {
				t.Errorf("after %v: detail=%v, want %v", tt.keys, m.detail, tt.detail)
			}
			if quits := cmd != nil && isQuit(cmd()); quits != tt.quits {
				t.Errorf("after %v: quits=%v, want %v", tt.keys, quits, tt.quits)
			}
		})
	}
}

func isQuit(msg tea.Msg) bool {
	_, ok := msg.(tea.QuitMsg)
	return ok
}

func TestKeysOnEmptyModel(t *testing.T) {
	m := New(nil, Options{})
	for _, k := range []string{"up", "down", "j", "k", "g", "G", "home", "end", "s", "u", "enter", "pgdown", "pgup"} {
		m = upd(m, keyMsg(k))
		_ = m.View()
	}
	if m.sel != 0 {
		t.Errorf("sel = %d on an empty model", m.sel)
	}
}

func TestWaitForSnapshot(t *testing.T) {
	if WaitForSnapshot(nil) != nil {
		t.Error("nil channel: want nil command")
	}
	ch := make(chan snapshot.Snapshot, 1)
	ch <- snapshot.Snapshot{Source: "procfs"}
	msg := WaitForSnapshot(ch)()
	if sm, ok := msg.(SnapshotMsg); !ok || sm.Snapshot.Source != "procfs" {
		t.Errorf("got %#v, want SnapshotMsg", msg)
	}
	close(ch)
	if msg := WaitForSnapshot(ch)(); msg != (SourceClosedMsg{}) {
		t.Errorf("closed channel: got %#v, want SourceClosedMsg", msg)
	}
}

func TestUpdateRearmsAndQuitsOnClose(t *testing.T) {
	ch := make(chan snapshot.Snapshot, 2)
	m := New(ch, Options{})
	if m.Init() == nil {
		t.Fatal("Init: want the wait command")
	}
	ch <- series(1)[0]
	next, cmd := m.Update(m.Init()())
	if cmd == nil {
		t.Fatal("snapshot: Update did not re-arm the wait")
	}
	close(ch)
	msg := cmd()
	if _, ok := msg.(SourceClosedMsg); !ok {
		t.Fatalf("got %#v, want SourceClosedMsg", msg)
	}
	if _, cmd = next.Update(msg); cmd == nil || !isQuit(cmd()) {
		t.Error("closed channel: Update does not quit")
	}
}

func TestUpdateDoesNotMutatePreviousModel(t *testing.T) {
	snaps := series(30)
	m := sized(feed(New(nil, Options{}), snaps[:20]...), 80, 24)
	before := render(t, m, colorprofile.NoTTY)
	m2 := keys(feed(m, snaps[20:]...), "j", "s", "u", "enter")
	_ = m2.View()
	if after := render(t, m, colorprofile.NoTTY); after != before {
		t.Errorf("previous model changed:\n--- before ---\n%s\n--- after ---\n%s", before, after)
	}
}

func TestHistoryBounded(t *testing.T) {
	m := feed(New(nil, Options{History: 5}), series(100)...)
	for k, st := range m.ifaces {
		if len(st.rx) > 5 || len(st.tx) > 5 || len(st.faults) > 5 {
			t.Errorf("%v: history %d/%d/%d, want ≤ 5", k, len(st.rx), len(st.tx), len(st.faults))
		}
	}
	if got := len(m.ifaces[ifKey{name: "eth0"}].rx); got != 5 {
		t.Errorf("eth0 history = %d, want 5", got)
	}
	if got := New(nil, Options{History: 1 << 30}).opts.History; got != MaxHistory {
		t.Errorf("History clamped to %d, want %d", got, MaxHistory)
	}
}

func TestForgetGoneInterfaces(t *testing.T) {
	snaps := series(13) // docker0 is listed in the first 10 only
	snaps = append(snaps, snaps[12])
	m := feed(New(nil, Options{ForgetAfter: 3}), snaps[:10]...)
	docker := ifKey{name: "docker0"}
	if _, ok := m.ifaces[docker]; !ok {
		t.Fatal("docker0 not tracked")
	}
	m = feed(m, snaps[10:13]...)
	if st, ok := m.ifaces[docker]; !ok || !isGone(st) {
		t.Fatalf("docker0 after 3 missing snapshots: tracked=%v, want tracked and gone", ok)
	}
	if !strings.Contains(sizedPlain(t, m), "gone") {
		t.Error("gone interface not marked in the view")
	}
	m = feed(m, snaps[13])
	if _, ok := m.ifaces[docker]; ok {
		t.Error("docker0 still tracked after 4 missing snapshots")
	}

	// Present=false counts as missing too.
	s := snaps[0]
	s.Interfaces = []snapshot.Interface{iface("tun0", "down", 0, 0)}
	s.Interfaces[0].Present = false
	m = New(nil, Options{ForgetAfter: 2})
	m = feed(m, s, s)
	if _, ok := m.ifaces[ifKey{name: "tun0"}]; !ok {
		t.Error("tun0 forgotten too early")
	}
	m = feed(m, s)
	if _, ok := m.ifaces[ifKey{name: "tun0"}]; ok {
		t.Error("tun0 (Present=false) never forgotten")
	}
}

func sizedPlain(t *testing.T, m Model) string { return render(t, sized(m, 80, 24), colorprofile.NoTTY) }

func TestMaxInterfaces(t *testing.T) {
	s := series(1)[0]
	s.Interfaces = nil
	for i := range 50 {
		s.Interfaces = append(s.Interfaces, iface(fmt.Sprintf("veth%02d", i), "up", 1, 1))
	}
	m := feed(New(nil, Options{MaxInterfaces: 10}), s)
	if len(m.ifaces) != 10 || m.hidden != 40 {
		t.Errorf("tracked %d, hidden %d; want 10, 40", len(m.ifaces), m.hidden)
	}
	if !strings.Contains(sizedPlain(t, m), "+40 untracked") {
		t.Error("header does not mention untracked interfaces")
	}
	// Tracked interfaces keep their place when new ones appear.
	s2 := s
	s2.Interfaces = append([]snapshot.Interface{iface("aaa", "up", 1, 1)}, s.Interfaces...)
	m = feed(m, s2)
	if _, ok := m.ifaces[ifKey{name: "aaa"}]; ok {
		t.Error("a new interface evicted a tracked one")
	}
}

func TestDuplicateAndHostileInput(t *testing.T) {
	s := series(1)[0]
	bad := iface("eth0", "up", math.NaN(), math.Inf(1))
	bad.RxBytesRate.Max = math.Inf(-1)
	bad.Kernel.RxBytes = math.MaxUint64
	s.Interfaces = append(s.Interfaces, bad, iface(strings.Repeat("x", 300), "", -5, 0))
	m := feed(New(nil, Options{Sort: SortRx}), s, s)
	for _, d := range [][2]int{{80, 24}, {30, 10}} {
		v := render(t, sized(keys(m, "enter"), d[0], d[1]), colorprofile.NoTTY)
		checkFits(t, v, d[0], d[1])
	}
}

func TestTinyWindowsDoNotPanic(t *testing.T) {
	full := feed(New(nil, Options{}), series(50)...)
	for _, base := range []Model{New(nil, Options{}), full, keys(full, "enter"), keys(full, "u", "end")} {
		for w := 0; w <= 24; w++ {
			for h := 0; h <= 26; h++ {
				m := sized(base, w, h)
				v := render(t, m, colorprofile.NoTTY)
				checkFits(t, v, w, h)
				if (w == 0 || h == 0) && v != "" {
					t.Errorf("%dx%d: want empty view, got %q", w, h, v)
				}
			}
		}
	}
	// Negative sizes are not sent by terminals, but must not panic either.
	_ = sized(full, -1, -1).View()
}

func TestBars(t *testing.T) {
	tests := []struct {
		in     []float64
		w, h   int
		want   []string
		wantPk float64
	}{
		{nil, 4, 1, []string{"    "}, 0},
		{[]float64{0, 0}, 3, 1, []string{"   "}, 0},
		{[]float64{1, 2, 4, 8}, 4, 1, []string{"▁▂▄█"}, 8},
		{[]float64{1, 8}, 4, 1, []string{"  ▁█"}, 8},
		{[]float64{9, 1, 8}, 2, 1, []string{"▁█"}, 8}, // only the last w samples, scaled to them
		{[]float64{math.NaN(), math.Inf(1), -3, 2}, 4, 1, []string{"   █"}, 2},
		{[]float64{1, 4, 8}, 3, 2, []string{"  █", "▂██"}, 8},
		{[]float64{1}, 0, 1, nil, 0},
		{[]float64{1}, 1, 0, nil, 0},
	}
	for _, tt := range tests {
		got, pk := bars(tt.in, tt.w, tt.h)
		if strings.Join(got, "|") != strings.Join(tt.want, "|") || pk != tt.wantPk {
			t.Errorf("bars(%v, %d, %d) = %q, %v; want %q, %v", tt.in, tt.w, tt.h, got, pk, tt.want, tt.wantPk)
		}
	}
}

func TestNarrowKeepsRatesOverGraph(t *testing.T) {
	m := feed(New(nil, Options{}), series(20)...)
	v := render(t, sized(m, 30, 10), colorprofile.NoTTY)
	if !strings.Contains(v, "RX/s") || strings.Contains(v, "HISTORY") {
		t.Errorf("at 30 columns the rate should win over the graph:\n%s", v)
	}
}
