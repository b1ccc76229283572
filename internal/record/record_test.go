package record

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/netmeter/netmeter/internal/history"
	"github.com/netmeter/netmeter/internal/snapshot"
)

func snap(t time.Time, kernelRx, deltaRx uint64, index int) *snapshot.Snapshot {
	return &snapshot.Snapshot{Time: t, Interfaces: []snapshot.Interface{{
		Name: "eth0", Index: index, Present: true,
		Kernel: snapshot.LinkCounters{RxBytes: kernelRx, RxPackets: kernelRx / 100},
		Delta:  snapshot.LinkCounters{RxBytes: deltaRx, RxPackets: deltaRx / 100},
	}}, Processes: []snapshot.Process{{PID: 7, Comm: "curl", Delta: snapshot.Traffic{TxBytes: 500, TxPackets: 5}}},
		Containers: []snapshot.Container{{Name: "web", Account: "acme", Delta: snapshot.Traffic{RxBytes: 300, RxPackets: 3}}}}
}

func total(t *testing.T, st *history.Store, e history.Entity) history.Counters {
	t.Helper()
	rows, err := st.Query(history.Query{Entities: []history.Entity{e}, Resolution: history.ResYear})
	if err != nil {
		t.Fatal(err)
	}
	var c history.Counters
	for _, r := range rows {
		c.RxBytes += r.RxBytes
		c.TxBytes += r.TxBytes
	}
	return c
}

// Each restart case: the first agent ends with the kernel at 10000 bytes;
// the second starts when the kernel reads `kernel` (the first snapshot of
// a run is a baseline: delta 0) and then counts 100 more.
func TestContinuity(t *testing.T) {
	t0 := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name   string
		boot   string
		index  int
		kernel uint64
		want   uint64 // total rx in the store at the end
	}{
		{"same boot: the kernel's count while stopped is added", "boot-1", 2, 15000, 10000 + 5000 + 100},
		{"new boot: everything since boot, the rest is a gap", "boot-2", 2, 700, 10000 + 700 + 100},
		{"interface re-created: everything since", "boot-1", 3, 400, 10000 + 400 + 100},
		{"driver reset on the same boot: from zero", "boot-1", 2, 50, 10000 + 50 + 100},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st, err := history.Open(history.Options{Path: filepath.Join(t.TempDir(), "h.db"), Location: time.UTC})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			r1, _ := New(st, Options{BootID: "boot-1"})
			// First run: baseline at 0 (a new store counts from its first sight), then 10000.
			if err := r1.Add(snap(t0, 0, 0, 2)); err != nil {
				t.Fatal(err)
			}
			if err := r1.Add(snap(t0.Add(time.Second), 10000, 10000, 2)); err != nil {
				t.Fatal(err)
			}
			r2, _ := New(st, Options{BootID: tt.boot})
			t1 := t0.Add(time.Hour)
			if err := r2.Add(snap(t1, tt.kernel, 0, tt.index)); err != nil {
				t.Fatal(err)
			}
			if err := r2.Add(snap(t1.Add(time.Second), tt.kernel+100, 100, tt.index)); err != nil {
				t.Fatal(err)
			}
			got := total(t, st, history.Entity{Kind: history.KindInterface, Name: "eth0"})
			if got.RxBytes != tt.want {
				t.Errorf("rx %d, want %d", got.RxBytes, tt.want)
			}
			gaps, err := st.Gaps(time.Time{}, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			if len(gaps) != 1 || !gaps[0].Start.Equal(t0.Add(time.Second)) || !gaps[0].End.Equal(t1) {
				t.Errorf("gaps %+v, want one from the last write to the restart", gaps)
			}
			// Programs, containers and accounts: their deltas, per run.
			for e, want := range map[history.Entity]history.Counters{
				{Kind: history.KindProcess, Name: "curl"}:  {TxBytes: 4 * 500},
				{Kind: history.KindContainer, Name: "web"}: {RxBytes: 4 * 300},
				{Kind: history.KindAccount, Name: "acme"}:  {RxBytes: 4 * 300},
			} {
				if got := total(t, st, e); got.RxBytes != want.RxBytes || got.TxBytes != want.TxBytes {
					t.Errorf("%v: %+v, want %+v", e, got, want)
				}
			}
		})
	}
}

// A failed write keeps the deltas and writes them with the next one.
func TestRetryAfterFailure(t *testing.T) {
	dir := t.TempDir()
	st, err := history.Open(history.Options{Path: filepath.Join(dir, "h.db"), Location: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	r, _ := New(st, Options{BootID: "b"})
	t0 := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
	if err := r.Add(snap(t0, 0, 0, 2)); err != nil {
		t.Fatal(err)
	}
	st.Close() // every write fails from here
	if err := r.Add(snap(t0.Add(time.Second), 1000, 1000, 2)); err == nil {
		t.Fatal("write to a closed store succeeded")
	}
	st2, err := history.Open(history.Options{Path: filepath.Join(dir, "h.db"), Location: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	r.st = st2
	if err := r.Add(snap(t0.Add(2*time.Second), 1500, 500, 2)); err != nil {
		t.Fatal(err)
	}
	if got := total(t, st2, history.Entity{Kind: history.KindInterface, Name: "eth0"}); got.RxBytes != 1500 {
		t.Errorf("rx %d after a failed and a good write, want 1500", got.RxBytes)
	}
}
