// Package selflimit caps the agent's own CPU and memory with a cgroup of its
// own, like go-netflow's WithLimitCgroup, on cgroup v2 or, where the
// controllers are still bound to v1 hierarchies, on cgroup v1.
//
// [Apply] creates (or reuses) a cgroup named [Limits.Name] next to the
// process, writes the limits and moves the process into it; [Applied.Remove]
// moves it back and removes the cgroup.
//
// Where the agent runs as a systemd service, the unit's CPUQuota= and
// MemoryMax= do the same job without privileges in the agent and are the
// better choice: systemd owns the unit's cgroup and, unless the unit says
// Delegate=yes, may rewrite its cgroup.subtree_control when it reloads,
// which silently drops limits set from inside.
//
// # Where the cgroup goes
//
// The new cgroup is a child of the process's current cgroup or, on v2 when
// that cannot work, of its parent; never one at a hierarchy's root. So the
// agent stays inside the limits and the accounting of whatever encloses it
// (a container, a systemd unit or slice, a supervisor), and its own limits
// can only tighten theirs.
//
// On cgroup v1 it is a child of the process's current cgroup in each
// hierarchy (cpu, memory), which v1 allows whatever else is in that cgroup.
//
// On cgroup v2 the "no internal processes" rule decides: a cgroup other
// than the root can pass controllers to its children only while it has no
// processes of its own. So when the process is alone in its cgroup (an agent
// run as a systemd service or as a container's only process) or sits in the
// root, the new cgroup is a child of its current cgroup: the process moves
// in first, which empties the current cgroup, and then cpu and memory are
// enabled in its cgroup.subtree_control. When the current cgroup is shared
// with other processes (a login shell's session scope, a test binary and its
// children) it cannot be emptied, so the new cgroup becomes a sibling: a
// child of the current cgroup's parent, which has children and so, by the
// same rule, normally no processes. Controllers missing on the way down from
// the hierarchy's root are enabled in each ancestor's
// cgroup.subtree_control; [Applied.Remove] leaves them enabled, except in the
// process's original cgroup when the process could not move back otherwise.
package selflimit

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"path"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// DefaultName is the cgroup name used when [Limits.Name] is empty.
const DefaultName = "netmeter"

// Bounds of [Limits].
const (
	// MinCPU is the smallest CPU limit: the kernel's minimum quota of
	// 1 ms per 100 ms period.
	MinCPU = 0.01
	// MaxCPU is the largest CPU limit: the most CPUs Linux supports
	// (CONFIG_NR_CPUS ≤ 8192 on x86_64). A limit above the machine's CPU
	// count is allowed and simply never throttles.
	MaxCPU = 8192
	// MinMemory is the smallest memory limit. The agent cannot run in
	// less, and a smaller value is usually a unit mistake (megabytes
	// given as bytes).
	MinMemory = 16 << 20
)

// cpuPeriod is the CFS period, in µs, that the CPU quota is a share of: the
// kernel's default.
const cpuPeriod = 100_000

// Errors that callers may want to branch on, for example to warn and run
// without a self-limit. Apply wraps them with the path and system error.
var (
	// ErrPermission: the process may not create or write cgroups.
	ErrPermission = errors.New("needs CAP_SYS_ADMIN to create cgroups: run as root, or use systemd's CPUQuota=/MemoryMax= instead")
	// ErrReadOnly: the cgroup file system is mounted read-only, as
	// container runtimes do for unprivileged containers.
	ErrReadOnly = errors.New("cgroup filesystem is read-only (in a container?): set the limits on the container instead (docker run --cpus/--memory, Kubernetes resources.limits)")
	// ErrNoController: a controller that a limit needs is available
	// neither on cgroup v2 nor on a v1 hierarchy. The error names it.
	ErrNoController = errors.New("cgroup controller not available")
)

// Limits are the caps for the process.
type Limits struct {
	// CPU is the CPU time allowed, in cores: 0.25 is a quarter of one CPU
	// (25 ms per 100 ms period). 0 means no CPU limit; otherwise it must
	// be between MinCPU and MaxCPU.
	CPU float64
	// Memory is the memory allowed, in bytes, at least MinMemory; 0 means
	// no memory limit. It includes swap: on v2 memory.swap.max is set to 0,
	// on v1 memory.memsw.limit_in_bytes to the same value, where those
	// files exist. The kernel rounds it down to a page multiple. Past it,
	// the kernel reclaims and then OOM-kills the process.
	Memory uint64
	// Name is the cgroup's directory name, one path element; default
	// DefaultName ("netmeter").
	Name string
}

// validate returns l with defaults filled in, or an error naming the field
// that is out of range.
func (l Limits) validate() (Limits, error) {
	if l.Name == "" {
		l.Name = DefaultName
	}
	if l.Name == "." || l.Name == ".." || strings.ContainsAny(l.Name, "/\n\x00") || len(l.Name) > 255 || strings.HasPrefix(l.Name, "cgroup.") {
		return l, fmt.Errorf("cgroup name %q: want one path element of at most 255 bytes, without '/' or newlines, not starting with \"cgroup.\"", l.Name)
	}
	switch {
	case math.IsNaN(l.CPU) || math.IsInf(l.CPU, 0) || l.CPU < 0:
		return l, fmt.Errorf("cpu limit %v: want 0 (no limit) or a number of cores between %v and %v", l.CPU, MinCPU, MaxCPU)
	case l.CPU > 0 && l.CPU < MinCPU:
		return l, fmt.Errorf("cpu limit %v cores is below the minimum of %v (the kernel's 1 ms quota per 100 ms period)", l.CPU, MinCPU)
	case l.CPU > MaxCPU:
		return l, fmt.Errorf("cpu limit %v cores is above the maximum of %v (is the unit cores, not millicores?)", l.CPU, MaxCPU)
	}
	switch {
	case l.Memory > 0 && l.Memory < MinMemory:
		return l, fmt.Errorf("memory limit %d bytes is below the minimum of %d (16 MiB; is the unit bytes?)", l.Memory, MinMemory)
	case l.Memory > math.MaxInt64:
		return l, fmt.Errorf("memory limit %d bytes is above the kernel's maximum of %d", l.Memory, int64(math.MaxInt64))
	}
	if l.CPU == 0 && l.Memory == 0 {
		return l, errors.New("no limits: set CPU, Memory or both")
	}
	return l, nil
}

// quota is the CPU quota per cpuPeriod, in µs.
func (l Limits) quota() int64 { return int64(math.Round(l.CPU * cpuPeriod)) }

// controllers are the controllers the limits need, in a fixed order.
func (l Limits) controllers() []string {
	var cs []string
	if l.CPU > 0 {
		cs = append(cs, "cpu")
	}
	if l.Memory > 0 {
		cs = append(cs, "memory")
	}
	return cs
}

// Applied is the outcome of [Apply]: where the limits are enforced.
type Applied struct {
	// Version is the cgroup version used: 2 or 1.
	Version int
	// PID is the process that was moved.
	PID int
	// CPU and Memory are the cgroup directories that enforce each limit,
	// "" for a limit that was not set. On v2 both are the same directory;
	// on v1 each is in its controller's hierarchy, like
	// /sys/fs/cgroup/cpu/netmeter.
	CPU, Memory string

	fs    cgroupFS
	moves []move
}

// move is what Apply did in one hierarchy, for Remove to undo.
type move struct {
	from, to string // cgroup directories before and after
	created  bool   // Apply created to
	moved    bool   // Apply wrote the pid into to
	// enabled are the controllers Apply enabled in from's
	// cgroup.subtree_control (v2, new cgroup nested in the current one):
	// from must give them back before it can take the process again.
	enabled []string
}

// String describes a for a log line: "cgroup v1: cpu
// /sys/fs/cgroup/cpu/netmeter, memory /sys/fs/cgroup/memory/netmeter".
func (a Applied) String() string {
	if a.Version == 0 {
		return "no cgroup"
	}
	var parts []string
	if a.CPU != "" {
		parts = append(parts, "cpu "+a.CPU)
	}
	if a.Memory != "" {
		parts = append(parts, "memory "+a.Memory)
	}
	return fmt.Sprintf("cgroup v%d: %s", a.Version, strings.Join(parts, ", "))
}

// Apply caps the CPU and memory of process pid (os.Getpid() for the agent
// itself): it creates the cgroup l.Name next to the process's current
// cgroup (see the package documentation for where exactly), or reuses it if
// it exists, writes the limits and moves the process into it. It uses
// cgroup v2 when v2 offers every controller the limits need, cgroup v1
// otherwise. If the process already is in a cgroup called l.Name, Apply only
// updates that cgroup's limits.
//
// On failure Apply undoes what it did. Errors wrap [ErrPermission],
// [ErrReadOnly] or [ErrNoController] where those apply.
func Apply(pid int, l Limits) (Applied, error) {
	return apply(osFS{}, pid, l, 0)
}

// apply is Apply on fsys; version 1 or 2 forces that cgroup version (for
// tests), 0 chooses.
func apply(fsys cgroupFS, pid int, l Limits, version int) (Applied, error) {
	l, err := l.validate()
	if err != nil {
		return Applied{}, err
	}
	if pid <= 0 {
		return Applied{}, fmt.Errorf("pid %d: want a process id", pid)
	}
	b, err := fsys.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return Applied{}, err
	}
	mounts, err := parseMountinfo(bytes.NewReader(b))
	if err != nil {
		return Applied{}, err
	}
	b, err = fsys.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ESRCH) {
			return Applied{}, fmt.Errorf("process %d: no such process", pid)
		}
		return Applied{}, err
	}
	member, err := parseProcCgroup(bytes.NewReader(b))
	if err != nil {
		return Applied{}, fmt.Errorf("/proc/%d/cgroup: %w", pid, err)
	}
	need := l.controllers()

	v2, missing2, why2, err := findV2(fsys, mounts, member, need)
	if err != nil {
		return Applied{}, err
	}
	if version == 2 || version == 0 && len(missing2) == 0 {
		if len(missing2) > 0 {
			return Applied{}, fmt.Errorf("%w: %s (%s)", ErrNoController, strings.Join(missing2, ", "), why2)
		}
		return applyV2(fsys, pid, l, v2, need)
	}
	v1, missing1, err := findV1(mounts, member, need)
	if err != nil {
		return Applied{}, err
	}
	if len(missing1) > 0 {
		why := "no cgroup v1 hierarchy with " + strings.Join(missing1, " or ") + " is mounted"
		if version == 0 {
			why = why2 + "; " + why
		}
		return Applied{}, fmt.Errorf("%w: %s (%s)", ErrNoController, strings.Join(missing1, ", "), why)
	}
	return applyV1(fsys, pid, l, v1)
}

// place is a process's cgroup in one hierarchy.
type place struct {
	mount mount
	rel   string // the cgroup, relative to the mount: "/" or "/a/b"
	// controllers the limits need that this hierarchy provides.
	controllers []string
}

// dir returns the directory of cgroup rel (relative to the mount).
func (p place) dir(rel string) string { return path.Join(p.mount.Point, rel) }

// locate returns cgroup path cg (from /proc/<pid>/cgroup) relative to mount
// m, whose root may be a sub-cgroup (a v1 container's /docker/<id>).
func locate(m mount, cg string) (string, error) {
	if cg == "/.." || strings.HasPrefix(cg, "/../") || strings.Contains(cg, "/../") || strings.HasSuffix(cg, "/..") {
		return "", fmt.Errorf("cgroup %s is outside this process's cgroup namespace", cg)
	}
	root := path.Clean(m.Root)
	switch {
	case root == "/":
		return path.Clean(cg), nil
	case cg == root:
		return "/", nil
	case strings.HasPrefix(cg, root+"/"):
		return path.Clean(cg[len(root):]), nil
	}
	return "", fmt.Errorf("cgroup %s is not visible under %s, which mounts only %s of its hierarchy", cg, m.Point, m.Root)
}

// findV2 returns the process's cgroup v2 place, or the controllers in need
// that v2 does not offer and why.
func findV2(fsys cgroupFS, mounts []mount, member []membership, need []string) (p place, missing []string, why string, err error) {
	i := slices.IndexFunc(member, func(m membership) bool { return m.ID == 0 })
	if i < 0 {
		return place{}, need, "the process is in no cgroup v2 hierarchy", nil
	}
	var lerr error
	for _, m := range mounts {
		if m.FSType != "cgroup2" {
			continue
		}
		rel, err := locate(m, member[i].Path)
		if err != nil {
			lerr = err
			continue
		}
		b, err := fsys.ReadFile(path.Join(m.Point, "cgroup.controllers"))
		if err != nil {
			return place{}, nil, "", err
		}
		offered := strings.Fields(string(b))
		for _, c := range need {
			if !slices.Contains(offered, c) {
				missing = append(missing, c)
			}
		}
		if len(missing) > 0 {
			what := "no controllers"
			if len(offered) > 0 {
				what = "only " + strings.Join(offered, " ")
			}
			return place{}, missing, fmt.Sprintf("cgroup v2 at %s offers %s", m.Point, what), nil
		}
		return place{mount: m, rel: rel, controllers: need}, nil, "", nil
	}
	if lerr != nil {
		return place{}, need, "cgroup v2: " + lerr.Error(), nil
	}
	return place{}, need, "no cgroup2 file system is mounted", nil
}

// findV1 returns, for the controllers in need, the v1 hierarchies that have
// them (one place per hierarchy: co-mounted controllers share one), and the
// controllers that no mounted hierarchy has.
func findV1(mounts []mount, member []membership, need []string) (places []place, missing []string, err error) {
	for _, c := range need {
		if j := slices.IndexFunc(places, func(p place) bool { return slices.Contains(p.mount.Super, c) }); j >= 0 {
			places[j].controllers = append(places[j].controllers, c)
			continue
		}
		i := slices.IndexFunc(member, func(m membership) bool { return m.ID != 0 && slices.Contains(m.Controllers, c) })
		if i < 0 {
			missing = append(missing, c)
			continue
		}
		var lerr error
		found := false
		for _, m := range mounts {
			if m.FSType != "cgroup" || !slices.Contains(m.Super, c) {
				continue
			}
			rel, err := locate(m, member[i].Path)
			if err != nil {
				lerr = err
				continue
			}
			places = append(places, place{mount: m, rel: rel, controllers: []string{c}})
			found = true
			break
		}
		if !found {
			if lerr != nil {
				return nil, nil, lerr
			}
			missing = append(missing, c)
		}
	}
	return places, missing, nil
}

// applyV2 places pid in a v2 cgroup l.Name; see the package documentation
// for nested versus sibling.
func applyV2(fsys cgroupFS, pid int, l Limits, p place, need []string) (Applied, error) {
	if p.mount.readOnly() {
		return Applied{}, fmt.Errorf("%w: %s is mounted read-only", ErrReadOnly, p.mount.Point)
	}
	a := Applied{Version: 2, PID: pid, fs: fsys}
	cur := p.rel
	if cur != "/" && path.Base(cur) == l.Name {
		// A second Apply, or a supervisor made the cgroup for us.
		if err := writeLimitsV2(fsys, p.dir(cur), l); err != nil {
			return Applied{}, err
		}
		a.moves = []move{{from: p.dir(cur), to: p.dir(cur)}}
		a.setPaths(need, p.dir(cur))
		return a, nil
	}
	parent, nested := cur, true
	if cur != "/" {
		procs, err := readProcs(fsys, p.dir(cur))
		if err != nil {
			return Applied{}, err
		}
		if !slices.Equal(procs, []int{pid}) {
			parent, nested = path.Dir(cur), false
		}
	}
	// Controllers reach a cgroup only through the subtree_control of each
	// ancestor, from the root down. When nested, parent still holds the
	// process: it is enabled only after the process moved out.
	chain := ancestors(parent)
	if nested {
		chain = chain[:len(chain)-1]
	}
	for _, anc := range chain {
		if _, err := enable(fsys, p.dir(anc), need); err != nil {
			return Applied{}, err
		}
	}
	mv := move{from: p.dir(cur), to: p.dir(path.Join(parent, l.Name))}
	created, err := mkdir(fsys, mv.to)
	if err != nil {
		return Applied{}, err
	}
	mv.created = created
	a.moves = []move{mv}
	m := &a.moves[0]
	undo := func(err error) (Applied, error) {
		if uerr := a.Remove(); uerr != nil {
			err = errors.Join(err, fmt.Errorf("undo: %w", uerr))
		}
		return Applied{}, err
	}
	if nested {
		if err := movePID(fsys, m.to, pid); err != nil {
			return undo(err)
		}
		m.moved = true
		enabled, err := enable(fsys, m.from, need)
		m.enabled = enabled
		if err != nil {
			return undo(err)
		}
	}
	if err := writeLimitsV2(fsys, m.to, l); err != nil {
		return undo(err)
	}
	if !nested {
		if err := movePID(fsys, m.to, pid); err != nil {
			return undo(err)
		}
		m.moved = true
	}
	a.setPaths(need, m.to)
	return a, nil
}

// applyV1 places pid in a cgroup l.Name below its current cgroup in each
// v1 hierarchy that has a needed controller.
func applyV1(fsys cgroupFS, pid int, l Limits, places []place) (Applied, error) {
	for _, p := range places {
		if p.mount.readOnly() {
			return Applied{}, fmt.Errorf("%w: %s is mounted read-only", ErrReadOnly, p.mount.Point)
		}
	}
	a := Applied{Version: 1, PID: pid, fs: fsys}
	undo := func(err error) (Applied, error) {
		if uerr := a.Remove(); uerr != nil {
			err = errors.Join(err, fmt.Errorf("undo: %w", uerr))
		}
		return Applied{}, err
	}
	for _, p := range places {
		target := path.Join(p.rel, l.Name)
		if p.rel != "/" && path.Base(p.rel) == l.Name {
			target = p.rel // a second Apply: update the limits in place
		}
		mv := move{from: p.dir(p.rel), to: p.dir(target)}
		if mv.to != mv.from {
			created, err := mkdir(fsys, mv.to)
			if err != nil {
				return undo(err)
			}
			mv.created = created
		}
		a.moves = append(a.moves, mv)
		m := &a.moves[len(a.moves)-1]
		if err := writeLimitsV1(fsys, m.to, p.mount.Super, l); err != nil {
			return undo(err)
		}
		if m.to != m.from {
			if err := movePID(fsys, m.to, pid); err != nil {
				return undo(err)
			}
			m.moved = true
		}
		a.setPaths(p.controllers, m.to)
	}
	return a, nil
}

func (a *Applied) setPaths(controllers []string, dir string) {
	for _, c := range controllers {
		switch c {
		case "cpu":
			a.CPU = dir
		case "memory":
			a.Memory = dir
		}
	}
}

// Remove moves the process back to the cgroups it was in before Apply and
// removes the cgroups Apply created or moved it into. A process that has
// exited is fine: its cgroups are still removed. A cgroup that still holds
// other processes is left in place and reported. Remove on the zero Applied
// does nothing.
func (a Applied) Remove() error {
	var errs []error
	for i := len(a.moves) - 1; i >= 0; i-- {
		m := a.moves[i]
		if m.moved {
			err := movePID(a.fs, m.from, a.PID)
			if errors.Is(err, syscall.EBUSY) && len(m.enabled) > 0 {
				// The no-internal-processes rule: from must give back the
				// controllers it passed to the new cgroup first.
				if derr := disable(a.fs, m.from, m.enabled); derr != nil {
					errs = append(errs, derr)
					continue
				}
				err = movePID(a.fs, m.from, a.PID)
			}
			if err != nil && !errors.Is(err, errExited) {
				errs = append(errs, err)
				continue
			}
		}
		if m.created || m.moved {
			if err := rmdir(a.fs, m.to); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// errExited marks a write to cgroup.procs for a process that has exited.
var errExited = errors.New("process exited")

// movePID writes pid into dir's cgroup.procs, which moves all its threads.
func movePID(fsys cgroupFS, dir string, pid int) error {
	err := fsys.WriteFile(path.Join(dir, "cgroup.procs"), strconv.Itoa(pid))
	switch {
	case err == nil:
		return nil
	case errors.Is(err, syscall.ESRCH):
		return fmt.Errorf("move process %d to %s: %w: %w", pid, dir, errExited, err)
	case errors.Is(err, syscall.EBUSY):
		return fmt.Errorf("move process %d to %s: %w (cgroup v2 takes processes only into cgroups that pass no controllers to children)", pid, dir, err)
	}
	return fmt.Errorf("move process %d to %s: %w", pid, dir, classify(err))
}

// readProcs returns the pids in dir's cgroup.procs.
func readProcs(fsys cgroupFS, dir string) ([]int, error) {
	b, err := fsys.ReadFile(path.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil, classify(err)
	}
	var pids []int
	for f := range strings.FieldsSeq(string(b)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("%s/cgroup.procs: bad pid %q", dir, f)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

// ancestors returns rel and the cgroups above it, root first:
// "/a/b" → "/", "/a", "/a/b".
func ancestors(rel string) []string {
	var chain []string
	for p := rel; ; p = path.Dir(p) {
		chain = append(chain, p)
		if p == "/" {
			break
		}
	}
	slices.Reverse(chain)
	return chain
}

// enable makes sure dir passes the controllers in need to its children
// (cgroup.subtree_control) and returns those it had to enable.
func enable(fsys cgroupFS, dir string, need []string) ([]string, error) {
	b, err := fsys.ReadFile(path.Join(dir, "cgroup.subtree_control"))
	if err != nil {
		return nil, classify(err)
	}
	have := strings.Fields(string(b))
	var missing []string
	for _, c := range need {
		if !slices.Contains(have, c) {
			missing = append(missing, c)
		}
	}
	if len(missing) == 0 {
		return nil, nil
	}
	b, err = fsys.ReadFile(path.Join(dir, "cgroup.controllers"))
	if err != nil {
		return nil, classify(err)
	}
	offered := strings.Fields(string(b))
	for _, c := range missing {
		if !slices.Contains(offered, c) {
			return nil, fmt.Errorf("%w: %s: cgroup %s does not get it from its parent", ErrNoController, c, dir)
		}
	}
	err = fsys.WriteFile(path.Join(dir, "cgroup.subtree_control"), "+"+strings.Join(missing, " +"))
	switch {
	case err == nil:
		return missing, nil
	case errors.Is(err, syscall.EBUSY):
		return nil, fmt.Errorf("enable %s in %s: %w: the cgroup has processes of its own, and cgroup v2 lets a cgroup other than the root pass controllers to its children only when it has none (run the agent in a cgroup of its own: a systemd service, a container, or systemd-run --scope)", strings.Join(missing, " "), dir, err)
	}
	return nil, fmt.Errorf("enable %s in %s: %w", strings.Join(missing, " "), dir, classify(err))
}

// disable removes the controllers cs from dir's cgroup.subtree_control.
func disable(fsys cgroupFS, dir string, cs []string) error {
	err := fsys.WriteFile(path.Join(dir, "cgroup.subtree_control"), "-"+strings.Join(cs, " -"))
	if err != nil {
		return fmt.Errorf("disable %s in %s: %w", strings.Join(cs, " "), dir, classify(err))
	}
	return nil
}

// mkdir creates cgroup dir and reports whether it did; an existing one is
// reused.
func mkdir(fsys cgroupFS, dir string) (bool, error) {
	err := fsys.Mkdir(dir)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, syscall.EEXIST):
		return false, nil
	}
	return false, fmt.Errorf("create cgroup: %w", classify(err))
}

// rmdirWait is how long rmdir waits for exiting processes to leave a
// cgroup.
var rmdirWait = 2 * time.Second

// rmdir removes cgroup dir, waiting up to rmdirWait for processes that are
// still exiting to leave it. A missing dir is fine.
func rmdir(fsys cgroupFS, dir string) error {
	deadline := time.Now().Add(rmdirWait)
	for {
		err := fsys.Rmdir(dir)
		switch {
		case err == nil || errors.Is(err, syscall.ENOENT):
			return nil
		case errors.Is(err, syscall.EBUSY) && time.Now().Before(deadline):
			time.Sleep(10 * time.Millisecond)
			continue
		case errors.Is(err, syscall.EBUSY):
			return fmt.Errorf("remove cgroup: %w (it still has processes or child cgroups)", err)
		}
		return fmt.Errorf("remove cgroup: %w", classify(err))
	}
}

// writeLimitsV2 writes l into v2 cgroup dir. A limit that is not set is
// reset to "max" where its file exists (a reused cgroup).
func writeLimitsV2(fsys cgroupFS, dir string, l Limits) error {
	cpu := fmt.Sprintf("max %d", cpuPeriod)
	if l.CPU > 0 {
		cpu = fmt.Sprintf("%d %d", l.quota(), cpuPeriod)
	}
	mem, swap := "max", "max"
	if l.Memory > 0 {
		mem, swap = strconv.FormatUint(l.Memory, 10), "0"
	}
	for _, w := range []struct {
		file, value string
		required    bool
	}{
		{"cpu.max", cpu, l.CPU > 0},
		{"memory.max", mem, l.Memory > 0},
		{"memory.swap.max", swap, false}, // absent without swap accounting
	} {
		if err := writeLimit(fsys, dir, w.file, w.value, w.required); err != nil {
			return err
		}
	}
	return nil
}

// writeLimitsV1 writes l into v1 cgroup dir of a hierarchy with the
// controllers in super (its mount's superblock options).
func writeLimitsV1(fsys cgroupFS, dir string, super []string, l Limits) error {
	if slices.Contains(super, "cpu") {
		quota := "-1"
		if l.CPU > 0 {
			quota = strconv.FormatInt(l.quota(), 10)
		}
		if err := writeLimit(fsys, dir, "cpu.cfs_period_us", strconv.Itoa(cpuPeriod), l.CPU > 0); err != nil {
			return err
		}
		if err := writeLimit(fsys, dir, "cpu.cfs_quota_us", quota, l.CPU > 0); err != nil {
			return err
		}
	}
	if slices.Contains(super, "memory") {
		v := "-1"
		if l.Memory > 0 {
			v = strconv.FormatUint(l.Memory, 10)
		}
		// The memory limit may not exceed memory+swap's: raise memsw
		// first when the new limit is above it.
		err := writeLimit(fsys, dir, "memory.limit_in_bytes", v, l.Memory > 0)
		if errors.Is(err, syscall.EINVAL) {
			if err := writeLimit(fsys, dir, "memory.memsw.limit_in_bytes", v, false); err != nil {
				return err
			}
			err = writeLimit(fsys, dir, "memory.limit_in_bytes", v, true)
		}
		if err != nil {
			return err
		}
		if err := writeLimit(fsys, dir, "memory.memsw.limit_in_bytes", v, false); err != nil {
			return err
		}
	}
	return nil
}

// writeLimit writes value to dir/file. A missing file is an error only if
// required (the controller is not enabled there).
func writeLimit(fsys cgroupFS, dir, file, value string, required bool) error {
	err := fsys.WriteFile(path.Join(dir, file), value)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, syscall.ENOENT) && !required:
		return nil
	case errors.Is(err, syscall.ENOENT):
		return fmt.Errorf("write %s: %w: %w (the controller is not enabled in this cgroup)", file, ErrNoController, err)
	case errors.Is(err, syscall.EINVAL) && strings.HasPrefix(file, "cpu."):
		return fmt.Errorf("write %q to %s: %w (an enclosing cgroup's CPU quota may be lower)", value, path.Join(dir, file), err)
	case errors.Is(err, syscall.EBUSY) && strings.HasPrefix(file, "memory."):
		return fmt.Errorf("write %q to %s: %w (the process already uses more memory than that and the kernel could not reclaim it)", value, path.Join(dir, file), err)
	}
	return fmt.Errorf("write %q to %s: %w", value, path.Join(dir, file), classify(err))
}

// classify wraps permission and read-only errors with the sentinel that
// says what to do about them.
func classify(err error) error {
	switch {
	case errors.Is(err, syscall.EROFS):
		return fmt.Errorf("%w: %w", err, ErrReadOnly)
	case errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES):
		return fmt.Errorf("%w: %w", err, ErrPermission)
	}
	return err
}
