package bpfload

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/netmeter/netmeter/internal/nsutil"
)

// ErrNoCgroup2 is returned when no cgroup2 filesystem is mounted.
var ErrNoCgroup2 = errors.New("no cgroup2 filesystem mounted: mount one " +
	"(mount -t cgroup2 none /sys/fs/cgroup/unified) or pass a cgroup2 directory")

// Cgroup2Mount returns the mount point of the cgroup2 filesystem, read from
// /proc/self/mountinfo. On a hybrid host (cgroup v1 controllers at
// /sys/fs/cgroup) that is usually /sys/fs/cgroup/unified.
func Cgroup2Mount() (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", fmt.Errorf("find cgroup2 mount: %w", err)
	}
	defer f.Close()
	return parseCgroup2Mount(f)
}

// parseCgroup2Mount returns the first cgroup2 mount in mountinfo(5) text
// whose root is the hierarchy's root ("/"), so that attaching there covers
// every cgroup the mount shows.
func parseCgroup2Mount(r io.Reader) (string, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	fallback := ""
	for sc.Scan() {
		// 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
		// (1)(2)(3)   (4)   (5)      (6)      (7)   (8) (9)   (10)         (11)
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, f := range fields {
			if f == "-" {
				sep = i
				break
			}
		}
		if sep < 5 || sep+1 >= len(fields) || fields[sep+1] != "cgroup2" {
			continue
		}
		mount := nsutil.UnescapeMountinfo(fields[4])
		if fields[3] == "/" {
			return mount, nil
		}
		if fallback == "" {
			fallback = mount
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("find cgroup2 mount: read mountinfo: %w", err)
	}
	if fallback != "" {
		return fallback, nil
	}
	return "", ErrNoCgroup2
}

// ResolveCgroup returns the cgroup2 directory to attach to: path itself
// when it is a directory on a cgroup2 filesystem, or the cgroup2 mount
// when path is empty. A path on cgroup v1 or another filesystem is an
// error that names the cgroup2 mount to use instead (attaching there
// would fail with EBADF).
func ResolveCgroup(path string) (string, error) {
	if path == "" {
		return Cgroup2Mount()
	}
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return "", fmt.Errorf("cgroup %s: %w", path, err)
	}
	if st.Type != unix.CGROUP2_SUPER_MAGIC {
		hint := "pass a directory on the cgroup2 filesystem"
		if m, err := Cgroup2Mount(); err == nil {
			hint += " such as " + m
		}
		return "", fmt.Errorf("cgroup %s is not on cgroup2 (filesystem magic %#x): %s", path, st.Type, hint)
	}
	return path, nil
}
