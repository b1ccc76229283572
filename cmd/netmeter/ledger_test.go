package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/netmeter/netmeter/internal/aggregate"
	"github.com/netmeter/netmeter/internal/snapshot"
)

func TestLedgerCommand(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state.json")
	l, _ := aggregate.NewLedger(1, time.Local)
	nov := time.Date(2026, 11, 20, 12, 0, 0, 0, time.Local)
	l.Add(nov, []snapshot.Container{{Account: "shop/web", Delta: snapshot.Traffic{TxBytes: 1000, RxBytes: 10, TxPayload: 900}}})
	l.Add(nov.AddDate(0, -1, 0), []snapshot.Container{{Account: "shop/db", Delta: snapshot.Traffic{TxBytes: 7}}})
	if err := aggregate.SaveCheckpoint(state, nov, l, nil); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if code := run(context.Background(), t, &out, "ledger", "--state-file", state, "--period", "2026-11", "--format", "csv"); code != 0 {
		t.Fatalf("exit %d", code)
	}
	want := "period,account,tx_bytes,rx_bytes,tx_packets,rx_packets,tx_payload_bytes,rx_payload_bytes\n2026-11,shop/web,1000,10,0,0,900,0\n"
	if out.String() != want {
		t.Fatalf("csv:\n%s\nwant:\n%s", out.String(), want)
	}
	out.Reset()
	if code := run(context.Background(), t, &out, "ledger", "--state-file", state, "--all", "--format", "json"); code != 0 {
		t.Fatalf("exit %d", code)
	}
	var es []aggregate.Entry
	if err := json.Unmarshal(out.Bytes(), &es); err != nil || len(es) != 2 || es[0].Period != "2026-10" {
		t.Fatalf("json %v: %s", err, out.String())
	}
	if code := run(context.Background(), t, &out, "ledger", "--state-file", state, "--period", "Nov"); code != 2 {
		t.Fatalf("bad period: exit %d, want 2", code)
	}
	out.Reset()
	if code := run(context.Background(), t, &out, "ledger", "--state-file", state, "--period", "2026-11"); code != 0 || !strings.Contains(out.String(), "shop/web") {
		t.Fatalf("table: exit %d\n%s", code, out.String())
	}
}
