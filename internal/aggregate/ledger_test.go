package aggregate

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/netmeter/netmeter/internal/snapshot"
	"github.com/netmeter/netmeter/internal/source/engine"
	"github.com/netmeter/netmeter/internal/testnet"
	"golang.org/x/sys/unix"
)

func TestLedgerPeriods(t *testing.T) {
	l, err := NewLedger(15, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string]string{
		"2026-11-14T23:59:59Z": "2026-10",
		"2026-11-15T00:00:00Z": "2026-11",
		"2026-01-03T00:00:00Z": "2025-12",
		"2026-12-31T12:00:00Z": "2026-12",
	} {
		at, _ := time.Parse(time.RFC3339, in)
		if got := l.Period(at); got != want {
			t.Errorf("Period(%s) = %s, want %s", in, got, want)
		}
	}
	for _, bad := range []int{0, 29, -1} {
		if _, err := NewLedger(bad, nil); err == nil {
			t.Errorf("billing day %d accepted", bad)
		}
	}
}

func TestCheckpointRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	l, _ := NewLedger(1, time.UTC)
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	l.Add(now, []snapshot.Container{{Account: "shop/web", Delta: snapshot.Traffic{TxBytes: 100, RxBytes: 10}}, {Account: "", Delta: snapshot.Traffic{TxBytes: 5}}})
	l.Add(now.Add(time.Second), []snapshot.Container{{Account: "shop/web", Delta: snapshot.Traffic{TxBytes: 50}}})
	f := NewFlows(FlowOptions{})
	s := sock(42, 100, "10.0.0.1:40000", "10.0.0.2:80", engine.RoleClient, 1000, 0)
	f.Observe(now, engine.Reading{Live: []engine.Socket{s}})
	if err := SaveCheckpoint(path, now, l, f); err != nil {
		t.Fatal(err)
	}

	l2, _ := NewLedger(1, time.UTC)
	f2 := NewFlows(FlowOptions{})
	restored, err := LoadCheckpoint(path, now, l2, f2)
	if err != nil || !restored {
		t.Fatalf("load: %v %v", restored, err)
	}
	if e := l2.Entries("2026-11"); len(e) != 1 || e[0].Account != "shop/web" || e[0].Total.TxBytes != 150 {
		t.Fatalf("entries %+v", e)
	}
	// The restored socket counts only what the kernel added since.
	s.Traffic.TxPayload, s.Traffic.TxBytes = 1500, 1552
	procs, _, _ := f2.Observe(now.Add(time.Second), engine.Reading{Live: []engine.Socket{s}})
	if p := procByPID(procs, 100); p.Total.TxPayload != 500 {
		t.Fatalf("after restore the socket counted %d, want 500 (no double count)", p.Total.TxPayload)
	}

	// Another boot: totals carry, per-socket counters do not.
	var cp Checkpoint
	data, _ := os.ReadFile(path)
	json.Unmarshal(data, &cp)
	cp.BootID = "another-boot"
	data, _ = json.Marshal(cp)
	os.WriteFile(path, data, 0o600)
	l3, _ := NewLedger(1, time.UTC)
	if restored, err := LoadCheckpoint(path, now, l3, NewFlows(FlowOptions{})); err != nil || restored {
		t.Fatalf("after a reboot: restored %v err %v", restored, err)
	}
	if e := l3.Entries(""); len(e) != 1 || e[0].Total.TxBytes != 150 {
		t.Fatalf("totals after reboot %+v", e)
	}
}

func TestCorruptCheckpointKeptAside(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	os.WriteFile(path, []byte("{not json"), 0o600)
	l, _ := NewLedger(1, nil)
	_, err := LoadCheckpoint(path, time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC), l, nil)
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("err = %v, want ErrCorrupt", err)
	}
	if b, _ := os.ReadFile(path + ".corrupt-20261123T000000Z"); string(b) != "{not json" {
		t.Fatal("the corrupt file was not kept aside intact")
	}
	if _, err := LoadCheckpoint(path, time.Now(), l, nil); err != nil {
		t.Fatalf("after setting it aside: %v", err)
	}
}

// TestFullDiskKeepsOldCheckpoint: on a full disk the save fails with a clear
// error and the previous checkpoint stays intact.
func TestFullDiskKeepsOldCheckpoint(t *testing.T) {
	testnet.RequirePrivileged(t) // mounts a tiny tmpfs
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=64k"); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(dir, unix.MNT_DETACH)
	path := filepath.Join(dir, "state.json")
	l, _ := NewLedger(1, nil)
	now := time.Now()
	l.Add(now, []snapshot.Container{{Account: "a", Delta: snapshot.Traffic{TxBytes: 1}}})
	if err := SaveCheckpoint(path, now, l, nil); err != nil {
		t.Fatal(err)
	}
	old, _ := os.ReadFile(path)
	// Enough accounts that the next checkpoint no longer fits.
	for i := range 5000 {
		l.Add(now, []snapshot.Container{{Account: fmt.Sprintf("account-%d", i), Delta: snapshot.Traffic{TxBytes: 1}}})
	}
	err := SaveCheckpoint(path, now, l, nil)
	if err == nil || !errors.Is(err, unix.ENOSPC) {
		t.Fatalf("save on a full disk: %v, want ENOSPC", err)
	}
	t.Logf("error: %v", err)
	if cur, _ := os.ReadFile(path); string(cur) != string(old) {
		t.Fatal("a failed save changed the old checkpoint")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("temporary files left: %v", ents)
	}
}
