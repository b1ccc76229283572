package selflimit

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/netmeter/netmeter/internal/testnet"
)

// The tests in this file limit real child processes on the running kernel:
// cgroup v1 on the CI VM (cpu and memory are bound to v1 hierarchies
// there), cgroup v2 on a unified host. They skip unless root, and fail
// instead under NETMETER_REQUIRE_PRIVILEGED=1.

// testName returns a cgroup name unique to this test run.
func testName(t *testing.T) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	n := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, t.Name())
	return "netmeter-test-" + n + "-" + hex.EncodeToString(b)
}

// startBurner starts a shell that spins on one CPU; it is killed and
// reaped when the test ends.
func startBurner(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", "while :; do :; done")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stop(cmd) })
	return cmd
}

// stop kills cmd's process if it still runs and reaps it.
func stop(cmd *exec.Cmd) {
	if cmd.ProcessState == nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
}

// applyT applies l to cmd's process; when the test ends it kills the
// process and removes the cgroups.
func applyT(t *testing.T, cmd *exec.Cmd, l Limits) Applied {
	t.Helper()
	a, err := Apply(cmd.Process.Pid, l)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	t.Logf("applied %s", a)
	t.Cleanup(func() {
		stop(cmd)
		if err := a.Remove(); err != nil {
			t.Errorf("Remove: %v", err)
		}
		for _, dir := range []string{a.CPU, a.Memory} {
			if _, err := os.Stat(dir); dir != "" && !errors.Is(err, os.ErrNotExist) {
				t.Errorf("cgroup %s left behind (stat: %v)", dir, err)
			}
		}
	})
	return a
}

func readTrim(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// statField returns the value of key in a flat-keyed file like cpu.stat,
// memory.events or memory.oom_control, or -1 if it is missing.
func statField(t *testing.T, name, key string) int64 {
	t.Helper()
	for line := range strings.SplitSeq(readTrim(t, name), "\n") {
		k, v, ok := strings.Cut(line, " ")
		if ok && k == key {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				t.Fatalf("%s: %s: %v", name, line, err)
			}
			return n
		}
	}
	return -1
}

// checkLimitFiles checks that the kernel shows the limits of l.
func checkLimitFiles(t *testing.T, a Applied, l Limits) {
	t.Helper()
	quota := strconv.FormatInt(l.quota(), 10)
	mem := strconv.FormatUint(l.Memory, 10)
	want := map[string]string{}
	optional := map[string]bool{}
	switch a.Version {
	case 2:
		want[path.Join(a.CPU, "cpu.max")] = quota + " 100000"
		want[path.Join(a.Memory, "memory.max")] = mem
		want[path.Join(a.Memory, "memory.swap.max")] = "0"
		optional[path.Join(a.Memory, "memory.swap.max")] = true
	case 1:
		want[path.Join(a.CPU, "cpu.cfs_period_us")] = "100000"
		want[path.Join(a.CPU, "cpu.cfs_quota_us")] = quota
		want[path.Join(a.Memory, "memory.limit_in_bytes")] = mem
		want[path.Join(a.Memory, "memory.memsw.limit_in_bytes")] = mem
		optional[path.Join(a.Memory, "memory.memsw.limit_in_bytes")] = true
	default:
		t.Fatalf("Applied.Version = %d", a.Version)
	}
	for file, w := range want {
		b, err := os.ReadFile(file)
		if errors.Is(err, os.ErrNotExist) && optional[file] {
			t.Logf("%s does not exist here (no swap accounting)", file)
			continue
		}
		if err != nil {
			t.Error(err)
			continue
		}
		if got := strings.TrimSpace(string(b)); got != w {
			t.Errorf("%s = %q, want %q", file, got, w)
		} else {
			t.Logf("%s = %s", file, got)
		}
	}
}

// checkMembership checks that /proc/<pid>/cgroup puts pid in the cgroups
// of a, each called name.
func checkMembership(t *testing.T, pid int, a Applied, name string) {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	ms, err := parseProcCgroup(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	for c, dir := range map[string]string{"cpu": a.CPU, "memory": a.Memory} {
		if dir == "" {
			continue
		}
		found := false
		for _, m := range ms {
			if (a.Version == 2 && m.ID == 0) || (a.Version == 1 && m.ID != 0 && slices.Contains(m.Controllers, c)) {
				found = true
				if path.Base(m.Path) != name || !strings.HasSuffix(dir, m.Path) {
					t.Errorf("/proc/%d/cgroup puts it in %s for %s, want %s", pid, m.Path, c, dir)
				}
			}
		}
		if !found {
			t.Errorf("/proc/%d/cgroup has no line for %s:\n%s", pid, c, b)
		}
	}
}

func TestKernelCPUThrottled(t *testing.T) {
	testnet.RequirePrivileged(t)
	burner := startBurner(t)
	pid := burner.Process.Pid
	before, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	name := testName(t)
	l := Limits{CPU: 0.1, Memory: 64 << 20, Name: name}
	a := applyT(t, burner, l)
	checkLimitFiles(t, a, l)
	checkMembership(t, pid, a, name)

	// The burner wants a whole CPU and may have 10 ms per 100 ms period,
	// so the kernel throttles it in each period it runs in. Wait a second,
	// then for the counter (a functional check, not a timing assertion).
	stat := path.Join(a.CPU, "cpu.stat")
	time.Sleep(time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for statField(t, stat, "nr_throttled") <= 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%s shows no throttling 11 s after Apply:\n%s", stat, readTrim(t, stat))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("%s: nr_periods %d nr_throttled %d", stat, statField(t, stat, "nr_periods"), statField(t, stat, "nr_throttled"))

	// Remove puts the process back where it was, though it still runs.
	if err := a.Remove(); err != nil {
		t.Fatal(err)
	}
	after, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Errorf("after Remove /proc/%d/cgroup is\n%s\nwant\n%s", pid, after, before)
	}
	for _, dir := range []string{a.CPU, a.Memory} {
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still exists after Remove (stat: %v)", dir, err)
		}
	}
}

func TestKernelMemoryOOMKilled(t *testing.T) {
	testnet.RequirePrivileged(t)
	cmd := testnet.Command(t, nil, nil, roleMemHog)
	goAhead, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	child := testnet.StartChild(t, cmd)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if _, err := child.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	name := testName(t)
	l := Limits{Memory: 64 << 20, Name: name}
	a := applyT(t, cmd, l)
	if a.CPU != "" {
		t.Errorf("Applied.CPU = %s without a CPU limit", a.CPU)
	}
	checkMembership(t, child.Pid(), a, name)

	if _, err := io.WriteString(goAhead, "x"); err != nil {
		t.Fatal(err)
	}
	res, err := child.Wait(ctx)
	if err == nil {
		t.Fatalf("the hog touched %d bytes under a %d-byte limit and exited normally", res.Bytes, l.Memory)
	}
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("the hog ended with %v (%v), want killed by SIGKILL", cmd.ProcessState, err)
	}
	t.Logf("the hog was killed: %v", cmd.ProcessState)

	switch a.Version {
	case 2:
		events := path.Join(a.Memory, "memory.events")
		if n := statField(t, events, "oom_kill"); n < 1 {
			t.Errorf("%s: oom_kill %d, want ≥ 1:\n%s", events, n, readTrim(t, events))
		}
		t.Logf("%s:\n%s", events, readTrim(t, events))
	case 1:
		// With memsw limited as well, a charge fails on the memory+swap
		// counter first, and Linux 6.18 keeps a failcnt for the memory
		// counter only (memory.memsw.failcnt stays 0), so memory.failcnt
		// stays 0 too. The kernel's OOM counter and the usage high-water
		// mark show that the limit was hit.
		var stats []string
		peak := int64(-1)
		for _, f := range []string{"memory.failcnt", "memory.memsw.failcnt", "memory.max_usage_in_bytes", "memory.memsw.max_usage_in_bytes"} {
			b, err := os.ReadFile(path.Join(a.Memory, f))
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasSuffix(f, "max_usage_in_bytes") {
				peak = max(peak, n)
			}
			stats = append(stats, f+" "+strconv.FormatInt(n, 10))
		}
		// The charge that triggers the OOM kill may be forced through a
		// page past the limit.
		if peak < int64(l.Memory)/16*15 || peak > int64(l.Memory)+1<<20 {
			t.Errorf("peak usage %d, want about the %d-byte limit (%s)", peak, l.Memory, strings.Join(stats, ", "))
		}
		oc := path.Join(a.Memory, "memory.oom_control")
		if n := statField(t, oc, "oom_kill"); n < 1 {
			t.Errorf("%s: oom_kill %d, want ≥ 1:\n%s", oc, n, readTrim(t, oc))
		}
		t.Logf("%s; memory.oom_control: %s", strings.Join(stats, ", "), strings.ReplaceAll(readTrim(t, oc), "\n", ", "))
	}
}

func TestKernelApplyAgainAndReuse(t *testing.T) {
	testnet.RequirePrivileged(t)
	burner := startBurner(t)
	name := testName(t)
	a := applyT(t, burner, Limits{CPU: 0.5, Memory: 128 << 20, Name: name})
	// A second Apply while the process is in the cgroup updates it.
	l := Limits{CPU: 0.2, Memory: 96 << 20, Name: name}
	b, err := Apply(burner.Process.Pid, l)
	if err != nil {
		t.Fatal(err)
	}
	if b.CPU != a.CPU || b.Memory != a.Memory {
		t.Fatalf("second Apply used %s, want the first's %s", b, a)
	}
	checkLimitFiles(t, b, l)
	checkMembership(t, burner.Process.Pid, b, name)
	if err := b.Remove(); err != nil { // nothing to undo: it moved nothing
		t.Fatal(err)
	}
	if _, err := os.Stat(a.CPU); err != nil {
		t.Errorf("Remove of the second Apply removed the first's cgroup: %v", err)
	}

	// A second process with the same name joins the existing cgroup.
	other := startBurner(t)
	c, err := Apply(other.Process.Pid, l)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stop(other)
		stop(burner) // so that the shared cgroup is empty
		if err := c.Remove(); err != nil {
			t.Errorf("Remove: %v", err)
		}
	})
	if c.CPU != a.CPU {
		t.Errorf("Apply for a second process used %s, want the existing %s", c.CPU, a.CPU)
	}
	checkMembership(t, other.Process.Pid, c, name)
}

// TestKernelOtherVersionNamesMissingController forces the cgroup version
// Apply does not choose here (v2 on the hybrid CI VM, v1 on a unified
// host), where cpu is not available, and checks the error names it.
func TestKernelOtherVersionNamesMissingController(t *testing.T) {
	testnet.RequirePrivileged(t)
	burner := startBurner(t)
	a := applyT(t, burner, Limits{CPU: 0.5, Name: testName(t)})
	other := 3 - a.Version
	_, err := apply(osFS{}, burner.Process.Pid, Limits{CPU: 0.5, Name: testName(t)}, other)
	if !errors.Is(err, ErrNoController) || !strings.HasPrefix(err.Error(), "cgroup controller not available: cpu (") {
		t.Fatalf("Apply forced to v%d = %v, want ErrNoController naming cpu", other, err)
	}
	t.Logf("forced to v%d: %v", other, err)
}

// TestKernelUnprivileged runs Apply as nobody in a child process and
// expects the permission error, not a half-made cgroup.
func TestKernelUnprivileged(t *testing.T) {
	testnet.RequirePrivileged(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// nobody must be able to run the test binary: copy it out of the
	// build directory (0700) into one it may read.
	dir, err := os.MkdirTemp("", "selflimit-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "selflimit.test")
	if err := os.WriteFile(bin, src, 0o755); err != nil {
		t.Fatal(err)
	}
	name := testName(t)
	cmd := exec.CommandContext(t.Context(), bin, name)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), testnet.EnvRole+"="+roleApplySelf)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: 65534, Gid: 65534},
		Pdeathsig:  syscall.SIGKILL,
	}
	child := testnet.StartChild(t, cmd)
	_, err = child.Wait(t.Context())
	if err == nil || !strings.Contains(err.Error(), ErrPermission.Error()) {
		t.Fatalf("Apply as nobody: %v; want %q", err, ErrPermission)
	}
	t.Logf("as nobody: %v", err)
}
