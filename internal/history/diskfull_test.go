package history

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// smallTmpfs mounts a tmpfs of size bytes in a temporary directory and
// unmounts it when the test ends. It skips unless the test runs as root,
// and fails instead with NETMETER_REQUIRE_PRIVILEGED=1 (as in CI).
func smallTmpfs(t *testing.T, size int) string {
	t.Helper()
	skip := t.Skipf
	if os.Getenv("NETMETER_REQUIRE_PRIVILEGED") == "1" {
		skip = t.Fatalf
	}
	if os.Geteuid() != 0 {
		skip("mounting a small tmpfs to fill it needs root; running as euid %d", os.Geteuid())
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0700", size)); err != nil {
		skip("mount a %d-byte tmpfs on %s: %v", size, dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// fill writes a file until the file system is full, then gives back spare
// bytes.
func fill(t *testing.T, path string, spare int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			fi, err := f.Stat()
			if err != nil {
				t.Fatal(err)
			}
			if err := f.Truncate(max(0, fi.Size()-spare)); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
}

// A full disk: Record fails with an error that says so and wraps ENOSPC;
// everything committed stays readable and complete; once space is freed,
// Record works again and nothing committed was lost.
func TestDiskFull(t *testing.T) {
	dir := smallTmpfs(t, 2<<20)
	path := filepath.Join(dir, "history.db")
	s, err := Open(Options{Path: path, Location: time.UTC, Retention: keepAll})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() }) // before the unmount
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	var want Counters // eth0's committed total
	n := 0
	record := func() error {
		d := map[Entity]Counters{eth0: {RxBytes: uint64(n + 1), TxBytes: 1, RxPackets: 1, TxPackets: 1}}
		for j := range 10 { // new entities and rows: the file grows
			d[Entity{KindProcess, fmt.Sprintf("proc-%d-%d-%s", n, j, strings.Repeat("x", 40))}] = Counters{RxBytes: 1}
		}
		err := s.RecordWithState(base.Add(time.Duration(n)*5*time.Minute), d, map[string][]byte{"n": []byte(fmt.Sprint(n))})
		if err == nil {
			want = want.add(d[eth0])
			n++
		}
		return err
	}
	for range 20 {
		if err := record(); err != nil {
			t.Fatal(err)
		}
	}
	filler := filepath.Join(dir, "filler")
	fill(t, filler, 256<<10) // some room: Records fill it
	if fi, err := os.Stat(filler); err != nil {
		t.Fatal(err)
	} else if fi.Size() < 512<<10 {
		t.Fatalf("the store left too little room for a filler: %d bytes", fi.Size())
	}
	var full error
	for range 10000 {
		if full = record(); full != nil {
			break
		}
	}
	if full == nil {
		t.Fatal("Record never failed on a full disk")
	}
	t.Logf("after %d Records: %v", n, full)
	if !errors.Is(full, syscall.ENOSPC) || !strings.Contains(full.Error(), "disk full") || !strings.Contains(full.Error(), path) {
		t.Errorf("the error should say the disk is full, name the file and wrap ENOSPC: %v", full)
	}
	check := func(when string) {
		t.Helper()
		for _, res := range Resolutions {
			rows, err := s.Query(Query{Entities: []Entity{eth0}, Resolution: res})
			if err != nil {
				t.Fatalf("%s: query %s: %v", when, res, err)
			}
			if got := sumRows(rows); got != want {
				t.Errorf("%s: %s total %+v, want %+v (%d Records)", when, res, got, want, n)
			}
		}
		if v, err := s.State("n"); err != nil || string(v) != fmt.Sprint(n-1) {
			t.Errorf("%s: state %q, %v; want %d", when, v, err, n-1)
		}
		if es, err := s.Entities(KindProcess); err != nil || len(es) != 10*n {
			t.Errorf("%s: %d processes, %v; want %d", when, len(es), err, 10*n)
		}
	}
	check("disk full")
	for range 3 { // still full: still a clear error, still nothing half-done
		if err := record(); !errors.Is(err, syscall.ENOSPC) {
			t.Errorf("Record on a full disk: %v", err)
		}
	}
	check("disk still full")
	// The agent restarts while the disk is full: Open works, reads are
	// complete, Record still fails clearly.
	if err := s.Close(); err != nil {
		t.Logf("Close on a full disk: %v", err)
	}
	if s, err = Open(Options{Path: path, Location: time.UTC, Retention: keepAll}); err != nil {
		t.Fatalf("Open on a full disk: %v", err)
	}
	check("reopened on a full disk")
	if err := record(); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("Record after reopening on a full disk: %v", err)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if err := record(); err != nil {
			t.Fatalf("Record after space was freed: %v", err)
		}
	}
	check("space freed")
	if err := s.Check(); err != nil {
		t.Error(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(Options{Path: path, Location: time.UTC, Retention: keepAll})
	if err != nil {
		t.Fatal(err)
	}
	check("reopened")
}
