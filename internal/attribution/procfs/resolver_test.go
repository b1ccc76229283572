package procfs

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// fakeProc is a /proc tree whose processes tests create, reuse and kill.
type fakeProc struct {
	t    *testing.T
	root string
}

func newFakeProc(t *testing.T) fakeProc {
	t.Helper()
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "stat"), []byte("cpu 1 2 3\nbtime 1700000000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return fakeProc{t, root}
}

func (p fakeProc) fs() FS {
	return NewFS(p.root).WithUserLookup(func(uint32) (string, error) { return "u", nil })
}

// start writes (or rewrites) process pid.
func (p fakeProc) start(pid int, comm string, startTicks uint64) {
	p.t.Helper()
	dir := filepath.Join(p.root, itoa(pid))
	files := map[string]string{
		"stat":    statLine(pid, comm, 1, 0, startTicks),
		"status":  "Uid:\t0\t0\t0\t0\n",
		"cgroup":  "0::/\n",
		"cmdline": comm + "\x00",
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		p.t.Fatal(err)
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			p.t.Fatal(err)
		}
	}
}

func (p fakeProc) exit(pid int) {
	p.t.Helper()
	if err := os.RemoveAll(filepath.Join(p.root, itoa(pid))); err != nil {
		p.t.Fatal(err)
	}
}

func newResolver(t testing.TB, fs FS, opts ...Option) *Resolver {
	t.Helper()
	r, err := NewResolver(fs, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func lookupComm(r *Resolver, pid int, start uint64) string {
	info, ok := r.Lookup(pid, start)
	if !ok {
		return "<none>"
	}
	return info.Comm
}

func TestResolverCaches(t *testing.T) {
	p := newFakeProc(t)
	p.start(100, "first", 5)
	r := newResolver(t, p.fs())
	if got := lookupComm(r, 100, 0); got != "first" {
		t.Fatalf("Lookup(100, 0) = %s", got)
	}
	p.exit(100) // the cache answers without reading /proc
	for _, start := range []uint64{0, 5} {
		if got := lookupComm(r, 100, start); got != "first" {
			t.Errorf("cached Lookup(100, %d) = %s, want first", start, got)
		}
	}
	if got := lookupComm(r, 101, 0); got != "<none>" || r.Len() != 1 {
		t.Errorf("Lookup(missing pid) = %s, Len() = %d", got, r.Len())
	}
	r.Forget(100)
	if got := lookupComm(r, 100, 0); got != "<none>" || r.Len() != 0 {
		t.Errorf("Lookup after Forget = %s, Len() = %d", got, r.Len())
	}
}

func TestResolverPIDReuse(t *testing.T) {
	p := newFakeProc(t)
	p.start(100, "old", 5)
	r := newResolver(t, p.fs())
	if got := lookupComm(r, 100, 5); got != "old" {
		t.Fatalf("Lookup(100, 5) = %s", got)
	}
	p.start(100, "new", 9) // old exited, its pid reused
	if got := lookupComm(r, 100, 9); got != "new" {
		t.Errorf("Lookup(100, 9) = %s, want new", got)
	}
	if got := lookupComm(r, 100, 5); got != "<none>" {
		t.Errorf("Lookup(100, 5) after reuse = %s, want none", got)
	}
	p.exit(100) // both answers now come from the cache
	if got := lookupComm(r, 100, 5); got != "<none>" {
		t.Errorf("second Lookup(100, 5) = %s, want none", got)
	}
	if got := lookupComm(r, 100, 9); got != "new" {
		t.Errorf("second Lookup(100, 9) = %s, want new", got)
	}
	// A start time asked for first, after its process has gone.
	p.start(200, "now", 50)
	if got := lookupComm(r, 200, 40); got != "<none>" {
		t.Errorf("Lookup(200, 40) = %s, want none", got)
	}
	if got := lookupComm(r, 200, 0); got != "now" {
		t.Errorf("Lookup(200, 0) = %s, want now", got)
	}
}

func TestResolverPrune(t *testing.T) {
	p := newFakeProc(t)
	r := newResolver(t, p.fs())
	for pid := 100; pid < 105; pid++ {
		p.start(pid, "p", 5)
		lookupComm(r, pid, 0)
	}
	lookupComm(r, 999, 7) // remembered as exited
	p.exit(101)
	p.start(102, "reused", 6)
	if n := r.Prune(); n != 3 {
		t.Errorf("Prune() = %d, want 3 (exited 101, reused 102, remembered 999)", n)
	}
	if r.Len() != 3 {
		t.Errorf("Len() = %d after Prune, want 3", r.Len())
	}
	if got := lookupComm(r, 102, 0); got != "reused" {
		t.Errorf("Lookup(102) after Prune = %s, want reused", got)
	}
	if n := r.Prune(); n != 0 {
		t.Errorf("second Prune() = %d, want 0", n)
	}
}

func TestResolverBounded(t *testing.T) {
	p := newFakeProc(t)
	r := newResolver(t, p.fs(), WithMaxEntries(3))
	for pid := 1; pid <= 3; pid++ {
		p.start(pid, fmt.Sprint("p", pid), 5)
		lookupComm(r, pid, 0)
	}
	lookupComm(r, 1, 0) // 1 is now the most recent; 2 the least
	p.start(4, "p4", 5)
	lookupComm(r, 4, 0)
	if r.Len() != 3 {
		t.Fatalf("Len() = %d, want 3", r.Len())
	}
	for pid := 1; pid <= 4; pid++ {
		p.exit(pid)
	}
	for pid, want := range map[int]string{1: "p1", 2: "<none>", 3: "p3", 4: "p4"} {
		if got := lookupComm(r, pid, 0); got != want {
			t.Errorf("Lookup(%d) = %s, want %s", pid, got, want)
		}
	}
	// A fork bomb's worth of pids, exited ones included, stays bounded.
	for pid := 1000; pid < 1100; pid++ {
		p.start(pid, "bomb", 5)
		lookupComm(r, pid, 0)
		lookupComm(r, pid+100000, 7)
	}
	if r.Len() != 3 {
		t.Errorf("Len() = %d after 200 pids, want 3", r.Len())
	}
}

func TestResolverOptions(t *testing.T) {
	for _, n := range []int{0, -1} {
		if _, err := NewResolver(NewFS(""), WithMaxEntries(n)); err == nil {
			t.Errorf("WithMaxEntries(%d) accepted", n)
		}
	}
}

func TestResolverConcurrent(t *testing.T) {
	p := newFakeProc(t)
	for pid := 1; pid <= 20; pid++ {
		p.start(pid, "p", uint64(pid))
	}
	r := newResolver(t, p.fs(), WithMaxEntries(8))
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 500 {
				pid := 1 + (i*7+g)%20
				if info, ok := r.Lookup(pid, uint64(pid)); !ok || info.PID != pid {
					t.Errorf("Lookup(%d) = %+v, %v", pid, info, ok)
					return
				}
				switch i % 50 {
				case 0:
					r.Forget(pid)
				case 25:
					r.Prune()
				}
			}
		})
	}
	wg.Wait()
	if r.Len() > 8 {
		t.Errorf("Len() = %d, want ≤ 8", r.Len())
	}
}

func BenchmarkResolverLookupHit(b *testing.B) {
	r := newResolver(b, NewFS(""))
	info, ok := r.Lookup(os.Getpid(), 0)
	if !ok {
		b.Fatal("Lookup(self) failed")
	}
	pid := os.Getpid()
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := r.Lookup(pid, info.StartTicks); !ok {
			b.Fatal("miss")
		}
	}
}

func BenchmarkResolverLookupHitParallel(b *testing.B) {
	r := newResolver(b, NewFS(""))
	info, ok := r.Lookup(os.Getpid(), 0)
	if !ok {
		b.Fatal("Lookup(self) failed")
	}
	pid := os.Getpid()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, ok := r.Lookup(pid, info.StartTicks); !ok {
				b.Error("miss")
				return
			}
		}
	})
}
