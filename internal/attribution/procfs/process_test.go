package procfs

import (
	"errors"
	"maps"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fixtureFS copies testdata/proc to a temporary directory and adds what git
// does not hold well: the exe and ns/net symlinks of pid 4242 (ns/net points
// at a file whose inode the test knows). It returns the FS and that inode.
func fixtureFS(t *testing.T) (FS, uint64) {
	t.Helper()
	root := filepath.Join(t.TempDir(), "proc")
	if err := os.CopyFS(root, os.DirFS("testdata/proc")); err != nil {
		t.Fatal(err)
	}
	nsFile := filepath.Join(t.TempDir(), "net:[4026531840]")
	if err := os.WriteFile(nsFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(nsFile, &st); err != nil {
		t.Fatal(err)
	}
	mustSymlink(t, "/usr/bin/my prog", root, "4242/exe")
	mustSymlink(t, nsFile, root, "4242/ns/net")
	fs := NewFS(root).WithUserLookup(func(uid uint32) (string, error) {
		if uid == 1000 {
			return "alice", nil
		}
		if uid == 0 {
			return "root", nil
		}
		return "", user.UnknownUserIdError(int(uid))
	})
	return fs, st.Ino
}

func mustSymlink(t *testing.T, target, root, rel string) {
	t.Helper()
	p := filepath.Join(root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
}

func TestProcessFixture(t *testing.T) {
	fs, nsIno := fixtureFS(t)
	got, err := fs.Process(4242)
	if err != nil {
		t.Fatal(err)
	}
	docker := "/docker/" + dockerID
	want := Info{
		PID:        4242,
		Comm:       "my (weird) prog",
		Exe:        "/usr/bin/my prog",
		Cmdline:    "/usr/bin/my prog --flag value with space",
		UID:        1000,
		User:       "alice",
		PPID:       4200,
		StartTime:  time.Unix(1700000000+1234, 560e6),
		StartTicks: 123456,
		CgroupPath: docker,
		Cgroups:    map[string]string{"cpu": docker, "cpuacct": docker, "memory": docker, "name=systemd": docker, "pids": docker},
		NetnsInode: nsIno,
		State:      'S',
	}
	if !equalInfo(got, want) {
		t.Errorf("Process(4242) =\n%+v\nwant\n%+v", got, want)
	}
}

func TestProcessFixtureKernelThread(t *testing.T) {
	fs, _ := fixtureFS(t)
	got, err := fs.Process(2)
	if err != nil {
		t.Fatal(err)
	}
	want := Info{PID: 2, Comm: "kthreadd", User: "root", StartTime: time.Unix(1700000000, 250e6),
		StartTicks: 25, CgroupPath: "/", KernelThread: true, State: 'S'}
	if !equalInfo(got, want) {
		t.Errorf("Process(2) =\n%+v\nwant\n%+v", got, want)
	}
}

func TestProcessFixtureErrors(t *testing.T) {
	fs, _ := fixtureFS(t)
	for _, pid := range []int{99999, 1 << 30} {
		_, err := fs.Process(pid)
		if !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Process(%d) error = %v, want os.ErrNotExist", pid, err)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "open "+fs.Root()+"/"+strconv.Itoa(pid)+":") {
			t.Errorf("Process(%d) error = %q, want it to name the path", pid, err)
		}
	}
	_, err := fs.Process(4244) // truncated stat
	if err == nil || errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "parse "+fs.Root()+"/4244/stat") {
		t.Errorf("Process(4244) error = %v, want a parse error naming the file", err)
	}
	if _, err := fs.Process(0); err == nil || errors.Is(err, os.ErrNotExist) {
		t.Errorf("Process(0) error = %v, want invalid pid", err)
	}
	// A pid whose directory vanished mid-read reports ENOENT on the next
	// file: simulate with a process missing its status.
	if err := os.Remove(filepath.Join(fs.Root(), "2", "status")); err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Process(2); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Process(2) without status: error = %v, want os.ErrNotExist", err)
	}
}

func TestBootTimeCached(t *testing.T) {
	fs, _ := fixtureFS(t)
	bt, err := fs.BootTime()
	if err != nil || !bt.Equal(time.Unix(1700000000, 0)) {
		t.Fatalf("BootTime() = %v, %v", bt, err)
	}
	if err := os.Remove(filepath.Join(fs.Root(), "stat")); err != nil {
		t.Fatal(err)
	}
	if bt2, err := fs.BootTime(); err != nil || !bt2.Equal(bt) {
		t.Errorf("second BootTime() = %v, %v; want the cached %v", bt2, err, bt)
	}
	if _, err := NewFS(fs.Root()).BootTime(); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("BootTime() of a tree without stat: %v", err)
	}
}

func TestUserCache(t *testing.T) {
	calls := map[uint32]int{}
	now := time.Unix(0, 0)
	c := newUserCache(func(uid uint32) (string, error) {
		calls[uid]++
		if uid == 1 {
			return "one", nil
		}
		return "", errors.New("unknown")
	})
	c.now = func() time.Time { return now }
	for range 3 {
		if got := c.name(1); got != "one" {
			t.Fatalf("name(1) = %q", got)
		}
		if got := c.name(2); got != "" {
			t.Fatalf("name(2) = %q", got)
		}
	}
	if calls[1] != 1 || calls[2] != 1 {
		t.Errorf("lookups = %v, want one each", calls)
	}
	now = now.Add(userRetry + time.Second)
	c.name(1)
	c.name(2)
	if calls[1] != 1 || calls[2] != 2 {
		t.Errorf("after %v lookups = %v, want the failure retried only", userRetry, calls)
	}
}

// equalInfo compares Infos, whose Cgroups map defeats ==.
func equalInfo(a, b Info) bool {
	return maps.Equal(a.Cgroups, b.Cgroups) && a.PID == b.PID && a.Comm == b.Comm && a.Exe == b.Exe &&
		a.Cmdline == b.Cmdline && a.UID == b.UID && a.User == b.User && a.PPID == b.PPID &&
		a.StartTime.Equal(b.StartTime) && a.StartTicks == b.StartTicks && a.CgroupPath == b.CgroupPath &&
		a.NetnsInode == b.NetnsInode && a.KernelThread == b.KernelThread && a.State == b.State
}

// The tests below read the live /proc.

func TestProcessSelf(t *testing.T) {
	fs := NewFS("")
	before := time.Now()
	got, err := fs.Process(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if got.Exe != exe {
		t.Errorf("Exe = %q, want %q", got.Exe, exe)
	}
	comm := filepath.Base(exe)
	if len(comm) > 15 {
		comm = comm[:15]
	}
	if got.Comm != comm {
		t.Errorf("Comm = %q, want %q", got.Comm, comm)
	}
	if got.PID != os.Getpid() || got.PPID != os.Getppid() {
		t.Errorf("PID, PPID = %d, %d; want %d, %d", got.PID, got.PPID, os.Getpid(), os.Getppid())
	}
	if !strings.HasPrefix(got.Cmdline, os.Args[0]) {
		t.Errorf("Cmdline = %q, want it to start with %q", got.Cmdline, os.Args[0])
	}
	if got.UID != uint32(os.Getuid()) {
		t.Errorf("UID = %d, want %d", got.UID, os.Getuid())
	}
	if u, err := user.Current(); err == nil && got.User != u.Username {
		t.Errorf("User = %q, want %q", got.User, u.Username)
	}
	if os.Getuid() == 0 && got.User != "root" {
		t.Errorf("User = %q, want root", got.User)
	}
	if !got.StartTime.Before(before) || got.StartTime.Before(before.Add(-time.Hour)) {
		t.Errorf("StartTime = %v, want within the hour before %v", got.StartTime, before)
	}
	var st syscall.Stat_t
	if err := syscall.Stat("/proc/self/ns/net", &st); err != nil {
		t.Fatal(err)
	}
	if got.NetnsInode != st.Ino {
		t.Errorf("NetnsInode = %d, want %d", got.NetnsInode, st.Ino)
	}
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(self), "0::"+got.CgroupPath+"\n") {
		t.Errorf("CgroupPath = %q, not the 0:: line of\n%s", got.CgroupPath, self)
	}
	if got.KernelThread || got.State == 'Z' {
		t.Errorf("KernelThread, State = %v, %c", got.KernelThread, got.State)
	}
}

func TestProcessKernelThread(t *testing.T) {
	got, err := NewFS("").Process(2) // kthreadd
	if err != nil {
		t.Fatal(err)
	}
	if got.Comm != "kthreadd" || !got.KernelThread || got.Exe != "" || got.Cmdline != "" {
		t.Errorf("Process(2) = %+v, want kthreadd without exe or cmdline", got)
	}
}

// startSleep starts `sleep 30`, killed and reaped at cleanup.
func startSleep(t *testing.T, extra ...*os.File) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "30")
	cmd.ExtraFiles = extra
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd
}

func TestProcessChild(t *testing.T) {
	fs := NewFS("")
	r, err := NewResolver(fs)
	if err != nil {
		t.Fatal(err)
	}
	cmd := startSleep(t)
	pid := cmd.Process.Pid
	// cmd.Start returns while the child may still be inside execve (state
	// D, arguments not yet in place): wait until it runs sleep.
	var got Info
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if got, err = fs.Process(pid); err != nil {
			t.Fatal(err)
		}
		if got.Cmdline != "" && got.State != 'D' {
			break
		}
	}
	sleep, _ := exec.LookPath("sleep")
	if got.PPID != os.Getpid() || got.Cmdline != "sleep 30" || got.Comm != "sleep" {
		t.Errorf("Process(child) = %+v, want PPID %d, Cmdline \"sleep 30\", Comm sleep", got, os.Getpid())
	}
	if real, err := filepath.EvalSymlinks(sleep); err == nil && got.Exe != real {
		t.Errorf("Exe = %q, want %q", got.Exe, real)
	}
	if cached, ok := r.Lookup(pid, got.StartTicks); !ok || cached.Cmdline != "sleep 30" {
		t.Fatalf("Lookup(child) = %+v, %v", cached, ok)
	}

	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	_, err = fs.Process(pid)
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Process(exited child) error = %v, want os.ErrNotExist", err)
	}
	if n := r.Prune(); n != 1 || r.Len() != 0 {
		t.Errorf("Prune() = %d, Len() = %d after the child exited; want 1, 0", n, r.Len())
	}
	if _, ok := r.Lookup(pid, got.StartTicks); ok {
		t.Error("Lookup(exited child) found it")
	}
}

func BenchmarkProcessSelf(b *testing.B) {
	fs := NewFS("")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := fs.Process(os.Getpid()); err != nil {
			b.Fatal(err)
		}
	}
}

// TestPIDDirOutlivesProcess checks what Process relies on: reads through a
// /proc/<pid> descriptor fail, as "exited", once its process is gone.
func TestPIDDirOutlivesProcess(t *testing.T) {
	cmd := startSleep(t)
	d, err := NewFS("").openPID(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	defer d.close()
	if _, err := d.read("stat", maxStat); err != nil {
		t.Fatal(err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	_, err = d.read("stat", maxStat)
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("read stat of a reaped process: %v, want os.ErrNotExist", err)
	}
	if err := d.alive(); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("alive() of a reaped process: %v, want os.ErrNotExist", err)
	}
	if _, err := d.readlink("exe"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("readlink exe of a reaped process: %v, want os.ErrNotExist", err)
	}
	t.Logf("read after exit: %v", err)
}
