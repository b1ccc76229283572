package selflimit

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/netmeter/netmeter/internal/nsutil"
)

// mount is one cgroup or cgroup2 line of /proc/<pid>/mountinfo.
type mount struct {
	// Root is the directory of the hierarchy that is mounted, relative to
	// the hierarchy's root as this cgroup namespace sees it: "/" usually,
	// "/docker/<id>" for a v1 container without a cgroup namespace.
	Root string
	// Point is where it is mounted, like /sys/fs/cgroup/memory.
	Point string
	// Options are the per-mount options ("ro,nosuid,…").
	Options []string
	// FSType is "cgroup" (v1) or "cgroup2".
	FSType string
	// Super are the superblock options; for v1 they name the controllers
	// of the hierarchy ("rw,cpu,cpuacct").
	Super []string
}

// readOnly reports whether the mount or its superblock is read-only.
func (m mount) readOnly() bool {
	return slices.Contains(m.Options, "ro") || slices.Contains(m.Super, "ro")
}

// parseMountinfo returns the cgroup and cgroup2 mounts listed in r, in the
// format of proc(5) /proc/<pid>/mountinfo:
//
//	35 31 0:32 / /sys/fs/cgroup/memory rw,relatime shared:9 - cgroup cgroup rw,memory
//
// Other file systems are skipped; a line without the " - " separator or with
// too few fields is an error.
func parseMountinfo(r io.Reader) ([]mount, error) {
	var mounts []mount
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" {
			continue
		}
		// The optional fields end at the lone "-"; paths cannot contain
		// " - " because mountinfo escapes spaces as \040.
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			return nil, fmt.Errorf("mountinfo line %d: no \" - \" separator: %q", n, line)
		}
		pf, qf := strings.Fields(pre), strings.Fields(post)
		if len(pf) < 6 || len(qf) < 2 {
			return nil, fmt.Errorf("mountinfo line %d: too few fields: %q", n, line)
		}
		if qf[0] != "cgroup" && qf[0] != "cgroup2" {
			continue
		}
		m := mount{
			Root:    nsutil.UnescapeMountinfo(pf[3]),
			Point:   nsutil.UnescapeMountinfo(pf[4]),
			Options: strings.Split(pf[5], ","),
			FSType:  qf[0],
		}
		if len(qf) >= 3 {
			m.Super = strings.Split(qf[2], ",")
		}
		mounts = append(mounts, m)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	return mounts, nil
}

// membership is one line of /proc/<pid>/cgroup: the process's cgroup in one
// hierarchy.
type membership struct {
	// ID is the hierarchy id; 0 is the cgroup v2 hierarchy.
	ID int
	// Controllers are the v1 controllers bound to the hierarchy ("cpu",
	// "memory", "name=systemd"); empty for v2.
	Controllers []string
	// Path is the cgroup, relative to the hierarchy's root as the reader's
	// cgroup namespace sees it ("/", "/system.slice/netmeter.service").
	Path string
}

// parseProcCgroup parses /proc/<pid>/cgroup (cgroups(7)):
//
//	4:memory:/process_api/c72a
//	0::/system.slice/netmeter.service
//
// The path is everything after the second colon, so it may contain colons.
func parseProcCgroup(r io.Reader) ([]membership, error) {
	var ms []membership
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" {
			continue
		}
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			return nil, fmt.Errorf("cgroup line %d: want id:controllers:path, got %q", n, line)
		}
		id, err := strconv.Atoi(f[0])
		if err != nil || id < 0 {
			return nil, fmt.Errorf("cgroup line %d: bad hierarchy id %q", n, f[0])
		}
		if !strings.HasPrefix(f[2], "/") {
			return nil, fmt.Errorf("cgroup line %d: path %q is not absolute", n, f[2])
		}
		m := membership{ID: id, Path: f[2]}
		if f[1] != "" {
			m.Controllers = strings.Split(f[1], ",")
		}
		ms = append(ms, m)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read cgroup: %w", err)
	}
	return ms, nil
}
