package diagnose

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// fixture is evidence of a namespace whose UDP sink drops and whose tbf
// drops, with drop tracing.
func fixture() Evidence {
	return Evidence{
		Start: time.Date(2026, 11, 23, 16, 0, 0, 0, time.UTC), Window: 2 * time.Second,
		Netns: "blue", DropTraced: true,
		Links: []Link{
			{Name: "lo", Index: 1, Kind: "loopback", AdminUp: true, Oper: "unknown"},
			{Name: "veth0", Index: 2, Kind: "veth", AdminUp: true, Carrier: true, Oper: "up", SpeedMbs: 10000, Duplex: "full", Driver: "veth", TxDropped: c(1, 1)},
		},
		Qdiscs:    []Qdisc{{Link: "veth0", Kind: "tbf", Handle: "1:", Parent: "root", Drops: c(100, 300), Overlimits: c(100, 320), Backlog: 2000, Qlen: 2, RateBps: 12500, LimitBytes: 3000}},
		Conntrack: &Conntrack{Count: 1, Max: 262144},
		Softnet:   &Softnet{TimeSqueezed: c(1, 1)},
		SNMP:      map[string]Counter{"Udp.RcvbufErrors": c(10, 210), "Udp.InDatagrams": c(5, 5)},
		Somaxconn: 4096,
		Sockets:   []Socket{{Proto: "udp", Local: "127.0.0.1:5000", Inode: 77, Drops: c(10, 210), RecvQ: c(2304, 2304), Owners: []Process{{PID: 1234, Comm: "sink"}}}},
		Drops: []Drop{
			{Reason: "QDISC_DROP", Link: "veth0", Proto: "udp", Packets: 200},
			{Reason: "SOCKET_RCVBUFF", Link: "lo", Proto: "udp", Packets: 200, Socket: "udp 127.0.0.1:5000", Owner: &Process{PID: 1234, Comm: "sink"}},
		},
		Notes: []Note{{LayerKernel, "softnet", NotApplicable, "softnet_stat counts the whole host"}},
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run with -update to accept):\n%s", name, got)
	}
}

func TestReportText(t *testing.T) {
	r := NewReport(fixture())
	var b bytes.Buffer
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	golden(t, "report.txt.golden", b.Bytes())

	var quiet bytes.Buffer
	q := NewReport(Evidence{Window: time.Second, Links: []Link{{Name: "lo", Kind: "loopback"}}})
	if err := q.WriteText(&quiet); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(quiet.String(), "No problem found") || strings.Contains(quiet.String(), "problem(s) found") {
		t.Errorf("quiet report:\n%s", quiet.String())
	}
	if !strings.Contains(quiet.String(), "not traced") || strings.Contains(quiet.String(), "could not run") {
		t.Errorf("quiet report:\n%s", quiet.String())
	}
	quiet.Reset()
	q = NewReport(Evidence{Window: time.Second, Notes: []Note{{LayerKernel, "netfilter", Unavailable, "needs CAP_NET_ADMIN"}}})
	_ = q.WriteText(&quiet)
	if !strings.Contains(quiet.String(), "Some checks could not run") || !strings.Contains(quiet.String(), "netfilter: needs CAP_NET_ADMIN (unavailable)") {
		t.Errorf("quiet report with a check that could not run:\n%s", quiet.String())
	}
}

func TestReportJSON(t *testing.T) {
	r := NewReport(fixture())
	var b bytes.Buffer
	if err := r.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var indented bytes.Buffer
	if err := json.Indent(&indented, b.Bytes(), "", "  "); err != nil {
		t.Fatal(err)
	}
	golden(t, "report.json.golden", indented.Bytes())

	// The schema: what scripts read.
	var got struct {
		Schema   *int  `json:"schema_version"`
		Problem  *bool `json:"problem_found"`
		Findings []struct {
			Layer, Kind, Severity, Subject, Title, Fix string
			Evidence                                   []string
			Owner                                      *Process
		}
		Layers []struct{ Layer, Status string }
		Drops  []Drop `json:"drop_reasons"`
	}
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Schema == nil || *got.Schema != SchemaVersion || got.Problem == nil || !*got.Problem {
		t.Fatalf("header %+v", got)
	}
	if len(got.Findings) != 2 || got.Findings[1].Kind != "udp_rcvbuf" || got.Findings[1].Owner == nil || got.Findings[1].Owner.PID != 1234 {
		t.Errorf("findings %+v", got.Findings)
	}
	if len(got.Layers) != 4 || got.Layers[0].Status != NotApplicable || got.Layers[1].Status != "problem" {
		t.Errorf("layers %+v", got.Layers)
	}

	// A quiet report has an empty list, not null.
	var q bytes.Buffer
	qr := NewReport(Evidence{Window: time.Second})
	_ = qr.WriteJSON(&q)
	if !strings.Contains(q.String(), `"findings":[]`) || !strings.Contains(q.String(), `"problem_found":false`) {
		t.Errorf("quiet JSON %s", q.String())
	}
}

func TestReportDiff(t *testing.T) {
	ev := fixture()
	first := NewReport(ev)
	first.Diff(nil)
	if len(first.Changes.New) != 2 || len(first.Changes.Cleared) != 0 {
		t.Fatalf("first changes %+v", first.Changes)
	}
	ev.Qdiscs[0].Drops = c(300, 300) // the shaper stopped dropping
	ev.Drops = ev.Drops[1:]
	second := NewReport(ev)
	second.Diff(&first)
	if len(second.Changes.New) != 0 || len(second.Changes.Cleared) != 1 || second.Changes.Cleared[0].Kind != "qdisc_drops" {
		t.Fatalf("second changes %+v", second.Changes)
	}
	var b bytes.Buffer
	if err := second.WriteChanges(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "CLEARED [kernel] rate limit") {
		t.Errorf("changes text:\n%s", b.String())
	}
	third := NewReport(ev)
	third.Diff(&second)
	b.Reset()
	_ = third.WriteChanges(&b)
	if !strings.Contains(b.String(), "1 problem(s), unchanged") {
		t.Errorf("unchanged text:\n%s", b.String())
	}
}
