package diagnose_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/netmeter/netmeter/internal/diagnose"
	"github.com/netmeter/netmeter/internal/diagnose/diagtest"
)

const window = 1500 * time.Millisecond

// diagnoseDuring runs traffic from a goroutine, lets it start, and
// diagnoses ns (limited to iface if set) while it runs.
func diagnoseDuring(t *testing.T, ns *diagtest.Netns, iface string, traffic func(ctx context.Context)) diagnose.Report {
	t.Helper()
	c, err := diagnose.NewCollector(diagnose.Options{NetnsPath: ns.Path, NetnsName: ns.Name, Interface: iface, Window: window})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if traffic != nil {
			traffic(ctx)
		}
	}()
	defer func() { cancel(); <-done }()
	time.Sleep(300 * time.Millisecond)
	ev, err := c.Collect(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	r := diagnose.NewReport(ev)
	var b strings.Builder
	_ = r.WriteText(&b)
	t.Logf("report:\n%s", b.String())
	return r
}

// find returns the finding of kind, failing t if there is none.
func find(t *testing.T, r diagnose.Report, kind string) diagnose.Finding {
	t.Helper()
	for _, f := range r.Findings {
		if f.Kind == kind {
			if f.Fix == "" || len(f.Evidence) == 0 {
				t.Errorf("finding %s without fix or evidence: %+v", kind, f)
			}
			return f
		}
	}
	t.Fatalf("no %s finding in %d findings", kind, len(r.Findings))
	return diagnose.Finding{}
}

func wantOwner(t *testing.T, f diagnose.Finding, pid int) {
	t.Helper()
	if f.Owner == nil || f.Owner.PID != pid {
		t.Errorf("%s: owner %+v, want pid %d", f.Kind, f.Owner, pid)
	}
	if !strings.Contains(f.Title, fmt.Sprintf("pid %d", pid)) {
		t.Errorf("%s: title %q does not name pid %d", f.Kind, f.Title, pid)
	}
}

func TestDiagnoseQuietNamespace(t *testing.T) {
	ns := diagtest.NewNetns(t)
	r := diagnoseDuring(t, ns, "", nil)
	if r.Problem || len(r.Findings) != 0 {
		t.Fatalf("findings in a quiet namespace: %+v", r.Findings)
	}
	if r.Layers[0].Status != diagnose.NotApplicable {
		t.Errorf("physical layer on lo only: %q, want not_applicable", r.Layers[0].Status)
	}
}

func TestDiagnoseUDPReceiveBufferFull(t *testing.T) {
	ns := diagtest.NewNetns(t)
	sink, addr := diagtest.StartUDPSink(t, ns)
	r := diagnoseDuring(t, ns, "", func(ctx context.Context) {
		if err := diagtest.UDPFlood(ctx, ns, addr); err != nil {
			t.Error(err)
		}
	})
	f := find(t, r, "udp_rcvbuf")
	if f.Layer != diagnose.LayerApplication || !strings.Contains(f.Subject, addr) {
		t.Errorf("finding %+v, want the application layer and socket %s", f, addr)
	}
	wantOwner(t, f, sink.Pid())
	if !strings.Contains(f.Fix, "SO_RCVBUF") {
		t.Errorf("fix %q does not suggest a bigger buffer", f.Fix)
	}
	if r.DropTracing {
		found := false
		for _, d := range r.Drops {
			found = found || d.Owner != nil && d.Owner.PID == sink.Pid()
		}
		if !found {
			t.Errorf("no traced drop reason attributed to pid %d: %+v", sink.Pid(), r.Drops)
		}
	}
}

func TestDiagnoseListenBacklogOverflow(t *testing.T) {
	ns := diagtest.NewNetns(t)
	srv, addr := diagtest.StartListener(t, ns)
	r := diagnoseDuring(t, ns, "", func(ctx context.Context) { diagtest.ConnectFlood(ctx, ns, addr) })
	f := find(t, r, "listen_overflow")
	if f.Layer != diagnose.LayerApplication || !strings.Contains(f.Subject, addr) {
		t.Errorf("finding %+v, want the application layer and listener %s", f, addr)
	}
	wantOwner(t, f, srv.Pid())
	if !strings.Contains(f.Fix, "somaxconn") || !strings.Contains(f.Fix, "listen(2)") {
		t.Errorf("fix %q does not suggest a bigger backlog", f.Fix)
	}
}

func TestDiagnoseNetfilterDropRule(t *testing.T) {
	for _, counted := range []bool{true, false} {
		t.Run(fmt.Sprintf("counter=%v", counted), func(t *testing.T) {
			ns := diagtest.NewNetns(t)
			rule := diagtest.AddDropRule(t, ns, "nmdiag", 9999, counted)
			r := diagnoseDuring(t, ns, "", func(ctx context.Context) {
				if err := diagtest.UDPFlood(ctx, ns, "127.0.0.1:9999"); err != nil {
					t.Error(err)
				}
			})
			if !counted && !r.DropTracing {
				t.Skip("a rule without counter is found through drop tracing, which did not load")
			}
			f := find(t, r, "netfilter_drop")
			name := fmt.Sprintf("rule %s %s %s handle %d", rule.Family, rule.Table, rule.Chain, rule.Handle)
			if f.Layer != diagnose.LayerKernel || f.Subject != name || !strings.Contains(f.Title, name) {
				t.Errorf("finding %+v, want the kernel layer and %q", f, name)
			}
			if !strings.Contains(f.Fix, fmt.Sprintf("handle %d", rule.Handle)) {
				t.Errorf("fix %q does not name the rule", f.Fix)
			}
		})
	}
}

func TestDiagnoseQdiscRateLimit(t *testing.T) {
	ns := diagtest.NewNetns(t)
	sh := diagtest.AddShapedVeth(t, ns, 12500, 3000) // 100 kbit/s, 3 packets of queue
	r := diagnoseDuring(t, ns, sh.Link, func(ctx context.Context) {
		if err := diagtest.UDPFlood(ctx, ns, sh.Dst.String()); err != nil {
			t.Error(err)
		}
	})
	f := find(t, r, "qdisc_drops")
	if f.Layer != diagnose.LayerKernel || !strings.Contains(f.Title, "tbf") || !strings.Contains(f.Title, sh.Link) {
		t.Errorf("finding %+v, want the kernel layer, tbf on %s", f, sh.Link)
	}
	if !strings.Contains(f.Fix, "raise the rate") {
		t.Errorf("fix %q does not suggest raising the rate", f.Fix)
	}
	// The sender is this test process; drop tracing names it.
	if r.DropTracing && (f.Owner == nil || f.Owner.PID != os.Getpid()) {
		t.Errorf("owner %+v, want the sender, pid %d", f.Owner, os.Getpid())
	}
}

// TestDiagnoseWatchClears diagnoses twice, as --watch does: while a UDP
// receiver drops (a new finding) and after the sender stopped (cleared).
func TestDiagnoseWatchClears(t *testing.T) {
	ns := diagtest.NewNetns(t)
	_, addr := diagtest.StartUDPSink(t, ns)
	c, err := diagnose.NewCollector(diagnose.Options{NetnsPath: ns.Path, Window: 500 * time.Millisecond, NoDropTracing: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- diagtest.UDPFlood(ctx, ns, addr) }()
	time.Sleep(100 * time.Millisecond)
	ev, err := c.Collect(t.Context())
	cancel()
	if ferr := <-done; ferr != nil {
		t.Fatal(ferr)
	}
	if err != nil {
		t.Fatal(err)
	}
	first := diagnose.NewReport(ev)
	first.Diff(nil)
	if len(first.Changes.New) != 1 || first.Changes.New[0].Kind != "udp_rcvbuf" {
		t.Fatalf("first report's new findings: %+v", first.Changes.New)
	}
	if ev, err = c.Collect(t.Context()); err != nil {
		t.Fatal(err)
	}
	second := diagnose.NewReport(ev)
	second.Diff(&first)
	if second.Problem || len(second.Changes.Cleared) != 1 || second.Changes.Cleared[0].Kind != "udp_rcvbuf" {
		t.Fatalf("second report: findings %+v, changes %+v", second.Findings, second.Changes)
	}
}

// A process that accepts a connection and never reads it: its Recv-Q grows
// while a peer writes (the application is the bottleneck), named with its
// pid.
func TestDiagnoseRecvQueueGrows(t *testing.T) {
	ns := diagtest.NewNetns(t)
	reader, addr := diagtest.StartStalledReader(t, ns, 0)
	// Slow enough that the reader's ~128 KiB buffer is still filling
	// through the window (it does not autotune up while unread).
	diagtest.StartPacedWriter(t, ns, addr, 50_000)
	f := find(t, diagnoseDuring(t, ns, "", nil), "recv_queue")
	if f.Layer != diagnose.LayerApplication || !strings.Contains(f.Subject, addr) {
		t.Errorf("finding %+v, want the application layer and socket %s", f, addr)
	}
	wantOwner(t, f, reader.Pid())
}

// The same with a tiny receive buffer: the window closes at once, so the
// writer's Send-Q grows, named with the writer's pid.
func TestDiagnoseSendQueueGrows(t *testing.T) {
	ns := diagtest.NewNetns(t)
	_, addr := diagtest.StartStalledReader(t, ns, 4096)
	writer := diagtest.StartPacedWriter(t, ns, addr, 400_000)
	f := find(t, diagnoseDuring(t, ns, "", nil), "send_queue")
	if f.Layer != diagnose.LayerApplication || !strings.Contains(f.Subject, addr) {
		t.Errorf("finding %+v, want the application layer and a connection to %s", f, addr)
	}
	wantOwner(t, f, writer.Pid())
}
