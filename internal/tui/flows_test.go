package tui

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"

	"github.com/netmeter/netmeter/internal/snapshot"
)

// flowSnap is a fixed snapshot with the eBPF engine's data: curl talking to
// nginx over loopback (one Connection with a Peer), nginx serving an IPv6
// client, a resolver's unconnected UDP socket, a closed ssh connection of
// an exited process, and kernel and overflow buckets. i shifts the rates
// and totals a little, so that a series has history.
func flowSnap(i int) snapshot.Snapshot {
	s := series(1)[0]
	s.Time = t0.Add(time.Duration(i) * time.Second)
	f := float64(i + 1)
	rate := func(cur float64) snapshot.Rate {
		return snapshot.Rate{Current: cur, Window2s: cur * 0.9, Window10s: cur * 0.5, Window40s: cur * 0.25, Avg: cur / 3, Max: cur * 2}
	}
	tr := func(tx, rx uint64) snapshot.Traffic {
		return snapshot.Traffic{TxPayload: tx * 9 / 10, RxPayload: rx * 9 / 10, TxBytes: tx, RxBytes: rx}
	}
	n := uint64(i + 1)
	s.Processes = []snapshot.Process{
		{PID: 812, Comm: "nginx", Exe: "/usr/sbin/nginx", User: "www-data", StartTime: t0.Add(-time.Hour), Sockets: 4,
			Total: tr(734003200*n, 1048576*n), TxRate: rate(1536000 * f), RxRate: rate(20480 * f)},
		{PID: 4242, Comm: "curl", Exe: "/usr/bin/curl", User: "alice", StartTime: t0.Add(-time.Minute), Sockets: 2,
			Total: tr(1048576*n, 734003200*n), TxRate: rate(20480 * f), RxRate: rate(1536000 * f)},
		{PID: 977, Exe: "/usr/lib/systemd/systemd-resolved", User: "systemd-resolve", Sockets: 1,
			Total: tr(4096, 8192), TxRate: rate(100), RxRate: rate(200)},
		{PID: 5150, Comm: "ssh", Exe: "/usr/bin/ssh", User: "alice", Exited: true, Total: tr(123456789012, 98765)},
	}
	s.Connections = []snapshot.Connection{
		{Cookie: 7, Proto: "udp", Family: 4, Local: snapshot.Endpoint{Addr: "0.0.0.0", Port: 5353},
			Owner: snapshot.Owner{PID: 977, Comm: "systemd-resolve"}, Total: tr(4096, 8192), TxRate: rate(100), RxRate: rate(200)},
		{Cookie: 3, Proto: "tcp", Family: 4, State: "established",
			Local: snapshot.Endpoint{Addr: "127.0.0.1", Port: 41234}, Remote: snapshot.Endpoint{Addr: "127.0.0.1", Port: 8080},
			Owner: snapshot.Owner{PID: 4242, Comm: "curl"}, Peer: &snapshot.Owner{PID: 812, Comm: "nginx"}, PeerCookie: 4,
			Total: tr(1048576*n, 734003200*n), TxRate: rate(20480 * f), RxRate: rate(1536000 * f)},
		{Cookie: 5, Proto: "tcp", Family: 6, State: "established",
			Local: snapshot.Endpoint{Addr: "2001:db8::5", Port: 443}, Remote: snapshot.Endpoint{Addr: "2001:db8:1234::beef", Port: 50312},
			Owner: snapshot.Owner{PID: 812, Comm: "nginx"}, Total: tr(5000*n, 700*n), TxRate: rate(1000 * f), RxRate: rate(64 * f)},
		{Cookie: 2, Proto: "tcp", Family: 4, Closed: true, State: "close",
			Local: snapshot.Endpoint{Addr: "10.0.0.5", Port: 51000}, Remote: snapshot.Endpoint{Addr: "93.184.216.34", Port: 22},
			Owner: snapshot.Owner{PID: 5150, Comm: "ssh"}, Total: tr(123456789012, 98765)},
	}
	s.Unattributed = []snapshot.Bucket{
		{Name: "kernel", Total: tr(6000*n, 2000*n), Delta: tr(120, 60)},
	}
	s.Engine = &snapshot.EngineStats{Sockets: 7}
	return s
}

func flowSeries(n int) []snapshot.Snapshot {
	out := make([]snapshot.Snapshot, n)
	for i := range out {
		out[i] = flowSnap(i)
	}
	return out
}

func TestFlowViewGolden(t *testing.T) {
	snaps := flowSeries(5)
	noEngine := series(3) // interfaces only: the engine is not running
	emptyEngine := snaps[4]
	emptyEngine.Processes, emptyEngine.Connections, emptyEngine.Unattributed = nil, nil, nil
	classic := flowSeries(5) // the classic engine: approximate, marked so
	for i := range classic {
		classic[i].Engine = &snapshot.EngineStats{Kind: "classic", Approximate: true, CaptureDropped: 12, Sockets: 7}
	}
	view := func(v ViewKind) Options { return Options{View: v} }
	tests := []struct {
		name string
		w, h int
		m    func() Model
	}{
		{"procs", 80, 24, func() Model { return feed(New(nil, view(ViewProcesses)), snaps...) }},
		{"procs_windows", 80, 24, func() Model { return keys(feed(New(nil, view(ViewProcesses)), snaps...), "t", "j") }},
		{"procs_totals", 80, 24, func() Model { return keys(feed(New(nil, view(ViewProcesses)), snaps...), "t", "t") }},
		{"procs_wide", 132, 30, func() Model { return feed(New(nil, view(ViewProcesses)), snaps...) }},
		{"procs_no_engine", 80, 24, func() Model { return feed(New(nil, view(ViewProcesses)), noEngine...) }},
		{"procs_classic", 132, 30, func() Model { return feed(New(nil, view(ViewProcesses)), classic...) }},
		{"procs_empty", 80, 24, func() Model { return feed(New(nil, view(ViewProcesses)), emptyEngine) }},
		{"conns", 80, 24, func() Model { return feed(New(nil, view(ViewConnections)), snaps...) }},
		{"conns_now", 80, 24, func() Model { return keys(feed(New(nil, view(ViewConnections)), snaps...), "t", "s") }},
		{"conns_wide", 132, 30, func() Model { return feed(New(nil, view(ViewConnections)), snaps...) }},
		{"conns_filter_v6", 80, 24, func() Model {
			return keys(feed(New(nil, view(ViewConnections)), snaps...), "f", "f", "/", "n", "g", "i", "n", "x")
		}},
		{"conns_empty", 80, 24, func() Model { return feed(New(nil, view(ViewConnections)), emptyEngine) }},
		{"conns_narrow", 40, 12, func() Model { return feed(New(nil, view(ViewConnections)), snaps...) }},
		{"help", 80, 24, func() Model { return keys(feed(New(nil, view(ViewConnections)), snaps...), "?") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
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

// plainView renders m at 80×24 without colours.
func plainView(t *testing.T, m Model) string { return render(t, sized(m, 80, 24), colorprofile.NoTTY) }

func TestFlowContent(t *testing.T) {
	m := feed(New(nil, Options{View: ViewProcesses}), flowSeries(3)...)
	v := plainView(t, m)
	for _, want := range []string{"[kernel]", "ssh (exited)", "systemd-resolved", "www-data", "4 procs (1 exited)"} {
		if !strings.Contains(v, want) {
			t.Errorf("processes view lacks %q:\n%s", want, v)
		}
	}
	// [kernel] is the last row whatever the sort.
	for range 4 {
		m = keys(m, "s")
		if last := m.procRows[len(m.procRows)-1]; last.kind != rowBucket {
			t.Errorf("sort %v: last row is %q, want the kernel bucket", m.fsort, last.key)
		}
		if first := m.procRows[0]; first.dim {
			t.Errorf("sort %v: an exited process sorts first", m.fsort)
		}
	}
	// Bucket rates come from the deltas: 120 B and 60 B per 1 s interval.
	var kernel flowRow
	for _, r := range m.procRows {
		if r.kind == rowBucket {
			kernel = r
		}
	}
	if kernel.tx.Current != 120 || kernel.rx.Current != 60 || kernel.tx.Window2s != 120 || kernel.tx.Window40s != 120 {
		t.Errorf("kernel bucket rates: tx %+v rx %+v", kernel.tx, kernel.rx)
	}

	c := keys(m, "3", "t", "t") // windows → totals → now: one line per connection
	v = render(t, sized(c, 132, 24), colorprofile.NoTTY)
	for _, want := range []string{"curl ⇄ nginx", "[2001:db8::5]:443 → [2001:db8:1234::beef]:50312", "0.0.0.0:5353 → *", "tcp6", "udp"} {
		if !strings.Contains(v, want) {
			t.Errorf("connections view lacks %q:\n%s", want, v)
		}
	}
}

func TestFlowKeys(t *testing.T) {
	base := sized(feed(New(nil, Options{}), flowSeries(3)...), 80, 24)
	procs := func(m Model) string {
		var out []string
		for _, r := range m.procRows {
			out = append(out, rowName(&r))
		}
		return strings.Join(out, ",")
	}
	conns := func(m Model) int { return len(m.connRows) }
	tests := []struct {
		desc  string
		keys  []string
		check func(Model) bool
	}{
		{"default view", nil, func(m Model) bool { return m.view == ViewInterfaces }},
		{"2 → processes", []string{"2"}, func(m Model) bool { return m.view == ViewProcesses }},
		{"3 → connections", []string{"3"}, func(m Model) bool { return m.view == ViewConnections }},
		{"3 1 → interfaces", []string{"3", "1"}, func(m Model) bool { return m.view == ViewInterfaces }},
		{"sort tx", []string{"2"}, func(m Model) bool {
			return m.fsort == FlowByTx && procs(m) == "nginx,curl,systemd-resolved,ssh,[kernel]"
		}},
		{"s → rx", []string{"2", "s"}, func(m Model) bool {
			return m.fsort == FlowByRx && procs(m) == "curl,nginx,systemd-resolved,ssh,[kernel]"
		}},
		{"s s → total", []string{"2", "s", "s"}, func(m Model) bool { return m.fsort == FlowByTotal }},
		{"s s s → name", []string{"2", "s", "s", "s"}, func(m Model) bool {
			return m.fsort == FlowByName && procs(m) == "curl,nginx,systemd-resolved,ssh,[kernel]"
		}},
		{"s ×4 → tx", []string{"2", "s", "s", "s", "s"}, func(m Model) bool { return m.fsort == FlowByTx }},
		{"interfaces sort untouched by flow sort", []string{"2", "s", "1"}, func(m Model) bool { return m.sort == SortName && m.fsort == FlowByRx }},
		{"flow sort untouched by interfaces sort", []string{"s", "2"}, func(m Model) bool { return m.sort == SortRx && m.fsort == FlowByTx }},
		{"t cycles columns", []string{"2", "t"}, func(m Model) bool { return m.columnsOf(ViewProcesses) == ColumnsWindows }},
		{"t t → totals", []string{"2", "t", "t"}, func(m Model) bool { return m.columnsOf(ViewProcesses) == ColumnsTotals }},
		{"t t t → now", []string{"2", "t", "t", "t"}, func(m Model) bool { return m.columnsOf(ViewProcesses) == ColumnsNow }},
		{"connections default to windows", []string{"3"}, func(m Model) bool { return m.columnsOf(ViewConnections) == ColumnsWindows }},
		{"/ opens the filter", []string{"2", "/"}, func(m Model) bool { return m.editing && m.filter == "" }},
		{"typing filters", []string{"2", "/", "c", "u"}, func(m Model) bool { return m.filter == "cu" && procs(m) == "curl" }},
		{"typed keys do not act", []string{"2", "/", "q", "3", "s"}, func(m Model) bool {
			return m.filter == "q3s" && m.view == ViewProcesses && m.fsort == FlowByTx
		}},
		{"backspace", []string{"2", "/", "c", "u", "backspace"}, func(m Model) bool { return m.filter == "c" }},
		{"enter keeps the filter", []string{"2", "/", "c", "u", "enter"}, func(m Model) bool { return !m.editing && m.filter == "cu" }},
		{"esc while typing clears", []string{"2", "/", "c", "esc"}, func(m Model) bool { return !m.editing && m.filter == "" && procs(m) != "curl" }},
		{"esc after enter clears", []string{"2", "/", "c", "u", "enter", "esc"}, func(m Model) bool { return m.filter == "" }},
		{"filter by pid", []string{"2", "/", "8", "1", "2", "enter"}, func(m Model) bool { return procs(m) == "nginx" }},
		{"filter by user", []string{"2", "/", "W", "W", "W"}, func(m Model) bool { return procs(m) == "nginx" }},
		{"filter by port", []string{"3", "/", "8", "0", "8", "0"}, func(m Model) bool { return conns(m) == 1 }},
		{"filter by host", []string{"3", "/", "9", "3", ".", "1", "8", "4"}, func(m Model) bool { return conns(m) == 1 && m.connRows[0].conn.Cookie == 2 }},
		{"filter by peer", []string{"3", "/", "n", "g", "i", "n", "x"}, func(m Model) bool { return conns(m) == 2 }},
		{"filter matches bucket", []string{"2", "/", "k", "e", "r", "n"}, func(m Model) bool { return procs(m) == "[kernel]" }},
		{"filter interfaces", []string{"/", "e", "t", "h", "0"}, func(m Model) bool { return len(m.order) == 1 && m.order[0].name == "eth0" }},
		{"f → IPv4 only", []string{"3", "f"}, func(m Model) bool { return m.family == FamilyIPv4 && conns(m) == 3 }},
		{"f f → IPv6 only", []string{"3", "f", "f"}, func(m Model) bool { return m.family == FamilyIPv6 && conns(m) == 1 }},
		{"f f f → both", []string{"3", "f", "f", "f"}, func(m Model) bool { return m.family == FamilyAll && conns(m) == 4 }},
		{"4 and 6 no longer filter families", []string{"3", "6", "3", "4", "3"}, func(m Model) bool { return m.family == FamilyAll && conns(m) == 4 }},
		{"n → dns", []string{"3", "n"}, func(m Model) bool { return m.dns.on }},
		{"n n → no dns", []string{"3", "n", "n"}, func(m Model) bool { return !m.dns.on }},
		{"? help", []string{"?"}, func(m Model) bool { return m.help }},
		{"? esc", []string{"?", "esc"}, func(m Model) bool { return !m.help }},
		{"j selects in the flow view only", []string{"2", "j"}, func(m Model) bool {
			return m.lists[ViewProcesses].sel == 1 && m.sel == 0 && m.lists[ViewProcesses].key == m.procRows[1].key
		}},
		{"G end", []string{"2", "G"}, func(m Model) bool { return m.lists[ViewProcesses].sel == len(m.procRows)-1 }},
		{"selection follows the row across a re-sort", []string{"2", "j", "s"}, func(m Model) bool {
			return rowName(&m.procRows[m.lists[ViewProcesses].sel]) == "curl"
		}},
		{"j past the end stays", []string{"3", "j", "j", "j", "j", "j", "j"}, func(m Model) bool { return m.lists[ViewConnections].sel == 3 }},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			m := base
			for _, k := range tt.keys {
				m = upd(m, keyMsg(k))
				_ = m.View()
			}
			if !tt.check(m) {
				t.Errorf("after %v: view=%v fsort=%v filter=%q editing=%v family=%v procs=%s conns=%d",
					tt.keys, m.view, m.fsort, m.filter, m.editing, m.family, procs(m), conns(m))
			}
		})
	}
}

func TestFilterBounded(t *testing.T) {
	m := keys(New(nil, Options{}), "/")
	for range 200 {
		m = keys(m, "x")
	}
	m = upd(m, tea.PasteMsg{Content: strings.Repeat("y", 500) + "\x1b[31m"})
	if len(m.filter) > maxFilter || strings.ContainsRune(m.filter, '\x1b') {
		t.Errorf("filter is %d bytes (%q), want ≤ %d printable", len(m.filter), m.filter, maxFilter)
	}
}

func TestMaxRows(t *testing.T) {
	s := flowSnap(0)
	s.Processes = nil
	for i := range 50 {
		s.Processes = append(s.Processes, snapshot.Process{PID: 1000 + i, Comm: fmt.Sprintf("p%02d", i), TxRate: snapshot.Rate{Current: float64(i)}})
	}
	m := feed(New(nil, Options{View: ViewProcesses, MaxRows: 10}), s)
	// 10 processes (the busiest) and the kernel bucket.
	if len(m.procRows) != 11 || m.procHidden != 40 || m.procRows[0].proc.PID != 1049 {
		t.Errorf("rows %d hidden %d, want 11 and 40 with the busiest first", len(m.procRows), m.procHidden)
	}
	if v := plainView(t, m); !strings.Contains(v, "+40 not shown") {
		t.Errorf("header does not say rows are not shown:\n%s", v)
	}
	if got := New(nil, Options{MaxRows: 1 << 30}).opts.MaxRows; got != MaxMaxRows {
		t.Errorf("MaxRows clamped to %d, want %d", got, MaxMaxRows)
	}
}

func TestBucketHistoryBounded(t *testing.T) {
	var snaps []snapshot.Snapshot
	for i := range 200 {
		s := flowSnap(i)
		for b := range 40 {
			s.Unattributed = append(s.Unattributed, snapshot.Bucket{Name: fmt.Sprintf("b%d", b)})
		}
		snaps = append(snaps, s)
	}
	m := feed(New(nil, Options{}), snaps...)
	if len(m.buckets) > maxBuckets {
		t.Errorf("%d buckets tracked, want ≤ %d", len(m.buckets), maxBuckets)
	}
	for name, h := range m.buckets {
		if len(h) > 41 {
			t.Errorf("bucket %s: %d samples for a 40 s window at 1 s", name, len(h))
		}
	}
}

// fakeResolver answers from a table; addresses in slow block until release
// is closed. It records the most lookups running at once.
type fakeResolver struct {
	names   map[string]string
	slow    map[string]bool
	release chan struct{}
	calls   atomic.Int32
	mu      sync.Mutex
	running int
	peak    int
}

func (f *fakeResolver) lookup(ctx context.Context, addr string) ([]string, error) {
	f.calls.Add(1)
	f.mu.Lock()
	f.running++
	f.peak = max(f.peak, f.running)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.running--
		f.mu.Unlock()
	}()
	if f.slow[addr] || f.slow["*"] {
		select {
		case <-f.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if n, ok := f.names[addr]; ok {
		return []string{n + "."}, nil
	}
	return nil, errors.New("no such host")
}

// runCmd runs a command like the program does, expanding batches, and
// returns the messages.
func runCmd(cmd tea.Cmd) []tea.Msg {
	if cmd == nil {
		return nil
	}
	msg := cmd()
	if b, ok := msg.(tea.BatchMsg); ok {
		var out []tea.Msg
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, c := range b {
			wg.Go(func() {
				ms := runCmd(c)
				mu.Lock()
				out = append(out, ms...)
				mu.Unlock()
			})
		}
		wg.Wait()
		return out
	}
	return []tea.Msg{msg}
}

func dnsMsgs(msgs []tea.Msg) []dnsMsg {
	var out []dnsMsg
	for _, m := range msgs {
		if d, ok := m.(dnsMsg); ok {
			out = append(out, d)
		}
	}
	return out
}

func TestDNSToggleIssuesCommandOnlyWhenEnabled(t *testing.T) {
	f := &fakeResolver{names: map[string]string{"93.184.216.34": "example.com", "127.0.0.1": "localhost"}}
	m := feed(New(nil, Options{View: ViewConnections, Resolver: f.lookup}), flowSnap(0))
	next, cmd := m.Update(keyMsg("n"))
	m = next.(Model)
	if cmd == nil {
		t.Fatal("n (on): no lookup command")
	}
	if f.calls.Load() != 0 {
		t.Fatal("Update called the resolver")
	}
	got := dnsMsgs(runCmd(cmd))
	// Remote addresses: 127.0.0.1, 2001:db8:1234::beef and 93.184.216.34;
	// never the unconnected UDP socket's empty remote.
	if len(got) != 3 {
		t.Fatalf("lookups %+v, want 3", got)
	}
	if len(m.dns.inflight) != 3 {
		t.Errorf("in flight %d, want 3", len(m.dns.inflight))
	}
	for _, d := range got {
		m = upd(m, d)
	}
	if len(m.dns.inflight) != 0 || len(m.dns.cache) != 3 {
		t.Errorf("after answers: in flight %d, cached %d", len(m.dns.inflight), len(m.dns.cache))
	}
	v := render(t, sized(m, 120, 24), colorprofile.NoTTY)
	for _, want := range []string{"localhost:8080", "example.com:22", "[2001:db8:1234::beef]:50312"} {
		if !strings.Contains(v, want) {
			t.Errorf("view lacks %q:\n%s", want, v)
		}
	}
	// Cached: the next snapshot looks nothing up.
	next, cmd = m.Update(SnapshotMsg{Snapshot: flowSnap(1)})
	m = next.(Model)
	if len(dnsMsgs(runCmd(cmd))) != 0 {
		t.Error("cached addresses looked up again")
	}
	// Off: no command, numeric addresses again.
	next, cmd = m.Update(keyMsg("n"))
	m = next.(Model)
	if cmd != nil {
		t.Error("n (off) returned a command")
	}
	if v := plainView(t, m); strings.Contains(v, "example.com") {
		t.Error("names shown with DNS off")
	}
	// A snapshot with DNS off looks nothing up.
	if _, cmd = m.Update(SnapshotMsg{Snapshot: flowSnap(2)}); len(dnsMsgs(runCmd(cmd))) != 0 {
		t.Error("lookups with DNS off")
	}
}

func TestDNSSlowAnswerDoesNotBlockUpdate(t *testing.T) {
	f := &fakeResolver{slow: map[string]bool{"*": true}, release: make(chan struct{}), names: map[string]string{"93.184.216.34": "example.com"}}
	m := feed(New(nil, Options{View: ViewConnections, Resolver: f.lookup, DNSWorkers: 2}), flowSnap(0))

	start := time.Now()
	next, cmd := m.Update(keyMsg("n"))
	m = next.(Model)
	if cmd == nil {
		t.Fatal("no lookup command")
	}
	// Update and View return at once although every lookup blocks.
	m = feed(m, flowSnap(1), flowSnap(2))
	_ = plainView(t, m)
	if d := time.Since(start); d > time.Second {
		t.Errorf("Update took %v with a blocked resolver", d)
	}
	// The commands run (as the program would) and wait on the resolver;
	// at most DNSWorkers at a time.
	done := make(chan []tea.Msg, 1)
	go func() { done <- runCmd(cmd) }()
	waitFor(t, func() bool { return f.calls.Load() == 2 })
	select {
	case <-done:
		t.Fatal("lookups finished before the resolver answered")
	case <-time.After(10 * time.Millisecond):
	}
	close(f.release)
	msgs := dnsMsgs(<-done)
	if len(msgs) != 3 {
		t.Fatalf("got %d answers, want 3", len(msgs))
	}
	f.mu.Lock()
	peak := f.peak
	f.mu.Unlock()
	if peak > 2 {
		t.Errorf("%d lookups at once, want ≤ DNSWorkers (2)", peak)
	}
	for _, d := range msgs {
		m = upd(m, d)
	}
	if v := render(t, sized(m, 120, 24), colorprofile.NoTTY); !strings.Contains(v, "example.com:22") {
		t.Errorf("answer not shown:\n%s", v)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestDNSCacheBoundedWithTTL(t *testing.T) {
	d := newDNS(Options{DNSCacheSize: 4, DNSTTL: 10 * time.Second}.normalized())
	now := t0
	for i := range 10 {
		d = d.answer(dnsMsg{addr: fmt.Sprintf("10.0.0.%d", i), name: "h"}, now)
		now = now.Add(time.Second)
	}
	if len(d.cache) != 4 {
		t.Errorf("cache holds %d, want 4", len(d.cache))
	}
	if _, ok := d.cache["10.0.0.9"]; !ok {
		t.Error("newest entry evicted")
	}
	if _, ok := d.cache["10.0.0.0"]; ok {
		t.Error("oldest entry kept")
	}
	// Failures expire sooner, and entries expire.
	d = d.answer(dnsMsg{addr: "10.9.9.9"}, now)
	if e := d.cache["10.9.9.9"]; e.name != "" || e.expires.Sub(now) > failTTL {
		t.Errorf("failure cached as %+v", e)
	}
	m := feed(New(nil, Options{View: ViewConnections, DNS: true, DNSTTL: 10 * time.Second, Resolver: (&fakeResolver{}).lookup}), flowSnap(0))
	m.dns = m.dns.answer(dnsMsg{addr: "93.184.216.34", name: "example.com"}, m.snap.Time)
	m.dns.inflight = nil
	late := flowSnap(30) // 30 s later: expired
	_, cmd := m.Update(SnapshotMsg{Snapshot: late})
	found := false
	for _, d := range dnsMsgs(runCmd(cmd)) {
		found = found || d.addr == "93.184.216.34"
	}
	if !found {
		t.Error("expired entry not looked up again")
	}
}

func TestFlowUpdateDoesNotMutatePreviousModel(t *testing.T) {
	f := &fakeResolver{names: map[string]string{"93.184.216.34": "example.com"}}
	m := sized(feed(New(nil, Options{View: ViewConnections, Resolver: f.lookup}), flowSeries(3)...), 80, 24)
	before := render(t, m, colorprofile.NoTTY)
	next, cmd := m.Update(keyMsg("n"))
	m2 := next.(Model)
	for _, d := range dnsMsgs(runCmd(cmd)) {
		m2 = upd(m2, d)
	}
	m2 = keys(feed(m2, flowSeries(6)[3:]...), "j", "s", "t", "/", "c", "enter", "f")
	_ = m2.View()
	if after := render(t, m, colorprofile.NoTTY); after != before {
		t.Errorf("previous model changed:\n--- before ---\n%s\n--- after ---\n%s", before, after)
	}
}

func TestFlowTinyWindowsDoNotPanic(t *testing.T) {
	full := feed(New(nil, Options{}), flowSeries(5)...)
	for _, base := range []Model{keys(full, "2"), keys(full, "2", "t"), keys(full, "3"), keys(full, "3", "t"), keys(full, "3", "t", "t"), keys(full, "?")} {
		for w := 0; w <= 30; w++ {
			for h := 0; h <= 12; h++ {
				v := render(t, sized(base, w, h), colorprofile.NoTTY)
				checkFits(t, v, w, h)
			}
		}
	}
}
