package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/netmeter/netmeter/internal/diagnose"
	"github.com/netmeter/netmeter/internal/diagnose/diagtest"
)

func TestDiagnoseUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"diagnose", "--window", "1ms"},
		{"diagnose", "--watch", "--count", "-1"},
		{"diagnose", "eth0", "eth1"},
	} {
		if code := run(context.Background(), t, io.Discard, args...); code != 2 {
			t.Errorf("netmeter %s: exit %d, want 2", strings.Join(args, " "), code)
		}
	}
}

func decodeReports(t *testing.T, b []byte) []diagnose.Report {
	t.Helper()
	var out []diagnose.Report
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r diagnose.Report
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, r)
	}
	return out
}

// TestDiagnoseCLINetns runs `netmeter --netns NAME diagnose --json` on a
// quiet namespace (exit 0, no findings), on one whose UDP receiver drops
// (exit 3, the receiver's pid), and with --watch.
func TestDiagnoseCLINetns(t *testing.T) {
	ns := diagtest.NewNetns(t)
	var out bytes.Buffer
	if code := run(t.Context(), t, &out, "--netns", ns.Name, "diagnose", "--json", "--window", "500ms", "--no-drop-tracing"); code != 0 {
		t.Fatalf("quiet namespace: exit %d, want 0:\n%s", code, out.String())
	}
	rs := decodeReports(t, out.Bytes())
	if len(rs) != 1 || rs[0].Problem || len(rs[0].Findings) != 0 || rs[0].Netns != ns.Name || rs[0].Schema != diagnose.SchemaVersion {
		t.Fatalf("quiet namespace report:\n%s", out.String())
	}
	// Without drop tracing the kernel layer says so.
	if rs[0].DropTracing || len(rs[0].Layers) != 4 || !slices.ContainsFunc(rs[0].Layers[1].Notes, func(n diagnose.Note) bool {
		return n.Check == "drop reasons" && n.Status == diagnose.Unavailable
	}) {
		t.Errorf("kernel layer does not say drops were not traced: %+v", rs[0].Layers)
	}

	out.Reset()
	if code := run(t.Context(), t, &out, "--netns", ns.Name, "diagnose", "--window", "200ms", "--watch", "--count", "2", "--json", "--no-drop-tracing"); code != 0 {
		t.Fatalf("watch: exit %d", code)
	}
	if rs := decodeReports(t, out.Bytes()); len(rs) != 2 || rs[1].Changes == nil {
		t.Fatalf("watch printed:\n%s", out.String())
	}

	if code := run(t.Context(), t, io.Discard, "--netns", ns.Name, "diagnose", "eth9", "--no-drop-tracing"); code != 2 {
		t.Errorf("missing interface: exit %d, want 2", code)
	}

	sink, addr := diagtest.StartUDPSink(t, ns)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- diagtest.UDPFlood(ctx, ns, addr) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	time.Sleep(200 * time.Millisecond)
	out.Reset()
	if code := run(t.Context(), t, &out, "--netns", ns.Name, "diagnose"); code != diagnoseProblem {
		t.Fatalf("dropping namespace: exit %d, want %d:\n%s", code, diagnoseProblem, out.String())
	}
	text := out.String()
	t.Logf("\n%s", text)
	for _, want := range []string{"UDP receive buffer full", addr, "owner:", "SO_RCVBUF"} {
		if !strings.Contains(text, want) {
			t.Errorf("report does not say %q", want)
		}
	}
	if !strings.Contains(text, "(pid "+strconv.Itoa(sink.Pid())+")") {
		t.Errorf("report does not name pid %d", sink.Pid())
	}
}
