package selflimit

import (
	"errors"
	"math"
	"strings"
	"syscall"
	"testing"
	"time"
)

const mib = 1 << 20

// These tests run Apply against fakeFS, which enforces the cgroup v2 rules:
// the CI VM has its cpu and memory controllers on v1, so the v2 code path
// cannot run on its kernel (kernel_test.go covers whichever version the
// machine has).

func TestApplyV2NestedWhenAlone(t *testing.T) {
	const cg = "/sys/fs/cgroup"
	f := v2Fake(t).mkcg(t, cg, "/system.slice/netmeter.service")
	f.enableAt(t, cg, "/", "cpu", "memory", "pids")
	f.enableAt(t, cg, "/system.slice", "memory", "pids") // systemd without CPUAccounting
	f.put(t, 100, cg, "/system.slice/netmeter.service")

	a, err := apply(f, 100, Limits{CPU: 0.25, Memory: 64 * mib}, 0)
	if err != nil {
		t.Fatal(err)
	}
	const dir = cg + "/system.slice/netmeter.service/netmeter"
	if a.Version != 2 || a.CPU != dir || a.Memory != dir || a.PID != 100 {
		t.Fatalf("Applied = %+v, want v2 in %s", a, dir)
	}
	for file, want := range map[string]string{
		dir + "/cpu.max":                                             "25000 100000",
		dir + "/memory.max":                                          "67108864",
		dir + "/memory.swap.max":                                     "0",
		cg + "/system.slice/cgroup.subtree_control":                  "memory pids cpu",
		cg + "/system.slice/netmeter.service/cgroup.procs":           "",
		dir + "/cgroup.procs":                                        "100",
		"/proc/100/cgroup":                                           "0::/system.slice/netmeter.service/netmeter",
		cg + "/system.slice/netmeter.service/cgroup.subtree_control": "cpu memory",
	} {
		if got := f.file(t, file); got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}
	if got := a.String(); got != "cgroup v2: cpu "+dir+", memory "+dir {
		t.Errorf("String() = %q", got)
	}

	if err := a.Remove(); err != nil {
		t.Fatal(err)
	}
	if got := f.file(t, "/proc/100/cgroup"); got != "0::/system.slice/netmeter.service" {
		t.Errorf("after Remove, /proc/100/cgroup = %q", got)
	}
	if _, err := f.ReadFile(dir + "/cgroup.procs"); err == nil {
		t.Errorf("%s still exists after Remove", dir)
	}
	// The service's cgroup had to give the controllers back to take the
	// process again; system.slice keeps cpu (others may use it by now).
	if got := f.file(t, cg+"/system.slice/netmeter.service/cgroup.subtree_control"); got != "" {
		t.Errorf("service subtree_control after Remove = %q, want empty", got)
	}
	if got := f.file(t, cg+"/system.slice/cgroup.subtree_control"); got != "memory pids cpu" {
		t.Errorf("system.slice subtree_control after Remove = %q", got)
	}
	if err := a.Remove(); err != nil {
		t.Errorf("second Remove: %v", err)
	}
}

func TestApplyV2SiblingWhenShared(t *testing.T) {
	const cg = "/sys/fs/cgroup"
	const scope = "/user.slice/user-0.slice/session-1.scope"
	f := v2Fake(t).mkcg(t, cg, scope)
	f.put(t, 100, cg, scope)
	f.put(t, 101, cg, scope) // the login shell

	a, err := apply(f, 100, Limits{CPU: 0.5, Memory: 128 * mib, Name: "nm"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	const dir = cg + "/user.slice/user-0.slice/nm"
	if a.CPU != dir || a.Memory != dir {
		t.Fatalf("Applied = %+v, want the sibling %s", a, dir)
	}
	for file, want := range map[string]string{
		dir + "/cpu.max":                                       "50000 100000",
		dir + "/memory.max":                                    "134217728",
		cg + "/cgroup.subtree_control":                         "cpu memory",
		cg + "/user.slice/cgroup.subtree_control":              "cpu memory",
		cg + "/user.slice/user-0.slice/cgroup.subtree_control": "cpu memory",
		cg + scope + "/cgroup.procs":                           "101",
		cg + scope + "/cgroup.subtree_control":                 "",
	} {
		if got := f.file(t, file); got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}
	if err := a.Remove(); err != nil {
		t.Fatal(err)
	}
	if got := f.file(t, cg+scope+"/cgroup.procs"); got != "100\n101" {
		t.Errorf("after Remove, %s holds %q", scope, got)
	}
}

func TestApplyV2HostRoot(t *testing.T) {
	const cg = "/sys/fs/cgroup"
	f := v2Fake(t)
	f.put(t, 1, cg, "/")
	f.put(t, 100, cg, "/")
	a, err := apply(f, 100, Limits{Memory: 32 * mib}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if a.Memory != cg+"/netmeter" || a.CPU != "" {
		t.Fatalf("Applied = %+v, want memory only in %s/netmeter", a, cg)
	}
	if _, err := f.ReadFile(cg + "/netmeter/cpu.max"); err == nil {
		t.Error("cpu was enabled though no CPU limit was asked for")
	}
	if err := a.Remove(); err != nil {
		t.Fatal(err)
	}
	// The real root takes processes whatever it enables: nothing to undo.
	if got := f.file(t, cg+"/cgroup.subtree_control"); got != "memory" {
		t.Errorf("root subtree_control after Remove = %q", got)
	}
	if got := f.file(t, "/proc/100/cgroup"); got != "0::/" {
		t.Errorf("after Remove, /proc/100/cgroup = %q", got)
	}
}

func TestApplyV2ContainerRoot(t *testing.T) {
	const cg = "/sys/fs/cgroup"
	f := v2Fake(t)
	f.hiers[0].nsRoot = true
	f.put(t, 1, cg, "/") // the agent is the container's init
	a, err := apply(f, 1, Limits{CPU: 1, Memory: 256 * mib}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if a.CPU != cg+"/netmeter" {
		t.Fatalf("Applied = %+v", a)
	}
	if err := a.Remove(); err != nil {
		t.Fatal(err)
	}
	if got := f.file(t, cg+"/cgroup.procs"); got != "1" {
		t.Errorf("after Remove the namespace root holds %q, want 1", got)
	}
	if got := f.file(t, cg+"/cgroup.subtree_control"); got != "" {
		t.Errorf("after Remove the namespace root passes %q, want nothing", got)
	}
}

func TestApplyV2ContainerRootShared(t *testing.T) {
	const cg = "/sys/fs/cgroup"
	f := v2Fake(t)
	f.hiers[0].nsRoot = true
	f.put(t, 1, cg, "/")
	f.put(t, 7, cg, "/")
	_, err := apply(f, 7, Limits{CPU: 1}, 0)
	if !errors.Is(err, syscall.EBUSY) || !strings.Contains(err.Error(), "processes of its own") {
		t.Fatalf("Apply = %v, want EBUSY explaining the no-internal-processes rule", err)
	}
	// Undone: the process is back and the cgroup is gone.
	if got := f.file(t, "/proc/7/cgroup"); got != "0::/" {
		t.Errorf("after the failed Apply, /proc/7/cgroup = %q", got)
	}
	if _, err := f.ReadFile(cg + "/netmeter/cgroup.procs"); err == nil {
		t.Error("the failed Apply left its cgroup")
	}
}

func TestApplyV2UndoOnWriteError(t *testing.T) {
	const cg = "/sys/fs/cgroup"
	f := v2Fake(t).mkcg(t, cg, "/system.slice/netmeter.service")
	f.put(t, 100, cg, "/system.slice/netmeter.service")
	f.failWrite = map[string]syscall.Errno{"memory.max": syscall.EINVAL}
	if _, err := apply(f, 100, Limits{CPU: 0.5, Memory: 64 * mib}, 0); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("Apply = %v, want EINVAL", err)
	}
	if got := f.file(t, "/proc/100/cgroup"); got != "0::/system.slice/netmeter.service" {
		t.Errorf("after the failed Apply, /proc/100/cgroup = %q", got)
	}
	if got := f.file(t, cg+"/system.slice/netmeter.service/cgroup.subtree_control"); got != "" {
		t.Errorf("after the failed Apply, the service passes %q", got)
	}
	if _, err := f.ReadFile(cg + "/system.slice/netmeter.service/netmeter/cgroup.procs"); err == nil {
		t.Error("the failed Apply left its cgroup")
	}
}

func TestApplyV2ReadOnly(t *testing.T) {
	f := newFakeFS(readFixture(t, "mountinfo-container"),
		&fakeHier{id: 0, point: "/sys/fs/cgroup", controllers: []string{"cpu", "memory"}})
	f.put(t, 1, "/sys/fs/cgroup", "/")
	_, err := apply(f, 1, Limits{CPU: 1}, 0)
	if !errors.Is(err, ErrReadOnly) || !strings.Contains(err.Error(), "/sys/fs/cgroup is mounted read-only") {
		t.Fatalf("Apply = %v, want ErrReadOnly naming the mount", err)
	}
	if len(f.writes) != 1 { // only the fake's own put
		t.Errorf("Apply wrote %q to a read-only mount", f.writes[1:])
	}
}

func TestApplyReadOnlyErrno(t *testing.T) {
	f := v2Fake(t)
	f.put(t, 100, "/sys/fs/cgroup", "/")
	f.mkdirErr = perr("mkdir", "/sys/fs/cgroup/netmeter", syscall.EROFS)
	if _, err := apply(f, 100, Limits{CPU: 1}, 0); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("Apply = %v, want ErrReadOnly", err)
	}
}

func TestApplyPermission(t *testing.T) {
	for _, e := range []syscall.Errno{syscall.EACCES, syscall.EPERM} {
		f := v2Fake(t)
		f.put(t, 100, "/sys/fs/cgroup", "/")
		f.mkdirErr = perr("mkdir", "/sys/fs/cgroup/netmeter", e)
		_, err := apply(f, 100, Limits{CPU: 1}, 0)
		if !errors.Is(err, ErrPermission) || !strings.Contains(err.Error(), "needs CAP_SYS_ADMIN to create cgroups: run as root, or use systemd's CPUQuota=/MemoryMax= instead") {
			t.Errorf("Apply with %v = %v, want ErrPermission", e, err)
		}
	}
}

func TestApplyV1(t *testing.T) {
	f := v1Fake(t).mkcg(t, "/sys/fs/cgroup/memory", "/supervisor/job-1")
	f.put(t, 100, "/sys/fs/cgroup/memory", "/supervisor/job-1")
	a, err := apply(f, 100, Limits{CPU: 0.1, Memory: 64 * mib}, 0)
	if err != nil {
		t.Fatal(err)
	}
	const cpu, mem = "/sys/fs/cgroup/cpu/netmeter", "/sys/fs/cgroup/memory/supervisor/job-1/netmeter"
	if a.Version != 1 || a.CPU != cpu || a.Memory != mem {
		t.Fatalf("Applied = %+v, want v1 in %s and %s", a, cpu, mem)
	}
	for file, want := range map[string]string{
		cpu + "/cpu.cfs_period_us":           "100000",
		cpu + "/cpu.cfs_quota_us":            "10000",
		mem + "/memory.limit_in_bytes":       "67108864",
		mem + "/memory.memsw.limit_in_bytes": "67108864",
		"/proc/100/cgroup":                   "1:cpu:/netmeter\n4:memory:/supervisor/job-1/netmeter\n0::/",
	} {
		if got := f.file(t, file); got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}
	if err := a.Remove(); err != nil {
		t.Fatal(err)
	}
	if got := f.file(t, "/proc/100/cgroup"); got != "1:cpu:/\n4:memory:/supervisor/job-1\n0::/" {
		t.Errorf("after Remove, /proc/100/cgroup = %q", got)
	}
	for _, dir := range []string{cpu, mem} {
		if _, err := f.ReadFile(dir + "/cgroup.procs"); err == nil {
			t.Errorf("%s still exists after Remove", dir)
		}
	}
}

// TestApplyV1Container is a Docker container on cgroup v1 without a cgroup
// namespace: cpu and cpuacct share a hierarchy, and each mount shows only
// the container's own cgroup, /docker/<id>.
func TestApplyV1Container(t *testing.T) {
	const cpu, mem = "/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/memory"
	newContainer := func(mountinfo string) *fakeFS {
		return newFakeFS(mountinfo,
			&fakeHier{id: 4, point: cpu, controllers: []string{"cpu", "cpuacct"}, mountRoot: "/docker/4f2c0a9b1d"},
			&fakeHier{id: 12, point: mem, controllers: []string{"memory"}, mountRoot: "/docker/4f2c0a9b1d"})
	}
	mountinfo := readFixture(t, "mountinfo-docker-v1")

	f := newContainer(mountinfo)
	f.put(t, 1, cpu, "/")
	if _, err := apply(f, 1, Limits{CPU: 0.5, Memory: 64 * mib}, 0); !errors.Is(err, ErrReadOnly) || !strings.Contains(err.Error(), cpu+" is mounted read-only") {
		t.Fatalf("Apply in a container with read-only cgroup mounts = %v, want ErrReadOnly", err)
	}

	// A privileged container has them read-write.
	f = newContainer(strings.ReplaceAll(mountinfo, " ro,", " rw,"))
	f.put(t, 1, cpu, "/")
	a, err := apply(f, 1, Limits{CPU: 0.5, Memory: 64 * mib}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if a.CPU != cpu+"/netmeter" || a.Memory != mem+"/netmeter" {
		t.Fatalf("Applied = %+v", a)
	}
	if got := f.file(t, "/proc/1/cgroup"); got != "4:cpu,cpuacct:/docker/4f2c0a9b1d/netmeter\n12:memory:/docker/4f2c0a9b1d/netmeter" {
		t.Errorf("/proc/1/cgroup = %q", got)
	}
	if err := a.Remove(); err != nil {
		t.Fatal(err)
	}
}

func TestApplyV1RaisesMemswFirst(t *testing.T) {
	const mem = "/sys/fs/cgroup/memory"
	f := v1Fake(t).mkcg(t, mem, "/netmeter") // left by an earlier run at 32 MiB
	for _, w := range [][2]string{{"memory.limit_in_bytes", "33554432"}, {"memory.memsw.limit_in_bytes", "33554432"}} {
		if err := f.WriteFile(mem+"/netmeter/"+w[0], w[1]); err != nil {
			t.Fatal(err)
		}
	}
	f.put(t, 100, mem, "/")
	a, err := apply(f, 100, Limits{Memory: 64 * mib}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if a.CPU != "" || a.Memory != mem+"/netmeter" {
		t.Errorf("Applied = %+v", a)
	}
	for _, file := range []string{"memory.limit_in_bytes", "memory.memsw.limit_in_bytes"} {
		if got := f.file(t, mem+"/netmeter/"+file); got != "67108864" {
			t.Errorf("%s = %s, want 67108864", file, got)
		}
	}
	// Lowering works in the written order.
	if _, err := apply(f, 100, Limits{Memory: 48 * mib}, 0); err != nil {
		t.Fatal(err)
	}
	if got := f.file(t, mem+"/netmeter/memory.memsw.limit_in_bytes"); got != "50331648" {
		t.Errorf("memsw after lowering = %s", got)
	}
}

func TestApplyAgainUpdatesInPlace(t *testing.T) {
	for name, f := range map[string]*fakeFS{"v1": v1Fake(t), "v2": v2Fake(t)} {
		t.Run(name, func(t *testing.T) {
			f.put(t, 100, f.hiers[0].point, "/")
			f.put(t, 101, f.hiers[0].point, "/")
			a, err := apply(f, 100, Limits{CPU: 0.5}, 0)
			if err != nil {
				t.Fatal(err)
			}
			b, err := apply(f, 100, Limits{CPU: 0.2}, 0)
			if err != nil {
				t.Fatal(err)
			}
			if b.CPU != a.CPU {
				t.Fatalf("second Apply used %s, want %s again", b.CPU, a.CPU)
			}
			if err := b.Remove(); err != nil {
				t.Fatal(err)
			}
			if _, err := f.ReadFile(a.CPU + "/cgroup.procs"); err != nil {
				t.Errorf("Remove of the second Apply removed the first's cgroup: %v", err)
			}
			if err := a.Remove(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestRemoveAfterExit(t *testing.T) {
	f := v1Fake(t)
	f.put(t, 100, "/sys/fs/cgroup/cpu", "/")
	a, err := apply(f, 100, Limits{CPU: 0.5, Memory: 64 * mib}, 0)
	if err != nil {
		t.Fatal(err)
	}
	delete(f.where, 100)
	if err := a.Remove(); err != nil {
		t.Fatalf("Remove after the process exited: %v", err)
	}
	if _, err := f.ReadFile(a.CPU + "/cgroup.procs"); err == nil {
		t.Error("cgroup left after Remove")
	}
}

func TestRemoveKeepsBusyCgroup(t *testing.T) {
	f := v1Fake(t)
	f.put(t, 100, "/sys/fs/cgroup/cpu", "/")
	a, err := apply(f, 100, Limits{CPU: 0.5}, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.put(t, 200, "/sys/fs/cgroup/cpu", "/netmeter") // another agent reused it
	defer func(d time.Duration) { rmdirWait = d }(rmdirWait)
	rmdirWait = 50 * time.Millisecond
	if err := a.Remove(); !errors.Is(err, syscall.EBUSY) {
		t.Fatalf("Remove = %v, want EBUSY", err)
	}
}

func TestApplyNoController(t *testing.T) {
	// A hybrid host whose cpu hierarchy is not mounted.
	f := newFakeFS(readFixture(t, "mountinfo-hybrid"),
		&fakeHier{id: 4, point: "/sys/fs/cgroup/memory", controllers: []string{"memory"}},
		&fakeHier{id: 0, point: "/sys/fs/cgroup/unified", controllers: []string{"hugetlb"}})
	f.mountinfo = strings.ReplaceAll(f.mountinfo, "rw,cpu\n", "rw,notcpu\n")
	f.put(t, 100, "/sys/fs/cgroup/memory", "/")
	_, err := apply(f, 100, Limits{CPU: 0.5, Memory: 64 * mib}, 0)
	if !errors.Is(err, ErrNoController) {
		t.Fatalf("Apply = %v, want ErrNoController", err)
	}
	want := "cgroup controller not available: cpu (cgroup v2 at /sys/fs/cgroup/unified offers only hugetlb; no cgroup v1 hierarchy with cpu is mounted)"
	if err.Error() != want {
		t.Errorf("error = %q\nwant      %q", err, want)
	}
	if len(f.writes) != 1 {
		t.Errorf("Apply wrote %q", f.writes[1:])
	}

	// Forcing v2 on the CI-like hybrid host names what v2 lacks.
	f = v1Fake(t)
	f.put(t, 100, "/sys/fs/cgroup/cpu", "/")
	_, err = apply(f, 100, Limits{CPU: 0.5, Memory: 64 * mib}, 2)
	if !errors.Is(err, ErrNoController) || err.Error() != "cgroup controller not available: cpu, memory (cgroup v2 at /sys/fs/cgroup/unified offers only hugetlb)" {
		t.Errorf("Apply forced to v2 = %v", err)
	}
}

func TestApplyNoSuchProcess(t *testing.T) {
	_, err := apply(v2Fake(t), 4242, Limits{CPU: 1}, 0)
	if err == nil || !strings.Contains(err.Error(), "process 4242: no such process") {
		t.Fatalf("Apply = %v", err)
	}
}

func TestLimitsValidate(t *testing.T) {
	for _, tc := range []struct {
		l    Limits
		want string // "" for valid
	}{
		{Limits{CPU: 0.25}, ""},
		{Limits{Memory: MinMemory}, ""},
		{Limits{CPU: MaxCPU, Memory: math.MaxInt64, Name: "a.b-c_d"}, ""},
		{Limits{}, "no limits"},
		{Limits{CPU: -1}, "cpu limit -1: want 0"},
		{Limits{CPU: math.NaN()}, "cpu limit NaN"},
		{Limits{CPU: math.Inf(1)}, "cpu limit +Inf"},
		{Limits{CPU: 0.001}, "below the minimum of 0.01"},
		{Limits{CPU: 250}, ""},
		{Limits{CPU: 100000}, "above the maximum of 8192"},
		{Limits{Memory: 64}, "below the minimum of 16777216"},
		{Limits{Memory: math.MaxUint64}, "above the kernel's maximum"},
		{Limits{CPU: 1, Name: "a/b"}, `cgroup name "a/b"`},
		{Limits{CPU: 1, Name: ".."}, `cgroup name ".."`},
		{Limits{CPU: 1, Name: "cgroup.procs"}, `cgroup name "cgroup.procs"`},
		{Limits{CPU: 1, Name: strings.Repeat("x", 256)}, "at most 255 bytes"},
	} {
		got, err := tc.l.validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: %v", tc.l, err)
		case tc.want == "" && got.Name == "":
			t.Errorf("%+v: no default name", tc.l)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%+v: error %v, want one containing %q", tc.l, err, tc.want)
		}
	}
	if _, err := apply(v2Fake(t), 0, Limits{CPU: 1}, 0); err == nil {
		t.Error("Apply with pid 0 succeeded")
	}
}

func TestAncestors(t *testing.T) {
	if got := strings.Join(ancestors("/a/b"), " "); got != "/ /a /a/b" {
		t.Errorf(`ancestors("/a/b") = %s`, got)
	}
	if got := strings.Join(ancestors("/"), " "); got != "/" {
		t.Errorf(`ancestors("/") = %s`, got)
	}
}
