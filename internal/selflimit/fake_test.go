package selflimit

import (
	"fmt"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// fakeFS is an in-memory /proc and cgroup file system that enforces the
// kernel's rules that Apply depends on: on v2 the "no internal processes"
// rule (EBUSY), controllers passed down only through subtree_control
// (ENOENT), interface files appearing and vanishing with them; on v1
// memory.limit_in_bytes ≤ memory.memsw.limit_in_bytes (EINVAL); everywhere
// rmdir only of empty leaves (EBUSY) and no writes for a dead pid (ESRCH).
// It treats every v2 controller as a domain controller, which is stricter
// than the kernel for cpu alone: the kernel lets a cgroup with processes
// enable the threaded cpu controller.
type fakeFS struct {
	mountinfo string
	hiers     []*fakeHier
	// where[pid][i] is pid's cgroup (relative) in hiers[i].
	where map[int][]string

	mkdirErr  error                    // returned by every Mkdir if set
	failWrite map[string]syscall.Errno // file name → error of writes to it
	writes    []string
}

type fakeHier struct {
	id          int      // /proc/<pid>/cgroup hierarchy id; 0 for v2
	point       string   // mount point
	controllers []string // v1: bound controllers; v2: those the root offers
	swap        bool     // memory.swap.max / memory.memsw.* exist
	// nsRoot makes "/" a cgroup namespace's root, not the real one: the
	// no-internal-processes rule applies to it too.
	nsRoot bool
	// mountRoot is the cgroup that is mounted at point, as
	// /proc/<pid>/cgroup names it ("/docker/<id>" for a v1 container
	// without a cgroup namespace); default "/".
	mountRoot string
	nodes     map[string]*fakeNode
}

type fakeNode struct {
	subtree []string          // v2 cgroup.subtree_control
	files   map[string]string // controller interface files
}

func (h *fakeHier) v2() bool { return h.id == 0 }

// newFakeFS returns a fake with the given hierarchies, each with only its
// root cgroup and no processes; mountinfo is what /proc/self/mountinfo
// says.
func newFakeFS(mountinfo string, hiers ...*fakeHier) *fakeFS {
	f := &fakeFS{mountinfo: mountinfo, hiers: hiers, where: map[int][]string{}}
	for _, h := range hiers {
		h.nodes = map[string]*fakeNode{"/": {files: map[string]string{}}}
		if !h.v2() {
			h.nodes["/"].files = h.controllerFiles(h.controllers)
		}
	}
	return f
}

// v2Fake is a pure cgroup v2 host with cpu, memory and swap accounting.
func v2Fake(t *testing.T) *fakeFS {
	return newFakeFS(readFixture(t, "mountinfo-unified"),
		&fakeHier{id: 0, point: "/sys/fs/cgroup", controllers: []string{"cpuset", "cpu", "io", "memory", "pids"}, swap: true})
}

// v1Fake is a hybrid host like the CI VM: cpu and memory on v1, a v2
// hierarchy with only hugetlb.
func v1Fake(t *testing.T) *fakeFS {
	return newFakeFS(readFixture(t, "mountinfo-hybrid"),
		&fakeHier{id: 1, point: "/sys/fs/cgroup/cpu", controllers: []string{"cpu"}},
		&fakeHier{id: 4, point: "/sys/fs/cgroup/memory", controllers: []string{"memory"}, swap: true},
		&fakeHier{id: 0, point: "/sys/fs/cgroup/unified", controllers: []string{"hugetlb"}})
}

func (h *fakeHier) controllerFiles(cs []string) map[string]string {
	files := map[string]string{}
	for _, c := range cs {
		switch {
		case c == "cpu" && h.v2():
			files["cpu.max"] = "max 100000"
		case c == "memory" && h.v2():
			files["memory.max"] = "max"
			if h.swap {
				files["memory.swap.max"] = "max"
			}
		case c == "cpu":
			files["cpu.cfs_period_us"] = "100000"
			files["cpu.cfs_quota_us"] = "-1"
		case c == "memory":
			files["memory.limit_in_bytes"] = "9223372036854771712"
			if h.swap {
				files["memory.memsw.limit_in_bytes"] = "9223372036854771712"
			}
		}
	}
	return files
}

// mkcg creates cgroup rel and its parents in the hierarchy at point.
func (f *fakeFS) mkcg(t *testing.T, point, rel string) *fakeFS {
	t.Helper()
	for _, anc := range ancestors(rel)[1:] {
		if err := f.Mkdir(path.Join(point, anc)); err != nil && !isErrno(err, syscall.EEXIST) {
			t.Fatalf("fake mkdir %s: %v", anc, err)
		}
	}
	return f
}

// put places pid in cgroup rel of the hierarchy mounted at point.
func (f *fakeFS) put(t *testing.T, pid int, point, rel string) {
	t.Helper()
	if _, ok := f.where[pid]; !ok {
		f.where[pid] = slices.Repeat([]string{"/"}, len(f.hiers))
	}
	if err := f.WriteFile(path.Join(point, rel, "cgroup.procs"), strconv.Itoa(pid)); err != nil {
		t.Fatalf("fake put %d in %s: %v", pid, rel, err)
	}
}

// enableAt enables controllers in rel's subtree_control (v2).
func (f *fakeFS) enableAt(t *testing.T, point, rel string, cs ...string) {
	t.Helper()
	if err := f.WriteFile(path.Join(point, rel, "cgroup.subtree_control"), "+"+strings.Join(cs, " +")); err != nil {
		t.Fatalf("fake enable %v in %s: %v", cs, rel, err)
	}
}

func (f *fakeFS) file(t *testing.T, name string) string {
	t.Helper()
	b, err := f.ReadFile(name)
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return strings.TrimSpace(string(b))
}

func isErrno(err error, e syscall.Errno) bool {
	pe, ok := err.(*fs.PathError)
	return ok && pe.Err == e
}

func perr(op, name string, e syscall.Errno) error { return &fs.PathError{Op: op, Path: name, Err: e} }

// resolve finds the hierarchy, cgroup and file name of an absolute path.
func (f *fakeFS) resolve(name string) (h *fakeHier, hi int, rel, file string, ok bool) {
	for i, h := range f.hiers {
		if name == h.point || strings.HasPrefix(name, h.point+"/") {
			rest := "/" + strings.TrimPrefix(strings.TrimPrefix(name, h.point), "/")
			if _, isDir := h.nodes[path.Clean(rest)]; isDir {
				return h, i, path.Clean(rest), "", true
			}
			return h, i, path.Dir(rest), path.Base(rest), true
		}
	}
	return nil, 0, "", "", false
}

func (f *fakeFS) procsIn(hi int, rel string) []int {
	var pids []int
	for pid, w := range f.where {
		if w[hi] == rel {
			pids = append(pids, pid)
		}
	}
	slices.Sort(pids)
	return pids
}

// offered are the controllers that cgroup rel of v2 hierarchy h has.
func (h *fakeHier) offered(rel string) []string {
	if rel == "/" {
		return h.controllers
	}
	return h.nodes[path.Dir(rel)].subtree
}

func (f *fakeFS) ReadFile(name string) ([]byte, error) {
	if name == "/proc/self/mountinfo" {
		return []byte(f.mountinfo), nil
	}
	var pid int
	if _, err := fmt.Sscanf(name, "/proc/%d/cgroup", &pid); err == nil {
		w, ok := f.where[pid]
		if !ok {
			return nil, perr("open", name, syscall.ENOENT)
		}
		var b strings.Builder
		for i, h := range f.hiers {
			ctl := ""
			if !h.v2() {
				ctl = strings.Join(h.controllers, ",")
			}
			fmt.Fprintf(&b, "%d:%s:%s\n", h.id, ctl, path.Join("/", h.mountRoot, w[i]))
		}
		return []byte(b.String()), nil
	}
	h, hi, rel, file, ok := f.resolve(name)
	n := h.nodeOK(rel)
	if !ok || n == nil || file == "" {
		return nil, perr("open", name, syscall.ENOENT)
	}
	switch file {
	case "cgroup.procs":
		var b strings.Builder
		for _, pid := range f.procsIn(hi, rel) {
			fmt.Fprintln(&b, pid)
		}
		return []byte(b.String()), nil
	case "cgroup.controllers":
		if h.v2() {
			return []byte(strings.Join(h.offered(rel), " ") + "\n"), nil
		}
	case "cgroup.subtree_control":
		if h.v2() {
			return []byte(strings.Join(n.subtree, " ") + "\n"), nil
		}
	default:
		if v, ok := n.files[file]; ok {
			return []byte(v + "\n"), nil
		}
	}
	return nil, perr("open", name, syscall.ENOENT)
}

func (h *fakeHier) nodeOK(rel string) *fakeNode {
	if h == nil {
		return nil
	}
	return h.nodes[rel]
}

func (f *fakeFS) children(h *fakeHier, rel string) []string {
	var cs []string
	for p := range h.nodes {
		if p != "/" && path.Dir(p) == rel {
			cs = append(cs, p)
		}
	}
	slices.Sort(cs)
	return cs
}

func (f *fakeFS) WriteFile(name, data string) error {
	f.writes = append(f.writes, name+"="+data)
	if e, ok := f.failWrite[path.Base(name)]; ok {
		return perr("write", name, e)
	}
	h, hi, rel, file, ok := f.resolve(name)
	n := h.nodeOK(rel)
	if !ok || n == nil || file == "" {
		return perr("open", name, syscall.ENOENT)
	}
	switch file {
	case "cgroup.procs":
		pid, err := strconv.Atoi(data)
		if err != nil {
			return perr("write", name, syscall.EINVAL)
		}
		if _, ok := f.where[pid]; !ok {
			return perr("write", name, syscall.ESRCH)
		}
		if h.v2() && (rel != "/" || h.nsRoot) && len(n.subtree) > 0 {
			return perr("write", name, syscall.EBUSY)
		}
		f.where[pid][hi] = rel
		return nil
	case "cgroup.subtree_control":
		if !h.v2() {
			break
		}
		for tok := range strings.FieldsSeq(data) {
			c := tok[1:]
			switch tok[0] {
			case '+':
				if !slices.Contains(h.offered(rel), c) {
					return perr("write", name, syscall.ENOENT)
				}
				if (rel != "/" || h.nsRoot) && len(f.procsIn(hi, rel)) > 0 {
					return perr("write", name, syscall.EBUSY)
				}
				if !slices.Contains(n.subtree, c) {
					n.subtree = append(n.subtree, c)
					for _, ch := range f.children(h, rel) {
						maps.Copy(h.nodes[ch].files, h.controllerFiles([]string{c}))
					}
				}
			case '-':
				for _, ch := range f.children(h, rel) {
					if slices.Contains(h.nodes[ch].subtree, c) {
						return perr("write", name, syscall.EBUSY)
					}
				}
				n.subtree = slices.DeleteFunc(n.subtree, func(s string) bool { return s == c })
				for _, ch := range f.children(h, rel) {
					for file := range h.controllerFiles([]string{c}) {
						delete(h.nodes[ch].files, file)
					}
				}
			default:
				return perr("write", name, syscall.EINVAL)
			}
		}
		return nil
	}
	if _, ok := n.files[file]; !ok {
		return perr("open", name, syscall.ENOENT)
	}
	if file == "memory.limit_in_bytes" || file == "memory.memsw.limit_in_bytes" {
		v := normMem(data)
		lim, sw := normMem(n.files["memory.limit_in_bytes"]), normMem(n.files["memory.memsw.limit_in_bytes"])
		if file == "memory.limit_in_bytes" && h.swap && v > sw || file == "memory.memsw.limit_in_bytes" && v < lim {
			return perr("write", name, syscall.EINVAL)
		}
	}
	n.files[file] = data
	return nil
}

func normMem(s string) uint64 {
	if s == "-1" {
		return 9223372036854771712
	}
	v, _ := strconv.ParseUint(s, 10, 64)
	return v
}

func (f *fakeFS) Mkdir(name string) error {
	if f.mkdirErr != nil {
		return f.mkdirErr
	}
	h, _, rel, file, ok := f.resolve(name)
	if !ok {
		return perr("mkdir", name, syscall.ENOENT)
	}
	if file == "" {
		return perr("mkdir", name, syscall.EEXIST)
	}
	if h.nodeOK(rel) == nil {
		return perr("mkdir", name, syscall.ENOENT)
	}
	child := path.Join(rel, file)
	cs := h.controllers
	if h.v2() {
		cs = h.nodes[rel].subtree
	}
	h.nodes[child] = &fakeNode{files: h.controllerFiles(cs)}
	return nil
}

func (f *fakeFS) Rmdir(name string) error {
	h, hi, rel, file, ok := f.resolve(name)
	if !ok || file != "" || h.nodeOK(rel) == nil {
		return perr("rmdir", name, syscall.ENOENT)
	}
	if len(f.procsIn(hi, rel)) > 0 || len(f.children(h, rel)) > 0 || rel == "/" {
		return perr("rmdir", name, syscall.EBUSY)
	}
	delete(h.nodes, rel)
	return nil
}
